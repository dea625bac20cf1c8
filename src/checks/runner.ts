import type { Alert, CheckSummary, Measurement } from '../types.js';
import { isSkipped, type Check, type CheckContext } from './types.js';
import { REMEDIATION } from '../report/remediation.js';
import { linkedAbort } from '../util/abort.js';

export interface RunChecksResult {
  alerts: Alert[];
  checks: CheckSummary[];
}

type CheckSettings = { enabled?: boolean; timeout_seconds?: number };

class CheckTimeout extends Error {}

/**
 * Runs the checks one after another (the log reads in order), each under its own
 * timeout. A check that throws or times out becomes a `critical` alert whose
 * message starts with `Check failed:`; the others still run. A check whose inputs
 * are not configured, or that is disabled, is reported as skipped. What a check
 * records with `ctx.measure` lands in its summary's `measurements`, whatever the
 * outcome (a check that timed out keeps what it measured before; later calls are
 * dropped).
 */
export async function runChecks(checks: Check[], base: Omit<CheckContext, 'signal'>, outer?: AbortSignal): Promise<RunChecksResult> {
  const alerts: Alert[] = [];
  const summaries: CheckSummary[] = [];
  const settings = base.config.checks as Record<string, CheckSettings | undefined>;

  for (const check of checks) {
    const cfg = settings[check.name] ?? {};
    if (cfg.enabled === false) {
      summaries.push({ name: check.name, outcome: 'skipped', duration_ms: 0, reason: 'disabled in config' });
      continue;
    }
    base.logger.info(`Running ${check.name} check...`);
    const timeoutMs = (cfg.timeout_seconds ?? 30) * 1000;
    const { controller, signal, dispose } = linkedAbort(outer);
    let timer: NodeJS.Timeout | undefined;
    const measured = new Map<string, Measurement>();
    let measuring = true;
    const measure = (key: string, value: Measurement): void => {
      if (measuring) measured.set(key, value);
    };
    // Taken once the outcome is known: a check still running after its timeout
    // cannot change the summary any more.
    const measurements = (): Pick<CheckSummary, 'measurements'> => {
      measuring = false;
      return measured.size > 0 ? { measurements: Object.fromEntries(measured) } : {};
    };
    const started = performance.now();
    try {
      const output = await Promise.race([
        check.run({ ...base, signal, measure }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            controller.abort();
            reject(new CheckTimeout(`timed out after ${cfg.timeout_seconds ?? 30}s`));
          }, timeoutMs);
        }),
      ]);
      const duration = Math.round(performance.now() - started);
      if (isSkipped(output)) {
        base.logger.info(`Skipped ${check.name}: ${output.skipped}`);
        summaries.push({ name: check.name, outcome: 'skipped', duration_ms: duration, reason: output.skipped, ...measurements() });
        continue;
      }
      for (const alert of output) alerts.push({ ...alert, remediation: alert.remediation ?? REMEDIATION[alert.check] });
      summaries.push({ name: check.name, outcome: output.length > 0 ? 'alert' : 'ok', duration_ms: duration, ...measurements() });
    } catch (err) {
      const duration = Math.round(performance.now() - started);
      const reason = describeError(err);
      base.logger.error(`${check.name} check failed: ${reason}`);
      alerts.push({
        check: check.name,
        level: 'critical',
        message: `Check failed: ${reason}`,
        details: { error: reason, ...errorCode(err) },
        remediation: REMEDIATION.check_failed,
        failed: true,
      });
      summaries.push({ name: check.name, outcome: 'failed', duration_ms: duration, ...measurements() });
    } finally {
      clearTimeout(timer);
      dispose();
    }
  }
  return { alerts, checks: summaries };
}

/** One line a person can act on, from whatever a driver threw. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = err.message || code || err.name;
    if (code === 'ECONNREFUSED') return `connection refused (${message.replace(/^connect ECONNREFUSED /, '')})`;
    if (code === 'ENOTFOUND') return `host not found (${message.replace(/^getaddrinfo ENOTFOUND /, '')})`;
    if (/Connection terminated due to connection timeout|timeout exceeded when trying to connect/i.test(message)) {
      return 'timed out connecting to the database';
    }
    return message.split('\n')[0]!;
  }
  return String(err);
}

function errorCode(err: unknown): Record<string, string> {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' ? { code } : {};
}
