-- Sentinel's per-source hourly rollup of intake.simplicity_batches (issue 15): what
-- the anomaly detector and the 7-day dashboards read instead of the raw batches.
--
-- sentinel.hourly_source_stats: one row per (UTC hour of created_at, source) with
-- batches, completed/failed batches and the row counts of those batches.
-- sentinel.hourly_source_durations: processing time (completed_at - started_at) of the
-- batches with status `completed`, per (UTC hour of completed_at, source) as a
-- histogram of log-spaced buckets (bucket 0: under 1 s; bucket k >= 1: [1.05^(k-1),
-- 1.05^k) s), so that a p95 read from it is within 2.5 % (+ 0.5 s) of the exact one.
-- Each histogram row also carries the creation hour of its batches, so that an hour
-- of batches can be recomputed from the raw table (backfill) as a whole.
--
-- Maintained incrementally, without locks shared between the engine's writers:
-- row triggers on intake.simplicity_batches append each write's difference (new
-- figures minus old) to sentinel.hourly_source_deltas, an append-only table with no
-- index. A writer never updates a shared row, so two ingestion transactions never
-- wait for each other (or deadlock) because of Sentinel. sentinel.refresh_hourly_source_stats()
-- folds the deltas into the rollup (one statement: the rows it deletes are exactly
-- the rows it adds, whatever commits meanwhile) and backfills the history that
-- existed before this migration, a bounded number of hours per call. A reader adds
-- the deltas not folded yet (src/db/hourly.ts), so it is exact between refreshes.
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

-- Where the backfill of the history from before this migration stands: creation
-- hours in [backfill_next, backfill_end) are not in the rollup yet.
create table if not exists sentinel.hourly_source_state (
  id boolean primary key default true check (id),
  backfill_next timestamptz,
  backfill_end timestamptz,
  refreshed_at timestamptz
);

comment on table sentinel.hourly_source_stats is
  'Sentinel: per (UTC hour of created_at, source) batch and row counts of intake.simplicity_batches, plus the deltas in sentinel.hourly_source_deltas. Written by sentinel.refresh_hourly_source_stats() only.';
comment on table sentinel.hourly_source_durations is
  'Sentinel: processing-time histogram (log-spaced buckets, 5 % wide) of completed batches per (UTC hour of completed_at, source).';
comment on table sentinel.hourly_source_deltas is
  'Sentinel: differences appended by the triggers on intake.simplicity_batches, folded into the rollup by sentinel.refresh_hourly_source_stats().';
comment on table sentinel.hourly_source_state is
  'Sentinel: the creation hours [backfill_next, backfill_end) not backfilled into the hourly rollup yet (one row).';

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
    if old.status = 'completed' and old.started_at is not null and old.completed_at is not null then
      o_done := date_trunc('hour', old.completed_at at time zone 'UTC') at time zone 'UTC';
      o_bucket := sentinel.duration_bucket(old.completed_at - old.started_at);
    end if;
  end if;
  if tg_op <> 'DELETE' then
    n_hour := date_trunc('hour', new.created_at at time zone 'UTC') at time zone 'UTC';
    if new.status = 'completed' and new.started_at is not null and new.completed_at is not null then
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

-- Folds the deltas into the rollup, then backfills up to max_backfill_hours creation
-- hours of the history (0: none). Returns jsonb {folded, backfilled_hours,
-- backfill_pending_hours}. One refresher at a time (the state row's lock); the
-- engine's writers never wait for it.
create or replace function sentinel.refresh_hourly_source_stats(max_backfill_hours integer default 168)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  folded bigint := 0;
  st sentinel.hourly_source_state;
  a timestamptz;
  b timestamptz;
  hours integer := 0;
begin
  insert into sentinel.hourly_source_state (id) values (true) on conflict (id) do nothing;
  select * into st from sentinel.hourly_source_state s where s.id for update;

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

  -- Backfill: recompute whole creation hours [a, b) from the raw table and drop the
  -- deltas of those hours, in one statement (one snapshot): a delta is visible to
  -- it exactly when its write is, so a write committing meanwhile is neither lost
  -- nor counted twice (its delta stays and is folded later).
  if st.backfill_next is not null and st.backfill_next < st.backfill_end and max_backfill_hours > 0 then
    a := st.backfill_next;
    b := least(st.backfill_end, a + make_interval(hours => max_backfill_hours));
    perform sentinel.recompute_hourly_source_stats(a, b);
    hours := extract(epoch from b - a) / 3600;
    update sentinel.hourly_source_state s set backfill_next = b where s.id;
    st.backfill_next := b;
  end if;

  delete from sentinel.hourly_source_stats r
  where r.batches = 0 and r.completed_batches = 0 and r.failed_batches = 0 and r.total_rows = 0
    and r.inserted_rows = 0 and r.skipped_rows = 0 and r.error_rows = 0;
  delete from sentinel.hourly_source_durations r where r.batches = 0;
  update sentinel.hourly_source_state s set refreshed_at = now() where s.id;

  return jsonb_build_object(
    'folded', folded,
    'backfilled_hours', hours,
    'backfill_pending_hours',
    coalesce(greatest(0, extract(epoch from st.backfill_end - st.backfill_next) / 3600), 0)::bigint
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
           x.started_at, x.completed_at
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
    where w.status = 'completed' and w.started_at is not null and w.completed_at is not null
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
  update sentinel.hourly_source_state s set backfill_next = null, backfill_end = null where s.id;
  return null;
end;
$$;

-- The triggers. Updates that change nothing the rollup holds (most status steps:
-- processing, validating, inserting) do not even call the function.
create or replace trigger sentinel_hourly_source_insert
  after insert on intake.simplicity_batches
  for each row execute function sentinel.hourly_source_capture();
create or replace trigger sentinel_hourly_source_update
  after update on intake.simplicity_batches
  for each row
  when ((old.source, old.created_at, old.status = 'completed', old.status = 'failed', old.total_rows,
         old.inserted_rows, old.skipped_rows, old.error_rows,
         case when old.status = 'completed' then old.started_at end,
         case when old.status = 'completed' then old.completed_at end)
        is distinct from
        (new.source, new.created_at, new.status = 'completed', new.status = 'failed', new.total_rows,
         new.inserted_rows, new.skipped_rows, new.error_rows,
         case when new.status = 'completed' then new.started_at end,
         case when new.status = 'completed' then new.completed_at end))
  execute function sentinel.hourly_source_capture();
create or replace trigger sentinel_hourly_source_delete
  after delete on intake.simplicity_batches
  for each row execute function sentinel.hourly_source_capture();
create or replace trigger sentinel_hourly_source_truncate
  after truncate on intake.simplicity_batches
  for each statement execute function sentinel.hourly_source_on_truncate();

-- The history from before the triggers: backfilled by the refresh, oldest first.
-- After the triggers (whose creation waits for the engine's open writes), so every
-- batch is either in this range or captured by them. A second application keeps
-- the row as it is.
insert into sentinel.hourly_source_state (id, backfill_next, backfill_end)
select true, r.first_hour, r.last_hour + interval '1 hour'
from (
  select min(date_trunc('hour', b.created_at at time zone 'UTC') at time zone 'UTC') as first_hour,
         max(date_trunc('hour', b.created_at at time zone 'UTC') at time zone 'UTC') as last_hour
  from intake.simplicity_batches b
) r
on conflict (id) do nothing;

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
