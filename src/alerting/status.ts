import { type Alert, overallStatus, type RunResult } from '../types.js';
import { identityKey, idsFor } from './decide.js';
import { activeSilences, isSilenced } from './silences.js';
import type { AlertingState } from './store.js';

/**
 * What alerting adds to a run's report: each alert's id, silence and
 * acknowledgement marks, and the status and counts recomputed without silenced
 * alerts (a silenced alert is reported but does not raise the exit code).
 */

/** The report's alerts with the status and metrics recomputed without silenced ones. */
export function withStatus(result: RunResult, alerts: Alert[]): RunResult {
  const counted = alerts.filter((a) => !a.silenced);
  const critical = counted.filter((a) => a.level === 'critical').length;
  return {
    ...result,
    alerts,
    overall_status: overallStatus(counted),
    metrics: {
      ...result.metrics,
      alerts_triggered: counted.length,
      critical_alerts: critical,
      warning_alerts: counted.length - critical,
      silenced_alerts: alerts.length - counted.length,
    },
  };
}

/**
 * `result` marked from `state` as it is (ids, silences, acknowledgements, firing
 * since) with its status recomputed, changing nothing: for a run that must not
 * record (a standby replica's report, a run whose state update failed).
 */
export function annotate(state: AlertingState, result: RunResult, now: Date): RunResult {
  const silences = activeSilences(state.silences, now);
  const alerts = result.alerts.map((a) => {
    const key = identityKey(result.environment, a);
    const tracked = state.alerts[key];
    return {
      ...a,
      id: tracked?.id ?? idsFor(key).id,
      silenced: isSilenced(silences, result.environment, a),
      acknowledged: Boolean(tracked?.acknowledged),
      ...(tracked ? { since: tracked.firingSince } : {}),
    };
  });
  return withStatus(result, alerts);
}
