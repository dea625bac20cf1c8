/**
 * Shapes shared by checks, the runner and the reports. The JSON report is a
 * contract (SPEC.md §5, §6): fields may be added, never removed or renamed.
 */

/** Severity of an alert. `critical` pages someone; `warning` degrades the run. */
export type Level = 'critical' | 'warning';

/** Overall verdict of one run; maps onto exit codes 0 / 1 / 2. */
export type OverallStatus = 'healthy' | 'degraded' | 'critical';

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
}

/** How one check ended, for the report and later for metrics. */
export type CheckOutcome = 'ok' | 'alert' | 'failed' | 'skipped';

export interface CheckSummary {
  name: string;
  outcome: CheckOutcome;
  duration_ms: number;
  /** Why the check was skipped, when it was. */
  reason?: string;
}

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
  notifications?: Array<{ notifier: string; type: string; sent: number; pending: number; failed: number; errors: string[] }>;
  /** Why alerting could not record or deliver this run's notifications, when it could not. */
  alerting_error?: string;
}

export interface RunMetrics {
  total_checks: number;
  alerts_triggered: number;
  critical_alerts: number;
  warning_alerts: number;
  skipped_checks: number;
  /** Alerts matched by a silence: reported, not counted above, not notified. */
  silenced_alerts?: number;
}
