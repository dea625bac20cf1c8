-- Sentinel's shared alert state, for replicas (`replicas.enabled`): several
-- `sentinel serve` processes on one database share one record of tracked alerts,
-- silences, acknowledgements and the notification outbox, so a failover neither
-- forgets an incident nor pages it twice. Single-host installations keep the
-- state in a file and leave this table empty.
--
-- Idempotent: applied by `sentinel migrate` to the monitored database and, when
-- `replicas.state_database_url` is set, to that database.

create schema if not exists sentinel;

create table if not exists sentinel.alert_state (
  id int primary key check (id = 1),
  state jsonb not null,
  updated_at timestamptz not null default now()
);

comment on table sentinel.alert_state is
  'Sentinel alert state shared by replicas (one row, id 1): tracked alerts, silences, outbox. Written by Sentinel only.';
