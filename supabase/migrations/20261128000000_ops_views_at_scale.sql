-- Sentinel ops views at production size (1M batches, 10M row errors).
--
-- The first version of the views (20250104000000_ops_views.sql) aggregated the whole
-- history on every call: at 1M batches / 10M row errors `v_batch_performance`
-- took about 1 s and `v_error_distribution` about 17 s. This migration keeps their
-- contract (docs/contract.md: same columns, types and results; `bench/baseline.sql` keeps
-- the old definitions and the tests compare both on the same data) and makes them
-- cost what the question asks, not what the history holds:
--
-- * v_batch_performance walks the hours newest first and aggregates each hour
--   through an index on the UTC hour, so `where hour_bucket >= ...` and
--   `order by hour_bucket desc limit 24` read only the hours they return.
-- * v_error_distribution reads a per-code rollup that Sentinel keeps up to date
--   (sentinel.refresh_error_rollup(), called after every run) plus the rows that
--   arrived since, so its cost does not grow with history. Nothing is added to the
--   insert path of intake.row_errors: the engine's ingestion pays nothing for it.
-- * The indexes the old views needed and these do not are dropped, because every
--   index is paid for by every insert of the engine.
--
-- Like the first migration: plain SQL, idempotent, runs under `supabase db push`
-- and `sentinel migrate` (one transaction), PostgreSQL 14+. Index builds are not
-- CONCURRENTLY (a transaction cannot do that); `sentinel migrate --lock-timeout`
-- bounds how long it may wait for the engine's locks.

create schema if not exists sentinel;

-- 1. Indexes.

-- The UTC hour of created_at, with the columns the hourly rollup reads, so an hour
-- is one index-only range scan (~460 entries at 1M batches over 90 days). The
-- expression is immutable (unlike three-argument date_trunc, which is only stable),
-- which is what lets it be indexed; the views and checks write it the same way.
create index if not exists sentinel_batches_hour_idx
  on intake.simplicity_batches ((date_trunc('hour', created_at at time zone 'UTC') at time zone 'UTC'))
  include (status, parse_ms, db_ms, total_rows, inserted_rows, skipped_rows, error_rows, created_at);

-- Superseded: the hour index serves every created_at range Sentinel reads, and the
-- error rollup reads intake.row_errors by its primary key. The in-flight partial
-- index and the row_errors (batch_id) index (the foreign key's, which the engine's
-- cascading deletes need anyway) stay.
drop index if exists intake.sentinel_batches_created_at_idx;
drop index if exists intake.sentinel_row_errors_created_at_idx;
drop index if exists intake.sentinel_row_errors_code_recent_idx;

-- 2. v_batch_performance: the same columns and values as before.
--
-- The hours come from the index's two ends (min/max of the expression, two index
-- probes), newest first; each hour is aggregated by a lateral subquery on the hour
-- index. Because the view's top level has no aggregate, PostgreSQL folds it into the
-- caller's query: a filter on hour_bucket is applied to the list of hours before any
-- hour is aggregated, and `order by hour_bucket desc limit N` stops after N hours.
-- (`offset 0` keeps the ordered list of hours a subquery, so its order is known.)
-- Hours without batches aggregate to zero rows and are left out, as before.
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
    count(*) as total_batches,
    count(*) filter (where b.status = 'completed') as completed_batches,
    count(*) filter (where b.status = 'failed') as failed_batches,
    round(avg(b.parse_ms), 1) as avg_parse_ms,
    round(avg(b.db_ms), 1) as avg_db_ms,
    round(avg(b.parse_ms + b.db_ms), 1) as avg_total_ms,
    coalesce(sum(b.total_rows), 0)::bigint as total_rows,
    coalesce(sum(b.inserted_rows), 0)::bigint as inserted_rows,
    coalesce(sum(b.skipped_rows), 0)::bigint as skipped_rows,
    coalesce(sum(b.error_rows), 0)::bigint as error_rows,
    round(100.0 * sum(b.skipped_rows) / nullif(sum(b.total_rows), 0), 2) as dedupe_rate_pct,
    round(100.0 * sum(b.error_rows) / nullif(sum(b.total_rows), 0), 2) as error_rate_pct
  from intake.simplicity_batches b
  where (date_trunc('hour', b.created_at at time zone 'UTC') at time zone 'UTC') = h.hour_bucket
) a
where a.total_batches > 0;

