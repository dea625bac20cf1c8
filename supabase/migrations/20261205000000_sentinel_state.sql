-- Sentinel's shared alert state, for replicas (`replicas.enabled`): several
-- `sentinel serve` processes on one database share one record of tracked alerts,
-- silences, acknowledgements and the notification outbox, so a failover neither
-- forgets an incident nor pages it twice. Single-host installations keep the
-- state in a file and leave this table empty.
--
-- Sentinel's own tables (this shared state, the replicas' run history, the audit
-- trail of `sentinel batches fail-stuck`), after the ops views. Idempotent: applied
-- by `supabase db push` and by `sentinel migrate` to the monitored database and,
-- when `replicas.state_database_url` is set, on its own to that database (it needs
-- nothing of the pipeline).

create schema if not exists sentinel;

create table if not exists sentinel.alert_state (
  id int primary key check (id = 1),
  state jsonb not null,
  updated_at timestamptz not null default now()
);

comment on table sentinel.alert_state is
  'Sentinel alert state shared by replicas (one row, id 1): tracked alerts, silences, outbox. Written by Sentinel only.';

-- Run history for replicas: the leader records every run here (single-host
-- installations write history-<environment>.jsonl in the state directory), pruned
-- past `history.retention_days`; `sentinel slo` reads the schema-cache probes.
create table if not exists sentinel.run_history (
  environment text not null,
  at timestamptz not null,
  record jsonb not null,
  primary key (environment, at)
);

comment on table sentinel.run_history is
  'One row per Sentinel run (replicas): status, each check''s outcome and level, the schema-cache probe. Written by Sentinel only.';

-- The audit trail of `sentinel batches fail-stuck --yes`: who failed which stuck
-- batches, when and why. Written in the same transaction as the UPDATE that fails
-- them, so a record exists exactly when batches were changed; listed by
-- `sentinel batches audit`. Lives in the monitored database, next to the batches.
create table if not exists sentinel.batch_audit (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  os_user text,
  db_role text not null default current_user,
  reason text not null,
  older_than_minutes numeric not null,
  source text,
  batch_ids uuid[] not null check (cardinality(batch_ids) > 0),
  environment text
);

comment on table sentinel.batch_audit is
  'One row per `sentinel batches fail-stuck --yes` that failed batches: when, OS user and database role, reason, batch ids. Written by Sentinel only.';
