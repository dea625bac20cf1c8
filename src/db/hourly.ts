import type { Logger } from '../log.js';
import type { Queryable } from './pool.js';

/**
 * The per-source hourly rollup `sentinel.hourly_source_stats`
 * (supabase/migrations/…_hourly_source_stats.sql, docs/rollup.md): reading it for a
 * range of hours, folding the triggers' deltas into it, and backfilling the history
 * that predates the migration.
 */

/** Creation hours one refresh call may backfill: bounds each transaction (~0.2 s at scale L). */
export const HOURLY_BACKFILL_HOURS_PER_CALL = 168;

/** Width of a processing-time histogram bucket: bucket k >= 1 holds [1.05^(k-1), 1.05^k) seconds. */
export const DURATION_BUCKET_RATIO = 1.05;

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

export interface HourlyStatsRead {
  rows: HourlySourceStats[];
  /**
   * Creation hours that the backfill has not reached yet (history from before the migration;
   * `sentinel migrate` backfills it all, `supabase db push` leaves it to the refreshes): the
   * counts of those hours are incomplete. Null when the backfill is done.
   */
  backfillPending: { from: Date; to: Date } | null;
}

/**
 * The rollup for hours in [from, to), one row per (source, hour) that has batches created or
 * completed in it, ordered by source and hour. Exact at any time: the rollup plus the deltas
 * not folded yet, read in one statement (one snapshot). Reads the rollup's primary keys, never
 * intake.simplicity_batches.
 */
export async function readHourlyStats(
  db: Queryable,
  range: { from: Date; to: Date; sources?: readonly string[] },
): Promise<HourlyStatsRead> {
  const values: unknown[] = [range.from.toISOString(), range.to.toISOString()];
  let bySource = '';
  if (range.sources) {
    values.push([...range.sources]);
    bySource = ' and x.source = any($3::text[])';
  }
  const { rows } = await db.query<{
    kind: 'f' | 'd';
    source: string;
    hour_start: Date;
    bucket: number | null;
    batches: number;
    completed_batches: number;
    failed_batches: number;
    total_rows: number;
    inserted_rows: number;
    skipped_rows: number;
    error_rows: number;
  }>(
    `select 'f' as kind, f.source, f.hour_start, null::int as bucket, sum(f.batches)::float8 as batches,
            sum(f.completed_batches)::float8 as completed_batches, sum(f.failed_batches)::float8 as failed_batches,
            sum(f.total_rows)::float8 as total_rows, sum(f.inserted_rows)::float8 as inserted_rows,
            sum(f.skipped_rows)::float8 as skipped_rows, sum(f.error_rows)::float8 as error_rows
       from (
         select x.source, x.hour_start, x.batches, x.completed_batches, x.failed_batches, x.total_rows,
                x.inserted_rows, x.skipped_rows, x.error_rows
           from sentinel.hourly_source_stats x
          where x.hour_start >= $1::timestamptz and x.hour_start < $2::timestamptz${bySource}
         union all
         select x.source, x.hour_start, x.d_batches, x.d_completed, x.d_failed, x.d_total_rows, x.d_inserted_rows,
                x.d_skipped_rows, x.d_error_rows
           from sentinel.hourly_source_deltas x
          where x.completed_hour is null
            and x.hour_start >= $1::timestamptz and x.hour_start < $2::timestamptz${bySource}
       ) f
      group by f.source, f.hour_start
     having sum(f.batches) <> 0 or sum(f.total_rows) <> 0
     union all
     select 'd', d.source, d.completed_hour, d.bucket, sum(d.batches)::float8, 0, 0, 0, 0, 0, 0
       from (
         select x.source, x.completed_hour, x.bucket::int as bucket, x.batches
           from sentinel.hourly_source_durations x
          where x.completed_hour >= $1::timestamptz and x.completed_hour < $2::timestamptz${bySource}
         union all
         select x.source, x.completed_hour, x.bucket::int, x.d_durations
           from sentinel.hourly_source_deltas x
          where x.completed_hour >= $1::timestamptz and x.completed_hour < $2::timestamptz${bySource}
       ) d
      group by d.source, d.completed_hour, d.bucket
     having sum(d.batches) > 0`,
    values,
  );
  const state = await db.query<{ backfill_next: Date | null; backfill_end: Date | null }>(
    'select s.backfill_next, s.backfill_end from sentinel.hourly_source_state s where s.id',
  );

  const byKey = new Map<string, { row: HourlySourceStats; buckets: [number, number][] }>();
  const entry = (source: string, hourStart: Date) => {
    const key = `${hourStart.toISOString()}\u0000${source}`;
    let e = byKey.get(key);
    if (!e) {
      e = {
        row: {
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
        },
        buckets: [],
      };
      byKey.set(key, e);
    }
    return e;
  };
  for (const r of rows) {
    const e = entry(r.source, r.hour_start);
    if (r.kind === 'f') {
      Object.assign(e.row, {
        batches: r.batches,
        completedBatches: r.completed_batches,
        failedBatches: r.failed_batches,
        totalRows: r.total_rows,
        insertedRows: r.inserted_rows,
        skippedRows: r.skipped_rows,
        errorRows: r.error_rows,
      });
    } else {
      e.buckets.push([r.bucket!, r.batches]);
    }
  }
  const out: HourlySourceStats[] = [];
  for (const { row, buckets } of byKey.values()) {
    row.finishedBatches = buckets.reduce((n, [, c]) => n + c, 0);
    const p95 = histogramPercentileSeconds(buckets, 0.95);
    row.processingP95Minutes = p95 === null ? null : p95 / 60;
    out.push(row);
  }
  out.sort((a, b) =>
    a.source < b.source ? -1 : a.source > b.source ? 1 : a.hourStart.getTime() - b.hourStart.getTime(),
  );
  const s = state.rows[0];
  const pending = s?.backfill_next && s.backfill_end && s.backfill_next < s.backfill_end;
  return { rows: out, backfillPending: pending ? { from: s.backfill_next!, to: s.backfill_end! } : null };
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
  const low = valueAt(lo);
  return low + (position - lo) * (valueAt(hi) - low);
}

