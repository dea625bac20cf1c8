import type { Check } from './types.js';
import { stuckBatchesCheck } from './stuck_batches.js';
import { errorSpikeCheck } from './error_spike.js';
import { schemaCacheCheck } from './schema_cache.js';

/** Names of the checks, in the order they run and appear in reports. */
export const CHECK_NAMES = ['stuck_batches', 'error_spike', 'schema_cache'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/**
 * Every check, listed explicitly. The `satisfies` clause makes adding a name
 * without its implementation (or the reverse) a compile error.
 */
export const CHECKS = {
  stuck_batches: stuckBatchesCheck,
  error_spike: errorSpikeCheck,
  schema_cache: schemaCacheCheck,
} satisfies Record<CheckName, Check>;

export function allChecks(): Check[] {
  return CHECK_NAMES.map((name) => CHECKS[name]);
}
