import { dedupeRateCheck } from './dedupe_rate.js';
import { errorSpikeCheck } from './error_spike.js';
import { processingTimeCheck } from './processing_time.js';
import { queueBacklogCheck } from './queue_backlog.js';
import { schemaCacheCheck } from './schema_cache.js';
import { sourceFreshnessCheck } from './source_freshness.js';
import { stuckBatchesCheck } from './stuck_batches.js';
import type { Check } from './types.js';

/** Names of the checks, in the order they run and appear in reports. */
export const CHECK_NAMES = [
  'stuck_batches',
  'error_spike',
  'schema_cache',
  'dedupe_rate',
  'processing_time',
  'queue_backlog',
  'source_freshness',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/**
 * Every check, listed explicitly. The `satisfies` clause makes adding a name
 * without its implementation (or the reverse) a compile error.
 */
export const CHECKS = {
  stuck_batches: stuckBatchesCheck,
  error_spike: errorSpikeCheck,
  schema_cache: schemaCacheCheck,
  dedupe_rate: dedupeRateCheck,
  processing_time: processingTimeCheck,
  queue_backlog: queueBacklogCheck,
  source_freshness: sourceFreshnessCheck,
} satisfies Record<CheckName, Check>;

export function allChecks(): Check[] {
  return CHECK_NAMES.map((name) => CHECKS[name]);
}
