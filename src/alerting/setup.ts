import { hostname } from 'node:os';
import type { SentinelConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Redactor } from '../util/redact.js';
import { createNotifiers } from '../notifiers/index.js';
import { AlertStore } from './store.js';
import { AlertingEngine, DEFAULT_DELIVERY, type AlertingDeps } from './engine.js';

/** The alerting engine as configured: notifiers, lifecycle settings, the state directory. */
export function createAlerting(config: SentinelConfig, logger: Logger, redactor: Redactor, overrides: Partial<AlertingDeps> = {}): AlertingEngine {
  const notifiers = createNotifiers(config.notifiers);
  for (const n of notifiers) redactor.add(n.secrets());
  return new AlertingEngine({
    store: new AlertStore(config.stateDir),
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
