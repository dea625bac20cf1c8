import { anomaliesCheck } from './anomalies.js';
import { dedupeRateCheck } from './dedupe_rate.js';
import { errorSpikeCheck } from './error_spike.js';
import { processingTimeCheck } from './processing_time.js';
import { queueBacklogCheck } from './queue_backlog.js';
import { rowErrorCodesCheck } from './row_error_codes.js';
import { schemaCacheCheck } from './schema_cache.js';
import { sourceFreshnessCheck } from './source_freshness.js';
import { stuckBatchesCheck } from './stuck_batches.js';
import type { CheckDefinition } from './types.js';

/**
 * The registry: every check, one line each, in the order they run and appear in
 * reports. Everything else about a check (its `checks.<name>` config section, the
 * CLI help, remediation hints, per-source silences, metrics and perfdata, the
 * generated docs/checks.md) is derived from this list and the check's own file.
 */
export const CHECK_LIST = [
  stuckBatchesCheck,
  errorSpikeCheck,
  schemaCacheCheck,
  dedupeRateCheck,
  processingTimeCheck,
  queueBacklogCheck,
  sourceFreshnessCheck,
  rowErrorCodesCheck,
  anomaliesCheck,
] as const satisfies readonly CheckDefinition[];

/** A check in the registry. */
export type RegisteredCheck = (typeof CHECK_LIST)[number];
/** Names of the checks, in the order they run. */
export type CheckName = RegisteredCheck['name'];

/** Names of the checks, in the order they run and appear in reports. */
export const CHECK_NAMES: readonly CheckName[] = CHECK_LIST.map((c) => c.name);

/** The checks by name. */
export const CHECKS = Object.fromEntries(CHECK_LIST.map((c) => [c.name, c])) as {
  [C in RegisteredCheck as C['name']]: C;
};

export function allChecks(): CheckDefinition[] {
  return [...CHECK_LIST];
}

/** A registered check by name; undefined for anything else (`database`, a test's own check). */
export function findCheck(name: string): CheckDefinition | undefined {
  return CHECK_LIST.find((c) => c.name === name);
}

/** The checks whose alerts are per source: the only ones a silence with `--source` can match. */
export const SOURCE_CHECKS: readonly CheckName[] = CHECK_LIST.filter((c) => c.perSource).map((c) => c.name);

/**
 * Names of the checks that do not need the monitored database: they still run while
 * it is unreachable or locked, and their finishing does not prove it was reached.
 */
export const DATABASE_FREE_CHECKS: readonly string[] = CHECK_LIST.filter((c) => !c.needsDatabase).map((c) => c.name);
