import type { Alert, HourlyFigures, OverallStatus, RunMetrics } from '../types.js';

/**
 * The dashboard's JSON API (`/api/*`), shared by the server and the web page.
 * Errors are `{ "error": "<one line>" }` with 400 (bad parameter), 401 (token
 * needed), 503 (database unreachable).
 */

/** `GET /api/status` */
export interface StatusResponse {
  environment: string;
  /** `unknown` before the first run. */
  overall_status: OverallStatus | 'unknown';
  /** ISO 8601 of the last finished run, or null. */
  last_run_at: string | null;
  last_run_age_seconds: number | null;
  role: 'leader' | 'follower' | 'single';
  /** Whether the last run reached the monitored database; null before the first run. */
  database_reachable: boolean | null;
  version: string;
  metrics: RunMetrics | null;
}

/** `GET /api/alerts`: the last run's alerts (silenced and acknowledged ones marked). */
export interface AlertsResponse {
  alerts: Array<Alert & { since?: string }>;
}

/** One row of `ops.v_batch_performance`, numbers as numbers, times as ISO strings. */
export interface BatchPerformanceRow {
  hour_bucket: string;
  total_batches: number;
  completed_batches: number;
  failed_batches: number;
  avg_parse_ms: number | null;
  avg_db_ms: number | null;
  avg_total_ms: number | null;
  total_rows: number;
  inserted_rows: number;
  skipped_rows: number;
  error_rows: number;
  dedupe_rate_pct: number | null;
  error_rate_pct: number | null;
}

/** `GET /api/batch-performance?hours=24` (1–720), newest hour first. */
export interface BatchPerformanceResponse {
  hours: number;
  /** checks.error_spike.threshold_pct, to draw against the error rate. */
  error_threshold_pct: number;
  rows: BatchPerformanceRow[];
}

/** One row of `ops.v_error_distribution`. */
export interface ErrorDistributionRow {
  /** At most 256 characters: a longer code is cut, ending in `…`. */
  error_code: string;
  occurrence_count: number;
  affected_batches: number;
  /**
   * The latest message of the code, at most 1024 characters (a longer one is cut, ending in `…`); null when no row has
   * one.
   */
  sample_message: string | null;
  last_seen_at: string;
}

/** `GET /api/error-distribution?limit=10` (1–100), most frequent first. */
export interface ErrorDistributionResponse {
  limit: number;
  rows: ErrorDistributionRow[];
}

/** One row of `ops.v_pipeline_health`, plus whether it holds stuck batches. */
export interface PipelineHealthRow {
  /** At most 256 characters (cut with `…`). */
  status: string;
  batch_count: number;
  oldest_batch_at: string;
  oldest_age_minutes: number;
  newest_batch_at: string;
  /** A processing status whose oldest batch is older than the stuck threshold. */
  stuck: boolean;
}

/** `GET /api/pipeline-health`, in pipeline order. */
export interface PipelineHealthResponse {
  threshold_minutes: number;
  rows: PipelineHealthRow[];
}

/** The figures of one hour bucket as the error_spike check judges it: the run's pipeline snapshot's. */
export type SourceBucketFigures = HourlyFigures;

/** One source of `GET /api/sources`. */
export interface SourceRow extends SourceBucketFigures {
  /** At most 256 characters (cut with `…`): source names are data. */
  source: string;
  /** The threshold its rate is judged against: its own, or the overall one. */
  threshold_pct: number;
  /** `sources.<name>.error_spike_threshold_pct` is set: judged alone, left out of the overall rate. */
  own_threshold: boolean;
  /** Counted in the overall rate (false for the sources with their own threshold). */
  in_overall: boolean;
  /** Judged and above its threshold (for a source in the overall rate: its own rate above the overall threshold). */
  over_threshold: boolean;
  /** The checks of the last run's alerts that name this source (subject, top sources, stuck or waiting batches). */
  alert_checks: string[];
}

/**
 * `GET /api/sources?limit=20` (1–100): per-source rates of the hour bucket the
 * error_spike check judges, from the last run's pipeline snapshot (no query). The
 * `limit` sources with the most rows, most first (ties by name), plus every source an
 * alert names; the others are summed in `others`.
 */
export interface SourcesResponse {
  /** ISO 8601 of the snapshot; null before the first run or when the run had none. */
  taken_at: string | null;
  limit: number;
  /** checks.error_spike.threshold_pct */
  threshold_pct: number;
  /** checks.error_spike.min_rows: a smaller bucket is not judged. */
  min_rows: number | null;
  /** The overall rate the check judges: every source without its own threshold. Null before a snapshot. */
  overall: SourceBucketFigures | null;
  sources: SourceRow[];
  /** The sources left out of `sources`, summed. */
  others: { sources: number; total_rows: number; error_rows: number };
}

export interface ApiError {
  error: string;
}

/**
 * 503 from a view endpoint while the database is unreachable: answered at once
 * (no request waits for a connect timeout), with when the API last read good data.
 */
export interface ApiUnavailable extends ApiError {
  /** ISO 8601; null when this process never read the views. */
  last_good_at: string | null;
  last_good_age_seconds: number | null;
}

/** A metric of the anomaly detector (docs/anomalies.md). */
export type AnomalyMetric = 'volume' | 'error_rate' | 'dedupe_rate' | 'processing_time';

/** An hour the detector judged: its figure against the usual band for its hour of the week. */
export interface AnomalyJudgedHour {
  /** ISO 8601 UTC start of the hour, e.g. `2026-11-03T13:00:00Z`. */
  hour_start: string;
  /** Batches (volume), % of rows (error_rate, dedupe_rate) or p95 minutes (processing_time). */
  observed: number;
  expected: number;
  lower: number;
  upper: number;
  /** Signed, unit-free (docs/anomalies.md, "Score"). */
  score: number;
  /** `ok` inside the band; `warning` outside it; `critical` at twice the sensitivity. */
  level: 'ok' | 'warning' | 'critical';
}

/** An hour the detector did not judge, and why (contains `history` when the training weeks are too few). */
export interface AnomalyUnjudgedHour {
  hour_start: string;
  /** The hour's figure when it has one (no rows, no completed batch, no data: null). */
  observed: number | null;
  reason: string;
}

export type AnomalyHour = AnomalyJudgedHour | AnomalyUnjudgedHour;

/**
 * `GET /api/anomalies?source=NAME&metric=volume`: one source × metric over the last 7 days of
 * complete UTC hours (168, oldest first), each judged as the live `anomalies` check would have
 * judged it then (no look-ahead). Defaults: the source with the most batches in those hours, `volume`.
 */
export interface AnomaliesResponse {
  /** As shown (control and bidi characters escaped, cut at 256 characters); null when no source has batches. */
  source: string | null;
  metric: AnomalyMetric;
  /** Every metric that may be asked for. */
  metrics: AnomalyMetric[];
  /** The hours shown: [from, to), ISO 8601 UTC. */
  from: string;
  to: string;
  /** The source's settings (`sources.<name>.anomalies` over `checks.anomalies`). */
  sensitivity: number;
  training_weeks: number;
  min_training_weeks: number;
  /** Whether the live check judges this source and metric (the band is the same either way). */
  enabled: boolean;
  /** Empty when `source` is null. */
  hours: AnomalyHour[];
  /** Hours judged warning or critical. */
  unusual: number;
  not_judged: number;
  /**
   * Sources with batches in the read window (the training weeks and the hours shown), most batches
   * in the hours shown first, at most 200, as shown (escaped and cut): ask for one by this form.
   */
  sources: string[];
  /** How many sources there are in all. */
  sources_total: number;
}
