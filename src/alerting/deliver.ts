import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../log.js';
import type { Notification, NotificationEvent, Notifier, SendContext } from '../notifiers/contract.js';
import { DeliveryError, withRetry } from '../notifiers/http.js';
import { type NotifierSummary as BaseNotifierSummary, type DeliveryFailureReason, FAILURE_REASONS } from '../types.js';
import { formatDuration } from '../util/duration.js';
import type { Redactor } from '../util/redact.js';
import type { Sleep } from '../util/sleep.js';
import {
  claim,
  completePart,
  delivered,
  due,
  nextAttemptAt,
  refused,
  release,
  retryDelayMs,
  retryLater,
  sweep,
  waitingForRetry,
} from './outbox.js';
import type { AlertingState, AlertStateStore, OutboxEntry } from './store.js';

/**
 * The delivery loop: sends what the outbox holds for one environment. Entries are
 * claimed under the state lock, sent without it (notifiers in parallel, each
 * notifier's entries in order), and each outcome is recorded under the lock again
 * (the state transitions are outbox.ts's). Bounded by `delivery_timeout`: a
 * deadline for retries and an abort signal for requests in flight. Leadership
 * (replicas) is asked before every send attempt.
 *
 * Delivery is at least once. A request sent whole that got no answer (timeout,
 * reset) is "delivery unknown": retried in the same pass only by a notifier whose
 * receiver deduplicates (`Notifier.idempotent`), otherwise after the backoff.
 */

/** How delivery is bounded and retried. */
export interface DeliverySettings {
  /** Upper bound on the time one run spends delivering. */
  deliveryTimeoutMs: number;
  /** An undelivered notification older than this is given up (and logged loudly). */
  maxOutboxAgeMs: number;
  /** Retries within one run for one notification. */
  attemptsPerRun: number;
  /** First wait between the retries within one run (doubling, with jitter). */
  retryBaseMs: number;
  /** Longest wait between the retries within one run. */
  retryMaxMs: number;
}

/** The delivery settings that are not configurable. */
export const DEFAULT_DELIVERY: DeliverySettings = {
  deliveryTimeoutMs: 30_000,
  maxOutboxAgeMs: 24 * 3_600_000,
  attemptsPerRun: 4,
  retryBaseMs: 1000,
  retryMaxMs: 10_000,
};

/** A claim lasts the delivery timeout plus this margin, so that it outlives the pass that holds it. */
const CLAIM_MARGIN_MS = 60_000;

/** What the delivery loop works with. */
export interface DeliveryDeps {
  store: AlertStateStore;
  notifiers: readonly Notifier[];
  settings: DeliverySettings;
  logger: Logger;
  redactor: Redactor;
  /** Sentinel's host name, shown in test messages. */
  host: string;
  now: () => Date;
  /** The wait between retries within a pass (real time in production). */
  sleep: Sleep;
  /** Jitter of those waits. */
  random: () => number;
  /** How long the final flush waits for another run holding the state lock. */
  lockWaitMs: number;
  /** Replicas: whether this process may still deliver; asked before every send attempt. */
  mayDeliver?: () => Promise<boolean>;
}

/** The engine's summaries always carry every failure reason. */
export interface NotifierSummary extends BaseNotifierSummary {
  reasons: Record<DeliveryFailureReason, number>;
}

/** What a `sentinel notify test` message came to, per notifier. */
export interface TestDelivery {
  notifier: string;
  type: string;
  ok: boolean;
  error?: string;
}

/** Thrown by a send attempt when this process is not the leader any more: nothing was sent. */
class LeadershipLost extends DeliveryError {
  constructor() {
    super('not the leader any more', false);
    this.name = 'LeadershipLost';
  }
}

/** How one delivery pass may go on: shared by the notifiers delivered in parallel. */
interface DeliveryGate {
  /** Set once mayDeliver said no: nothing more is sent in this pass. */
  stopped: boolean;
}

/** What one claimed entry came to. */
type EntryOutcome = 'sent' | 'failed' | 'stopped';

/** Applies a state transition under the lock; outcomes are written one at a time, in order. */
type RecordOutcome = (transition: (state: AlertingState) => AlertingState) => Promise<void>;

/**
 * The reason of a failed delivery: status 429 → rate_limited, other 4xx →
 * rejected, 5xx → server_error; without an HTTP answer, a timeout (the request's
 * own or `delivery_timeout`, `timedOut`) or an abort → timeout, any other final
 * refusal → rejected, anything else → network.
 */
