/**
 * Shapes shared by checks, the runner and the reports. The JSON report is a
 * contract (docs/contract.md §5, §6): fields may be added, never removed or renamed.
 */

/** Severity of an alert. `critical` pages someone; `warning` degrades the run. */
export type Level = 'critical' | 'warning';

/** Overall verdict of one run; maps onto exit codes 0 / 1 / 2. */
export type OverallStatus = 'healthy' | 'degraded' | 'critical';

/**
 * Worst level wins: any critical alert makes the run critical, any warning degraded.
 * Here, with the types it maps, because both the runner and alerting (which recounts
 * without silenced alerts) need it and alerting may not import the runner.
 */
export function overallStatus(alerts: ReadonlyArray<Pick<Alert, 'level'>>): OverallStatus {
  if (alerts.some((a) => a.level === 'critical')) return 'critical';
  if (alerts.length > 0) return 'degraded';
  return 'healthy';
}

/** One finding of a check, exactly the guide's alert shape plus optional extras. */
export interface Alert {
  check: string;
  level: Level;
  message: string;
  details: Record<string, unknown>;
  /**
   * What makes two alerts "the same incident" beyond the check name (for example the
   * source of a per-source error spike). Alerting uses environment + check + subject.
   */
  subject?: string;
  /** A short next step for the human reading the report. */
  remediation?: string;
  /**
   * Set by the runner on `Check failed:` alerts. A failing check is its own
   * incident: it must page even while an alert of the same check is firing.
   */
  failed?: boolean;
  /** Short stable id of the alert identity (for `sentinel ack`), set by alerting. */
  id?: string;
  /** Matched an active silence: reported, not notified, does not raise the exit code. */
  silenced?: boolean;
  /** Acknowledged with `sentinel ack`: no repeats until it resolves. */
  acknowledged?: boolean;
  /** ISO 8601: when this alert started firing (set by alerting). */
  since?: string;
}

/** How one check ended, for the report and later for metrics. */
export type CheckOutcome = 'ok' | 'alert' | 'failed' | 'skipped';

export interface CheckSummary {
  name: string;
  outcome: CheckOutcome;
  duration_ms: number;
  /** Why the check was skipped, when it was. */
  reason?: string;
  /**
   * Figures the check recorded with `ctx.measure` (for metrics), whatever its
   * outcome; absent when it recorded none. schema_cache records `latency_ms`,
   * `result`, `up` and `reloads`.
   */
  measurements?: Record<string, Measurement>;
  /**
   * Labelled figures the check recorded with `ctx.measureFor`; absent when none. anomalies
   * records `score` per `{ source, metric }` it judged.
   */
  series?: LabelledMeasurement[];
}

/** One figure of a labelled series (`CheckSummary.series`). */
export interface LabelledMeasurement {
  key: string;
  labels: Record<string, string>;
  value: number;
}

/** `CheckSummary.reason` of a check switched off in the config: its alerts may resolve (alerting/plan.ts). */
export const DISABLED_IN_CONFIG = 'disabled in config';

/** One value a check measured. */
export type Measurement = number | string | boolean;

/** Everything one health-check run produced; reports are pure functions of it. */
export interface RunResult {
  /** ISO 8601 UTC time the run finished. */
  timestamp: string;
  environment: string;
  overall_status: OverallStatus;
  alerts: Alert[];
  checks: CheckSummary[];
  duration_ms: number;
  metrics: RunMetrics;
  /** Per-notifier delivery figures of this run, once alerting ran. */
  notifications?: NotifierSummary[];
  /** Why alerting could not record or deliver this run's notifications, when it could not. */
  alerting_error?: string;
  /**
   * With `replicas.enabled` only: `leader` for a run of the leader; `follower` for a
   * run during which this replica lost leadership (its alerts were left to the new
   * leader), and for a one-shot run while another process held the leader lock
   * (checked and reported, neither recorded nor notified). Followers of a loop run
   * nothing and print nothing.
   */
  role?: 'leader' | 'follower';
  /**
   * The pipeline as this run saw it (counts, ages, hourly ratios), for metrics and
   * dashboards. Collected after the checks; absent when it could not be collected
   * (the run's status never depends on it).
   */
  pipeline?: PipelineSnapshot;
}

/**
 * A cheap picture of the pipeline, read from the intake tables on the database's
 * clock (`src/checks/snapshot.ts`). Statuses are listed in pipeline order; a status
 * without batches is left out.
 */
