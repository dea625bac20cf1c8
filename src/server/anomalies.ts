/**
 * `GET /api/anomalies`: one source × metric over the last 7 days of complete UTC hours, each hour
 * judged exactly as the live `anomalies` check would have judged it then (the detector's backtest:
 * no look-ahead), so the dashboard's band chart and the alerts never disagree.
 */
import {
  backtest,
  HOUR_MS,
  type HourlyStats,
  METRICS,
  type Metric,
  type SourceSeries,
  viewOf,
} from '../anomalies/index.js';
import { floorHour, isoHour } from '../anomalies/time.js';
import { anomalySettingsFor, longestTrainingWeeks } from '../checks/anomalies.js';
import type { SentinelConfig } from '../config/schema.js';
import { loadSeries, trainingStart } from '../db/anomaly-series.js';
import type { Queryable } from '../db/pool.js';
import { oneLine } from '../util/text.js';
import type { AnomaliesResponse, AnomalyHour } from './api-types.js';

/** The settings the answer is judged with: `checks.anomalies` and `sources.<name>.anomalies`. */
export type AnomalyConfig = Pick<SentinelConfig, 'checks' | 'sources'>;

/** Hours shown: the last 7 days of complete UTC hours. */
export const ANOMALY_HOURS = 168;
/** Most source names an answer lists (the busiest of the last 7 days first). */
export const MAX_ANOMALY_SOURCES = 200;
/** Longest source name in an answer: longer ones are cut with `…` (as error codes elsewhere in the API). */
export const MAX_ANOMALY_SOURCE_CHARS = 256;

/** A source name as the answer shows it: control and bidi characters escaped, cut at 256 characters. */
export function shownSource(name: string): string {
  return oneLine(name, MAX_ANOMALY_SOURCE_CHARS);
}

/**
 * Every source's hourly figures of one metric over the read window: the training weeks before the
 * first hour shown, through the last complete hour. Read once per cache period and metric; each
 * source's answer is judged from it on demand (and kept for the window's lifetime).
 */
export interface AnomalyWindow {
  metric: Metric;
  /** Start of the first hour shown and of the last (epoch ms). */
  firstHour: number;
  lastHour: number;
  /** By exact name. */
  series: Map<string, SourceSeries>;
  /** Batches in the hours shown, by exact name. */
  batches: Map<string, number>;
  /** Exact names, most batches in the hours shown first (ties by name). */
  ranked: string[];
  /** Exact names by their shown form (a cut or escaped name is asked for as shown). */
  byShown: Map<string, string[]>;
  /** Answers already judged, by exact name. */
  judged: Map<string, AnomaliesResponse>;
  /** Weeks read before the first hour. */
  readWeeks: number;
}

/**
 * Reads the window of `metric` ending at the last complete hour before `now`, of every source or
 * of `sources` only (the processing time, whose histograms are most of a read's cost, is read for
 * the one source asked for; the list of sources comes from the volume's window).
 */
export async function readAnomalyWindow(
  db: Queryable,
  config: AnomalyConfig,
  metric: Metric,
  now: number,
  sources?: readonly string[],
): Promise<AnomalyWindow> {
  const lastHour = floorHour(now) - HOUR_MS;
  const firstHour = lastHour - (ANOMALY_HOURS - 1) * HOUR_MS;
  const weeks = longestTrainingWeeks(config);
  const read = (metrics: Metric[]) =>
    loadSeries(db, {
      from: trainingStart(firstHour, { training_weeks: weeks }),
      to: lastHour + HOUR_MS,
      metrics,
      ...(sources ? { sources } : {}),
    });
  const { series } = await read([metric]);
  const bySource = new Map<string, SourceSeries>();
  const batches = new Map<string, number>();
  const byShown = new Map<string, string[]>();
  for (const s of series) {
    bySource.set(s.source, s);
    let n = 0;
    for (const [hour, stats] of s.hours) if (hour >= firstHour && hour <= lastHour) n += stats.batches;
    batches.set(s.source, n);
    const shown = shownSource(s.source);
    byShown.set(shown, [...(byShown.get(shown) ?? []), s.source]);
  }
  const ranked = [...bySource.keys()].sort(
    (a, b) => (batches.get(b) ?? 0) - (batches.get(a) ?? 0) || (a < b ? -1 : a > b ? 1 : 0),
  );
  return {
    metric,
    firstHour,
    lastHour,
    series: bySource,
    batches,
    ranked,
    byShown,
    judged: new Map(),
    readWeeks: weeks,
  };
}

