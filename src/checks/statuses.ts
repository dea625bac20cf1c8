/**
 * Batch statuses of the Dragonfly intake engine (docs/contract.md §1), in pipeline order.
 * Messages list statuses in this order so that two runs with the same state read
 * the same, whatever order the database returned rows in.
 */
export const PIPELINE_ORDER = ['uploaded', 'processing', 'validating', 'inserting', 'completed', 'failed'] as const;

/** Statuses a batch passes through before it is finished. */
export const IN_FLIGHT_STATUSES = ['uploaded', 'processing', 'validating', 'inserting'] as const;

/** Statuses in which a worker holds a batch: the ones that can be stuck. */
export const PROCESSING_STATUSES = ['processing', 'validating', 'inserting'] as const;

export function pipelineIndex(status: string): number {
  const i = (PIPELINE_ORDER as readonly string[]).indexOf(status);
  return i === -1 ? PIPELINE_ORDER.length : i;
}