interface RefreshResult {
  folded: number;
  backfilled_hours: number;
  backfill_pending_hours: number;
}

/**
 * Folds the triggers' deltas into the rollup and backfills up to `maxBackfillHours` creation
 * hours of older history; one call is one short transaction (the caller's, or autocommit).
 */
export async function refreshHourlyStats(
  db: Queryable,
  maxBackfillHours = HOURLY_BACKFILL_HOURS_PER_CALL,
): Promise<{ folded: number; backfilledHours: number; backfillPendingHours: number }> {
  const { rows } = await db.query<{ result: RefreshResult }>(
    'select sentinel.refresh_hourly_source_stats($1::int) as result',
    [maxBackfillHours],
  );
  const r = rows[0]!.result;
  return {
    folded: Number(r.folded),
    backfilledHours: Number(r.backfilled_hours),
    backfillPendingHours: Number(r.backfill_pending_hours),
  };
}

/**
 * After `sentinel migrate`: backfills the whole history, one bounded chunk per transaction
 * (each call its own autocommit statement), so the engine's writers are never held up for long.
 */
export async function buildHourlyRollup(databaseUrl: string, logger: Logger): Promise<void> {
  const { createWritePool, endPool } = await import('./pool.js');
  const pool = createWritePool(databaseUrl, { max: 1 });
  try {
    let first = true;
    for (;;) {
      const r = await refreshHourlyStats(pool);
      if (r.backfillPendingHours === 0) {
        if (!first) logger.info('Hourly rollup backfilled');
        return;
      }
      if (first) logger.info(`Backfilling the hourly rollup (${r.backfillPendingHours} hours to go)...`);
      first = false;
    }
  } finally {
    await endPool(pool);
  }
}