export interface PipelineSnapshot {
  /** ISO 8601 UTC time the snapshot describes (the database clock). */
  taken_at: string;
  /** Batches per in-flight status (uploaded, processing, validating, inserting) that has any. */
  in_flight: Array<{ status: string; batch_count: number; oldest_age_seconds: number }>;
  /** Batches per processing status longer than `threshold_minutes` (as the stuck_batches check counts them). */
  stuck: { threshold_minutes: number; by_status: Array<{ status: string; batch_count: number }> };
  /**
   * Rows of the hour bucket the error_spike check judges: overall (sources with their
   * own `error_spike_threshold_pct` left out) and per source seen in the last two hours.
   */
  hourly: {
    min_rows: number;
    overall: HourlyFigures;
    sources: Array<HourlyFigures & { source: string }>;
    /**
     * The overall bucket dedupe_rate judges: like `overall`, but leaving out the sources with their own
     * `dedupe_threshold_pct` instead (absent in snapshots of older versions: then `overall`).
     */
    overall_dedupe?: HourlyFigures;
  };
  /** Batches whose `completed_at` lies within the last hour, by final status. */
  finished_last_hour: { completed: number; failed: number };
  /** Batches waiting in `uploaded` longer than `threshold_minutes` (as the queue_backlog check counts them). */
  backlog?: { threshold_minutes: number; batch_count: number };
  /**
   * Per source with `sources.<name>.expected_every` (source_freshness enabled): seconds since its newest
   * batch, null when it sent none within `lookback_seconds` (the check then says "more than <lookback>").
   */
  freshness?: Array<{
    source: string;
    expected_every_seconds: number;
    last_batch_age_seconds: number | null;
    lookback_seconds: number;
  }>;
  /** The thresholds the enabled checks applied in this run (sentinel.yml, per source where it overrides them). */
  thresholds?: CheckThresholds;
}

/**
 * What the enabled checks compare against, in base units (seconds, 0–1 ratios), so Prometheus rules
 * compare against Sentinel's own configuration instead of copies of it. An entry without `source` is
 * the check's overall threshold; one with `source` comes from `sources.<name>`.
 */
export interface CheckThresholds {
  seconds: Array<{ check: string; source?: string; value: number }>;
  ratios: Array<{ check: string; source?: string; value: number }>;
  /** `checks.error_spike.min_rows` (also dedupe_rate's), when either check is enabled. */
  min_rows?: number;
}

/** One hour bucket's rows, as error_spike and dedupe_rate judge them. */
export interface HourlyFigures {
  /** ISO 8601 start of the UTC hour. */
  hour_bucket: string;
  /**
   * True when the bucket has at least `min_rows` rows (the check judges it). When
   * neither hour has enough rows, the figures are the current hour's and false.
   */
  judged: boolean;
  total_rows: number;
  error_rows: number;
  skipped_rows: number;
  /** 100·error/total, 2 decimals as in `ops.v_batch_performance`; null without rows. */
  error_rate_pct: number | null;
  /** 100·skipped/total, 2 decimals; null without rows. */
  dedupe_rate_pct: number | null;
}

export interface RunMetrics {
  total_checks: number;
  alerts_triggered: number;
  critical_alerts: number;
  warning_alerts: number;
  skipped_checks: number;
  /**
   * Time spent waiting for the monitored database during the checks and the pipeline
   * snapshot: the sum of every query's round trip, in milliseconds (0.1 ms).
   */
  database_ms?: number;
  /** Alerts matched by a silence: reported, not counted above, not notified. */
  silenced_alerts?: number;
}

/**
 * Why a delivery failed, as counted per notifier in a run's `notifications[].reasons`
 * (a fixed set, so it can become a metric label): `rejected` a final 4xx refusal,
 * `rate_limited` a 429, `server_error` a 5xx, `timeout` no answer in time (the
 * request's timeout or the run's `delivery_timeout`), `network` no HTTP answer at
 * all (refused, reset, DNS, TLS), `expired` undelivered for longer than
 * `max_outbox_age` and given up.
 */
export const FAILURE_REASONS = ['rejected', 'expired', 'rate_limited', 'server_error', 'timeout', 'network'] as const;
/** One of {@link FAILURE_REASONS}. */
export type DeliveryFailureReason = (typeof FAILURE_REASONS)[number];

/** Per-notifier delivery figures of one run, for the report and the metrics. */
export interface NotifierSummary {
  notifier: string;
  type: string;
  sent: number;
  pending: number;
  failed: number;
  errors: string[];
  /**
   * Failed deliveries of this run by reason (every key present, 0 when none): one
   * per entry of `errors` (4xx `rejected`, 429 `rate_limited`, 5xx `server_error`,
   * no answer in time `timeout`, no HTTP answer `network`), plus `expired` per
   * notification given up after `max_outbox_age`. Optional for summaries built by hand.
   */
  reasons?: Record<DeliveryFailureReason, number>;
}
