-- Deterministic production-shaped data for `npm run bench` (issue 6).
--
-- Parameters, substituted by bench/run.ts as plain numbers/literals before running:
--   :batches   number of batches           (S 10k, M 100k, L 1M)
--   :errors    target number of row errors (S 100k, M 1M, L 10M); the result is within ~1%
--   :days      days of history             (90)
--   :now       the generation's "now" (timestamptz literal); the newest batch is just before it
--
-- Every pseudo-random choice is hashint8extended(i, salt) of the row number, so the data
-- is identical on every run and every plan (no random(), no dependence on parallel workers).
-- u(i, salt) below is that hash mapped to [0, 1).

create or replace function pg_temp.u(i bigint, salt bigint) returns float8
language sql immutable parallel safe
as $$ select (hashint8extended(i, salt)::numeric + 9223372036854775808) / 18446744073709551616.0 $$;

-- Batches. Sources have uneven volumes (weights 32/22/15/11/8/6/4/2 %). Upload times are
-- spread evenly over the days, then warped within each day so that load peaks at 14:00 UTC
-- and is lowest at 02:00 (about 4:1). The newest 0.1% of batches are in flight with recent
-- status changes; 7 older ones are stuck in processing/validating/inserting.
-- 3% of finished batches failed. Rows per batch are long-tailed (100 to ~20k),
-- 10-30% duplicates, and errors are concentrated: most batches have none, a few have many,
-- and two (source, hour) pairs per week spike.
insert into intake.simplicity_batches
  (id, source, filename, status, total_rows, inserted_rows, skipped_rows, error_rows,
   parse_ms, db_ms, created_at, started_at, completed_at, updated_at, rejection_reason)
select
  md5('batch-' || g.i)::uuid,
  g.source,
  g.source || '/' || to_char(g.created_at, 'YYYYMMDD-HH24MISS') || '-' || g.i || '.csv',
  g.status,
  g.total_rows,
  greatest(g.total_rows - g.skipped_rows - g.error_rows, 0),
  g.skipped_rows,
  g.error_rows,
  case when g.status in ('uploaded', 'processing') then null else g.parse_ms end,
  case when g.status in ('completed', 'failed') then g.db_ms end,
  g.created_at,
  case when g.status <> 'uploaded' then g.created_at + interval '2 seconds' end,
  case when g.status in ('completed', 'failed') then g.created_at + make_interval(secs => 2 + (g.parse_ms + g.db_ms) / 1000.0) end,
  case
    when g.status in ('completed', 'failed') then g.created_at + make_interval(secs => 2 + (g.parse_ms + g.db_ms) / 1000.0)
    when g.stuck then g.created_at + interval '3 seconds'
    else greatest(g.created_at, :now::timestamptz - interval '2 minutes')
  end,
  case when g.status = 'failed' then 'error rate above threshold' end
