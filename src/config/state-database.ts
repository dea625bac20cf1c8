import type { SentinelConfig } from './schema.js';

/**
 * The database of the replicas' shared state (alert state, run history) and leader
 * lock: `replicas.state_database_url`, else the monitored database. Here, below
 * alerting/ and history/, because both keep their state there and neither may
 * import the other.
 */
export function stateDatabaseUrl(config: SentinelConfig): string {
  return config.replicas.state_database_url ?? config.env.databaseUrl;
}
