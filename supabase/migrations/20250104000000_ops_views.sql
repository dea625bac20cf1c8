-- Sentinel ops views (docs/contract.md, "The ops views"): read-only rollups of the Dragonfly intake tables
-- that the health checks, dashboards and PostgREST clients query.
--
-- Plain SQL with no psql meta-commands, so it runs under `supabase db push` as well
-- as `sentinel migrate`, and idempotent, so running it again is harmless.
-- Requires PostgreSQL 14+ (three-argument date_trunc is 12+, numeric extract 14+).
--
-- The views only ever get new columns appended at the end: `create or replace view`
-- cannot rename, retype or reorder existing columns, and clients select them by name.

-- 1. Fail early and clearly when the intake schema is not the one these views expect,
--    rather than with "column b.parse_ms does not exist" halfway through.
--    pg_attribute rather than information_schema: the latter hides columns the
--    migrating role has no privileges on, which would report them as missing.
do $$
declare
  missing_tables text;
  missing_columns text;
  fix constant text :=
    'Apply the Dragonfly intake schema (sentinel migrate --with-intake for the reference schema) first.';
begin
  with required(ord, tbl, col) as (
    values
      (1, 'simplicity_batches', 'id'),
      (2, 'simplicity_batches', 'source'),
      (3, 'simplicity_batches', 'status'),
      (4, 'simplicity_batches', 'total_rows'),
      (5, 'simplicity_batches', 'inserted_rows'),
      (6, 'simplicity_batches', 'skipped_rows'),
      (7, 'simplicity_batches', 'error_rows'),
      (8, 'simplicity_batches', 'parse_ms'),
      (9, 'simplicity_batches', 'db_ms'),
      (10, 'simplicity_batches', 'created_at'),
      (11, 'simplicity_batches', 'updated_at'),
      (12, 'row_errors', 'id'),
      (13, 'row_errors', 'batch_id'),
      (14, 'row_errors', 'error_code'),
      (15, 'row_errors', 'error_message'),
      (16, 'row_errors', 'created_at')
  ),
  checked as (
    select r.ord, r.tbl, r.col,
           to_regclass(format('intake.%I', r.tbl)) as rel
    from required r
  )
  select
    string_agg(distinct format('intake.%s', c.tbl), ', ') filter (where c.rel is null),
    string_agg(format('intake.%s.%s', c.tbl, c.col), ', ' order by c.ord) filter (
      where c.rel is not null
        and not exists (
          select 1 from pg_attribute a
          where a.attrelid = c.rel and a.attname = c.col and a.attnum > 0 and not a.attisdropped
        )
    )
  into missing_tables, missing_columns
  from checked c;

  if missing_tables is not null then
    if position(',' in missing_tables) > 0 then
      raise exception 'Sentinel ops views need tables %, which are missing. %', missing_tables, fix
        using errcode = 'undefined_table';
    end if;
    raise exception 'Sentinel ops views need table %, which is missing. %', missing_tables, fix
        using errcode = 'undefined_table';
  end if;
  if missing_columns is not null then
    if position(',' in missing_columns) > 0 then
      raise exception 'Sentinel ops views need columns %, which are missing. %', missing_columns, fix
        using errcode = 'undefined_column';
    end if;
    raise exception 'Sentinel ops views need column %, which is missing. %', missing_columns, fix
        using errcode = 'undefined_column';
  end if;
end;
$$;

create schema if not exists ops;
comment on schema ops is 'Sentinel: operational views over the Dragonfly intake tables.';

-- 2. Indexes on the engine's tables that keep the views and checks cheap. Named
--    sentinel_* so that whoever owns the engine's schema can tell where they came from.

-- Pipeline health / stuck batches: in-flight rows are a tiny fraction of the table.
create index if not exists sentinel_batches_inflight_idx
  on intake.simplicity_batches (status, updated_at)
  where status in ('uploaded', 'processing', 'validating', 'inserting');
-- Hourly rollups read recent hours only.
create index if not exists sentinel_batches_created_at_idx
  on intake.simplicity_batches (created_at);
-- Foreign key lookups (and the cascade on batch delete).
create index if not exists sentinel_row_errors_batch_id_idx
  on intake.row_errors (batch_id);
create index if not exists sentinel_row_errors_created_at_idx
  on intake.row_errors (created_at);
-- The latest message per error code (v_error_distribution.sample_message).
create index if not exists sentinel_row_errors_code_recent_idx
  on intake.row_errors (error_code, created_at desc, id desc);

-- 3. The views.

-- Averages are rounded to 1 decimal (0.1 ms is finer than any timing here means);
-- rates to 2 decimals as docs/contract.md says. Both are numeric.
-- avg_parse_ms / avg_db_ms average the batches where that timing is known (avg skips
-- nulls); avg_total_ms averages parse_ms + db_ms over the batches where both are
-- known (the sum is null otherwise, so a half-measured batch is left out rather than
-- counted as if the missing phase took 0 ms). All three are null when nothing in the
-- hour was measured.
-- The rates are null, not 0 and not an error, when the hour's batches have no rows.
-- Hours without batches have no row at all.
create or replace view ops.v_batch_performance as
select
  date_trunc('hour', b.created_at, 'UTC') as hour_bucket,
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
group by 1;

comment on view ops.v_batch_performance is
  'Sentinel: hourly rollup of ingestion performance, one row per UTC hour (of created_at) that has batches.';
