import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Notifier } from '../notifiers/contract.js';
import type { RunResult } from '../types.js';
import type { Redactor } from '../util/redact.js';
import { type Sleep, sleep } from '../util/sleep.js';
import type { LifecycleSettings } from './decide.js';
import {
  claimHolderAlive,
  Delivery,
  type DeliverySettings,
  type NotifierSummary,
  type TestDelivery,
} from './deliver.js';
import { describeKinds, plan } from './plan.js';
import { annotate } from './status.js';
import type { AlertStateStore } from './store.js';

/**
 * From a run's alerts to delivered notifications, wiring the pieces:
 *   1. under the state lock, plan the run (plan.ts: each alert identity's lifecycle
 *      by decide.ts, silences, acknowledgements, routing to notifiers) and record
 *      its notifications in the outbox (written before anything is sent);
 *   2. deliver the outbox (deliver.ts, with the pure outbox operations of
 *      outbox.ts), oldest first, one notifier in parallel with another, retrying
 *      within a bounded time; what is still undelivered stays for the next run.
 *      Nothing is removed from the outbox before the provider accepted it;
 *   3. the report gets the alerts' ids and marks and the status without silenced
 *      alerts (status.ts).
 * On shutdown, `flush` makes one more bounded delivery pass (see there).
 */

/** The lifecycle (decide.ts) and delivery (deliver.ts) settings. */
export interface AlertingSettings extends LifecycleSettings, DeliverySettings {}

export interface AlertingDeps {
  store: AlertStateStore;
  notifiers: Notifier[];
  settings: AlertingSettings;
  logger: Logger;
  redactor: Redactor;
  host: string;
  now?: () => Date;
  /** The wait between retries within a run; real time by default, injected by tests. */
  sleep?: Sleep;
  random?: () => number;
  /** How long to wait for another run holding the state lock. */
  lockWaitMs?: number;
  /**
   * Replicas: asked before delivery starts and again before every send attempt
   * (delivery may last up to `delivery_timeout`). False (this process lost
   * leadership) stops delivery: what was not sent yet is released and stays in the
   * outbox for the new leader instead of being sent from here.
   */
  mayDeliver?: () => Promise<boolean>;
}

export interface AlertingOutcome {
  notifications: NotifierSummary[];
  /** Set when alerting could not run (state locked or unreadable); the run's report still stands. */
  error?: string;
}

export class AlertingEngine {
  private readonly now: () => Date;
  private readonly lockWaitMs: number;
  private readonly delivery: Delivery;

  constructor(private readonly deps: AlertingDeps) {
    this.now = deps.now ?? (() => new Date());
    this.lockWaitMs = deps.lockWaitMs ?? 10_000;
    this.delivery = new Delivery({
      store: deps.store,
      notifiers: deps.notifiers,
      settings: deps.settings,
      logger: deps.logger,
      redactor: deps.redactor,
      host: deps.host,
      now: this.now,
      sleep: deps.sleep ?? sleep,
      random: deps.random ?? Math.random,
      lockWaitMs: this.lockWaitMs,
      ...(deps.mayDeliver ? { mayDeliver: deps.mayDeliver } : {}),
    });
  }

  /**
   * Applies silences and acknowledgements to `result` (marking its alerts and
   * recomputing the overall status without silenced ones), advances the alert
   * lifecycle, records and delivers notifications. Never throws for delivery or
   * state problems: they are logged and returned in `outcome.error`, and the
   * run's report stands.
   *
   * The state lock is held only for short read-change-write steps, never across
   * an HTTP call: a slow provider cannot make an overlapping run wait. Entries
   * being delivered are claimed (claimedUntil) so that no other run sends them.
   */
  async process(result: RunResult): Promise<{ result: RunResult; outcome: AlertingOutcome }> {
    const { logger, redactor } = this.deps;
    let annotated: RunResult;
    try {
      annotated = await this.deps.store.update(
        (state) => {
          const planned = plan(state, result, this.deps.notifiers, this.now(), {
            settings: this.deps.settings,
            host: this.deps.host,
            redact: (text) => redactor.redact(text),
            newId: randomUUID,
            alive: claimHolderAlive,
          });
          Object.assign(state, planned.state);
          for (const { notification } of planned.entries)
            logger.info(`Recorded a notification for ${notification.notifier} (${describeKinds(notification.events)})`);
          return planned.result;
        },
        { waitMs: this.lockWaitMs },
      );
    } catch (err) {
      const message = redactor.redact((err as Error).message);
      logger.error(`Alerting: ${message}; this run's alerts were not recorded or notified`);
      // Still honour silences and acknowledgements in the report and exit code.
      const fallback = await this.deps.store.read().then(
        (state) => annotate(state, result, this.now()),
        () => result,
      );
      return { result: fallback, outcome: { notifications: [], error: message } };
    }
    if (this.deps.mayDeliver && !(await this.deps.mayDeliver().catch(() => false))) {
      logger.warn('Alerting: not the leader any more; delivery is left to the new leader');
      return { result: annotated, outcome: { notifications: [] } };
    }
    try {
      const notifications = await this.delivery.deliver(result.environment);
      return { result: annotated, outcome: { notifications } };
    } catch (err) {
      const message = redactor.redact((err as Error).message);
      logger.error(`Alerting: delivery failed: ${message}`);
      return { result: annotated, outcome: { notifications: [], error: message } };
    }
  }

  /**
   * Delivers this environment's outbox once more before the process exits (after a
   * loop's last run, on SIGTERM/SIGINT), so a notification that failed during the
   * run, or was recorded while the loop slept, is not left behind until the next
   * process runs.
   *
   * One pass, like a run's delivery: bounded by `delivery_timeout` (plus the wait
   * for the state lock, `lockWaitMs`), entries claimed by another run are left
   * alone, order per alert is kept, and `mayDeliver` is asked before every send.
   * Unlike a run's delivery it does not wait out Sentinel's own backoff
   * (`nextAttemptAt` after a 5xx, timeout or network error): this is the process's
   * last chance to send. A wait the provider asked for (429 Retry-After, as this
   * process was told) is honoured. Never throws.
   */
  async flush(environment: string): Promise<AlertingOutcome> {
    if (this.deps.mayDeliver && !(await this.deps.mayDeliver().catch(() => false))) {
      this.deps.logger.info('Alerting: not the leader; the outbox is left to the leader');
      return { notifications: [] };
    }
    try {
      const notifications = await this.delivery.deliver(environment, { ignoreBackoff: true });
      return { notifications };
    } catch (err) {
      const message = this.deps.redactor.redact((err as Error).message);
      this.deps.logger.error(`Alerting: the final delivery failed: ${message}`);
      return { notifications: [], error: message };
    }
  }

  /**
   * `result` with the silence and acknowledgement marks and alert ids of the
   * current state and the status recomputed without silenced alerts, changing
   * nothing (a run that must not record: a standby replica's report). When the
   * state cannot be read, `result` as it is.
   */
  async annotate(result: RunResult): Promise<RunResult> {
    try {
      return annotate(await this.deps.store.read(), result, this.now());
    } catch {
      return result;
    }
  }

  /** Sends a marked test message through each notifier now, bypassing state and outbox. */
  sendTest(environment: string, only?: string): Promise<TestDelivery[]> {
    return this.delivery.sendTest(environment, only);
  }
}