comment on view ops.v_batch_performance is
  'Sentinel: hourly rollup of ingestion performance, one row per UTC hour (of created_at) that has batches. Filter on hour_bucket (or order by it with a limit): only the hours asked for are read.';

-- 3. The error rollup behind v_error_distribution.
--
-- sentinel.error_rollup holds, per error code, the figures of the rows with
-- id <= watermark; the view adds the rows above the watermark (a primary-key range
-- scan of what arrived since the last refresh) and, for codes marked dirty, reads
-- all their rows. Every query of the view is therefore exact, whenever and whether
-- or not the rollup was last refreshed; the refresh only keeps it cheap.
--
-- Inserts need no trigger. The watermark only moves past ids whose transactions are
-- over: each refresh records a mark (the sequence's last value and the transaction-id
-- horizon at that moment), and a later refresh may advance the watermark to a mark
-- once every transaction of this database that was running when it was taken has
-- ended and the mark is at least min_mark_age old (which covers a writer between
-- taking its id and being assigned a transaction id). This assumes ids come from the identity sequence
-- (with its default cache of 1) rather than being supplied by the writer.
-- Deletes, updates and truncates of rows already rolled up are rare (retention,
-- corrections); statement triggers mark the codes they touch dirty, the view reads
-- those codes from the table until the next refresh recomputes them.

create table if not exists sentinel.error_rollup (
  error_code text primary key,
  occurrence_count bigint not null,
  affected_batches bigint not null,
  last_seen_at timestamptz not null,
  sample_message text,
  sample_created_at timestamptz,
  sample_id bigint
);

create table if not exists sentinel.error_rollup_state (
  id boolean primary key default true check (id),
  watermark bigint not null default 0,
  refreshed_at timestamptz
);
insert into sentinel.error_rollup_state (id) values (true) on conflict (id) do nothing;

create table if not exists sentinel.error_rollup_marks (
  taken_at timestamptz primary key,
  seq_value bigint not null,
  xid_horizon xid8 not null
);

create table if not exists sentinel.error_rollup_dirty (
  error_code text primary key
);

comment on table sentinel.error_rollup is
  'Sentinel: per-code figures of intake.row_errors up to sentinel.error_rollup_state.watermark (id). Written by sentinel.refresh_error_rollup() only.';
comment on table sentinel.error_rollup_state is
  'Sentinel: the id up to which sentinel.error_rollup counts intake.row_errors (one row).';
comment on table sentinel.error_rollup_marks is
  'Sentinel: (time, row_errors sequence value, xid horizon) marks the watermark may advance to once their transactions are over.';
comment on table sentinel.error_rollup_dirty is
  'Sentinel: error codes whose rolled-up rows were deleted or updated; recomputed by the next refresh, read live until then.';

-- Whether sample (a_at, a_id) is more recent than (b_at, b_id): later created_at, then
-- higher id, as the first version of the view picked it; a missing sample never is.
create or replace function sentinel.newer_sample(a_at timestamptz, a_id bigint, b_at timestamptz, b_id bigint)
returns boolean
language sql
immutable
parallel safe
return a_id is not null and (b_id is null or (a_at, a_id) > (b_at, b_id));