export function failureReason(error: unknown, timedOut = false): DeliveryFailureReason {
  const status = error instanceof DeliveryError ? error.status : undefined;
  if (status === 429) return 'rate_limited';
  if (status !== undefined && status >= 500) return 'server_error';
  if (status !== undefined && status >= 400) return 'rejected';
  const name = error instanceof Error ? error.name : '';
  const message = error instanceof Error ? error.message : String(error);
  if (
    timedOut ||
    name === 'TimeoutError' ||
    name === 'AbortError' ||
    /no answer within|timed? ?out|delivery aborted/i.test(message)
  )
    return 'timeout';
  if (error instanceof DeliveryError && !error.retryable) return 'rejected';
  return 'network';
}

function noReasons(): Record<DeliveryFailureReason, number> {
  return Object.fromEntries(FAILURE_REASONS.map((r) => [r, 0])) as Record<DeliveryFailureReason, number>;
}

/** `host|pid|uuid`: who is delivering an entry, so a claim of a dead process on this host can be ignored. */
function claimToken(): string {
  return `${hostname()}|${process.pid}|${randomUUID()}`;
}

/**
 * Whether the holder of a claim still runs: a process on another host, or one
 * this host cannot check, is taken to; a process of this host that is gone
 * (killed mid-delivery) is not, and its claim is void.
 */
