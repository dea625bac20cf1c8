import type { Logger } from '../log.js';
import type { Queryable } from './pool.js';

/**
 * The per-source hourly rollup `sentinel.hourly_source_stats`
 * (supabase/migrations/…_hourly_source_stats.sql, docs/rollup.md): reading it for a
 * range of hours, folding the triggers' deltas into it, and backfilling the history
 * that predates the migration.
 */

/** Creation hours one refresh call may recompute (backfill): bounds each transaction. */
export const HOURLY_BACKFILL_HOURS_PER_CALL = 168;

/** Width of a processing-time histogram bucket: bucket k >= 1 holds [1.05^(k-1), 1.05^k) seconds. */
export const DURATION_BUCKET_RATIO = 1.05;

/** The percentile the rollup keeps: sentinel.hourly_source_p95 computes its ranks for this q. */
const P95 = 0.95;

/** One source's hour. */
export interface HourlySourceStats {
  source: string;
  /** The UTC hour: of created_at for the batch and row counts, of completed_at for the processing time. */
  hourStart: Date;
  /** Batches created in the hour (the `volume` metric). */
  batches: number;
  /** Of those, the ones now `completed` / `failed`. */
  completedBatches: number;
  failedBatches: number;
  /** Row counts of the batches created in the hour. */
  totalRows: number;
  insertedRows: number;
  skippedRows: number;
  errorRows: number;
  /** Batches with status `completed` (and a started_at) whose completed_at falls in the hour. */
  finishedBatches: number;
  /**
   * p95 of completed_at - started_at over those, in minutes (null without any): estimated from the
   * histogram, within 2.5 % (+ 0.5 s) of `percentile_cont(0.95)` over the exact durations.
   */
  processingP95Minutes: number | null;
}

/** A source-hour with nothing counted yet: what the reader (and a from-scratch aggregate) adds figures to. */
export function emptyHourlyStats(source: string, hourStart: Date): HourlySourceStats {
  return {
    source,
    hourStart,
    batches: 0,
    completedBatches: 0,
    failedBatches: 0,
    totalRows: 0,
    insertedRows: 0,
    skippedRows: 0,
    errorRows: 0,
    finishedBatches: 0,
    processingP95Minutes: null,
  };
}

export interface HourlyStatsRead {
  rows: HourlySourceStats[];
  /**
   * Creation hours before this are read from the rollup, later ones from the raw table (null:
   * the rollup has not been refreshed yet, everything was read raw). `sentinel migrate`
   * backfills it; under `supabase db push` the refreshes do.
   */
  rolledUpBefore: Date | null;
}

const HOUR = `date_trunc('hour', x.created_at at time zone 'UTC') at time zone 'UTC'`;

/**
 * The figures for hours in [from, to), one row per (source, hour) that has batches created or
 * completed in it, ordered by source and hour. Exact at any time: creation hours before the
 * rollup's horizon from the rollup plus the deltas not folded yet, later ones (normally the last
 * three or four) from intake.simplicity_batches through its hour index, in one statement (one
 * snapshot). A closed hour (before the horizon) is one row: its figures joined with its p95 row
 * (sentinel.hourly_source_p95); the histogram is read only for the open hours and for a closed
 * one with a delta not folded yet. A range that ends before the horizon reads the rollup's
 * primary keys only.
 */
