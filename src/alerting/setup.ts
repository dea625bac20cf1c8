import { hostname } from 'node:os';
import type { SentinelConfig } from '../config/schema.js';
import { stateDatabaseUrl } from '../config/state-database.js';
import type { Logger } from '../log.js';
import { createNotifiers } from '../notifiers/index.js';
import type { Redactor } from '../util/redact.js';
import { type AlertingDeps, AlertingEngine, DEFAULT_DELIVERY } from './engine.js';
import { PgAlertStore } from './pg-store.js';
import { type AlertStateStore, AlertStore } from './store.js';

/**
 * Where alert state lives: with `replicas.enabled`, one row in PostgreSQL shared by
 * every replica (`replicas.state_database_url`, else the monitored database);
 * otherwise this host's state file. The caller closes it (`store.close?.()`).
 */
export function createAlertStore(config: SentinelConfig): AlertStateStore {
  if (config.replicas.enabled) {
    return new PgAlertStore(stateDatabaseUrl(config), { connectTimeoutMs: config.connect_timeout_seconds * 1000 });
  }
  return new AlertStore(config.stateDir);
}

/** Moved to config/ (history needs it too); re-exported for this module's existing importers. */
export { stateDatabaseUrl };

/** The alerting engine as configured: notifiers, lifecycle settings, the state store. */
export function createAlerting(
  config: SentinelConfig,
  logger: Logger,
  redactor: Redactor,
  overrides: Partial<AlertingDeps> = {},
): AlertingEngine {
  const notifiers = createNotifiers(config.notifiers);
  for (const n of notifiers) redactor.add(n.secrets());
  return new AlertingEngine({
    store: overrides.store ?? createAlertStore(config),
    notifiers,
    settings: {
      ...DEFAULT_DELIVERY,
      repeatIntervalMs: config.alerting.repeat_interval,
      resolveAfterRuns: config.alerting.resolve_after_runs,
      deliveryTimeoutMs: config.alerting.delivery_timeout,
      maxOutboxAgeMs: config.alerting.max_outbox_age,
    },
    logger,
    redactor,
    host: hostname(),
    ...overrides,
  });
}