-- What sentinel.error_rollup does not hold yet, per code, as of the caller's snapshot:
-- for clean codes the figures of the rows above the watermark (up to `upto` when given),
-- with `new_batches` counting only batches that have no rolled-up row of that code;
-- for dirty codes (recomputed = true) the figures of all their rows (up to `upto`).
-- The view adds this to the rollup, and the refresh folds it in. A function rather
-- than SQL inside the view so that its queries are planned with the watermark's
-- actual value: planned blind, `id > watermark` looks like a third of the table, and
-- every query of the view would be planned (and JIT-compiled) as if it read 10M rows.
create or replace function sentinel.error_rollup_pending(upto bigint default null)
returns table (
  error_code text,
  occurrence_count bigint,
  new_batches bigint,
  last_seen_at timestamptz,
  sample_message text,
  sample_created_at timestamptz,
  sample_id bigint,
  recomputed boolean
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
rows 20
as $$
declare
  w bigint;
  dirty text[];
begin
  select s.watermark into w from sentinel.error_rollup_state s where s.id;
  w := coalesce(w, 0);
  select array_agg(d.error_code order by d.error_code) into dirty from sentinel.error_rollup_dirty d;

  return query
  with fresh as (
    select e.id, e.batch_id, e.error_code, e.error_message, e.created_at
    from intake.row_errors e
    where e.id > w and (upto is null or e.id <= upto)
      and not (e.error_code = any (coalesce(dirty, '{}'::text[])))
  ),
  pairs as (
    select f.error_code, f.batch_id, count(*) as occurrences, max(f.created_at) as last_seen_at
    from fresh f
    group by f.error_code, f.batch_id
  ),
  per_code as (
    select p.error_code,
           sum(p.occurrences)::bigint as occurrence_count,
           -- a batch counts once per code: only if no rolled-up row has the pair
           count(*) filter (
             where w = 0 or not exists (
               select 1 from intake.row_errors o
               where o.batch_id = p.batch_id and o.error_code = p.error_code and o.id <= w)
           ) as new_batches,
           max(p.last_seen_at) as last_seen_at
    from pairs p
    group by p.error_code
  ),
  samples as (
    select distinct on (f.error_code) f.error_code, f.error_message, f.created_at, f.id
    from fresh f
    where f.error_message is not null
    order by f.error_code, f.created_at desc, f.id desc
  )
  select c.error_code, c.occurrence_count, c.new_batches, c.last_seen_at,
         s.error_message, s.created_at, s.id, false
  from per_code c
  left join samples s on s.error_code = c.error_code;

  if dirty is not null then
    return query
    select c.error_code, c.occurrence_count, c.affected_batches, c.last_seen_at,
           s.error_message, s.created_at, s.id, true
    from (
      select e.error_code, count(*)::bigint as occurrence_count,
             count(distinct e.batch_id)::bigint as affected_batches, max(e.created_at) as last_seen_at
      from intake.row_errors e
      where e.error_code = any (dirty) and (upto is null or e.id <= upto)
      group by e.error_code
    ) c
    left join (
      select distinct on (e.error_code) e.error_code, e.error_message, e.created_at, e.id
      from intake.row_errors e
      where e.error_code = any (dirty) and (upto is null or e.id <= upto) and e.error_message is not null
      order by e.error_code, e.created_at desc, e.id desc
    ) s on s.error_code = c.error_code;
  end if;
end;
$$;

comment on function sentinel.error_rollup_pending(bigint) is
  'Sentinel: the part of the error distribution that sentinel.error_rollup does not hold yet (rows above the watermark, dirty codes in full).';

-- Brings the rollup up to date. Returns what it did as jsonb:
-- {watermark, added_rows, recomputed_codes, pending_rows}. max_rows bounds the id
-- range one call rolls up (null: no bound), so a first build at scale can be done in
-- steps; min_mark_age is how old a mark must be before the watermark may reach it.
create or replace function sentinel.refresh_error_rollup(
  max_rows bigint default null,
  min_mark_age interval default interval '1 minute'
) returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  w_old bigint;
  w_new bigint;
  seq_now bigint;
  target bigint;
  target_at timestamptz;
  horizon xid8;
  recomputed bigint := 0;
  added bigint := 0;
begin
  -- One refresher at a time; the invalidation triggers wait for it (and it for them).
  select s.watermark into w_old from sentinel.error_rollup_state s where s.id for update;
  if not found then
    insert into sentinel.error_rollup_state (id) values (true) on conflict (id) do nothing;
    select s.watermark into w_old from sentinel.error_rollup_state s where s.id for update;
  end if;

  seq_now := coalesce(pg_sequence_last_value(pg_get_serial_sequence('intake.row_errors', 'id')::regclass), 0);
  insert into sentinel.error_rollup_marks (taken_at, seq_value, xid_horizon)
  values (clock_timestamp(), seq_now, pg_snapshot_xmax(pg_current_snapshot()))
  on conflict (taken_at) do nothing;

  -- The oldest transaction of this database still running (or prepared): only
  -- those can insert into intake.row_errors, so a long transaction in another
  -- database of the cluster does not hold the rollup back.
  select coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot())) into horizon
  from pg_snapshot_xip(pg_current_snapshot()) as x
  where exists (
      select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'transactionid' and l.transactionid = xid(x) and a.datname = current_database())
    or exists (
      select 1 from pg_prepared_xacts p where p.transaction = xid(x) and p.database = current_database());

  select m.seq_value, m.taken_at into target, target_at
  from sentinel.error_rollup_marks m
  where m.taken_at <= clock_timestamp() - min_mark_age
    and m.xid_horizon <= horizon
  order by m.taken_at desc
  limit 1;

  w_new := greatest(w_old, coalesce(target, w_old));
  if max_rows is not null and w_new > w_old + max_rows then
    w_new := w_old + max_rows;
  end if;

  create temporary table if not exists sentinel_rollup_pending (
    error_code text,
    occurrence_count bigint,
    affected_batches bigint,
    last_seen_at timestamptz,
    sample_message text,
    sample_created_at timestamptz,
    sample_id bigint,
    recomputed boolean
  ) on commit drop;
  truncate sentinel_rollup_pending;
  insert into sentinel_rollup_pending
    (error_code, occurrence_count, affected_batches, last_seen_at, sample_message, sample_created_at, sample_id, recomputed)
  select p.error_code, p.occurrence_count, p.new_batches, p.last_seen_at,
         p.sample_message, p.sample_created_at, p.sample_id, p.recomputed
  from sentinel.error_rollup_pending(w_new) p;

  -- Dirty codes: replaced by their recomputed figures (or gone, if no row is left).
  delete from sentinel.error_rollup r using sentinel.error_rollup_dirty d where d.error_code = r.error_code;
  insert into sentinel.error_rollup
    (error_code, occurrence_count, affected_batches, last_seen_at, sample_message, sample_created_at, sample_id)
  select p.error_code, p.occurrence_count, p.affected_batches, p.last_seen_at,
         p.sample_message, p.sample_created_at, p.sample_id
  from sentinel_rollup_pending p
  where p.recomputed;
  get diagnostics recomputed = row_count;
  delete from sentinel.error_rollup_dirty;

  -- Everything else: the rows since the last refresh, added on.
  insert into sentinel.error_rollup as r
    (error_code, occurrence_count, affected_batches, last_seen_at, sample_message, sample_created_at, sample_id)
  select p.error_code, p.occurrence_count, p.affected_batches, p.last_seen_at,
         p.sample_message, p.sample_created_at, p.sample_id
  from sentinel_rollup_pending p
  where not p.recomputed
  on conflict (error_code) do update set
    occurrence_count = r.occurrence_count + excluded.occurrence_count,
    affected_batches = r.affected_batches + excluded.affected_batches,
    last_seen_at = greatest(r.last_seen_at, excluded.last_seen_at),
    sample_message = case when sentinel.newer_sample(excluded.sample_created_at, excluded.sample_id, r.sample_created_at, r.sample_id)
      then excluded.sample_message else r.sample_message end,
    sample_created_at = case when sentinel.newer_sample(excluded.sample_created_at, excluded.sample_id, r.sample_created_at, r.sample_id)
      then excluded.sample_created_at else r.sample_created_at end,
    sample_id = case when sentinel.newer_sample(excluded.sample_created_at, excluded.sample_id, r.sample_created_at, r.sample_id)
      then excluded.sample_id else r.sample_id end;
  select coalesce(sum(p.occurrence_count), 0) into added from sentinel_rollup_pending p where not p.recomputed;

  update sentinel.error_rollup_state s set watermark = w_new, refreshed_at = now() where s.id;
  -- Marks before the one used are spent; keep it and the newer ones for later refreshes.
  if target_at is not null then
    delete from sentinel.error_rollup_marks m where m.taken_at < target_at;
  end if;

  return jsonb_build_object(
    'watermark', w_new,
    'added_rows', added,
    'recomputed_codes', recomputed,
    'pending_rows', greatest(seq_now - w_new, 0)
  );
