-- The hourly rollup, second step (issue 15): what the 7-day dashboard and the live
-- anomaly check still read from the raw batches or from the full histogram.
--
-- 1. Timings. ops.v_batch_performance has avg_parse_ms, avg_db_ms and avg_total_ms,
--    which sums and counts give exactly: per (UTC hour of created_at, source) the
--    number of batches with parse_ms known and their sum, the same for db_ms, and for
--    parse_ms + db_ms over the batches where both are known. Kept by the same
--    refresh, recompute and late-write deltas as the other figures, so that
--    ops.v_batch_performance (3. below) returns its rows for the closed hours from the
--    rollup and the last three or four hours from the raw table.
-- 2. The p95 of each closed completion hour. A completion hour before the horizon R
--    holds only batches created before R (a batch completes after it is created), so
--    its histogram changes only through a late write. The refresh keeps, per (UTC
--    hour of completed_at, source), the number of batches and the two buckets
--    percentile_cont(0.95) interpolates between (ranks floor and ceil of 0.95 (n-1)),
--    recomputed for every completion hour the horizon passes and every one a folded
--    delta touches. A reader takes one row per source-hour instead of its few dozen
--    bucket rows (the live anomaly check at scale L: ~5,100 source-hours, ~25 bucket
--    rows each), and the same estimate (src/db/hourly.ts: the same interpolation,
--    within 2.47 %). A (completion hour, source) with a delta not folded yet is read
--    from the histogram, as before.
-- 3. ops.v_batch_performance reads the rollup for the hours before the horizon (same
--    columns and values): every reader of the view, the API, Grafana and the supabase
--    client, gets the 7-day dashboards at the rollup's cost.
--
-- The rollup rows that exist when this runs have no timings: the first time (the
-- columns are new) the horizon is reset and the p95 table left empty, so the next
-- refreshes rebuild the history (`sentinel migrate` runs them right after; under
-- `supabase db push` the next refreshes do). Readers stay exact meanwhile, reading
-- the hours past the horizon raw. Idempotent, plain SQL.

do $$
begin
  if not exists (
    select 1 from information_schema.columns
     where table_schema = 'sentinel' and table_name = 'hourly_source_stats' and column_name = 'parse_ms_n'
  ) then
    -- No refresher runs while the columns are added and the horizon is reset.
    perform 1 from sentinel.hourly_source_state s where s.id for update;
    alter table sentinel.hourly_source_stats
      add column parse_ms_n bigint not null default 0,
      add column parse_ms_sum bigint not null default 0,
      add column db_ms_n bigint not null default 0,
      add column db_ms_sum bigint not null default 0,
      add column total_ms_n bigint not null default 0,
      add column total_ms_sum bigint not null default 0;
    alter table sentinel.hourly_source_deltas
      add column d_parse_ms_n integer not null default 0,
      add column d_parse_ms_sum bigint not null default 0,
      add column d_db_ms_n integer not null default 0,
      add column d_db_ms_sum bigint not null default 0,
      add column d_total_ms_n integer not null default 0,
      add column d_total_ms_sum bigint not null default 0;
    update sentinel.hourly_source_state s set rolled_up_before = null where s.id;
  end if;
end;
$$;

comment on column sentinel.hourly_source_stats.parse_ms_n is 'Batches of the source-hour with parse_ms known.';
comment on column sentinel.hourly_source_stats.parse_ms_sum is 'Sum of their parse_ms.';
comment on column sentinel.hourly_source_stats.db_ms_n is 'Batches of the source-hour with db_ms known.';
comment on column sentinel.hourly_source_stats.db_ms_sum is 'Sum of their db_ms.';
comment on column sentinel.hourly_source_stats.total_ms_n is 'Batches of the source-hour with both parse_ms and db_ms known.';
comment on column sentinel.hourly_source_stats.total_ms_sum is 'Sum of their parse_ms + db_ms.';

