import type { RunResult } from '../types.js';
import { DATABASE_CHECK } from './runner.js';

/**
 * Whether a run reached the monitored database: the one rule behind
 * `sentinel_database_up` and `/readyz`. A `database` alert decides (a locked table
 * was reached, an unreachable server was not); otherwise the pipeline snapshot, or
 * any check other than schema_cache (which talks to PostgREST) finishing, proves it.
 */
export function databaseReached(result: RunResult): boolean {
  const root = result.alerts.find((a) => a.check === DATABASE_CHECK);
  if (root) return root.subject !== 'unreachable';
  if (result.pipeline) return true;
  return result.checks.some((c) => c.name !== 'schema_cache' && (c.outcome === 'ok' || c.outcome === 'alert'));
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
  const failure = result.alerts.find((a) => a.check !== 'schema_cache' && a.failed);
  return failure?.message.replace(/^Check failed:\s*/, '');
}