end;
$$;

comment on function sentinel.refresh_error_rollup(bigint, interval) is
  'Sentinel: brings sentinel.error_rollup up to date with intake.row_errors (Sentinel calls it after every run). Safe to call at any time and concurrently.';

-- Deletes and updates of rolled-up rows mark their codes dirty (statement triggers:
-- one small insert per statement, nothing per row of the engine's inserts).
create or replace function sentinel.error_rollup_on_delete() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  w bigint;
begin
  select s.watermark into w from sentinel.error_rollup_state s where s.id for share;
  insert into sentinel.error_rollup_dirty (error_code)
  select distinct o.error_code from old_rows o where o.id <= coalesce(w, 0)
  on conflict (error_code) do nothing;
  return null;
end;
$$;

create or replace function sentinel.error_rollup_on_update() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  w bigint;
begin
  select s.watermark into w from sentinel.error_rollup_state s where s.id for share;
  insert into sentinel.error_rollup_dirty (error_code)
  select o.error_code from old_rows o where o.id <= coalesce(w, 0)
  union
  select n.error_code from new_rows n where n.id <= coalesce(w, 0)
  on conflict (error_code) do nothing;
  return null;
end;
$$;

create or replace function sentinel.error_rollup_on_truncate() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform 1 from sentinel.error_rollup_state s where s.id for update;
  delete from sentinel.error_rollup;
  delete from sentinel.error_rollup_dirty;
  delete from sentinel.error_rollup_marks;
  update sentinel.error_rollup_state s set watermark = 0, refreshed_at = now() where s.id;
  return null;
end;
$$;

create or replace trigger sentinel_error_rollup_delete
  after delete on intake.row_errors
  referencing old table as old_rows
  for each statement execute function sentinel.error_rollup_on_delete();
create or replace trigger sentinel_error_rollup_update
  after update on intake.row_errors
  referencing old table as old_rows new table as new_rows
  for each statement execute function sentinel.error_rollup_on_update();
create or replace trigger sentinel_error_rollup_truncate
  after truncate on intake.row_errors
  for each statement execute function sentinel.error_rollup_on_truncate();

-- 4. v_error_distribution: the same columns and values as before: the rollup plus
--    what it does not hold yet. Both parts are read in the query's one snapshot
--    (the function is stable), so a refresh committing meanwhile cannot be counted twice.
create or replace view ops.v_error_distribution as
select
  coalesce(p.error_code, r.error_code) as error_code,
  (coalesce(r.occurrence_count, 0) + coalesce(p.occurrence_count, 0))::bigint as occurrence_count,
  (coalesce(r.affected_batches, 0) + coalesce(p.new_batches, 0))::bigint as affected_batches,
  case when sentinel.newer_sample(p.sample_created_at, p.sample_id, r.sample_created_at, r.sample_id)
       then p.sample_message else r.sample_message end as sample_message,
  greatest(r.last_seen_at, p.last_seen_at) as last_seen_at
from (
  select r.*
  from sentinel.error_rollup r
  where not exists (select 1 from sentinel.error_rollup_dirty d where d.error_code = r.error_code)
) r
full join sentinel.error_rollup_pending() p on p.error_code = r.error_code;

comment on view ops.v_error_distribution is
  'Sentinel: rejected rows by error code, over all of intake.row_errors (rolled up by sentinel.refresh_error_rollup(), exact at any time).';

-- 5. Privileges, as in the first migration: only service_role may read the views on
--    Supabase; it may also refresh the rollup (Sentinel does after every run).
do $$
begin
  revoke all on function sentinel.refresh_error_rollup(bigint, interval) from public;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant usage on schema sentinel to service_role;
    grant execute on function sentinel.refresh_error_rollup(bigint, interval) to service_role;
    grant execute on function sentinel.error_rollup_pending(bigint), sentinel.newer_sample(timestamptz, bigint, timestamptz, bigint) to service_role;
    grant select on ops.v_batch_performance, ops.v_error_distribution to service_role;
  end if;
end;
$$;

notify pgrst, 'reload schema';
