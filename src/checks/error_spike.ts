import { z } from 'zod';
import type { Queryable } from '../db/pool.js';
import { utcHour } from '../db/sql.js';
import type { Alert } from '../types.js';
import { isoSeconds, pct1, trimNumber } from '../util/format.js';
import { bounded } from '../util/limits.js';
import { cut, MAX_CHARS } from '../util/text.js';
import { type CheckContext, checkSettings, defineCheck } from './types.js';

const HOUR_MS = 3_600_000;

interface Totals {
  total_rows: number;
  error_rows: number;
}

/** The bucket a rate is judged on, per docs/contract.md §5.2: its row sums and the hour it starts. */
export type JudgedBucket<T extends { total_rows: number } = Totals> = T & { hour_bucket: Date };

/**
 * The current UTC hour, or the previous one when the current has fewer than
 * `minRows` rows (early in an hour the current bucket is too small to mean much).
 * Returns undefined when the chosen bucket is still below `minRows`: a rate over a
 * handful of rows never alerts.
 */
export function chooseBucket<T extends { total_rows: number }>(
  current: T,
  previous: T,
  currentStart: Date,
  minRows: number,
): JudgedBucket<T> | undefined {
  if (current.total_rows >= minRows) return { ...current, hour_bucket: currentStart };
  if (previous.total_rows >= minRows) return { ...previous, hour_bucket: new Date(currentStart.getTime() - HOUR_MS) };
  return undefined;
}

/**
 * A rate in percent, rounded half up to 2 decimals exactly as PostgreSQL's
 * `round(100.0 * part / total, 2)` in `ops.v_batch_performance` does. Integer
 * arithmetic, because floating point turns 15.005 into 15.00 where numeric says 15.01.
 */
export function ratePct(part: number, total: number): number {
  return Math.floor((20_000 * part + total) / (2 * total)) / 100;
}

/** The two hour buckets a rate is judged on: the current UTC hour and the one before. */
export interface HourWindow {
  previousStart: Date;
  currentStart: Date;
  nextStart: Date;
}

/** Row sums of one source in one of the two buckets. */
export interface HourlyRow {
  bucket: 'current' | 'previous';
  source: string;
  total_rows: number;
  error_rows: number;
  skipped_rows: number;
}

/**
 * Row sums per source for the current and previous UTC hour: the one query behind
 * the error_spike check and the pipeline snapshot's ratios. It reads two hours of
 * batches through the UTC-hour index, whatever the history's size (the bounds are
 * hour boundaries, so the hour condition selects exactly the created_at range).
 */
export async function queryHourlyRows(db: Queryable, now: Date): Promise<{ window: HourWindow; rows: HourlyRow[] }> {
  const currentStart = new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS);
  const window = {
    previousStart: new Date(currentStart.getTime() - HOUR_MS),
    currentStart,
    nextStart: new Date(currentStart.getTime() + HOUR_MS),
  };
  const { rows } = await db.query<HourlyRow>(
    `select case when created_at >= $2::timestamptz then 'current' else 'previous' end as bucket,
            source,
            coalesce(sum(total_rows), 0)::float8 as total_rows,
            coalesce(sum(error_rows), 0)::float8 as error_rows,
            coalesce(sum(skipped_rows), 0)::float8 as skipped_rows
       from intake.simplicity_batches
      where ${utcHour('created_at')} >= $1::timestamptz and ${utcHour('created_at')} < $3::timestamptz
        and created_at >= $1::timestamptz and created_at < $3::timestamptz
      group by 1, 2`,
    [window.previousStart.toISOString(), window.currentStart.toISOString(), window.nextStart.toISOString()],
  );
  return { window, rows };
}

/** Sources judged on their own (`sources.<name>.<setting>`), with that threshold. */
export function ownThresholds(
  config: CheckContext['config'],
  setting: 'error_spike_threshold_pct' | 'dedupe_threshold_pct',
): Map<string, number> {
  const own = new Map<string, number>();
  for (const [source, settings] of Object.entries(config.sources)) {
    const threshold = settings[setting];
    if (threshold !== undefined) own.set(source, threshold);
  }
  return own;
}

/** Sources judged on their own error threshold (`sources.<name>.error_spike_threshold_pct`). */
export function ownErrorThresholds(config: CheckContext['config']): Map<string, number> {
  return ownThresholds(config, 'error_spike_threshold_pct');
}

/** Row sums of one group of sources in the current and the previous hour. */
export type RowSums = Pick<HourlyRow, 'total_rows' | 'error_rows' | 'skipped_rows'>;
export interface Hours {
  current: RowSums;
  previous: RowSums;
}

/**
 * The two hours' rows summed: `overall` over every source not in `alone` (those
 * are judged on their own threshold), and `perSource` for every source that has rows.
 */
export function sumHours(
  rows: HourlyRow[],
  alone: { has(source: string): boolean },
): { overall: Hours; perSource: Map<string, Hours> } {
  const empty = (): Hours => ({
    current: { total_rows: 0, error_rows: 0, skipped_rows: 0 },
    previous: { total_rows: 0, error_rows: 0, skipped_rows: 0 },
  });
  const add = (into: RowSums, row: HourlyRow): void => {
    into.total_rows += row.total_rows;
    into.error_rows += row.error_rows;
    into.skipped_rows += row.skipped_rows;
  };
  const overall = empty();
  const perSource = new Map<string, Hours>();
  for (const row of rows) {
    const hours = perSource.get(row.source) ?? empty();
    perSource.set(row.source, hours);
    add(hours[row.bucket], row);
    if (!alone.has(row.source)) add(overall[row.bucket], row);
  }
  return { overall, perSource };
}

