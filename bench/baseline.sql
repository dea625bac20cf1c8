-- The guide's ops views written literally (what supabase/migrations/20250104_ops_views.sql
-- shipped before issue 6): every call aggregates the whole history. `npm run bench` creates
-- them in schema `baseline` next to Sentinel's own views, runs the same queries against both
-- on the same data, and reports the ratios. They are also the reference the equivalence
-- tests compare Sentinel's views with (test/sql/views-at-scale.test.ts).

create schema if not exists baseline;

create or replace view baseline.v_batch_performance as
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

comment on column baseline.v_batch_performance.avg_parse_ms is
  'Average parse_ms over the batches where it is known, 1 decimal; null when none is.';
comment on column baseline.v_batch_performance.avg_db_ms is
  'Average db_ms over the batches where it is known, 1 decimal; null when none is.';
comment on column baseline.v_batch_performance.avg_total_ms is
  'Average of parse_ms + db_ms over the batches where both are known, 1 decimal; null when none has both.';
comment on column baseline.v_batch_performance.dedupe_rate_pct is
  '100 * skipped_rows / total_rows, 2 decimals; null when total_rows is 0.';
comment on column baseline.v_batch_performance.error_rate_pct is
  '100 * error_rows / total_rows, 2 decimals; null when total_rows is 0.';

-- sample_message is the most recent non-null message of the code (latest created_at,
-- then highest id, so it is deterministic); null only when no row of the code has one.
create or replace view baseline.v_error_distribution as
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

-- now() is the start of the querying transaction, so ages computed in one
-- transaction agree with each other.
create or replace view baseline.v_pipeline_health as
select
  b.status,
  count(*) as batch_count,
  min(b.updated_at) as oldest_batch_at,
  round(extract(epoch from (now() - min(b.updated_at))) / 60, 1) as oldest_age_minutes,
  max(b.updated_at) as newest_batch_at
from intake.simplicity_batches b
where b.status in ('uploaded', 'processing', 'validating', 'inserting')
group by b.status;