-- The p95 of each closed completion hour (before the horizon), per source.
create table if not exists sentinel.hourly_source_p95 (
  completed_hour timestamptz not null,
  source text not null,
  finished_batches bigint not null,
  low_bucket smallint not null,
  high_bucket smallint not null,
  primary key (completed_hour, source)
);
comment on table sentinel.hourly_source_p95 is
  'Sentinel: per (UTC hour of completed_at, source) before the rollup''s horizon: the completed batches and the two histogram buckets percentile_cont(0.95) interpolates between. Written by sentinel.refresh_hourly_source_stats() only.';

-- The trigger, as before plus the timings.
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
  -- parse_ms, db_ms, parse_ms + db_ms: known (1/0) and value (0 when unknown); bigint, never overflows.
  o_pn int := 0; o_ps bigint := 0; o_dn int := 0; o_ds bigint := 0; o_tn int := 0; o_ts bigint := 0;
  n_pn int := 0; n_ps bigint := 0; n_dn int := 0; n_ds bigint := 0; n_tn int := 0; n_ts bigint := 0;
begin
  if tg_op <> 'INSERT' then
    o_hour := date_trunc('hour', old.created_at at time zone 'UTC') at time zone 'UTC';
    if old.status = 'completed' and old.started_at is not null and old.completed_at >= old.created_at then
      o_done := date_trunc('hour', old.completed_at at time zone 'UTC') at time zone 'UTC';
      o_bucket := sentinel.duration_bucket(old.completed_at - old.started_at);
    end if;
    o_pn := (old.parse_ms is not null)::int; o_ps := coalesce(old.parse_ms, 0);
    o_dn := (old.db_ms is not null)::int; o_ds := coalesce(old.db_ms, 0);
    o_tn := o_pn * o_dn; o_ts := o_tn * (o_ps + o_ds);
  end if;
  if tg_op <> 'DELETE' then
    n_hour := date_trunc('hour', new.created_at at time zone 'UTC') at time zone 'UTC';
    if new.status = 'completed' and new.started_at is not null and new.completed_at >= new.created_at then
      n_done := date_trunc('hour', new.completed_at at time zone 'UTC') at time zone 'UTC';
      n_bucket := sentinel.duration_bucket(new.completed_at - new.started_at);
    end if;
    n_pn := (new.parse_ms is not null)::int; n_ps := coalesce(new.parse_ms, 0);
    n_dn := (new.db_ms is not null)::int; n_ds := coalesce(new.db_ms, 0);
    n_tn := n_pn * n_dn; n_ts := n_tn * (n_ps + n_ds);
  end if;

  if tg_op = 'INSERT' then
    insert into sentinel.hourly_source_deltas
      (hour_start, source, d_batches, d_completed, d_failed, d_total_rows, d_inserted_rows, d_skipped_rows, d_error_rows,
       d_parse_ms_n, d_parse_ms_sum, d_db_ms_n, d_db_ms_sum, d_total_ms_n, d_total_ms_sum)
    values (n_hour, new.source, 1, (new.status = 'completed')::int, (new.status = 'failed')::int,
            new.total_rows, new.inserted_rows, new.skipped_rows, new.error_rows,
            n_pn, n_ps, n_dn, n_ds, n_tn, n_ts);
  elsif tg_op = 'DELETE' then
    insert into sentinel.hourly_source_deltas
      (hour_start, source, d_batches, d_completed, d_failed, d_total_rows, d_inserted_rows, d_skipped_rows, d_error_rows,
       d_parse_ms_n, d_parse_ms_sum, d_db_ms_n, d_db_ms_sum, d_total_ms_n, d_total_ms_sum)
    values (o_hour, old.source, -1, -(old.status = 'completed')::int, -(old.status = 'failed')::int,
            -old.total_rows, -old.inserted_rows, -old.skipped_rows, -old.error_rows,
            -o_pn, -o_ps, -o_dn, -o_ds, -o_tn, -o_ts);
  elsif new.source = old.source and n_hour = o_hour then
    if (new.status = 'completed', new.status = 'failed', new.total_rows, new.inserted_rows, new.skipped_rows,
        new.error_rows, new.parse_ms, new.db_ms)
       is distinct from
       (old.status = 'completed', old.status = 'failed', old.total_rows, old.inserted_rows, old.skipped_rows,
        old.error_rows, old.parse_ms, old.db_ms) then
      insert into sentinel.hourly_source_deltas
        (hour_start, source, d_completed, d_failed, d_total_rows, d_inserted_rows, d_skipped_rows, d_error_rows,
         d_parse_ms_n, d_parse_ms_sum, d_db_ms_n, d_db_ms_sum, d_total_ms_n, d_total_ms_sum)
      values (n_hour, new.source,
              (new.status = 'completed')::int - (old.status = 'completed')::int,
              (new.status = 'failed')::int - (old.status = 'failed')::int,
              new.total_rows - old.total_rows, new.inserted_rows - old.inserted_rows,
              new.skipped_rows - old.skipped_rows, new.error_rows - old.error_rows,
              n_pn - o_pn, n_ps - o_ps, n_dn - o_dn, n_ds - o_ds, n_tn - o_tn, n_ts - o_ts);
    end if;
  else
    -- Renamed or moved to another hour: out of the old key, into the new one.
    insert into sentinel.hourly_source_deltas
      (hour_start, source, d_batches, d_completed, d_failed, d_total_rows, d_inserted_rows, d_skipped_rows, d_error_rows,
       d_parse_ms_n, d_parse_ms_sum, d_db_ms_n, d_db_ms_sum, d_total_ms_n, d_total_ms_sum)
    values (o_hour, old.source, -1, -(old.status = 'completed')::int, -(old.status = 'failed')::int,
            -old.total_rows, -old.inserted_rows, -old.skipped_rows, -old.error_rows,
            -o_pn, -o_ps, -o_dn, -o_ds, -o_tn, -o_ts),
           (n_hour, new.source, 1, (new.status = 'completed')::int, (new.status = 'failed')::int,
            new.total_rows, new.inserted_rows, new.skipped_rows, new.error_rows,
            n_pn, n_ps, n_dn, n_ds, n_tn, n_ts);
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

