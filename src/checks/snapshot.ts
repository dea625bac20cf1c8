import { createdSince } from '../db/sql.js';
import type { HourlyFigures, PipelineSnapshot } from '../types.js';
import { chooseBucket, type Hours, ownErrorThresholds, queryHourlyRows, ratePct, sumHours } from './error_spike.js';
import { IN_FLIGHT_STATUSES, PROCESSING_STATUSES, pipelineIndex } from './statuses.js';
import type { CheckContext } from './types.js';

/**
 * How far back (by `created_at`, through the UTC-hour index) to look for batches that finished
 * in the last hour. `completed_at` has no index; a batch that took longer than this
 * from upload to completion is not counted (stuck_batches will have reported it).
 */
export const FINISHED_LOOKBACK_HOURS = 24;

/** The in-flight statuses as SQL literals, so the planner can match the partial index's predicate. */
const IN_FLIGHT_SQL = IN_FLIGHT_STATUSES.map((s) => `'${s}'`).join(', ');

interface InFlightRow {
  status: string;
  batch_count: number;
  oldest_age_seconds: number;
  stuck_count: number;
}

interface FinishedRow {
  status: 'completed' | 'failed';
  batch_count: number;
}

/**
 * The pipeline as metrics and dashboards show it, in three small queries on the
 * intake tables, all on the database's clock (`ctx.now()`) and all index-backed so
 * their cost does not grow with history:
 *
 * - in-flight batches per status, the age of the oldest (since its last status
 *   change) and how many of them are stuck, exactly as `stuck_batches` counts them
 *   (the partial in-flight index on `(status, updated_at)`);
 * - the rows of the hour bucket `error_spike` judges (current UTC hour, or the previous
 *   one when the current has fewer than `min_rows` rows), overall without the sources
 *   that have their own threshold, and per source seen in the two hours (UTC-hour index);
 * - batches whose `completed_at` lies in the last hour (UTC-hour index, looking
 *   back {@link FINISHED_LOOKBACK_HOURS} hours).
 *
 * Read-only; throws on a query error (the runner logs it and reports no snapshot).
 */
export async function collectSnapshot(ctx: CheckContext): Promise<PipelineSnapshot> {
  const now = ctx.now();
  // One after the other: each takes about a millisecond, and in parallel they would
  // open up to three connections per run (a backend start each) on the monitored database.
  const inFlight = await queryInFlight(ctx, now);
  const hourly = await queryHourly(ctx, now);
  const finished = await queryFinished(ctx, now);
  return { taken_at: now.toISOString(), ...inFlight, hourly, finished_last_hour: finished };
}

async function queryInFlight(ctx: CheckContext, now: Date): Promise<Pick<PipelineSnapshot, 'in_flight' | 'stuck'>> {
  const threshold = ctx.config.checks.stuck_batches.threshold_minutes;
  const { rows } = await ctx.db.query<InFlightRow>(
    `select status,
            count(*)::int as batch_count,
            greatest(0, extract(epoch from ($1::timestamptz - min(updated_at))))::float8 as oldest_age_seconds,
            count(*) filter (
              where status = any($3::text[])
                and updated_at < $1::timestamptz - make_interval(secs => $2::float8 * 60)
            )::int as stuck_count
       from intake.simplicity_batches
      where status in (${IN_FLIGHT_SQL})
      group by status`,
    [now.toISOString(), threshold, [...PROCESSING_STATUSES]],
  );
  const sorted = [...rows].sort((a, b) => pipelineIndex(a.status) - pipelineIndex(b.status));
  return {
    in_flight: sorted.map((r) => ({
      status: r.status,
      batch_count: r.batch_count,
      oldest_age_seconds: r.oldest_age_seconds,
    })),
    stuck: {
      threshold_minutes: threshold,
      by_status: sorted.filter((r) => r.stuck_count > 0).map((r) => ({ status: r.status, batch_count: r.stuck_count })),
    },
  };
}

async function queryHourly(ctx: CheckContext, now: Date): Promise<PipelineSnapshot['hourly']> {
  const minRows = ctx.config.checks.error_spike.min_rows;
  // The same window, bucketing and per-source split as the error_spike check.
  const { window, rows } = await queryHourlyRows(ctx.db, now);
  const currentStart = window.currentStart;
  const { overall, perSource } = sumHours(rows, ownErrorThresholds(ctx.config));

  const figures = (hours: Hours): HourlyFigures => {
    const judged = chooseBucket(hours.current, hours.previous, currentStart, minRows);
    const previous = judged !== undefined && judged.hour_bucket.getTime() !== currentStart.getTime();
    const t = previous ? hours.previous : hours.current;
    return {
      hour_bucket: (previous ? window.previousStart : currentStart).toISOString(),
      judged: judged !== undefined,
      total_rows: t.total_rows,
      error_rows: t.error_rows,
      skipped_rows: t.skipped_rows,
      error_rate_pct: t.total_rows > 0 ? ratePct(t.error_rows, t.total_rows) : null,
      dedupe_rate_pct: t.total_rows > 0 ? ratePct(t.skipped_rows, t.total_rows) : null,
    };
  };

  return {
    min_rows: minRows,
    overall: figures(overall),
    sources: [...perSource.keys()].sort().map((source) => ({ source, ...figures(perSource.get(source)!) })),
  };
}

async function queryFinished(ctx: CheckContext, now: Date): Promise<PipelineSnapshot['finished_last_hour']> {
  const { rows } = await ctx.db.query<FinishedRow>(
    `select status, count(*)::int as batch_count
       from intake.simplicity_batches
      where ${createdSince('$1::timestamptz - make_interval(hours => $2::int)')}
        and status in ('completed', 'failed')
        and completed_at > $1::timestamptz - interval '1 hour'
        and completed_at <= $1::timestamptz
      group by status`,
    [now.toISOString(), FINISHED_LOOKBACK_HOURS],
  );
  const count = (status: FinishedRow['status']): number => rows.find((r) => r.status === status)?.batch_count ?? 0;
  return { completed: count('completed'), failed: count('failed') };
}
