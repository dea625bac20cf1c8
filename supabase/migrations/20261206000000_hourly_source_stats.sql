-- Sentinel's per-source hourly rollup of intake.simplicity_batches (issue 15): what
-- the anomaly detector and the 7-day dashboards read instead of the raw batches.
--
-- sentinel.hourly_source_stats: one row per (UTC hour of created_at, source) with
-- batches, completed/failed batches and the row counts of those batches.
-- sentinel.hourly_source_durations: processing time (completed_at - started_at) of the
-- batches with status `completed` (and completed_at >= created_at, so a batch never
-- counts in an hour before its own), per (UTC hour of completed_at, source) as a
-- histogram of log-spaced buckets (bucket 0: under 1 s; bucket k >= 1: [1.05^(k-1),
-- 1.05^k) s), so that a p95 read from it is within 2.5 % (+ 0.5 s) of the exact one.
-- Each histogram row also carries the creation hour of its batches, so that an hour
-- of batches can be recomputed from the raw table as a whole.
--
-- The rollup holds the creation hours before sentinel.hourly_source_state.rolled_up_before
-- (R); a reader takes the hours from R on from the raw table, through the hour index
-- (src/db/hourly.ts). sentinel.refresh_hourly_source_stats() moves R forward, an hour
-- at a time recomputed from the raw table, up to 3 hours before the start of the
-- oldest transaction of this database; the same walk backfills the history that
-- predates this migration, a bounded number of hours per call.
--
-- The engine's usual writes cost nothing: a batch is inserted and taken through its
-- statuses within minutes, while its hour is still read raw. Only a write to a batch
-- created more than 3 hours before the writing transaction began (a late status
-- change, a correction, a retention delete, a backdated insert) calls a trigger,
-- which appends the difference (new figures minus old) to
-- sentinel.hourly_source_deltas: an append-only table with no index, so writers
-- never wait for each other (or deadlock) because of Sentinel. Why 3 hours is safe:
-- a write the triggers skip is to a batch created after (its transaction's start - 3 h)
-- >= (the oldest transaction's start when R last moved - 3 h) >= R, so it is in an
-- hour read raw, or in one recomputed after it committed. The refresh folds the
-- deltas into the rollup (one statement: the rows it deletes are exactly the rows it
-- adds); until then a reader adds them.
--
-- Idempotent, plain SQL: runs under `supabase db push` and `sentinel migrate`.

create schema if not exists sentinel;

create table if not exists sentinel.hourly_source_stats (
  hour_start timestamptz not null,
  source text not null,
  batches bigint not null default 0,
  completed_batches bigint not null default 0,
  failed_batches bigint not null default 0,
  total_rows bigint not null default 0,
  inserted_rows bigint not null default 0,
  skipped_rows bigint not null default 0,
  error_rows bigint not null default 0,
  primary key (hour_start, source)
);

create table if not exists sentinel.hourly_source_durations (
  completed_hour timestamptz not null,
  source text not null,
  bucket smallint not null,
  created_hour timestamptz not null,
  batches bigint not null,
  primary key (completed_hour, source, bucket, created_hour)
);
create index if not exists hourly_source_durations_created_idx
  on sentinel.hourly_source_durations (created_hour);

-- One row per write's difference. completed_hour is null for a figures row (the
-- d_* columns) and set for a histogram row (d_durations batches in bucket of that
-- completion hour, of batches created in hour_start).
create table if not exists sentinel.hourly_source_deltas (
  hour_start timestamptz not null,
  source text not null,
  completed_hour timestamptz,
  bucket smallint,
  d_batches integer not null default 0,
  d_completed integer not null default 0,
  d_failed integer not null default 0,
  d_total_rows bigint not null default 0,
  d_inserted_rows bigint not null default 0,
  d_skipped_rows bigint not null default 0,
  d_error_rows bigint not null default 0,
  d_durations integer not null default 0
);

-- The creation hours before rolled_up_before are in the rollup (one row).
create table if not exists sentinel.hourly_source_state (
  id boolean primary key default true check (id),
  rolled_up_before timestamptz,
  refreshed_at timestamptz
);

comment on table sentinel.hourly_source_stats is
  'Sentinel: per (UTC hour of created_at, source) batch and row counts of intake.simplicity_batches, plus the deltas in sentinel.hourly_source_deltas. Written by sentinel.refresh_hourly_source_stats() only.';
comment on table sentinel.hourly_source_durations is
  'Sentinel: processing-time histogram (log-spaced buckets, 5 % wide) of completed batches per (UTC hour of completed_at, source).';
comment on table sentinel.hourly_source_deltas is
  'Sentinel: differences appended by the triggers on intake.simplicity_batches, folded into the rollup by sentinel.refresh_hourly_source_stats().';
comment on table sentinel.hourly_source_state is
  'Sentinel: creation hours before rolled_up_before are in the hourly rollup, later ones are read from intake.simplicity_batches (one row).';

-- The histogram bucket of a processing time.
create or replace function sentinel.duration_bucket(d interval)
returns smallint
language sql
immutable
parallel safe
return case
  when extract(epoch from d) < 1 then 0
  else least(30000, 1 + floor(ln(extract(epoch from d)::float8) / ln(1.05)))
end::smallint;

-- The trigger: appends new minus old. A figures row when a figure changed, a
-- histogram row per side whose (completion hour, bucket) changed. Nothing else:
-- no read, no lock, no index to maintain.
create or replace function sentinel.hourly_source_capture() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  o_hour timestamptz;
  n_hour timestamptz;
  o_done timestamptz;
  n_done timestamptz;
  o_bucket smallint;
  n_bucket smallint;
begin
  if tg_op <> 'INSERT' then
    o_hour := date_trunc('hour', old.created_at at time zone 'UTC') at time zone 'UTC';
    if old.status = 'completed' and old.started_at is not null and old.completed_at >= old.created_at then
      o_done := date_trunc('hour', old.completed_at at time zone 'UTC') at time zone 'UTC';
      o_bucket := sentinel.duration_bucket(old.completed_at - old.started_at);
    end if;
  end if;
  if tg_op <> 'DELETE' then
    n_hour := date_trunc('hour', new.created_at at time zone 'UTC') at time zone 'UTC';
    if new.status = 'completed' and new.started_at is not null and new.completed_at >= new.created_at then
      n_done := date_trunc('hour', new.completed_at at time zone 'UTC') at time zone 'UTC';
      n_bucket := sentinel.duration_bucket(new.completed_at - new.started_at);
    end if;
  end if;

  if tg_op = 'INSERT' then
    insert into sentinel.hourly_source_deltas
      (hour_start, source, d_batches, d_completed, d_failed, d_total_rows, d_inserted_rows, d_skipped_rows, d_error_rows)
    values (n_hour, new.source, 1, (new.status = 'completed')::int, (new.status = 'failed')::int,
            new.total_rows, new.inserted_rows, new.skipped_rows, new.error_rows);
  elsif tg_op = 'DELETE' then
    insert into sentinel.hourly_source_deltas
      (hour_start, source, d_batches, d_completed, d_failed, d_total_rows, d_inserted_rows, d_skipped_rows, d_error_rows)
    values (o_hour, old.source, -1, -(old.status = 'completed')::int, -(old.status = 'failed')::int,
            -old.total_rows, -old.inserted_rows, -old.skipped_rows, -old.error_rows);
  elsif new.source = old.source and n_hour = o_hour then
    if (new.status = 'completed', new.status = 'failed', new.total_rows, new.inserted_rows, new.skipped_rows,
        new.error_rows)
       is distinct from
       (old.status = 'completed', old.status = 'failed', old.total_rows, old.inserted_rows, old.skipped_rows,
        old.error_rows) then
      insert into sentinel.hourly_source_deltas
        (hour_start, source, d_completed, d_failed, d_total_rows, d_inserted_rows, d_skipped_rows, d_error_rows)
      values (n_hour, new.source,
              (new.status = 'completed')::int - (old.status = 'completed')::int,
              (new.status = 'failed')::int - (old.status = 'failed')::int,
              new.total_rows - old.total_rows, new.inserted_rows - old.inserted_rows,
              new.skipped_rows - old.skipped_rows, new.error_rows - old.error_rows);
    end if;
  else
    -- Renamed or moved to another hour: out of the old key, into the new one.
    insert into sentinel.hourly_source_deltas
      (hour_start, source, d_batches, d_completed, d_failed, d_total_rows, d_inserted_rows, d_skipped_rows, d_error_rows)
    values (o_hour, old.source, -1, -(old.status = 'completed')::int, -(old.status = 'failed')::int,
            -old.total_rows, -old.inserted_rows, -old.skipped_rows, -old.error_rows),
           (n_hour, new.source, 1, (new.status = 'completed')::int, (new.status = 'failed')::int,
            new.total_rows, new.inserted_rows, new.skipped_rows, new.error_rows);
  end if;

  if (o_done, o_bucket, o_hour, old.source) is distinct from (n_done, n_bucket, n_hour, new.source) then
    if o_done is not null then
      insert into sentinel.hourly_source_deltas (hour_start, source, completed_hour, bucket, d_durations)
      values (o_hour, old.source, o_done, o_bucket, -1);
    end if;
    if n_done is not null then
      insert into sentinel.hourly_source_deltas (hour_start, source, completed_hour, bucket, d_durations)
      values (n_hour, new.source, n_done, n_bucket, 1);
    end if;
  end if;
  return null;
end;
$$;

-- Folds the deltas into the rollup, then moves rolled_up_before forward by up to
-- max_hours hours (recomputed from the raw table; 0: fold only). Returns jsonb
-- {folded, rolled_up_before, recomputed_hours, pending_hours}. One refresher at a
-- time (the state row's lock); the engine's writers never wait for it.
create or replace function sentinel.refresh_hourly_source_stats(max_hours integer default 168)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  folded bigint := 0;
  r_old timestamptz;
  r_new timestamptz;
  oldest timestamptz;
  target timestamptz;
  hidden boolean;
begin
  -- The recompute must take its snapshot after the look at pg_stat_activity below.
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'sentinel.refresh_hourly_source_stats() must run in a READ COMMITTED transaction';
  end if;
  insert into sentinel.hourly_source_state (id) values (true) on conflict (id) do nothing;
  select s.rolled_up_before into r_old from sentinel.hourly_source_state s where s.id for update;

  -- One statement, one snapshot: exactly the deltas it deletes are added.
  with gone as (
    delete from sentinel.hourly_source_deltas d returning d.*
  ),
  figures as (
    insert into sentinel.hourly_source_stats as r
      (hour_start, source, batches, completed_batches, failed_batches, total_rows, inserted_rows, skipped_rows,
       error_rows)
    select g.hour_start, g.source, sum(g.d_batches), sum(g.d_completed), sum(g.d_failed), sum(g.d_total_rows),
           sum(g.d_inserted_rows), sum(g.d_skipped_rows), sum(g.d_error_rows)
    from gone g
    where g.completed_hour is null
    group by g.hour_start, g.source
    on conflict (hour_start, source) do update set
      batches = r.batches + excluded.batches,
      completed_batches = r.completed_batches + excluded.completed_batches,
      failed_batches = r.failed_batches + excluded.failed_batches,
      total_rows = r.total_rows + excluded.total_rows,
      inserted_rows = r.inserted_rows + excluded.inserted_rows,
      skipped_rows = r.skipped_rows + excluded.skipped_rows,
      error_rows = r.error_rows + excluded.error_rows
  ),
  durations as (
    insert into sentinel.hourly_source_durations as r (completed_hour, source, bucket, created_hour, batches)
    select g.completed_hour, g.source, g.bucket, g.hour_start, sum(g.d_durations)
    from gone g
    where g.completed_hour is not null
    group by g.completed_hour, g.source, g.bucket, g.hour_start
    on conflict (completed_hour, source, bucket, created_hour) do update set batches = r.batches + excluded.batches
  )
  select count(*) into folded from gone;

  -- How far R may go: 3 hours (the triggers' horizon) before the start of the oldest
  -- transaction of this database, read before the recompute takes its snapshot (a
  -- later statement), so every write that snapshot misses began after that start.
  -- A session whose start this role may not see holds R where it is.
  select min(a.xact_start), bool_or(a.state is null and a.backend_type = 'client backend')
    into oldest, hidden
  from pg_stat_activity a
  where a.datname = current_database() and a.pid <> pg_backend_pid();
  target := date_trunc('hour', (least(coalesce(oldest, clock_timestamp()), now(), clock_timestamp())
                                - interval '3 hours') at time zone 'UTC') at time zone 'UTC';

  if r_old is null then
    -- First refresh: the history starts at the first batch (two probes of the hour index).
    select min(date_trunc('hour', b.created_at at time zone 'UTC') at time zone 'UTC') into r_old
    from intake.simplicity_batches b;
    r_old := least(coalesce(r_old, target), target);
  end if;
  r_new := r_old;
  if not coalesce(hidden, false) and r_old < target and max_hours > 0 then
    r_new := least(target, r_old + make_interval(hours => max_hours));
    perform sentinel.recompute_hourly_source_stats(r_old, r_new);
  end if;

  delete from sentinel.hourly_source_stats r
  where r.batches = 0 and r.completed_batches = 0 and r.failed_batches = 0 and r.total_rows = 0
    and r.inserted_rows = 0 and r.skipped_rows = 0 and r.error_rows = 0;
  delete from sentinel.hourly_source_durations r where r.batches = 0;
  update sentinel.hourly_source_state s set rolled_up_before = r_new, refreshed_at = now() where s.id;

  return jsonb_build_object(
    'folded', folded,
    'rolled_up_before', r_new,
    'recomputed_hours', (extract(epoch from r_new - r_old) / 3600)::bigint,
    'pending_hours', case when coalesce(hidden, false) then -1
                          else greatest(0, extract(epoch from target - r_new) / 3600)::bigint end
  );
end;
$$;

-- Sets the rollup of creation hours [a, b) to what the raw table holds (all
-- sources), dropping the deltas of those hours. Callers hold the state row's lock.
create or replace function sentinel.recompute_hourly_source_stats(a timestamptz, b timestamptz)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
begin atomic
  with gone as (
    delete from sentinel.hourly_source_deltas d where d.hour_start >= a and d.hour_start < b returning 1
  ),
  raw as (
    select date_trunc('hour', x.created_at at time zone 'UTC') at time zone 'UTC' as hour_start,
           x.source, x.status, x.total_rows, x.inserted_rows, x.skipped_rows, x.error_rows,
           x.started_at, x.completed_at, x.created_at
    from intake.simplicity_batches x
    where (date_trunc('hour', x.created_at at time zone 'UTC') at time zone 'UTC') >= a
      and (date_trunc('hour', x.created_at at time zone 'UTC') at time zone 'UTC') < b
  ),
  fresh as (
    select w.hour_start, w.source, count(*) as batches,
           count(*) filter (where w.status = 'completed') as completed_batches,
           count(*) filter (where w.status = 'failed') as failed_batches,
           sum(w.total_rows) as total_rows, sum(w.inserted_rows) as inserted_rows,
           sum(w.skipped_rows) as skipped_rows, sum(w.error_rows) as error_rows
    from raw w
    group by w.hour_start, w.source
  ),
  figures as (
    insert into sentinel.hourly_source_stats as r
      (hour_start, source, batches, completed_batches, failed_batches, total_rows, inserted_rows, skipped_rows,
       error_rows)
    select coalesce(f.hour_start, c.hour_start), coalesce(f.source, c.source), coalesce(f.batches, 0),
           coalesce(f.completed_batches, 0), coalesce(f.failed_batches, 0), coalesce(f.total_rows, 0),
           coalesce(f.inserted_rows, 0), coalesce(f.skipped_rows, 0), coalesce(f.error_rows, 0)
    from fresh f
    full join (
      select s.hour_start, s.source from sentinel.hourly_source_stats s where s.hour_start >= a and s.hour_start < b
    ) c on c.hour_start = f.hour_start and c.source = f.source
    on conflict (hour_start, source) do update set
      batches = excluded.batches,
      completed_batches = excluded.completed_batches,
      failed_batches = excluded.failed_batches,
      total_rows = excluded.total_rows,
      inserted_rows = excluded.inserted_rows,
      skipped_rows = excluded.skipped_rows,
      error_rows = excluded.error_rows
    returning 1
  ),
  fresh_durations as (
    select date_trunc('hour', w.completed_at at time zone 'UTC') at time zone 'UTC' as completed_hour,
           w.source, sentinel.duration_bucket(w.completed_at - w.started_at) as bucket, w.hour_start as created_hour,
           count(*) as batches
    from raw w
    where w.status = 'completed' and w.started_at is not null and w.completed_at >= w.created_at
    group by 1, 2, 3, 4
  ),
  durations as (
    insert into sentinel.hourly_source_durations as r (completed_hour, source, bucket, created_hour, batches)
    select coalesce(f.completed_hour, c.completed_hour), coalesce(f.source, c.source), coalesce(f.bucket, c.bucket),
           coalesce(f.created_hour, c.created_hour), coalesce(f.batches, 0)
    from fresh_durations f
    full join (
      select d.completed_hour, d.source, d.bucket, d.created_hour
      from sentinel.hourly_source_durations d where d.created_hour >= a and d.created_hour < b
    ) c on c.completed_hour = f.completed_hour and c.source = f.source and c.bucket = f.bucket
       and c.created_hour = f.created_hour
    on conflict (completed_hour, source, bucket, created_hour) do update set batches = excluded.batches
    returning 1
  )
  select (select count(*) from gone) + (select count(*) from figures) + (select count(*) from durations);
end;

create or replace function sentinel.hourly_source_on_truncate() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform 1 from sentinel.hourly_source_state s where s.id for update;
  delete from sentinel.hourly_source_stats;
  delete from sentinel.hourly_source_durations;
  delete from sentinel.hourly_source_deltas;
  update sentinel.hourly_source_state s set rolled_up_before = null where s.id;
  return null;
end;
$$;

-- The triggers: only writes to batches created more than 3 hours before the
-- writing transaction began call the function (see the top). The conditions are
-- kept this small on purpose: PostgreSQL prepares a trigger's WHEN expression once
-- per statement, and the engine writes one row per statement; a condition that also
-- compared the figures (old vs new) cost every status update ~30 us (measured), so
-- the function compares them instead, and appends nothing when none changed.
create or replace trigger sentinel_hourly_source_insert
  after insert on intake.simplicity_batches
  for each row
  when (new.created_at < now() - interval '3 hours')
  execute function sentinel.hourly_source_capture();
create or replace trigger sentinel_hourly_source_update
  after update on intake.simplicity_batches
  for each row
  when (old.created_at < now() - interval '3 hours' or new.created_at < now() - interval '3 hours')
  execute function sentinel.hourly_source_capture();
create or replace trigger sentinel_hourly_source_delete
  after delete on intake.simplicity_batches
  for each row
  when (old.created_at < now() - interval '3 hours')
  execute function sentinel.hourly_source_capture();
create or replace trigger sentinel_hourly_source_truncate
  after truncate on intake.simplicity_batches
  for each statement execute function sentinel.hourly_source_on_truncate();

-- R stays unset until the first refresh, which starts it at the first batch's hour:
-- the history from before the migration is backfilled by the refreshes, oldest
-- hour first (`sentinel migrate` runs them all).
insert into sentinel.hourly_source_state (id) values (true) on conflict (id) do nothing;

do $$
begin
  revoke all on function sentinel.refresh_hourly_source_stats(integer) from public;
  revoke all on function sentinel.recompute_hourly_source_stats(timestamptz, timestamptz) from public;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant usage on schema sentinel to service_role;
    grant execute on function sentinel.refresh_hourly_source_stats(integer) to service_role;
    grant select on sentinel.hourly_source_stats, sentinel.hourly_source_durations, sentinel.hourly_source_deltas,
      sentinel.hourly_source_state to service_role;
  end if;
end;
$$;