-- The p95 rows of the completion hours in [a, b) and of those in `touched` (both
-- before b), recomputed from the histogram. Callers hold the state row's lock.
create or replace function sentinel.summarize_hourly_source_p95(a timestamptz, b timestamptz, touched timestamptz[])
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
begin atomic
  delete from sentinel.hourly_source_p95 p
   where p.completed_hour < b and (p.completed_hour >= a or p.completed_hour = any(touched));
  insert into sentinel.hourly_source_p95 (completed_hour, source, finished_batches, low_bucket, high_bucket)
  select w.completed_hour, w.source, w.n,
         -- The bucket of rank r (0-based) is the first whose running count exceeds r; the ranks are
         -- computed in float8 as the reader (JavaScript) computes them.
         min(w.bucket) filter (where w.cum > floor(0.95::float8 * (w.n - 1)::float8)),
         min(w.bucket) filter (where w.cum > ceil(0.95::float8 * (w.n - 1)::float8))
  from (
    select h.completed_hour, h.source, h.bucket,
           sum(h.c) over (partition by h.completed_hour, h.source order by h.bucket) as cum,
           sum(h.c) over (partition by h.completed_hour, h.source) as n
    from (
      select d.completed_hour, d.source, d.bucket, sum(d.batches) as c
      from sentinel.hourly_source_durations d
      where d.completed_hour < b and (d.completed_hour >= a or d.completed_hour = any(touched))
      group by d.completed_hour, d.source, d.bucket
      having sum(d.batches) > 0
    ) h
  ) w
  group by w.completed_hour, w.source, w.n;