export async function readHourlyStats(
  db: Queryable,
  range: {
    from: Date;
    to: Date;
    sources?: readonly string[];
    /** false: leave out the processing time (finishedBatches 0, p95 null), which is most of the cost. */
    processingTime?: boolean;
  },
  attempt = 1,
): Promise<HourlyStatsRead> {
  const state = await db.query<{ rolled_up_before: Date | null }>(
    'select s.rolled_up_before from sentinel.hourly_source_state s where s.id',
  );
  const horizon = state.rows[0]?.rolled_up_before ?? null;
  const from = range.from.getTime();
  const to = range.to.getTime();
  const rolledTo = horizon === null ? from : Math.min(to, horizon.getTime());
  const rawFrom = horizon === null ? from : Math.max(from, horizon.getTime());
  const withDurations = range.processingTime ?? true;
  const values: unknown[] = [range.from.toISOString(), range.to.toISOString()];
  const param = (v: unknown): string => {
    values.push(v);
    return `$${values.length}`;
  };
  const bySource = range.sources ? ` and x.source = any(${param([...range.sources])}::text[])` : '';
  // The horizon as a parameter, added only where a query part uses it (an unused one has no type).
  let horizonParam: string | undefined;
  const r = (): string => (horizonParam ??= `${param(horizon!.toISOString())}::timestamptz`);
  const epoch = (column: string): string => `extract(epoch from ${column})::float8`;
  // Every part has these columns: kind, source, hour (epoch seconds), the seven figures, the closed
  // hour's p95 row (n, low, high) and an open hour's histogram (buckets, counts).
  const noFigures = '0::float8, 0::float8, 0::float8, 0::float8, 0::float8, 0::float8, 0::float8';
  const noP95 = 'null::float8, null::int, null::int';
  const noHistogram = 'null::int[], null::float8[]';

  // First, as it names the columns: the horizon now, to tell whether it moved back since it was read.
  const parts: string[] = [
    `select 'r' as kind, '' as source, ${epoch('s.rolled_up_before')} as hour, 0::float8 as batches,
            0::float8 as completed, 0::float8 as failed, 0::float8 as total_rows, 0::float8 as inserted_rows,
            0::float8 as skipped_rows, 0::float8 as error_rows, null::float8 as n, null::int as low, null::int as high,
            null::int[] as buckets, null::float8[] as counts
       from sentinel.hourly_source_state s where s.id`,
  ];
  const figures: string[] = [];
  const durations: string[] = [];
  if (rolledTo > from) {
    const end = `${param(new Date(rolledTo).toISOString())}::timestamptz`;
    const rollup = `select x.source, x.hour_start, x.batches::float8 as batches,
              x.completed_batches::float8 as completed, x.failed_batches::float8 as failed,
              x.total_rows::float8 as total_rows, x.inserted_rows::float8 as inserted_rows,
              x.skipped_rows::float8 as skipped_rows,
              x.error_rows::float8 as error_rows
         from sentinel.hourly_source_stats x
        where x.hour_start >= $1::timestamptz and x.hour_start < ${end}${bySource}`;
    const figuresOf = 's.batches, s.completed, s.failed, s.total_rows, s.inserted_rows, s.skipped_rows, s.error_rows';
    if (withDurations) {
      // Completion hours before the horizon are closed (all their batches were created before it):
      // their p95 row stands for their histogram, unless a delta not folded yet changes it.
      const pending = `(select d.completed_hour, d.source from sentinel.hourly_source_deltas d
                          where d.completed_hour >= $1::timestamptz and d.completed_hour < ${end})`;
      parts.push(`select 'm', coalesce(s.source, p.source), ${epoch('coalesce(s.hour_start, p.completed_hour)')},
              ${figuresOf}, p.finished_batches::float8, p.low_bucket::int, p.high_bucket::int, ${noHistogram}
         from (${rollup}) s
         full join (
           select x.source, x.completed_hour, x.finished_batches, x.low_bucket, x.high_bucket
             from sentinel.hourly_source_p95 x
            where x.completed_hour >= $1::timestamptz and x.completed_hour < ${end}${bySource}
              and (x.completed_hour, x.source) not in ${pending}
         ) p on p.completed_hour = s.hour_start and p.source = s.source`);
      durations.push(
        `select x.source, x.completed_hour, x.bucket::int as bucket, x.batches
           from sentinel.hourly_source_durations x
          where x.completed_hour >= $1::timestamptz and x.completed_hour < ${end}${bySource}
            and (x.completed_hour, x.source) in ${pending}`,
      );
    } else {
      parts.push(`select 'm', s.source, ${epoch('s.hour_start')}, ${figuresOf}, ${noP95}, ${noHistogram}
         from (${rollup}) s`);
    }
    figures.push(
      `select x.source, x.hour_start, x.d_batches, x.d_completed, x.d_failed, x.d_total_rows, x.d_inserted_rows,
              x.d_skipped_rows, x.d_error_rows
         from sentinel.hourly_source_deltas x
        where x.completed_hour is null and x.hour_start >= $1::timestamptz and x.hour_start < ${end}${bySource}`,
    );
  }
  if (rawFrom < to) {
    // `from` itself when nothing is rolled up: a parameter no part used would have no type.
    const start = rawFrom === from ? '$1::timestamptz' : `${param(new Date(rawFrom).toISOString())}::timestamptz`;
    figures.push(
      `select x.source, ${HOUR}, 1, (x.status = 'completed')::int, (x.status = 'failed')::int, x.total_rows,
              x.inserted_rows, x.skipped_rows, x.error_rows
         from intake.simplicity_batches x
        where ${HOUR} >= ${start} and ${HOUR} < $2::timestamptz${bySource}`,
    );
  }
  if (withDurations && horizon !== null) {
    // Batches created before the horizon that completed in the open hours (also when the range
    // starts after the horizon: a batch created before it may complete later), and every delta.
    if (rawFrom < to) {
      durations.push(
        `select x.source, x.completed_hour, x.bucket::int as bucket, x.batches
           from sentinel.hourly_source_durations x
          where x.completed_hour >= ${param(new Date(rawFrom).toISOString())}::timestamptz
            and x.completed_hour < $2::timestamptz and x.created_hour < ${r()}${bySource}`,
      );
    }
    durations.push(
      `select x.source, x.completed_hour, x.bucket::int, x.d_durations
         from sentinel.hourly_source_deltas x
        where x.completed_hour >= $1::timestamptz and x.completed_hour < $2::timestamptz
          and x.hour_start < ${r()}${bySource}`,
    );
  }
  // Batches created from the horizon on that completed in the range (a batch completes after it is created).
  const rawDurationsFrom = horizon === null ? null : horizon.getTime();
  if (withDurations && (rawDurationsFrom === null || rawDurationsFrom < to)) {
    const since = rawDurationsFrom === null ? '' : `${HOUR} >= ${r()} and `;
    durations.push(
      `select x.source, date_trunc('hour', x.completed_at at time zone 'UTC') at time zone 'UTC',
              sentinel.duration_bucket(x.completed_at - x.started_at)::int, 1
         from intake.simplicity_batches x
        where ${since}${HOUR} < $2::timestamptz
          and x.status = 'completed' and x.started_at is not null and x.completed_at >= x.created_at
          and x.completed_at >= $1::timestamptz and x.completed_at < $2::timestamptz${bySource}`,
    );
  }
  if (figures.length > 0) {
    // Added to the closed hours' rows (deltas) or standing alone (the open hours).
    parts.push(`select 'f', f.source, ${epoch('f.hour_start')}, sum(f.batches)::float8, sum(f.completed)::float8,
            sum(f.failed)::float8, sum(f.total_rows)::float8, sum(f.inserted_rows)::float8,
            sum(f.skipped_rows)::float8, sum(f.error_rows)::float8, ${noP95}, ${noHistogram}
       from (${figures.join('\n union all\n')})
            as f (source, hour_start, batches, completed, failed, total_rows, inserted_rows, skipped_rows, error_rows)
      group by f.source, f.hour_start`);
  }
  if (durations.length > 0) {
    // One row per (source, hour) with its histogram as two arrays: a few dozen buckets each.
    parts.push(`select 'd', h.source, ${epoch('h.completed_hour')}, ${noFigures}, ${noP95},
            array_agg(h.bucket order by h.bucket), array_agg(h.batches order by h.bucket)
       from (
         select d.source, d.completed_hour, d.bucket, sum(d.batches)::float8 as batches
           from (${durations.join('\n union all\n')}) as d (source, completed_hour, bucket, batches)
          group by d.source, d.completed_hour, d.bucket
         having sum(d.batches) > 0
       ) h
      group by h.source, h.completed_hour`);
  }
  const { rows } = await db.query<{
    kind: 'm' | 'f' | 'd' | 'r';
    source: string;
    hour: number | null;
    batches: number;
    completed: number;
    failed: number;
    total_rows: number;
    inserted_rows: number;
    skipped_rows: number;
    error_rows: number;
    n: number | null;
    low: number | null;
    high: number | null;
    buckets: number[] | null;
    counts: number[] | null;
  }>(parts.join('\n union all\n'), values);

  // A reset horizon (a truncate, or a migration that rebuilds the rollup) between the two statements:
  // the rollup no longer holds what this query was built for. Read again.
  const current = rows.find((row) => row.kind === 'r');
  if (
    horizon !== null &&
    current !== undefined &&
    (current.hour === null || current.hour * 1000 < horizon.getTime()) &&
    attempt < 3
  )
    return readHourlyStats(db, range, attempt + 1);

  const byKey = new Map<string, { row: HourlySourceStats; buckets: [number, number][]; p95: number | null }>();
  for (const x of rows) {
    if (x.kind === 'r') continue;
    const key = `${x.hour}\u0000${x.source}`;
    let e = byKey.get(key);
    if (!e) {
      e = { row: emptyHourlyStats(x.source, new Date(x.hour! * 1000)), buckets: [], p95: null };
      byKey.set(key, e);
    }
    const row = e.row;
    if (x.kind === 'd') {
      x.buckets!.forEach((bucket, i) => {
        e.buckets.push([bucket, x.counts![i]!]);
      });
      continue;
    }
    row.batches += x.batches;
    row.completedBatches += x.completed;
    row.failedBatches += x.failed;
    row.totalRows += x.total_rows;
    row.insertedRows += x.inserted_rows;
    row.skippedRows += x.skipped_rows;
    row.errorRows += x.error_rows;
    if (x.n !== null) {
      row.finishedBatches = x.n;
      e.p95 = interpolatedPercentileSeconds(x.n, x.low!, x.high!, P95);
    }
  }
  const out: HourlySourceStats[] = [];
  for (const { row, buckets, p95 } of byKey.values()) {
    if (buckets.length > 0) {
      row.finishedBatches = buckets.reduce((n, [, c]) => n + c, 0);
      const seconds = histogramPercentileSeconds(buckets, P95);
      row.processingP95Minutes = seconds === null ? null : seconds / 60;
    } else if (p95 !== null) row.processingP95Minutes = p95 / 60;
    // A source-hour whose batches all went (deleted, moved) and that has no completion left.
    if (row.batches === 0 && row.totalRows === 0 && row.finishedBatches === 0) continue;
    out.push(row);
  }
  out.sort((a, b) =>
    a.source < b.source ? -1 : a.source > b.source ? 1 : a.hourStart.getTime() - b.hourStart.getTime(),
  );
  return { rows: out, rolledUpBefore: horizon };
}

