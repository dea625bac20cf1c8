import { hostname } from 'node:os';
import type { SentinelConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Redactor } from '../util/redact.js';
import { DEFAULT_DELIVERY } from './deliver.js';
import { type AlertingDeps, AlertingEngine } from './engine.js';

/**
 * The alerting engine as configured: the lifecycle and delivery settings of `config`
 * over the store and notifiers the runtime built (src/runtime.ts decides where the
 * state lives and has already registered the notifiers' secrets with `redactor`).
 */
export function createAlerting(
  config: SentinelConfig,
  logger: Logger,
  redactor: Redactor,
  deps: Pick<AlertingDeps, 'store' | 'notifiers'> & Partial<AlertingDeps>,
): AlertingEngine {
  return new AlertingEngine({
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
    ...deps,
  });
}
