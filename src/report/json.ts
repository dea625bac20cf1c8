import type { RunResult } from '../types.js';

/**
 * The JSON report (docs/contract.md §6): the guide's fields first, extras after. One line
 * by default so log shippers see one event per run; `pretty` indents.
 */
export function renderJson(result: RunResult, options: { pretty?: boolean } = {}): string {
  const report = {
    timestamp: result.timestamp,
    environment: result.environment,
    overall_status: result.overall_status,
    alerts: result.alerts.map((a) => ({
      check: a.check,
      level: a.level,
      message: a.message,
      details: a.details,
      ...(a.subject !== undefined ? { subject: a.subject } : {}),
      ...(a.remediation !== undefined ? { remediation: a.remediation } : {}),
      ...(a.id !== undefined ? { id: a.id } : {}),
      ...(a.silenced !== undefined ? { silenced: a.silenced } : {}),
      ...(a.acknowledged !== undefined ? { acknowledged: a.acknowledged } : {}),
      ...(a.since !== undefined ? { since: a.since } : {}),
    })),
    metrics: result.metrics,
    checks: result.checks,
    duration_ms: result.duration_ms,
    ...(result.notifications ? { notifications: result.notifications } : {}),
    ...(result.alerting_error ? { alerting_error: result.alerting_error } : {}),
    ...(result.pipeline ? { pipeline: result.pipeline } : {}),
    ...(result.role ? { role: result.role } : {}),
  };
  return JSON.stringify(report, null, options.pretty ? 2 : undefined);
}