/** The value a histogram bucket stands for: its geometric middle (bucket 0, under a second: 0.5 s). */
export function bucketSeconds(bucket: number): number {
  return bucket <= 0 ? 0.5 : DURATION_BUCKET_RATIO ** (bucket - 0.5);
}

/**
 * `percentile_cont(q)` of the durations a histogram ([bucket, count] pairs) holds, each
 * duration taken as its bucket's middle: interpolating between two values that are each
 * within 2.47 % of the true ones keeps the result within 2.47 % (+ 0.5 s under a second).
 */
export function histogramPercentileSeconds(buckets: readonly (readonly [number, number])[], q: number): number | null {
  const sorted = buckets.filter(([, c]) => c > 0).sort((a, b) => a[0] - b[0]);
  const n = sorted.reduce((sum, [, c]) => sum + c, 0);
  if (n === 0) return null;
  const position = q * (n - 1);
  const valueAt = (rank: number): number => {
    let seen = 0;
    for (const [bucket, count] of sorted) {
      seen += count;
      if (rank < seen) return bucketSeconds(bucket);
    }
    return bucketSeconds(sorted[sorted.length - 1]![0]);
  };
  const lo = Math.floor(position);
  const hi = Math.ceil(position);
  return interpolate(position, valueAt(lo), valueAt(hi));
}

