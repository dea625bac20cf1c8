import type { SentinelConfig } from '../config/schema.js';
import { stateDatabaseUrl } from '../config/state-database.js';
import { PgRunHistory } from './pg-store.js';
import { FileRunHistory, type RunHistoryStore } from './store.js';

export { type RunRecord, recordOf } from './record.js';
export type { RunHistoryStore } from './store.js';

/**
 * Where runs are recorded, as alert state is kept: with `replicas.enabled` the
 * state database's `sentinel.run_history` (the leader writes, any replica reads),
 * otherwise `<state_dir>/history-<environment>.jsonl`. `readOnly` for readers
 * (`sentinel slo`). The caller closes it (`store.close?.()`).
 */
export function createRunHistory(config: SentinelConfig, options: { readOnly?: boolean } = {}): RunHistoryStore {
  const retention = config.history.retention_days;
  if (config.replicas.enabled) {
    return new PgRunHistory(stateDatabaseUrl(config), config.env.name, retention, {
      readOnly: options.readOnly ?? false,
      connectTimeoutMs: config.connect_timeout_seconds * 1000,
    });
  }
  return new FileRunHistory(config.stateDir, config.env.name, retention);
}