/** How many sources of the overall rate an overall spike names in its details. */
export const TOP_SOURCES = 5;

/** One source's part of the overall rate in the judged bucket (`details.top_sources`). */
export interface TopSource {
  source: string;
  error_rate_pct: number;
  error_rows: number;
  total_rows: number;
}

/**
 * The sources that drive an overall spike: of the rows of the judged bucket, the
 * sources of the overall rate (not in `alone`) that have error rows, most error rows
 * first, ties by name, at most `limit`; and how many sources of the overall rate the
 * bucket had. Names are data from the monitored tables: cut as every detail is
 * (escaped where they are shown).
 */
export function topSources(
  rows: readonly HourlyRow[],
  bucket: HourlyRow['bucket'],
  alone: { has(source: string): boolean },
  limit: number = TOP_SOURCES,
): { top_sources: TopSource[]; sources_in_bucket: number } {
  const inBucket = rows.filter((r) => r.bucket === bucket && !alone.has(r.source));
  const top = inBucket
    .filter((r) => r.error_rows > 0 && r.total_rows > 0)
    .sort((a, b) => b.error_rows - a.error_rows || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0))
    .slice(0, limit)
    .map((r) => ({
      source: cut(r.source, MAX_CHARS.name),
      error_rate_pct: ratePct(r.error_rows, r.total_rows),
      error_rows: r.error_rows,
      total_rows: r.total_rows,
    }));
  return { top_sources: top, sources_in_bucket: new Set(inBucket.map((r) => r.source)).size };
}

/**
 * Hourly error rate over a threshold. Sources with their own threshold
 * (`sources.<name>.error_spike_threshold_pct`) are judged alone and left out of
 * the overall rate, so one noisy vendor neither hides nor causes a global alert.
 * Reads only the last two hours of batches through the UTC-hour index.
 */
export const errorSpikeCheck = defineCheck({
  name: 'error_spike',
  description:
    "Rejected rows over threshold_pct of the hour's rows, overall and for each source with its own " + 'threshold.',
  settings: checkSettings(10, {
    threshold_pct: z
      .number()
      .min(0)
      .max(100)
      .default(15)
      .describe("error rows in percent of the bucket's rows above which it alerts (overall)"),
    min_rows: bounded(1_000_000_000, { min: 1, int: true })
      .default(100)
      .describe('an hour with fewer rows is judged on the previous hour, or not at all (also dedupe_rate)'),
  }),
  remediation:
    'Query ops.v_error_distribution for the top error codes; check whether a bad file was uploaded; ' +
    'review validation rules or give the source its own threshold ' +
    '(sources.<name>.error_spike_threshold_pct).',
  perSource: true,
  needsDatabase: true,
  measurements: [],
  async run(ctx: CheckContext): Promise<Alert[]> {
    const cfg = ctx.config.checks.error_spike;
    const now = ctx.now();
    const { window, rows } = await queryHourlyRows(ctx.db, now);
    const currentStart = window.currentStart;

    const ownThreshold = ownErrorThresholds(ctx.config);
    const { overall, perSource } = sumHours(rows, ownThreshold);

    const alerts: Alert[] = [];
    const judge = (totals: Hours, threshold: number, source?: string): void => {
      const bucket = chooseBucket(totals.current, totals.previous, currentStart, cfg.min_rows);
      if (!bucket) return;
      const rate = ratePct(bucket.error_rows, bucket.total_rows);
      if (rate <= threshold) return;
      // One decimal as in the guide, unless that would print "15.0% > 15.0%".
      const digits = pct1(rate) === pct1(threshold) ? 2 : 1;
      // pct1 rounds half up on the decimal value (27.45 → 27.5), where toFixed rounds its binary approximation.
      const shown = (n: number): string => (digits === 1 ? pct1(n) : n.toFixed(2));
      const [shownRate, shownThreshold] = [shown(rate), shown(threshold)];
      // The overall alert says which sources drive it, from the rows of the very bucket it judged.
      const drivers = source
        ? undefined
        : topSources(
            rows,
            bucket.hour_bucket.getTime() === currentStart.getTime() ? 'current' : 'previous',
            ownThreshold,
          );
      alerts.push({
        check: 'error_spike',
        level: 'warning',
        // Exactly the contract's text (docs/contract.md §5.2): scripts match it. The sources
        // behind an overall spike are in the details, which every output renders.
        message: `Error rate ${shownRate}% > ${shownThreshold}% threshold${source ? ` for source ${source}` : ''}`,
        subject: source,
        details: {
          error_rate_pct: rate,
          threshold_pct: threshold,
          hour_bucket: isoSeconds(bucket.hour_bucket),
          error_rows: bucket.error_rows,
          total_rows: bucket.total_rows,
          ...(source ? { source } : {}),
          min_rows: cfg.min_rows,
          ...(drivers ?? {}),
        },
      });
    };

    judge(overall, cfg.threshold_pct);
    for (const source of [...perSource.keys()].filter((s) => ownThreshold.has(s)).sort()) {
      judge(perSource.get(source)!, ownThreshold.get(source)!, source);
    }
    ctx.logger.debug(
      `error_spike: judged ${rows.length} source-hour rows, thresholds overall ${trimNumber(cfg.threshold_pct)}%`,
    );
    return alerts;
  },
});