/** `position`'s value between the values at its floor and ceiling ranks (`percentile_cont`). */
function interpolate(position: number, low: number, high: number): number {
  return low + (position - Math.floor(position)) * (high - low);
}

/**
 * {@link histogramPercentileSeconds} from the `n` durations' count and the buckets at ranks floor and
 * ceil of q (n - 1): what sentinel.hourly_source_p95 keeps per closed source-hour (same arithmetic).
 */
export function interpolatedPercentileSeconds(n: number, lowBucket: number, highBucket: number, q: number): number {
  return interpolate(q * (n - 1), bucketSeconds(lowBucket), bucketSeconds(highBucket));
}

interface RefreshResult {
  folded: number;
  rolled_up_before: string | null;
  recomputed_hours: number;
  pending_hours: number;
}

/**
 * Folds the triggers' deltas into the rollup and moves its horizon forward by up to `maxHours`
 * hours (recomputed from the raw table); one call is one short transaction (autocommit, or the
 * caller's READ COMMITTED one). `pendingHours` is -1 when the role cannot see every session's
 * transaction start (then the horizon stays: grant it pg_read_all_stats).
 */
export async function refreshHourlyStats(
  db: Queryable,
  maxHours = HOURLY_BACKFILL_HOURS_PER_CALL,
): Promise<{ folded: number; rolledUpBefore: Date | null; recomputedHours: number; pendingHours: number }> {
  const { rows } = await db.query<{ result: RefreshResult }>(
    'select sentinel.refresh_hourly_source_stats($1::int) as result',
    [maxHours],
  );
  const r = rows[0]!.result;
  return {
    folded: Number(r.folded),
    rolledUpBefore: r.rolled_up_before === null ? null : new Date(r.rolled_up_before),
    recomputedHours: Number(r.recomputed_hours),
    pendingHours: Number(r.pending_hours),
  };
}

/** Said once when the refresh cannot move the horizon (`pendingHours` -1): the grant that fixes it. */
export const HOURLY_HORIZON_STUCK =
  'The hourly rollup cannot move forward: this role cannot see the transactions of other sessions ' +
  '(grant it pg_read_all_stats); its readers stay exact but read more raw batches';

/**
 * After `sentinel migrate`: backfills the history, one bounded chunk per transaction (each call
 * its own autocommit statement), so the engine's writers are never held up for long.
 */
export async function buildHourlyRollup(databaseUrl: string, logger: Logger): Promise<void> {
  const { createWritePool, endPool } = await import('./pool.js');
  const pool = createWritePool(databaseUrl, { max: 1 });
  try {
    let first = true;
    for (;;) {
      const r = await refreshHourlyStats(pool);
      if (r.pendingHours <= 0 || r.recomputedHours === 0) {
        if (r.pendingHours < 0) {
          logger.warn(HOURLY_HORIZON_STUCK);
        } else if (!first) logger.info('Hourly rollup backfilled');
        return;
      }
      if (first) logger.info(`Backfilling the hourly rollup (${r.pendingHours} more hours)...`);
      first = false;
    }
  } finally {
    await endPool(pool);
  }
}