export function claimHolderAlive(claimedBy: string | undefined): boolean {
  const [host, pid] = (claimedBy ?? '').split('|');
  if (host !== hostname() || !pid) return true;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Writes `next` into `target` (the object a store's `update` saves). */
function adopt(target: AlertingState, next: AlertingState): void {
  Object.assign(target, next);
}

/**
 * The delivery loop of one engine. It remembers, across passes of this process,
 * the waits providers asked for (429 Retry-After, Discord's retry_after): the
 * final flush honours those even though it skips Sentinel's own backoff.
 */
export class Delivery {
  /** Notification id → until when (ms, engine clock) the provider asked us to wait. */
  private readonly providerWaits = new Map<string, number>();

  constructor(private readonly deps: DeliveryDeps) {}

  /**
   * Delivers this environment's due entries once: gives up on expired entries,
   * claims the due ones, sends them and records each outcome. An entry that
   * cannot be sent holds back only later entries about the same alerts.
   * `ignoreBackoff`: the final flush (see AlertingEngine.flush).
   */
  async deliver(env: string, options: { ignoreBackoff?: boolean } = {}): Promise<NotifierSummary[]> {
    const { deps } = this;
    const deadline = performance.now() + deps.settings.deliveryTimeoutMs;
    const abort = AbortSignal.timeout(deps.settings.deliveryTimeoutMs);
    const token = claimToken();
    const gate: DeliveryGate = { stopped: false };
    const byName = new Map(deps.notifiers.map((n) => [n.name, n]));
    const summaries = new Map<string, NotifierSummary>(
      deps.notifiers.map((n) => [
        n.name,
        { notifier: n.name, type: n.type, sent: 0, pending: 0, failed: 0, errors: [], reasons: noReasons() },
      ]),
    );

    const claimed = await deps.store.update(
      (state) => {
        const now = deps.now();
        const swept = sweep(state, {
          environment: env,
          now,
          maxAgeMs: deps.settings.maxOutboxAgeMs,
          configured: new Set(byName.keys()),
          alive: claimHolderAlive,
        });
        for (const entry of swept.expired) {
          const age = now.getTime() - Date.parse(entry.notification.createdAt);
          deps.logger.error(
            `Alerting: giving up on a notification for "${entry.notification.notifier}" (${entry.environment}) ` +
              `undelivered for ${Math.round(age / 3_600_000)}h (last error: ${entry.lastError ?? 'none'})`,
          );
          this.providerWaits.delete(entry.notification.id);
          const summary = entry.environment === env ? summaries.get(entry.notification.notifier) : undefined;
          if (summary) {
            summary.failed++;
            summary.reasons.expired++;
          }
        }
        for (const entry of swept.dropped)
          deps.logger.warn(
            `Alerting: dropping an undelivered notification for "${entry.notification.notifier}", ` +
              'which is no longer configured',
          );
        const ready = due(swept.state, {
          environment: env,
          now,
          alive: claimHolderAlive,
          waiting: (entry) =>
            waitingForRetry(entry, now, {
              ignoreBackoff: options.ignoreBackoff ?? false,
              idempotent: byName.get(entry.notification.notifier)?.idempotent ?? false,
              providerWaitUntil: this.providerWaits.get(entry.notification.id),
            }),
        });
        const until = new Date(now.getTime() + deps.settings.deliveryTimeoutMs + CLAIM_MARGIN_MS);
        adopt(
          state,
          claim(
            swept.state,
            ready.map((e) => e.notification.id),
            token,
            until,
          ),
        );
        return ready.map((entry) => structuredClone(entry));
      },
      options.ignoreBackoff ? { waitMs: deps.lockWaitMs } : undefined,
    );

    const queues = new Map<string, OutboxEntry[]>();
    for (const entry of claimed)
      queues.set(entry.notification.notifier, [...(queues.get(entry.notification.notifier) ?? []), entry]);

    // Outcomes are written one at a time, in order.
    let writing: Promise<unknown> = Promise.resolve();
    const record: RecordOutcome = (transition) => {
      const next = writing
        .then(() => deps.store.update((state) => adopt(state, transition(state))))
        .catch((err: Error) => deps.logger.error(`Alerting: cannot save state: ${err.message}`));
      writing = next;
      return next.then(() => undefined);
    };

    await Promise.all(
      [...queues].map(async ([name, entries]) => {
        const notifier = byName.get(name)!;
        const summary = summaries.get(name)!;
        const held = new Set<string>();
        for (const entry of entries) {
          const keys = entry.notification.events.map((e) => e.dedupKey);
          // Not the leader any more (asked before every send): the rest goes back to the outbox.
          if (gate.stopped || keys.some((k) => held.has(k))) {
            await record((state) => release(state, entry.notification.id, token));
            continue;
          }
          const outcome = await this.deliverOne(notifier, entry, { deadline, abort, record, summary, token, gate });
          if (outcome === 'failed') for (const k of keys) held.add(k);
        }
      }),
    );
    await writing;

    const state = await deps.store.read();
    for (const entry of state.outbox) {
      const summary = entry.environment === env ? summaries.get(entry.notification.notifier) : undefined;
      if (summary) summary.pending++;
    }
    for (const s of summaries.values()) {
      if (s.sent || s.failed || s.pending)
        deps.logger.info(`Notifier ${s.notifier}: ${s.sent} sent, ${s.pending} pending, ${s.failed} failed`);
    }
    return [...summaries.values()];
  }

  /** Asks `mayDeliver` (unless an earlier answer already stopped the pass); false stops the whole pass. */
  private async mayGoOn(gate: DeliveryGate): Promise<boolean> {
    if (gate.stopped) return false;
    if (!this.deps.mayDeliver) return true;
    const ok = await this.deps.mayDeliver().catch(() => false);
    if (!ok && !gate.stopped) {
      gate.stopped = true;
      this.deps.logger.warn(
        'Alerting: not the leader any more; notifications not sent yet are left in the outbox for the new leader',
      );
    }
    return ok && !gate.stopped;
  }

  /**
   * Sends one claimed entry with retries, asking `mayDeliver` before every attempt;
   * records the outcome. `stopped`: leadership was lost before it could be sent,
   * and the entry is released for the new leader.
   */
  private async deliverOne(
    notifier: Notifier,
    entry: OutboxEntry,
    pass: {
      deadline: number;
      abort: AbortSignal;
      record: RecordOutcome;
      summary: NotifierSummary;
      token: string;
      gate: DeliveryGate;
    },
  ): Promise<EntryOutcome> {
    const { deps } = this;
    const { abort, record, summary, token } = pass;
    const id = entry.notification.id;
    const completed = new Set(entry.completedParts);
    const ctx: SendContext = {
      signal: abort,
      completed,
      markCompleted: (part) => {
        completed.add(part);
        // Persisted at once: a crash now must not send this part again.
        void record((state) => completePart(state, id, part));
      },
    };
    const attempt = async (): Promise<void> => {
      if (!(await this.mayGoOn(pass.gate))) throw new LeadershipLost();
      await notifier.send(entry.notification, ctx);
    };
    try {
      await withRetry(
        attempt,
        {
          attempts: deps.settings.attemptsPerRun,
          baseDelayMs: deps.settings.retryBaseMs,
          maxDelayMs: deps.settings.retryMaxMs,
          deadline: pass.deadline,
          sleep: deps.sleep,
          random: deps.random,
          retryUnknown: notifier.idempotent,
        },
        abort,
      );
      summary.sent++;
      this.providerWaits.delete(id);
      // Remember who heard about each alert, so its resolution goes to them.
      await record((state) => delivered(state, entry, notifier.name));
      return 'sent';
    } catch (err) {
      if (err instanceof LeadershipLost) {
        // Nothing more from here: the attempt was not made. Parts already accepted
        // stay recorded, so the new leader does not send them again.
        await record((state) => release(state, id, token));
        return 'stopped';
      }
      const error = err instanceof DeliveryError ? err : new DeliveryError(String(err), true);
      const message = deps.redactor.redact(error.message);
      summary.reasons[failureReason(err, abort.aborted)]++;
      if (!error.retryable) {
        summary.errors.push(message);
        this.providerWaits.delete(id);
        deps.logger.error(
          `Notifier ${notifier.name} (${notifier.type}) refused a notification: ${message}. ` +
            "A 4xx is not retried: check the notifier's settings (URL, key, recipients); " +
            'the alert is sent again at its next repeat.',
        );
        summary.failed++;
        await record((state) => refused(state, id, deps.now(), message));
        return 'failed';
      }
      const attempts = entry.attempts + 1;
      const now = deps.now();
      const waitMs = retryDelayMs(attempts, error.retryAfterMs);
      const next = nextAttemptAt(now, attempts, error.retryAfterMs);
      if (error.retryAfterMs !== undefined) this.providerWaits.set(id, now.getTime() + error.retryAfterMs);
      else this.providerWaits.delete(id);
      // Sent whole, no answer, and the provider cannot tell a repeat: it may have the
      // message already, so it gets no second copy before the backoff (not in this
      // run, not in the final flush). At least once, never a burst of copies.
      if (error.deliveryUnknown && !notifier.idempotent) {
        const text = `${message}; will retry after ${formatDuration(waitMs)}`;
        summary.errors.push(text);
        deps.logger.warn(
          `Notifier ${notifier.name} (${notifier.type}): ${text} (${next}), not sooner: ` +
            `${notifier.type} has no idempotency key, so a retry now could show the message twice; ` +
            'raise timeout_seconds if it is often this slow',
        );
      } else {
        summary.errors.push(message);
        deps.logger.warn(
          `Notifier ${notifier.name} (${notifier.type}): ${message}; kept in the outbox, next attempt after ${next}`,
        );
      }
      await record((state) =>
        retryLater(state, id, token, {
          message,
          attempts,
          nextAttemptAt: next,
          deliveryUnknown: error.deliveryUnknown ?? false,
        }),
      );
      return 'failed';
    }
  }

  /** Sends a marked test message through each notifier (or only `only`) now, bypassing state and outbox. */
  async sendTest(environment: string, only?: string): Promise<TestDelivery[]> {
    const { deps } = this;
    const targets = deps.notifiers.filter((n) => !only || n.name === only);
    const now = deps.now();
    const deadline = performance.now() + deps.settings.deliveryTimeoutMs;
    const abort = AbortSignal.timeout(deps.settings.deliveryTimeoutMs);
    return Promise.all(
      targets.map(async (notifier) => {
        const event: NotificationEvent = {
          kind: 'test',
          id: 'test0000',
          dedupKey: `sentinel-test-${randomUUID()}`,
          environment,
          check: 'notify_test',
          level: notifier.minLevel,
          message:
            `Test notification from Sentinel on ${deps.host}: ` +
            `if you can read this, notifier "${notifier.name}" works.`,
          details: { notifier: notifier.name, type: notifier.type },
          firingSince: now.toISOString(),
        };
        const notification: Notification = {
          id: randomUUID(),
          notifier: notifier.name,
          createdAt: now.toISOString(),
          host: deps.host,
          events: [event],
        };
        const parts = new Set<string>();
        try {
          await withRetry(
            () =>
              notifier.send(notification, { signal: abort, completed: parts, markCompleted: (p) => void parts.add(p) }),
            {
              attempts: 2,
              baseDelayMs: deps.settings.retryBaseMs,
              maxDelayMs: deps.settings.retryMaxMs,
              deadline,
              sleep: deps.sleep,
              random: deps.random,
              retryUnknown: notifier.idempotent,
            },
            abort,
          );
          return { notifier: notifier.name, type: notifier.type, ok: true };
        } catch (err) {
          return {
            notifier: notifier.name,
            type: notifier.type,
            ok: false,
            error: deps.redactor.redact((err as Error).message),
          };
        }
      }),
    );
  }
}