/** Why `/api/anomalies` cannot answer for the source asked for (a 404). */
export class UnknownSource extends Error {}

/**
 * The exact name of the source asked for: its exact name, or the form an answer shows it in.
 * Undefined asks for the default (the busiest source); null when there is no source at all.
 */
export function resolveSource(window: AnomalyWindow, asked: string | undefined): string | null {
  if (asked === undefined) return window.ranked[0] ?? null;
  if (window.series.has(asked)) return asked;
  const shown = window.byShown.get(asked);
  if (shown?.length === 1) return shown[0]!;
  const name = `"${oneLine(asked, 100)}"`;
  if (shown && shown.length > 1)
    throw new UnknownSource(`source ${name} names ${shown.length} sources once cut: ask for one by its full name`);
  throw new UnknownSource(
    `unknown source ${name}: no batch from the ${window.readWeeks} weeks before the last 7 days through the last ` +
      'complete hour',
  );
}

const round = (n: number): number => Math.round(n * 100) / 100;

/** The hour's figure of `metric` when the detector does not judge it (null: nothing to measure). */
function observedOf(metric: Metric, s: HourlyStats | undefined, covered: boolean): number | null {
  if (!covered) return null;
  if (metric === 'volume') return s?.batches ?? 0;
  if (metric === 'processing_time') return s && s.completed > 0 ? s.p95_minutes : null;
  if (!s || s.total_rows <= 0) return null;
  return round((100 * (metric === 'error_rate' ? s.error_rows : s.skipped_rows)) / s.total_rows);
}

/**
 * The answer for one source (null: no source with batches at all): its hours judged from `data`
 * (default: `listed`), the sources listed from `listed`.
 */
export function anomaliesAnswer(
  windows: { listed: AnomalyWindow; data?: AnomalyWindow; metric: Metric },
  config: AnomalyConfig,
  source: string | null,
): AnomaliesResponse {
  const { listed, metric } = windows;
  const window = windows.data ?? listed;
  const cached = source !== null ? window.judged.get(source) : undefined;
  if (cached) return cached;
  const { firstHour, lastHour } = window;
  const own = anomalySettingsFor(config, source ?? '');
  const names = listed.ranked.slice(0, MAX_ANOMALY_SOURCES).map(shownSource);
  const base = {
    metric,
    metrics: [...METRICS],
    from: isoHour(firstHour),
    to: isoHour(lastHour + HOUR_MS),
    sensitivity: own.options.sensitivity,
    training_weeks: own.options.training_weeks,
    min_training_weeks: own.options.min_training_weeks,
    enabled: own.enabled && own.metrics.includes(metric),
    sources: names,
    sources_total: listed.ranked.length,
  };
  const series = source !== null ? window.series.get(source) : undefined;
  if (source === null || !series) return { ...base, source: null, hours: [], unusual: 0, not_judged: 0 };

  const { verdicts } = backtest({
    series: [series],
    metrics: [metric],
    from: firstHour,
    to: lastHour + HOUR_MS,
    options: own.options,
  });
  // Where the series' data starts (a new feed's first hour), as the detector's own view has it.
  const { dataStart } = viewOf(series, lastHour + HOUR_MS);
  let unusual = 0;
  let notJudged = 0;
  const hours = verdicts.map((v): AnomalyHour => {
    if (v.judged) {
      if (v.level !== 'ok') unusual++;
      const { hour_start, observed, expected, lower, upper, score, level } = v;
      return { hour_start, observed, expected, lower, upper, score, level };
    }
    notJudged++;
    const hour = Date.parse(v.hour_start);
    return {
      hour_start: v.hour_start,
      observed: observedOf(metric, series.hours.get(hour), hour >= dataStart),
      reason: v.reason,
    };
  });
  const answer: AnomaliesResponse = { ...base, source: shownSource(source), hours, unusual, not_judged: notJudged };
  window.judged.set(source, answer);
  return answer;
}

/** The metric asked for (default volume), or undefined when it is not one. */
export function metricOf(text: string | undefined): Metric | undefined {
  if (text === undefined) return 'volume';
  return (METRICS as readonly string[]).includes(text) ? (text as Metric) : undefined;
}