end;

-- As before, plus the timings and the p95 rows.
create or replace function sentinel.refresh_hourly_source_stats(max_hours integer default 168)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  folded bigint := 0;
  touched timestamptz[];
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
       error_rows, parse_ms_n, parse_ms_sum, db_ms_n, db_ms_sum, total_ms_n, total_ms_sum)
    select g.hour_start, g.source, sum(g.d_batches), sum(g.d_completed), sum(g.d_failed), sum(g.d_total_rows),
           sum(g.d_inserted_rows), sum(g.d_skipped_rows), sum(g.d_error_rows), sum(g.d_parse_ms_n),
           sum(g.d_parse_ms_sum), sum(g.d_db_ms_n), sum(g.d_db_ms_sum), sum(g.d_total_ms_n), sum(g.d_total_ms_sum)
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
      error_rows = r.error_rows + excluded.error_rows,
      parse_ms_n = r.parse_ms_n + excluded.parse_ms_n,
      parse_ms_sum = r.parse_ms_sum + excluded.parse_ms_sum,
      db_ms_n = r.db_ms_n + excluded.db_ms_n,
      db_ms_sum = r.db_ms_sum + excluded.db_ms_sum,
      total_ms_n = r.total_ms_n + excluded.total_ms_n,
      total_ms_sum = r.total_ms_sum + excluded.total_ms_sum
  ),
  durations as (
    insert into sentinel.hourly_source_durations as r (completed_hour, source, bucket, created_hour, batches)
    select g.completed_hour, g.source, g.bucket, g.hour_start, sum(g.d_durations)
    from gone g
    where g.completed_hour is not null
    group by g.completed_hour, g.source, g.bucket, g.hour_start
    on conflict (completed_hour, source, bucket, created_hour) do update set batches = r.batches + excluded.batches
  )
  select count(*), coalesce(array_agg(distinct g.completed_hour) filter (where g.completed_hour is not null), '{}')
    into folded, touched
  from gone g;

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
    -- Whatever p95 rows an earlier horizon left are recomputed as this one passes them.
    delete from sentinel.hourly_source_p95;
  end if;
  r_new := r_old;
  if not coalesce(hidden, false) and r_old < target and max_hours > 0 then
    r_new := least(target, r_old + make_interval(hours => max_hours));
    perform sentinel.recompute_hourly_source_stats(r_old, r_new);
  end if;

  delete from sentinel.hourly_source_stats r
  where r.batches = 0 and r.completed_batches = 0 and r.failed_batches = 0 and r.total_rows = 0
    and r.inserted_rows = 0 and r.skipped_rows = 0 and r.error_rows = 0 and r.parse_ms_n = 0
    and r.parse_ms_sum = 0 and r.db_ms_n = 0 and r.db_ms_sum = 0 and r.total_ms_n = 0 and r.total_ms_sum = 0;
  delete from sentinel.hourly_source_durations r where r.batches = 0;
  -- The completion hours closed now (before r_new) and those a folded delta changed.
  perform sentinel.summarize_hourly_source_p95(r_old, r_new, touched);
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