comment on column ops.v_batch_performance.hour_bucket is
  'Start of the UTC hour in which the batches were uploaded (created_at), whatever the session time zone.';
comment on column ops.v_batch_performance.total_batches is 'Batches uploaded in this hour.';
comment on column ops.v_batch_performance.completed_batches is 'Of those, batches now in status completed.';
comment on column ops.v_batch_performance.failed_batches is 'Of those, batches now in status failed.';
comment on column ops.v_batch_performance.avg_parse_ms is
  'Average parse_ms over the batches where it is known, 1 decimal; null when none is.';
comment on column ops.v_batch_performance.avg_db_ms is
  'Average db_ms over the batches where it is known, 1 decimal; null when none is.';
comment on column ops.v_batch_performance.avg_total_ms is
  'Average of parse_ms + db_ms over the batches where both are known, 1 decimal; null when none has both.';
comment on column ops.v_batch_performance.total_rows is 'Input rows of the hour''s batches.';
comment on column ops.v_batch_performance.inserted_rows is 'Rows inserted.';
comment on column ops.v_batch_performance.skipped_rows is 'Rows skipped as duplicates.';
comment on column ops.v_batch_performance.error_rows is 'Rows rejected.';
comment on column ops.v_batch_performance.dedupe_rate_pct is
  '100 * skipped_rows / total_rows, 2 decimals; null when total_rows is 0.';
comment on column ops.v_batch_performance.error_rate_pct is
  '100 * error_rows / total_rows, 2 decimals; null when total_rows is 0.';

-- sample_message is the most recent non-null message of the code (latest created_at,
-- then highest id, so it is deterministic); null only when no row of the code has one.
create or replace view ops.v_error_distribution as
select
  s.error_code,
  s.occurrence_count,
  s.affected_batches,
  m.error_message as sample_message,
  s.last_seen_at
from (
  select
    e.error_code,
    count(*) as occurrence_count,
    count(distinct e.batch_id) as affected_batches,
    max(e.created_at) as last_seen_at
  from intake.row_errors e
  group by e.error_code
) s
left join lateral (
  select e.error_message
  from intake.row_errors e
  where e.error_code = s.error_code
    and e.error_message is not null
  order by e.created_at desc, e.id desc
  limit 1
) m on true;

comment on view ops.v_error_distribution is
  'Sentinel: rejected rows by error code, over all of intake.row_errors.';
comment on column ops.v_error_distribution.error_code is 'Error code from intake.row_errors.';
comment on column ops.v_error_distribution.occurrence_count is 'Rejected rows with this code.';
comment on column ops.v_error_distribution.affected_batches is 'Distinct batches with at least one such row.';
comment on column ops.v_error_distribution.sample_message is
  'The most recent non-null error message of this code (ties broken by the highest id).';
comment on column ops.v_error_distribution.last_seen_at is 'When the most recent such row was recorded.';

-- now() is the start of the querying transaction, so ages computed in one
-- transaction agree with each other.
create or replace view ops.v_pipeline_health as
select
  b.status,
  count(*) as batch_count,
  min(b.updated_at) as oldest_batch_at,
  round(extract(epoch from (now() - min(b.updated_at))) / 60, 1) as oldest_age_minutes,
  max(b.updated_at) as newest_batch_at
from intake.simplicity_batches b
where b.status in ('uploaded', 'processing', 'validating', 'inserting')
group by b.status;

comment on view ops.v_pipeline_health is
  'Sentinel: batches in flight (uploaded, processing, validating, inserting), one row per status that has any.';
comment on column ops.v_pipeline_health.status is 'An in-flight batch status.';
comment on column ops.v_pipeline_health.batch_count is 'Batches currently in this status.';
comment on column ops.v_pipeline_health.oldest_batch_at is
  'Earliest updated_at (last status change) among them.';
comment on column ops.v_pipeline_health.oldest_age_minutes is
  'Minutes since oldest_batch_at at the start of the querying transaction, 1 decimal.';
comment on column ops.v_pipeline_health.newest_batch_at is 'Latest updated_at among them.';

-- 4. Privileges on Supabase. The views run with their owner's rights, so whoever may
--    select them sees pipeline internals: only service_role (Sentinel's key) may, not
--    the end-user roles. Elsewhere these roles do not exist and this does nothing.
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant usage on schema ops to service_role;
    grant select on ops.v_batch_performance, ops.v_error_distribution, ops.v_pipeline_health
      to service_role;
  end if;
  -- Supabase's default privileges can hand new objects to these roles.
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    revoke all on ops.v_batch_performance, ops.v_error_distribution, ops.v_pipeline_health
      from authenticated;
    revoke all on schema ops from authenticated;
  end if;
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke all on ops.v_batch_performance, ops.v_error_distribution, ops.v_pipeline_health
      from anon;
    revoke all on schema ops from anon;
  end if;
end;
$$;

-- 5. Tell PostgREST to reload its schema cache, so that it serves new or changed views
--    without a restart. `supabase db push` does not send this by itself, and without
--    it PostgREST keeps its old cache (newer versions answer PGRST205 for the views)
--    until something else reloads it. NOTIFY is delivered when the transaction
--    commits (`sentinel migrate` runs this file in one), so PostgREST reloads once the
--    views exist and a failed migration sends nothing. Harmless where nobody listens.
notify pgrst, 'reload schema';
