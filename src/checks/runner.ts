import { describeError, isConnectionError, isSessionLost, isStatementTimeout } from '../db/errors.js';
import { describeLockHolder, findLockHolders, type LockHolder } from '../db/locks.js';
import type { Queryable } from '../db/pool.js';
import {
  type Alert,
  type CheckSummary,
  DISABLED_IN_CONFIG,
  type LabelledMeasurement,
  type Measurement,
} from '../types.js';
import { linkedAbort } from '../util/abort.js';
import { findCheck } from './index.js';
import { type Check, type CheckContext, isSkipped } from './types.js';

export interface RunChecksResult {
  alerts: Alert[];
  checks: CheckSummary[];
  /** Set when the database was unreachable or locked: one finding for all the checks it stopped. */
  rootCause?: DatabaseRootCause;
}

/** How the reason of a check stopped by a database root cause begins (`not run: the database is locked`). */
export const NOT_RUN = 'not run:';

/** The alert name of findings about the monitored database itself (not one check's). */
export const DATABASE_CHECK = 'database';

/**
 * Why the checks that need the database did not (all) run: it could not be reached
 * (refused, timed out, wrong password, TLS, a session terminated mid-run) or a
 * table they read is locked. One root cause is one alert and one incident per
 * notifier, however many checks it stopped.
 */
export interface DatabaseRootCause {
  kind: 'unreachable' | 'locked';
  /** One line: the driver's reason, or who holds the lock. */
  reason: string;
  error?: unknown;
  holders?: LockHolder[];
}

export interface RunChecksOptions {
  /** Known before the first check (the run's connection probe failed). */
  rootCause?: DatabaseRootCause;
  /** Who holds the locks after a statement timed out; default pg_locks through `base.db`. */
  findLockHolders?: () => Promise<LockHolder[]>;
}

/**
 * Next steps of the findings the runner raises itself (a check's own are in its
 * file): the database root cause and a check that could not run.
 */