-- As before, plus the timings.
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
           x.started_at, x.completed_at, x.created_at, x.parse_ms, x.db_ms
    from intake.simplicity_batches x
    where (date_trunc('hour', x.created_at at time zone 'UTC') at time zone 'UTC') >= a
      and (date_trunc('hour', x.created_at at time zone 'UTC') at time zone 'UTC') < b
  ),
  fresh as (
    select w.hour_start, w.source, count(*) as batches,
           count(*) filter (where w.status = 'completed') as completed_batches,
           count(*) filter (where w.status = 'failed') as failed_batches,
           sum(w.total_rows) as total_rows, sum(w.inserted_rows) as inserted_rows,
           sum(w.skipped_rows) as skipped_rows, sum(w.error_rows) as error_rows,
           count(w.parse_ms) as parse_ms_n, coalesce(sum(w.parse_ms), 0) as parse_ms_sum,
           count(w.db_ms) as db_ms_n, coalesce(sum(w.db_ms), 0) as db_ms_sum,
           count(w.parse_ms::bigint + w.db_ms) as total_ms_n,
           coalesce(sum(w.parse_ms::bigint + w.db_ms), 0) as total_ms_sum
    from raw w
    group by w.hour_start, w.source
  ),
  figures as (
    insert into sentinel.hourly_source_stats as r
      (hour_start, source, batches, completed_batches, failed_batches, total_rows, inserted_rows, skipped_rows,
       error_rows, parse_ms_n, parse_ms_sum, db_ms_n, db_ms_sum, total_ms_n, total_ms_sum)
    select coalesce(f.hour_start, c.hour_start), coalesce(f.source, c.source), coalesce(f.batches, 0),
           coalesce(f.completed_batches, 0), coalesce(f.failed_batches, 0), coalesce(f.total_rows, 0),
           coalesce(f.inserted_rows, 0), coalesce(f.skipped_rows, 0), coalesce(f.error_rows, 0),
           coalesce(f.parse_ms_n, 0), coalesce(f.parse_ms_sum, 0), coalesce(f.db_ms_n, 0), coalesce(f.db_ms_sum, 0),
           coalesce(f.total_ms_n, 0), coalesce(f.total_ms_sum, 0)
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
      error_rows = excluded.error_rows,
      parse_ms_n = excluded.parse_ms_n,
      parse_ms_sum = excluded.parse_ms_sum,
      db_ms_n = excluded.db_ms_n,
      db_ms_sum = excluded.db_ms_sum,
      total_ms_n = excluded.total_ms_n,
      total_ms_sum = excluded.total_ms_sum
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
  delete from sentinel.hourly_source_p95;
  update sentinel.hourly_source_state s set rolled_up_before = null where s.id;
  return null;
end;
$$;

do $$
begin
  revoke all on function sentinel.summarize_hourly_source_p95(timestamptz, timestamptz, timestamptz[]) from public;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant select on sentinel.hourly_source_p95 to service_role;
  end if;
end;
$$;

-- 3. ops.v_batch_performance from the rollup: the same columns and values as before
-- (20261128000000_ops_views_at_scale.sql; bench/baseline.sql keeps the guide's literal
-- definition, the tests and the bench compare both on the same data).
--
-- The hours are listed as before (newest first, from the two ends of the hour index),
-- so a filter or a limit on hour_bucket still decides how many hours are read. Each
-- hour before the horizon R is the sum of its rollup rows (a primary-key range scan of
-- one row per source) and of its deltas not folded yet (the unindexed delta table is
-- scanned for the hours that have deltas only: a hash of their hours is built once per
-- query); each hour from R on is aggregated from the batches
-- through the hour index, as before. One statement: one snapshot, exact at any time.
-- avg(x) over integers is sum(x) / count(x) in numeric, which is what the sums and
-- counts give; round() is then applied to the same value.
create or replace view ops.v_batch_performance as
select
  h.hour_bucket,
  a.total_batches,
  a.completed_batches,
  a.failed_batches,
  a.avg_parse_ms,
  a.avg_db_ms,
  a.avg_total_ms,
  a.total_rows,
  a.inserted_rows,
  a.skipped_rows,
  a.error_rows,
  a.dedupe_rate_pct,
  a.error_rate_pct
from (
  select hours.hour_bucket
  from (
    select
      min(date_trunc('hour', b.created_at at time zone 'UTC') at time zone 'UTC') as first_hour,
      max(date_trunc('hour', b.created_at at time zone 'UTC') at time zone 'UTC') as last_hour
    from intake.simplicity_batches b
  ) r
  cross join lateral generate_series(r.last_hour, r.first_hour, interval '-1 hour') as hours(hour_bucket)
  order by hours.hour_bucket desc
  offset 0
) h
cross join lateral (
  select
    sum(f.batches)::bigint as total_batches,
    sum(f.completed)::bigint as completed_batches,
    sum(f.failed)::bigint as failed_batches,
    round(sum(f.parse_ms_sum) / nullif(sum(f.parse_ms_n), 0), 1) as avg_parse_ms,
    round(sum(f.db_ms_sum) / nullif(sum(f.db_ms_n), 0), 1) as avg_db_ms,
    round(sum(f.total_ms_sum) / nullif(sum(f.total_ms_n), 0), 1) as avg_total_ms,
    coalesce(sum(f.total_rows), 0)::bigint as total_rows,
    coalesce(sum(f.inserted_rows), 0)::bigint as inserted_rows,
    coalesce(sum(f.skipped_rows), 0)::bigint as skipped_rows,
    coalesce(sum(f.error_rows), 0)::bigint as error_rows,
    round(100.0 * sum(f.skipped_rows) / nullif(sum(f.total_rows), 0), 2) as dedupe_rate_pct,
    round(100.0 * sum(f.error_rows) / nullif(sum(f.total_rows), 0), 2) as error_rate_pct
  from (
    select x.batches, x.completed_batches, x.failed_batches, x.parse_ms_n, x.parse_ms_sum, x.db_ms_n,
           x.db_ms_sum, x.total_ms_n, x.total_ms_sum, x.total_rows, x.inserted_rows, x.skipped_rows, x.error_rows
    from sentinel.hourly_source_stats x
    where x.hour_start = h.hour_bucket
      and h.hour_bucket < (select s.rolled_up_before from sentinel.hourly_source_state s where s.id)
    union all
    select d.d_batches, d.d_completed, d.d_failed, d.d_parse_ms_n, d.d_parse_ms_sum, d.d_db_ms_n, d.d_db_ms_sum,
           d.d_total_ms_n, d.d_total_ms_sum, d.d_total_rows, d.d_inserted_rows, d.d_skipped_rows, d.d_error_rows
    from sentinel.hourly_source_deltas d
    where d.completed_hour is null and d.hour_start = h.hour_bucket
      and h.hour_bucket < (select s.rolled_up_before from sentinel.hourly_source_state s where s.id)
      -- Only the hours that have deltas scan the (unindexed) delta table: one hash of its hours per query.
      and h.hour_bucket in (select p.hour_start from sentinel.hourly_source_deltas p where p.completed_hour is null)
    union all
    select count(*), count(*) filter (where b.status = 'completed'), count(*) filter (where b.status = 'failed'),
           count(b.parse_ms), sum(b.parse_ms), count(b.db_ms), sum(b.db_ms), count(b.parse_ms::bigint + b.db_ms),
           sum(b.parse_ms::bigint + b.db_ms), sum(b.total_rows), sum(b.inserted_rows), sum(b.skipped_rows),
           sum(b.error_rows)
    from intake.simplicity_batches b
    where (date_trunc('hour', b.created_at at time zone 'UTC') at time zone 'UTC') = h.hour_bucket
      and h.hour_bucket >= coalesce((select s.rolled_up_before from sentinel.hourly_source_state s where s.id),
                                    '-infinity')
  ) as f (batches, completed, failed, parse_ms_n, parse_ms_sum, db_ms_n, db_ms_sum, total_ms_n, total_ms_sum,
          total_rows, inserted_rows, skipped_rows, error_rows)
) a
where a.total_batches > 0;

comment on view ops.v_batch_performance is
  'Sentinel: hourly rollup of ingestion performance, one row per UTC hour (of created_at) that has batches. Filter on hour_bucket (or order by it with a limit): only the hours asked for are read; the hours before the rollup''s horizon come from sentinel.hourly_source_stats.';
