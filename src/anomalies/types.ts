/** The anomaly detector's inputs and outputs (issue 15; docs/anomalies.md). */

export const METRICS = ['volume', 'error_rate', 'dedupe_rate', 'processing_time'] as const;
export type Metric = (typeof METRICS)[number];

export const HOUR_MS = 3_600_000;
export const WEEK_MS = 168 * HOUR_MS;

/**
 * One source's figures for one UTC hour of `created_at`: the raw sums every metric is modelled
 * from (what a per-source hourly rollup holds). An hour absent from a series is an hour with no batch.
 */
export interface HourlyStats {
  /** Start of the UTC hour, epoch milliseconds. */
  hour: number;
  /** Batches created in the hour (volume). */
  batches: number;
  total_rows: number;
  error_rows: number;
  skipped_rows: number;
  /** Batches completed in the hour (the evidence behind the p95). */
  completed: number;
  /** p95 of completed_at − started_at in minutes over those batches; null when none completed. */
  p95_minutes: number | null;
}

/** A source's hourly figures, keyed by hour start (epoch ms). */
export interface SourceSeries {
  source: string;
  /**
   * The first hour the series covers (epoch ms). Hours before it are "no data", not "no batches".
   * Defaults to the earliest hour present.
   */
  dataStart?: number;
  hours: ReadonlyMap<number, HourlyStats>;
}

export interface DetectorOptions {
  /** Weeks of the same hour-of-week the baseline learns from (default 4). */
  training_weeks: number;
  /** Fewer weeks of data than this: the hour is not judged (default 2). */
  min_training_weeks: number;
  /** Band half-width in normal-equivalent standard deviations (default 3). */
  sensitivity: number;
}

export const DEFAULT_OPTIONS: DetectorOptions = { training_weeks: 4, min_training_weeks: 2, sensitivity: 3 };

export type AnomalyLevel = 'ok' | 'warning' | 'critical';

/** A judged hour: the shape of an anomaly's `details` plus its level. */
export interface Judgement {
  source: string;
  metric: Metric;
  /** ISO 8601 UTC, e.g. `2026-11-03T13:00:00Z`. */
  hour_start: string;
  observed: number;
  expected: number;
  lower: number;
  upper: number;
  /** Signed, unit-free: see docs/anomalies.md ("Score"). */
  score: number;
  level: AnomalyLevel;
  /** What the observed figure stands on: batches (volume, processing_time) or rows (rates). */
  evidence: number;
}

export interface NotJudged {
  source: string;
  metric: Metric;
  hour_start: string;
  /** Why: contains "history" when the training weeks are too few. */
  reason: string;
}

export type Verdict = ({ judged: true } & Judgement) | ({ judged: false } & NotJudged);

/** What an anomaly says, field for field (docs/contract.md §10): the alert's `details`, a backtest's row. */
export type AnomalyDetails = Pick<
  Judgement,
  'source' | 'metric' | 'hour_start' | 'observed' | 'expected' | 'lower' | 'upper' | 'score'
>;

/** A judgement's contract fields, in the contract's order (scripts and tests compare key lists). */
export function anomalyDetails(j: Judgement): AnomalyDetails {
  const { source, metric, hour_start, observed, expected, lower, upper, score } = j;
  return { source, metric, hour_start, observed, expected, lower, upper, score };
}