export const RUNNER_REMEDIATION = {
  database_unreachable:
    'Sentinel could not reach the monitored database: check that it is up (a failover or pooler restart in ' +
    'progress?), the host, port, password and sslmode of DATABASE_URL, and the network from this host. ' +
    'The checks run again on the next run.',
  database_locked:
    'A session holds a lock that blocks reads of the pipeline tables: look it up (select * from ' +
    'pg_stat_activity where pid = <pid>), let a migration or maintenance finish, or end a stuck session ' +
    'with pg_terminate_backend(<pid>).',
  check_failed:
    'Sentinel could not run this check: verify DATABASE_URL, network access and that `sentinel migrate` ' +
    'was applied.',
} as const;

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
 *
 * The database is one root cause, not one per check: once it is known to be
 * unreachable (before the run, or from a check's connection error) or a check's
 * statement timed out on a lock that pg_locks shows, the remaining checks that need
 * the database are not run (reported as skipped, `not run: …`), nothing else
 * connects during the run (queries and NOTIFY through the context fail at once),
 * and a single critical `database` alert names the cause and the checks it stopped.
 * A locked table so costs one lock timeout per run, and a dead server one connection
 * attempt.
 */
export async function runChecks(
  checks: Check[],
  base: Omit<CheckContext, 'signal'>,
  outer?: AbortSignal,
  options: RunChecksOptions = {},
): Promise<RunChecksResult> {
  const alerts: Alert[] = [];
  const summaries: CheckSummary[] = [];
  const settings = base.config.checks as Record<string, CheckSettings | undefined>;
  let rootCause = options.rootCause;
  const stopped: string[] = [];
  const failedBy: string[] = [];
  // Nothing talks to a database known to be gone or locked: no second login with a
  // wrong password, no second wait on the lock.
  const refuse = (): Error => new Error(`not tried: the database is ${rootCause!.kind} (${rootCause!.reason})`);
  const gated: Omit<CheckContext, 'signal'> = {
    ...base,
    db: {
      // A pooled session can have been terminated since its last use (a pooler
      // restart): a read is tried once more on a fresh one before it counts.
      async query(text, values) {
        if (rootCause) throw refuse();
        try {
          return await base.db.query(text, values);
        } catch (err) {
          if (!isSessionLost(err)) throw err;
          return base.db.query(text, values);
        }
      },
    } as Queryable,
    notify: (channel, payload) => (rootCause ? Promise.reject(refuse()) : base.notify(channel, payload)),
  };

  for (const check of checks) {
    const cfg = settings[check.name] ?? {};
    if (cfg.enabled === false) {
      summaries.push({ name: check.name, outcome: 'skipped', duration_ms: 0, reason: DISABLED_IN_CONFIG });
      continue;
    }
    const needsDatabase = check.needsDatabase !== false;
    if (rootCause && needsDatabase) {
      stopped.push(check.name);
      summaries.push({
        name: check.name,
        outcome: 'skipped',
        duration_ms: 0,
        reason: `${NOT_RUN} the database is ${rootCause.kind}`,
      });
      continue;
    }
    base.logger.info(`Running ${check.name} check...`);
    const timeoutMs = (cfg.timeout_seconds ?? 30) * 1000;
    const { controller, signal, dispose } = linkedAbort(outer);
    let timer: NodeJS.Timeout | undefined;
    const measured = new Map<string, Measurement>();
    const labelled = new Map<string, LabelledMeasurement>();
    let measuring = true;
    const measure = (key: string, value: Measurement): void => {
      if (measuring) measured.set(key, value);
    };
    const measureFor = (key: string, labels: Record<string, string>, value: number): void => {
      if (measuring) labelled.set(JSON.stringify([key, labels]), { key, labels: { ...labels }, value });
    };
    // Taken once the outcome is known: a check still running after its timeout
    // cannot change the summary any more.
    const measurements = (): Pick<CheckSummary, 'measurements' | 'series'> => {
      measuring = false;
      return {
        ...(measured.size > 0 ? { measurements: Object.fromEntries(measured) } : {}),
        ...(labelled.size > 0 ? { series: [...labelled.values()] } : {}),
      };
    };
    const started = performance.now();
    try {
      const output = await Promise.race([
        check.run({ ...gated, signal, measure, measureFor }),
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
        summaries.push({
          name: check.name,
          outcome: 'skipped',
          duration_ms: duration,
          reason: output.skipped,
          ...measurements(),
        });
        continue;
      }
      for (const alert of output) {
        const hint = findCheck(alert.check)?.remediation ?? check.remediation;
        alerts.push({ ...alert, remediation: alert.remediation ?? hint });
      }
      summaries.push({
        name: check.name,
        outcome: output.length > 0 ? 'alert' : 'ok',
        duration_ms: duration,
        ...measurements(),
      });
    } catch (err) {
      const duration = Math.round(performance.now() - started);
      const reason = describeError(err);
      summaries.push({ name: check.name, outcome: 'failed', duration_ms: duration, ...measurements() });
      if (needsDatabase && !rootCause)
        rootCause = await findRootCause(err, reason, options.findLockHolders ?? (() => findLockHolders(base.db)));
      if (needsDatabase && rootCause) {
        base.logger.error(`${check.name} check failed: the database is ${rootCause.kind}: ${rootCause.reason}`);
        failedBy.push(check.name);
        continue;
      }
      base.logger.error(`${check.name} check failed: ${reason}`);
      alerts.push({
        check: check.name,
        level: 'critical',
        message: `Check failed: ${reason}`,
        details: { error: reason, ...errorCode(err) },
        remediation: RUNNER_REMEDIATION.check_failed,
        failed: true,
      });
    } finally {
      clearTimeout(timer);
      dispose();
    }
  }
  if (!rootCause) return { alerts, checks: summaries };
  if (stopped.length > 0) base.logger.error(`Not run because the database is ${rootCause.kind}: ${stopped.join(', ')}`);
  return { alerts: [databaseAlert(rootCause, failedBy, stopped), ...alerts], checks: summaries, rootCause };
}

/**
 * Whether a check's failure is the database's: a connection that could not be made
 * or died, or a statement that timed out because a table it reads is locked (asked
 * of pg_locks at once, while the lock is likely still held). Anything else is the
 * check's own failure.
 */
async function findRootCause(
  err: unknown,
  reason: string,
  holders: () => Promise<LockHolder[]>,
): Promise<DatabaseRootCause | undefined> {
  if (isConnectionError(err)) return { kind: 'unreachable', reason, error: err };
  if (!isStatementTimeout(err)) return undefined;
  const found = await holders().catch(() => [] as LockHolder[]);
  if (found.length === 0) return undefined;
  return { kind: 'locked', reason: describeLockHolder(found[0]!), error: err, holders: found };
}

/** The one alert of a database root cause: `database`, critical, subject = its kind. */
export function databaseAlert(cause: DatabaseRootCause, failed: string[], notRun: string[]): Alert {
  const affected = failed.length + notRun.length;
  const tail = affected > 0 ? ` (${affected} check${affected === 1 ? '' : 's'} not run)` : '';
  const locked = cause.kind === 'locked';
  return {
    check: DATABASE_CHECK,
    subject: cause.kind,
    level: 'critical',
    message: locked ? `Database locked: ${cause.reason}${tail}` : `Database unreachable: ${cause.reason}${tail}`,
    details: {
      cause: cause.kind,
      error: locked ? describeError(cause.error) : cause.reason,
      ...errorCode(cause.error),
      failed_checks: failed,
      not_run: notRun,
      ...(cause.holders ? { lock_holders: cause.holders } : {}),
    },
    remediation: locked ? RUNNER_REMEDIATION.database_locked : RUNNER_REMEDIATION.database_unreachable,
  };
}

function errorCode(err: unknown): Record<string, string> {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' ? { code } : {};
}
