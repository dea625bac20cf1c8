import type { RunResult } from '../types.js';
import { DATABASE_FREE_CHECKS } from './index.js';
import { DATABASE_CHECK } from './runner.js';

/**
 * Whether a run reached the monitored database: the one rule behind
 * `sentinel_database_up` and `/readyz`. A `database` alert decides (a locked table
 * was reached, an unreachable server was not); otherwise the pipeline snapshot, or
 * any check that needs the database (`needsDatabase` in the registry) finishing, proves it.
 */
export function databaseReached(result: RunResult): boolean {
  const root = result.alerts.find((a) => a.check === DATABASE_CHECK);
  if (root) return root.subject !== 'unreachable';
  if (result.pipeline) return true;
  return result.checks.some(
    (c) => !DATABASE_FREE_CHECKS.includes(c.name) && (c.outcome === 'ok' || c.outcome === 'alert'),
  );
}

/**
 * Why the database was not reached, from the run's `database` alert or the first
 * failed database check. Undefined when it was reached, and when nothing tried
 * (every database check disabled): not knowing is not an outage.
 */
export function databaseFailure(result: RunResult): string | undefined {
  if (databaseReached(result)) return undefined;
  const root = result.alerts.find((a) => a.check === DATABASE_CHECK);
  if (root) return typeof root.details.error === 'string' ? root.details.error : root.message;
  const failure = result.alerts.find((a) => !DATABASE_FREE_CHECKS.includes(a.check) && a.failed);
  return failure?.message.replace(/^Check failed:\s*/, '');
}
