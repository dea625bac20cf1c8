/**
 * Reading the detector's input from the database: the hourly rollup (src/db/hourly.ts) turned
 * into one series per source. The live check, `sentinel anomalies`, the dashboard's band chart
 * and the bench all read through here, so they judge the same figures.
 */

import { seriesBySource } from '../anomalies/series.js';
import { floorDay } from '../anomalies/time.js';
import { type DetectorOptions, type HourlyStats, type Metric, type SourceSeries, WEEK_MS } from '../anomalies/types.js';
import { type HourlySourceStats, readHourlyStats } from './hourly.js';
import type { Queryable } from './pool.js';
import { utcHour } from './sql.js';

/**
 * The first hour the detector reads to judge hours from `firstHour` on: the training weeks
 * before the day of `firstHour` starts (the per-day parameters learn from them).
 */
export function trainingStart(firstHour: number, options: Pick<DetectorOptions, 'training_weeks'>): number {
  return floorDay(firstHour) - options.training_weeks * WEEK_MS;
}

/** A rollup row as the detector's hourly figures. */
export function toHourlyStats(row: HourlySourceStats): HourlyStats & { source: string } {
  return {
    source: row.source,
    hour: row.hourStart.getTime(),
    batches: row.batches,
    total_rows: row.totalRows,
    error_rows: row.errorRows,
    skipped_rows: row.skippedRows,
    completed: row.finishedBatches,
    p95_minutes: row.processingP95Minutes,
  };
}

export interface LoadedSeries {
  /** One per source with a batch in [from, to), sorted by name. */
  series: SourceSeries[];
  /** Rows read (source-hours): what the read cost. */
  rows: number;
}

/**
 * Every source's hourly figures in [from, to) (epoch ms, whole hours). A source's `dataStart` is
 * `from`, or its first hour when it has no batch before `from` at all (a new feed): hours
 * before a source existed are "no data", so a feed added last week is not judged against weeks
 * of zeros but waits for its own history. `processingTime: false` skips the p95 histogram
 * (most of the read's cost) when that metric is not wanted.
 */
export async function loadSeries(
  db: Queryable,
  range: { from: number; to: number; sources?: readonly string[]; metrics: readonly Metric[] },
): Promise<LoadedSeries> {
  const { rows, rolledUpBefore } = await readHourlyStats(db, {
    from: new Date(range.from),
    to: new Date(range.to),
    ...(range.sources ? { sources: range.sources } : {}),
    processingTime: range.metrics.includes('processing_time'),
  });
  const bySource = seriesBySource(rows.map(toHourlyStats));
  const firstHour = (s: SourceSeries): number => {
    let first = Number.POSITIVE_INFINITY;
    for (const hour of s.hours.keys()) first = Math.min(first, hour);
    return first;
  };
  // Sources whose first hour in the range is not its first hour: did they exist before it? The rollup holds
  // the hours before its horizon; hours between the horizon and `from` (a rollup behind, or never refreshed)
  // are read raw through the UTC-hour index, and not at all when the horizon is past `from` (the usual case).
  const late = [...bySource].filter(([, s]) => firstHour(s) > range.from).map(([source]) => source);
  const older = new Set<string>();
  if (late.length > 0) {
    const horizon = rolledUpBefore?.getTime() ?? Number.NEGATIVE_INFINITY;
    const raw =
      horizon < range.from
        ? ` or exists (select 1 from intake.simplicity_batches b
                        where b.source = s.source
                          and ${utcHour('b.created_at')} < ${utcHour('$2::timestamptz')}
                          and b.created_at < $2::timestamptz${
                            rolledUpBefore ? ` and ${utcHour('b.created_at')} >= ${utcHour('$3::timestamptz')}` : ''
                          })`
        : '';
    const { rows: seen } = await db.query<{ source: string }>(
      `select s.source from unnest($1::text[]) as s (source)
        where exists (select 1 from sentinel.hourly_source_stats x
                       where x.source = s.source and x.hour_start < $2::timestamptz)${raw}`,
      [late, new Date(range.from).toISOString(), ...(raw && rolledUpBefore ? [rolledUpBefore.toISOString()] : [])],
    );
    for (const r of seen) older.add(r.source);
  }
  // A source that existed before the range: its hours from `from` on without a batch are silence. A new
  // one: no dataStart, so a view starts it at its first hour.
  const series = [...bySource]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([source, s]): SourceSeries => (older.has(source) ? { ...s, dataStart: range.from } : s));
  return { series, rows: rows.length };
}
