import { createdSince } from '../db/sql.js';
import type { CheckThresholds, HourlyFigures, PipelineSnapshot } from '../types.js';
import {
  chooseBucket,
  type Hours,
  ownErrorThresholds,
  ownThresholds,
  queryHourlyRows,
  ratePct,
  sumHours,
} from './error_spike.js';
import { freshnessLookbackMs, newestBatches } from './source_freshness.js';
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
  backlog_count: number;
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
 *   back {@link FINISHED_LOOKBACK_HOURS} hours);
 * - with source_freshness enabled, the age of each watched source's newest batch, read
 *   as the check reads it (a slice of the UTC-hour index, widened only for silent sources).
 *
 * Plus the thresholds the enabled checks applied ({@link effectiveThresholds}), so the
 * metrics carry what the rules compare against. Read-only; throws on a query error (the
 * runner logs it and reports no snapshot).
 */
export async function collectSnapshot(ctx: CheckContext): Promise<PipelineSnapshot> {
  const now = ctx.now();
  // One after the other: each takes about a millisecond, and in parallel they would
  // open up to three connections per run (a backend start each) on the monitored database.
  const inFlight = await queryInFlight(ctx, now);
  const hourly = await queryHourly(ctx, now);
  const finished = await queryFinished(ctx, now);
  const freshness = await queryFreshness(ctx, now);
  return {
    taken_at: now.toISOString(),
    ...inFlight,
    hourly,
    finished_last_hour: finished,
    ...(freshness ? { freshness } : {}),
    thresholds: effectiveThresholds(ctx.config),
  };
}

const byName = <T extends { source?: string }>(a: T, b: T): number =>
  (a.source ?? '') < (b.source ?? '') ? -1 : (a.source ?? '') > (b.source ?? '') ? 1 : 0;

/**
 * The thresholds the enabled checks apply, in base units: durations in seconds, rates as 0–1
 * ratios, each check's overall one and the per-source ones of `sources.<name>`. A disabled check
 * has none, so a rule that joins on its threshold stays quiet like the check. Pure.
 */
export function effectiveThresholds(config: CheckContext['config']): CheckThresholds {
  const { checks } = config;
  const seconds: CheckThresholds['seconds'] = [];
  const ratios: CheckThresholds['ratios'] = [];
  if (checks.stuck_batches.enabled)
    seconds.push({ check: 'stuck_batches', value: checks.stuck_batches.threshold_minutes * 60 });
  if (checks.queue_backlog.enabled)
    seconds.push({ check: 'queue_backlog', value: checks.queue_backlog.threshold_minutes * 60 });
  if (checks.processing_time.enabled)
    seconds.push({ check: 'processing_time', value: checks.processing_time.p95_minutes * 60 });
  if (checks.source_freshness.enabled) {
    const own = Object.entries(config.sources).flatMap(([source, s]) =>
      s.expected_every === undefined ? [] : [{ check: 'source_freshness', source, value: s.expected_every / 1000 }],
    );
    seconds.push(...own.sort(byName));
  }
  const rates = (check: 'error_spike' | 'dedupe_rate', pct: number, setting: Parameters<typeof ownThresholds>[1]) => {
    ratios.push({ check, value: pct / 100 });
    const own = [...ownThresholds(config, setting)].map(([source, p]) => ({ check, source, value: p / 100 }));
    ratios.push(...own.sort(byName));
  };
  if (checks.error_spike.enabled) rates('error_spike', checks.error_spike.threshold_pct, 'error_spike_threshold_pct');
  if (checks.dedupe_rate.enabled) rates('dedupe_rate', checks.dedupe_rate.threshold_pct, 'dedupe_threshold_pct');
  const judgesBuckets = checks.error_spike.enabled || checks.dedupe_rate.enabled;
  return { seconds, ratios, ...(judgesBuckets ? { min_rows: checks.error_spike.min_rows } : {}) };
}

async function queryInFlight(
  ctx: CheckContext,
  now: Date,
): Promise<Pick<PipelineSnapshot, 'in_flight' | 'stuck' | 'backlog'>> {
  const threshold = ctx.config.checks.stuck_batches.threshold_minutes;
  const backlogThreshold = ctx.config.checks.queue_backlog.threshold_minutes;
  const { rows } = await ctx.db.query<InFlightRow>(
    `select status,
            count(*)::int as batch_count,
            greatest(0, extract(epoch from ($1::timestamptz - min(updated_at))))::float8 as oldest_age_seconds,
            count(*) filter (
              where status = any($3::text[])
                and updated_at < $1::timestamptz - make_interval(secs => $2::float8 * 60)
            )::int as stuck_count,
            -- As queue_backlog counts them: waiting in uploaded longer than its threshold.
            count(*) filter (
              where status = 'uploaded'
                and updated_at < $1::timestamptz - make_interval(secs => $4::float8 * 60)
            )::int as backlog_count
       from intake.simplicity_batches
      where status in (${IN_FLIGHT_SQL})
      group by status`,
    [now.toISOString(), threshold, [...PROCESSING_STATUSES], backlogThreshold],
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
    backlog: {
      threshold_minutes: backlogThreshold,
      batch_count: rows.reduce((n, r) => n + r.backlog_count, 0),
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

  // dedupe_rate leaves out the sources with their own dedupe threshold, which may not be error_spike's.
  const dedupe = sumHours(rows, ownThresholds(ctx.config, 'dedupe_threshold_pct')).overall;
  return {
    min_rows: minRows,
    overall: figures(overall),
    sources: [...perSource.keys()].sort().map((source) => ({ source, ...figures(perSource.get(source)!) })),
    overall_dedupe: figures(dedupe),
  };
}

/** source_freshness's view of its sources, when it is enabled and has any. */
async function queryFreshness(ctx: CheckContext, now: Date): Promise<PipelineSnapshot['freshness']> {
  if (!ctx.config.checks.source_freshness.enabled) return undefined;
  const watched = Object.entries(ctx.config.sources)
    .flatMap(([source, s]) => (s.expected_every === undefined ? [] : [{ source, everyMs: s.expected_every }]))
    .sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  if (watched.length === 0) return undefined;
  const newest = await newestBatches(
    ctx.db,
    watched.map(({ source, everyMs }) => ({ source, lookbackMs: freshnessLookbackMs(everyMs) })),
    now,
  );
  return watched.map(({ source, everyMs }) => {
    const at = newest.get(source) ?? null;
    return {
      source,
      expected_every_seconds: everyMs / 1000,
      last_batch_age_seconds: at === null ? null : (now.getTime() - at.getTime()) / 1000,
      lookback_seconds: freshnessLookbackMs(everyMs) / 1000,
    };
  });
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