from (
  select
    s.i,
    s.source,
    s.created_at,
    s.stuck,
    case
      when s.stuck then (array['processing', 'validating', 'inserting'])[1 + s.i % 3]
      when s.in_flight then (array['uploaded', 'processing', 'validating', 'inserting'])[1 + s.i % 4]
      when pg_temp.u(s.i, 3) < 0.03 or s.spike then 'failed'
      else 'completed'
    end as status,
    s.total_rows,
    (s.total_rows * (0.10 + 0.20 * pg_temp.u(s.i, 4)))::int as skipped_rows,
    -- error rows: 70% of batches none; the rest long-tailed; spiking hours ~35%.
    case
      when s.spike then (s.total_rows * 0.35)::int
      when pg_temp.u(s.i, 5) < 0.70 then 0
      else least((s.total_rows * 0.02 * (1 + 20 * pg_temp.u(s.i, 6) ^ 4))::int, s.total_rows / 2)
    end as error_rows,
    (200 + 3000 * pg_temp.u(s.i, 7) ^ 2)::int as parse_ms,
    (300 + 9000 * pg_temp.u(s.i, 8) ^ 3)::int as db_ms
  from (
    select
      t.i,
      t.source,
      t.created_at,
      t.i >= :batches - greatest(:batches / 1000, 1) as in_flight,
      t.i in (:batches / 2, :batches / 3, :batches - greatest(:batches / 500, 20), :batches - greatest(:batches / 400, 25),
              :batches - greatest(:batches / 300, 30), :batches - greatest(:batches / 250, 35), :batches - greatest(:batches / 200, 40))
        and t.i < :batches - greatest(:batches / 1000, 1) as stuck,
      -- a spike: one source, one hour, twice a week
      (extract(epoch from t.created_at)::bigint / 3600) % 84 = 37 and t.source = 'vendor_d' as spike,
      (100 + 20000 * pg_temp.u(t.i, 2) ^ 6)::int as total_rows
    from (
      select
        i,
        case
          when w < 0.32 then 'vendor_a' when w < 0.54 then 'vendor_b' when w < 0.69 then 'vendor_c'
          when w < 0.80 then 'vendor_d' when w < 0.88 then 'vendor_e' when w < 0.94 then 'vendor_f'
          when w < 0.98 then 'vendor_g' else 'vendor_h'
        end as source,
        -- day d, fraction f of the day warped by f + 0.6/(2pi) sin(2pi (f - 1/12)): dense around 14:00
        -- (days counted from UTC midnight :days days ago, so the peak lands at 14:00 UTC)
        -- The warp f + 0.6/(2pi) (sin(2pi (f - 1/12)) + sin(2pi/12)) keeps 0 and 1 in place;
        -- the last, partial day is left linear so that nothing lands after :now.
        p.day0 + make_interval(secs => 86400 * (floor(p.x) + (p.x - floor(p.x))
          + case when floor(p.x) < floor(p.span_days)
                 then 0.6 / (2 * pi()) * (sin(2 * pi() * ((p.x - floor(p.x)) - 1.0 / 12)) + sin(2 * pi() / 12))
                 else 0 end)) as created_at
      from (
        select i, pg_temp.u(i, 1) as w, d.day0, d.span_days,
               (i + 0.5) * d.span_days / :batches as x
        from (
          select date_trunc('day', :now::timestamptz - make_interval(days => :days), 'UTC') as day0,
                 extract(epoch from (:now::timestamptz - date_trunc('day', :now::timestamptz - make_interval(days => :days), 'UTC'))) / 86400 as span_days
        ) d
        cross join generate_series(0, :batches - 1) as i
      ) p
    ) t
  ) s
) g;

-- Row errors: for each batch with error_rows > 0, rows scaled so the total is about :errors.
-- Codes follow a long tail (the first code ~40% of rows, twenty codes in all).
with scale as (
  select :errors::float8 / nullif(sum(error_rows), 0) as f from intake.simplicity_batches
)
insert into intake.row_errors (batch_id, row_number, error_code, error_message, created_at)
select
  b.id,
  k,
  c.code,
  case when pg_temp.u(k + hashtext(b.id::text), 11) < 0.02 then null
       else c.message || ' (row ' || k || ')' end,
  b.created_at + make_interval(secs => 1 + k * 0.001)
from intake.simplicity_batches b
cross join scale
cross join lateral generate_series(1, greatest(round(b.error_rows * scale.f)::int, 0)) as k
cross join lateral (
  select
    (array['E_REQUIRED_FIELD', 'E_DATE_FORMAT', 'E_DUPLICATE_KEY', 'E_INVALID_EMAIL', 'E_NUMERIC_RANGE',
           'E_UNKNOWN_SKU', 'E_ENCODING', 'E_COLUMN_COUNT', 'E_CURRENCY', 'E_COUNTRY_CODE',
           'E_PHONE_FORMAT', 'E_NEGATIVE_QTY', 'E_FUTURE_DATE', 'E_TAX_ID', 'E_POSTCODE',
           'E_URL_FORMAT', 'E_BOOLEAN', 'E_TRUNCATED', 'E_CHECKSUM', 'E_LEGACY_FLAG'])[1 + floor(20 * pg_temp.u(k + hashtext(b.id::text), 10) ^ 2.5)::int] as code
) c0
cross join lateral (
  select c0.code, 'Validation failed: ' || lower(replace(substr(c0.code, 3), '_', ' ')) as message
) c
where b.error_rows > 0;

analyze intake.simplicity_batches;
analyze intake.row_errors;
