import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../log.js';
import type { SendContext } from '../notifiers/contract.js';
import { DeliveryError, withRetry } from '../notifiers/http.js';
import {
  type Alert,
  type NotifierSummary as BaseNotifierSummary,
  type Level,
  overallStatus,
  type RunResult,
} from '../types.js';
import { formatDuration } from '../util/duration.js';
import type { Redactor } from '../util/redact.js';
import { decide, identityKey, idsFor, type LifecycleSettings, levelAtLeast, type TrackedAlert } from './decide.js';
import type { AlertingState, AlertStateStore, OutboxEntry, Silence } from './store.js';
import {
  FAILURE_REASONS,
  type FailureReason,
  type Notification,
  type NotificationEvent,
  type Notifier,
} from './types.js';

/**
 * From a run's alerts to delivered notifications:
 *   1. under the state lock, decide each alert identity's transition (decide.ts);
 *   2. group this run's events into one notification per notifier and record them
 *      in the outbox (written to disk before anything is sent);
 *   3. deliver the outbox, oldest first, one notifier in parallel with another,
 *      retrying within a bounded time; what is still undelivered stays for the
 *      next run. Nothing is removed from the outbox before the provider accepted it.
 * Delivery is at least once. A request sent whole that got no answer (timeout,
 * reset) is "delivery unknown": retried in the same run only by a notifier whose
 * receiver deduplicates (`Notifier.idempotent`), otherwise after the backoff.
 * On shutdown, `flush` makes one more bounded delivery pass (see there).
 */

export interface AlertingSettings extends LifecycleSettings {
  /** Upper bound on the time one run spends delivering. */
  deliveryTimeoutMs: number;
  /** An undelivered notification older than this is given up (and logged loudly). */
  maxOutboxAgeMs: number;
  /** Retries within one run for one notification. */
  attemptsPerRun: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

export const DEFAULT_DELIVERY: Omit<AlertingSettings, keyof LifecycleSettings> = {
  deliveryTimeoutMs: 30_000,
  maxOutboxAgeMs: 24 * 3_600_000,
  attemptsPerRun: 4,
  retryBaseMs: 1000,
  retryMaxMs: 10_000,
};

export interface AlertingDeps {
  store: AlertStateStore;
  notifiers: Notifier[];
  settings: AlertingSettings;
  logger: Logger;
  redactor: Redactor;
  host: string;
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
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

/** The engine's summaries always carry every failure reason. */
export interface NotifierSummary extends BaseNotifierSummary {
  reasons: Record<FailureReason, number>;
}

export interface AlertingOutcome {
  notifications: NotifierSummary[];
  /** Set when alerting could not run (state locked or unreadable); the run's report still stands. */
  error?: string;
}

const DEAD_KEPT = 50;

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

/**
 * The reason of a failed delivery: status 429 → rate_limited, other 4xx →
 * rejected, 5xx → server_error; without an HTTP answer, a timeout (the request's
 * own or `delivery_timeout`, `timedOut`) or an abort → timeout, any other final
 * refusal → rejected, anything else → network.
 */
export function failureReason(error: unknown, timedOut = false): FailureReason {
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

function noReasons(): Record<FailureReason, number> {
  return Object.fromEntries(FAILURE_REASONS.map((r) => [r, 0])) as Record<FailureReason, number>;
}

export class AlertingEngine {
  private readonly now: () => Date;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  /**
   * Notification id → until when (ms, engine clock) the provider asked us to wait
   * (429 Retry-After, Discord's retry_after), as this process was told. `flush`
   * honours these even though it skips Sentinel's own backoff.
   */
  private readonly providerWaits = new Map<string, number>();

  constructor(private readonly deps: AlertingDeps) {
    this.now = deps.now ?? (() => new Date());
    this.sleep =
      deps.sleep ??
      ((ms, signal) =>
        new Promise((r) => {
          const t = setTimeout(r, ms);
          signal?.addEventListener(
            'abort',
            () => {
              clearTimeout(t);
              r();
            },
            { once: true },
          );
        }));
    this.random = deps.random ?? Math.random;
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
    const lockWaitMs = this.deps.lockWaitMs ?? 10_000;
    let annotated: RunResult;
    try {
      annotated = await this.deps.store.update((state) => this.advance(state, result), { waitMs: lockWaitMs });
    } catch (err) {
      const message = this.deps.redactor.redact((err as Error).message);
      this.deps.logger.error(`Alerting: ${message}; this run's alerts were not recorded or notified`);
      // Still honour silences and acknowledgements in the report and exit code.
      const fallback = await this.deps.store.read().then(
        (state) => this.annotateWith(state, result),
        () => result,
      );
      return { result: fallback, outcome: { notifications: [], error: message } };
    }
    if (this.deps.mayDeliver && !(await this.deps.mayDeliver().catch(() => false))) {
      this.deps.logger.warn('Alerting: not the leader any more; delivery is left to the new leader');
      return { result: annotated, outcome: { notifications: [] } };
    }
    try {
      const notifications = await this.deliver(result.environment);
      return { result: annotated, outcome: { notifications } };
    } catch (err) {
      const message = this.deps.redactor.redact((err as Error).message);
      this.deps.logger.error(`Alerting: delivery failed: ${message}`);
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
      const notifications = await this.deliver(environment, { ignoreBackoff: true });
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
      return this.annotateWith(await this.deps.store.read(), result);
    } catch {
      return result;
    }
  }

  /** Silence and acknowledgement marks plus the status without silenced alerts, read-only. */
  private annotateWith(state: AlertingState, result: RunResult): RunResult {
    const silences = activeSilences(state.silences, this.now());
    const alerts = result.alerts.map((a) => {
      const tracked = state.alerts[identityKey(result.environment, a)];
      return {
        ...a,
        id: tracked?.id ?? idsFor(identityKey(result.environment, a)).id,
        silenced: isSilenced(silences, result.environment, a),
        acknowledged: Boolean(tracked?.acknowledged),
        ...(tracked ? { since: tracked.firingSince } : {}),
      };
    });
    return withStatus(result, alerts);
  }

  /** Lifecycle decisions and outbox records for one run. Mutates `state`. */
  private advance(state: AlertingState, result: RunResult): RunResult {
    const now = this.now();
    const env = result.environment;
    const silences = activeSilences(state.silences, now);
    // Absence of an alert is evidence of health only from a check that ran. A check
    // disabled in config has been retired by its owner: its alerts may resolve.
    const evidence = new Set(
      result.checks
        .filter(
          (c) => c.outcome === 'ok' || c.outcome === 'alert' || (c.outcome === 'skipped' && c.reason === DISABLED),
        )
        .map((c) => c.name),
    );
    const known = new Set(result.checks.map((c) => c.name));

    const observed = new Map<string, Alert>();
    for (const alert of result.alerts) observed.set(identityKey(env, alert), alert);

    const events: Array<{ event: NotificationEvent; deliveredTo: Record<string, Level> }> = [];
    const keys = new Set([
      ...observed.keys(),
      ...Object.keys(state.alerts).filter((k) => state.alerts[k]!.environment === env),
    ]);
    const annotated = new Map<string, Alert>();
    for (const key of keys) {
      const previous = state.alerts[key];
      const alert = observed.get(key);
      const silenced = alert ? isSilenced(silences, env, alert) : false;
      const check = alert?.check ?? previous!.check;
      const decision = decide({
        previous,
        observed: alert
          ? {
              ...alert,
              message: this.deps.redactor.redact(alert.message),
              details: redactDetails(alert.details, this.deps.redactor),
              environment: env,
            }
          : undefined,
        checkRan: evidence.has(check) || !known.has(check),
        silenced,
        now,
        settings: this.deps.settings,
      });
      if (decision.next) state.alerts[key] = decision.next;
      else delete state.alerts[key];
      const tracked = decision.next ?? previous!;
      if (alert)
        annotated.set(key, {
          ...alert,
          id: tracked.id,
          silenced,
          acknowledged: Boolean(tracked.acknowledged),
          since: tracked.firingSince,
        });
      if (decision.notify)
        events.push({ event: toEvent(tracked, decision.notify, now), deliveredTo: previous?.deliveredTo ?? {} });
    }

    for (const notifier of this.deps.notifiers) {
      const mine: NotificationEvent[] = [];
      for (const { event, deliveredTo } of events) {
        if (event.kind !== 'resolved') {
          if (levelAtLeast(event.level, notifier.minLevel)) mine.push(event);
          continue;
        }
        // A firing message still waiting in the outbox and its resolution cancel
        // out: nobody needs to hear about a problem that is already over, unless
        // the waiting message may have been shown already (delivery unknown).
        const pending = this.cancelPending(state, env, notifier.name, event.dedupKey, now);
        if (pending === 'cancelled') continue;
        // Resolved only where the firing message was (or may have been) delivered.
        if (notifier.sendResolved && (deliveredTo[notifier.name] || pending === 'maybe delivered')) mine.push(event);
      }
      if (notifier.everyRun) {
        // Alertmanager forgets alerts that are not re-posted: refresh every firing one,
        // and let this refresh replace an older refresh still waiting in the outbox.
        const included = new Set(mine.map((e) => e.dedupKey));
        for (const tracked of Object.values(state.alerts)) {
          if (tracked.environment !== env || !tracked.notifiedLevel || included.has(tracked.dedupKey)) continue;
          const alert = annotated.get(tracked.key);
          if (!alert || alert.silenced || !levelAtLeast(tracked.level, notifier.minLevel)) continue;
          mine.push(toEvent(tracked, 'repeat', now));
        }
        state.outbox = state.outbox.filter(
          (e) =>
            !(
              e.environment === env &&
              e.notification.notifier === notifier.name &&
              !isClaimed(e, now) &&
              e.completedParts.length === 0 &&
              e.notification.events.every((ev) => ev.kind === 'repeat')
            ),
        );
      }
      if (mine.length === 0) continue;
      const notification: Notification = {
        id: randomUUID(),
        notifier: notifier.name,
        createdAt: now.toISOString(),
        host: this.deps.host,
        events: mine,
      };
      state.outbox.push({ notification, environment: env, attempts: 0, completedParts: [] });
      this.deps.logger.info(`Recorded a notification for ${notifier.name} (${describeKinds(mine)})`);
    }

    const alerts = result.alerts.map((a) => annotated.get(identityKey(env, a)) ?? a);
    return withStatus(result, alerts);
  }

  /**
   * Removes a not-yet-delivered firing/repeat/escalated event of `dedupKey` for this
   * notifier. `cancelled`: one was waiting and never reached the provider;
   * `maybe delivered`: one was waiting that may have been shown (an attempt got no
   * answer after the request was sent, or one is in flight now), so the
   * resolution must follow it; `none`: nothing was waiting.
   */
  private cancelPending(
    state: AlertingState,
    env: string,
    notifier: string,
    dedupKey: string,
    now: Date,
  ): 'none' | 'cancelled' | 'maybe delivered' {
    let outcome: 'none' | 'cancelled' | 'maybe delivered' = 'none';
    for (const entry of state.outbox) {
      if (entry.environment !== env || entry.notification.notifier !== notifier || entry.completedParts.length > 0)
        continue;
      const before = entry.notification.events.length;
      entry.notification.events = entry.notification.events.filter(
        (e) => e.dedupKey !== dedupKey || e.kind === 'resolved',
      );
      if (entry.notification.events.length === before) continue;
      if (entry.maybeDelivered || isClaimed(entry, now)) outcome = 'maybe delivered';
      else if (outcome === 'none') outcome = 'cancelled';
    }
    state.outbox = state.outbox.filter((e) => e.notification.events.length > 0);
    return outcome;
  }

  /**
   * Delivers this environment's due entries: claims them under the lock, sends
   * without it (notifiers in parallel, each notifier's entries in order), and
   * records each outcome under the lock again. An entry that cannot be sent holds
   * back only later entries about the same alerts, not everything behind it.
   */
  private async deliver(env: string, options: { ignoreBackoff?: boolean } = {}): Promise<NotifierSummary[]> {
    const deadline = performance.now() + this.deps.settings.deliveryTimeoutMs;
    const abort = AbortSignal.timeout(this.deps.settings.deliveryTimeoutMs);
    const token = claimToken();
    const gate: DeliveryGate = { stopped: false };
    const byName = new Map(this.deps.notifiers.map((n) => [n.name, n]));
    const summaries = new Map<string, NotifierSummary>(
      this.deps.notifiers.map((n) => [
        n.name,
        { notifier: n.name, type: n.type, sent: 0, pending: 0, failed: 0, errors: [], reasons: noReasons() },
      ]),
    );

    const claimed = await this.deps.store.update(
      (state) => {
        const now = this.now();
        for (const entry of [...state.outbox]) {
          const age = now.getTime() - Date.parse(entry.notification.createdAt);
          if (age > this.deps.settings.maxOutboxAgeMs && !isClaimed(entry, now)) {
            this.deps.logger.error(
              `Alerting: giving up on a notification for "${entry.notification.notifier}" (${entry.environment}) ` +
                `undelivered for ${Math.round(age / 3_600_000)}h (last error: ${entry.lastError ?? 'none'})`,
            );
            bury(state, entry, now, 'expired undelivered');
            this.providerWaits.delete(entry.notification.id);
            const summary = entry.environment === env ? summaries.get(entry.notification.notifier) : undefined;
            if (summary) {
              summary.failed++;
              summary.reasons.expired++;
            }
          } else if (entry.environment === env && !byName.has(entry.notification.notifier)) {
            this.deps.logger.warn(
              `Alerting: dropping an undelivered notification for "${entry.notification.notifier}", which is no ` +
                `longer configured`,
            );
            removeEntry(state, entry);
          }
        }
        const due: OutboxEntry[] = [];
        const blocked = new Set<string>();
        for (const entry of state.outbox) {
          if (entry.environment !== env) continue;
          const keys = entry.notification.events.map((e) => `${entry.notification.notifier}|${e.dedupKey}`);
          const waiting =
            isClaimed(entry, now) ||
            this.backingOff(
              entry,
              now,
              options.ignoreBackoff ?? false,
              byName.get(entry.notification.notifier)?.idempotent ?? false,
            );
          if (waiting || keys.some((k) => blocked.has(k))) {
            for (const k of keys) blocked.add(k);
            continue;
          }
          entry.claimedBy = token;
          entry.claimedUntil = new Date(now.getTime() + this.deps.settings.deliveryTimeoutMs + 60_000).toISOString();
          due.push(structuredClone(entry));
          for (const k of keys) blocked.add(k);
        }
        return due;
      },
      options.ignoreBackoff ? { waitMs: this.deps.lockWaitMs ?? 10_000 } : undefined,
    );

    const queues = new Map<string, OutboxEntry[]>();
    for (const entry of claimed)
      queues.set(entry.notification.notifier, [...(queues.get(entry.notification.notifier) ?? []), entry]);

    // Outcomes are written one at a time, in order.
    let writing: Promise<unknown> = Promise.resolve();
    const record = (change: (state: AlertingState) => void): Promise<void> => {
      const next = writing
        .then(() => this.deps.store.update(change))
        .catch((err: Error) => this.deps.logger.error(`Alerting: cannot save state: ${err.message}`));
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
          const outcome = await this.deliverOne(notifier, entry, deadline, abort, record, summary, token, gate);
          if (outcome === 'failed') for (const k of keys) held.add(k);
        }
      }),
    );
    await writing;

    const state = await this.deps.store.read();
    for (const entry of state.outbox) {
      const summary = entry.environment === env ? summaries.get(entry.notification.notifier) : undefined;
      if (summary) summary.pending++;
    }
    for (const s of summaries.values()) {
      if (s.sent || s.failed || s.pending)
        this.deps.logger.info(`Notifier ${s.notifier}: ${s.sent} sent, ${s.pending} pending, ${s.failed} failed`);
    }
    return [...summaries.values()];
  }

  /**
   * Whether an entry waits for a later attempt: its `nextAttemptAt` lies ahead. With
   * `ignoreBackoff` (the final flush) only a wait the provider asked for counts, and
   * the backoff of an entry that may have been delivered already to a provider
   * that cannot tell a repeat (`idempotent` false).
   */
  private backingOff(entry: OutboxEntry, now: Date, ignoreBackoff: boolean, idempotent: boolean): boolean {
    const inBackoff = entry.nextAttemptAt !== undefined && Date.parse(entry.nextAttemptAt) > now.getTime();
    if (!ignoreBackoff || (entry.maybeDelivered && !idempotent && inBackoff)) return inBackoff;
    return (this.providerWaits.get(entry.notification.id) ?? 0) > now.getTime();
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
    deadline: number,
    abort: AbortSignal,
    record: (change: (state: AlertingState) => void) => Promise<void>,
    summary: NotifierSummary,
    claimToken: string,
    gate: DeliveryGate,
  ): Promise<EntryOutcome> {
    const id = entry.notification.id;
    const completed = new Set(entry.completedParts);
    const ctx: SendContext = {
      signal: abort,
      completed,
      markCompleted: (part) => {
        completed.add(part);
        // Persisted at once: a crash now must not send this part again.
        void record((state) => {
          const stored = findEntry(state, id);
          if (stored && !stored.completedParts.includes(part)) stored.completedParts.push(part);
        });
      },
    };
    const attempt = async (): Promise<void> => {
      if (!(await this.mayGoOn(gate))) throw new LeadershipLost();
      await notifier.send(entry.notification, ctx);
    };
    try {
      await withRetry(
        attempt,
        {
          attempts: this.deps.settings.attemptsPerRun,
          baseDelayMs: this.deps.settings.retryBaseMs,
          maxDelayMs: this.deps.settings.retryMaxMs,
          deadline,
          sleep: this.sleep,
          random: this.random,
          retryUnknown: notifier.idempotent,
        },
        abort,
      );
      summary.sent++;
      this.providerWaits.delete(id);
      await record((state) => {
        const stored = findEntry(state, id);
        if (stored) removeEntry(state, stored);
        // Remember who heard about each alert, so its resolution goes to them.
        for (const event of entry.notification.events) {
          if (event.kind === 'resolved') continue;
          const tracked = Object.values(state.alerts).find((a) => a.dedupKey === event.dedupKey);
          if (!tracked) continue;
          const before = tracked.deliveredTo?.[notifier.name];
          tracked.deliveredTo = {
            ...tracked.deliveredTo,
            [notifier.name]: before && levelAtLeast(before, event.level) ? before : event.level,
          };
        }
      });
      return 'sent';
    } catch (err) {
      if (err instanceof LeadershipLost) {
        // Nothing more from here: the attempt was not made. Parts already accepted
        // stay recorded, so the new leader does not send them again.
        await record((state) => release(state, id, claimToken));
        return 'stopped';
      }
      const error = err instanceof DeliveryError ? err : new DeliveryError(String(err), true);
      const message = this.deps.redactor.redact(error.message);
      summary.reasons[failureReason(err, abort.aborted)]++;
      if (!error.retryable) {
        summary.errors.push(message);
        this.providerWaits.delete(id);
        this.deps.logger.error(
          `Notifier ${notifier.name} (${notifier.type}) refused a notification: ${message}. A 4xx is not retried: ` +
            `check the notifier's settings (URL, key, recipients); the alert is sent again at its next repeat.`,
        );
        summary.failed++;
        await record((state) => {
          const stored = findEntry(state, id);
          if (stored) bury(state, { ...stored, attempts: stored.attempts + 1 }, this.now(), message);
        });
        return 'failed';
      }
      const attempts = entry.attempts + 1;
      const backoff = Math.min(15 * 60_000, 15_000 * 2 ** (attempts - 1));
      const waitMs = Math.max(backoff, error.retryAfterMs ?? 0);
      const nextAttemptAt = new Date(this.now().getTime() + waitMs).toISOString();
      if (error.retryAfterMs !== undefined) this.providerWaits.set(id, this.now().getTime() + error.retryAfterMs);
      else this.providerWaits.delete(id);
      // Sent whole, no answer, and the provider cannot tell a repeat: it may have the
      // message already, so it gets no second copy before the backoff (not in this
      // run, not in the final flush). At least once, never a burst of copies.
      const unknown = error.deliveryUnknown && !notifier.idempotent;
      if (unknown) {
        const text = `${message}; will retry after ${formatDuration(waitMs)}`;
        summary.errors.push(text);
        this.deps.logger.warn(
          `Notifier ${notifier.name} (${notifier.type}): ${text} (${nextAttemptAt}), not sooner: ${notifier.type} ` +
            `has no idempotency key, so a retry now could show the message twice; raise timeout_seconds if it is ` +
            `often this slow`,
        );
      } else {
        summary.errors.push(message);
        this.deps.logger.warn(
          `Notifier ${notifier.name} (${notifier.type}): ${message}; kept in the outbox, next attempt after ` +
            `${nextAttemptAt}`,
        );
      }
      await record((state) => {
        const stored = findEntry(state, id);
        if (!stored) return;
        stored.attempts = attempts;
        stored.lastError = message;
        stored.nextAttemptAt = nextAttemptAt;
        // Once possibly shown, always: its resolution must follow it even if a later attempt fails otherwise.
        if (error.deliveryUnknown) stored.maybeDelivered = true;
        release(state, id, claimToken);
      });
      return 'failed';
    }
  }

  /** Sends a marked test message through each notifier now, bypassing state and outbox. */
  async sendTest(
    environment: string,
    only?: string,
  ): Promise<Array<{ notifier: string; type: string; ok: boolean; error?: string }>> {
    const targets = this.deps.notifiers.filter((n) => !only || n.name === only);
    const now = this.now();
    const deadline = performance.now() + this.deps.settings.deliveryTimeoutMs;
    const abort = AbortSignal.timeout(this.deps.settings.deliveryTimeoutMs);
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
            `Test notification from Sentinel on ${this.deps.host}: if you can read this, notifier ` +
            `"${notifier.name}" works.`,
          details: { notifier: notifier.name, type: notifier.type },
          firingSince: now.toISOString(),
        };
        const notification: Notification = {
          id: randomUUID(),
          notifier: notifier.name,
          createdAt: now.toISOString(),
          host: this.deps.host,
          events: [event],
        };
        const parts = new Set<string>();
        try {
          await withRetry(
            () =>
              notifier.send(notification, { signal: abort, completed: parts, markCompleted: (p) => void parts.add(p) }),
            {
              attempts: 2,
              baseDelayMs: this.deps.settings.retryBaseMs,
              maxDelayMs: this.deps.settings.retryMaxMs,
              deadline,
              sleep: this.sleep,
              random: this.random,
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
            error: this.deps.redactor.redact((err as Error).message),
          };
        }
      }),
    );
  }
}

export function activeSilences(silences: Silence[], now: Date): Silence[] {
  return silences.filter((s) => !s.expiredAt && Date.parse(s.endsAt) > now.getTime());
}

/** A silence matches its check (failures included) and, when it names a source, only that subject. */
export function isSilenced(silences: Silence[], environment: string, alert: Pick<Alert, 'check' | 'subject'>): boolean {
  return silences.some(
    (s) =>
      s.check === alert.check &&
      (s.environment === undefined || s.environment === environment) &&
      (s.source === undefined || s.source === alert.subject),
  );
}

function toEvent(tracked: TrackedAlert, kind: NotificationEvent['kind'], now: Date): NotificationEvent {
  return {
    kind,
    id: tracked.id,
    dedupKey: tracked.dedupKey,
    environment: tracked.environment,
    check: tracked.check,
    ...(tracked.subject !== undefined ? { subject: tracked.subject } : {}),
    level: kind === 'resolved' ? (tracked.notifiedLevel ?? tracked.level) : tracked.level,
    message: tracked.message,
    details: tracked.details,
    ...(tracked.remediation ? { remediation: tracked.remediation } : {}),
    firingSince: tracked.firingSince,
    ...(kind === 'resolved' ? { resolvedAt: now.toISOString() } : {}),
  };
}

const DISABLED = 'disabled in config';

/** `host|pid|uuid`: who is delivering an entry, so a claim of a dead process on this host can be ignored. */
function claimToken(): string {
  return `${hostname()}|${process.pid}|${randomUUID()}`;
}

function isClaimed(entry: OutboxEntry, now: Date): boolean {
  if (entry.claimedUntil === undefined || Date.parse(entry.claimedUntil) <= now.getTime()) return false;
  const [host, pid] = (entry.claimedBy ?? '').split('|');
  if (host !== hostname() || !pid) return true;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (err) {
    // The process that claimed it died (killed mid-delivery): the claim is void.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function findEntry(state: AlertingState, id: string): OutboxEntry | undefined {
  return state.outbox.find((e) => e.notification.id === id);
}

/** Gives a claimed entry back (it stays in the outbox for a later run). */
function release(state: AlertingState, id: string, token: string): void {
  const entry = findEntry(state, id);
  if (entry && entry.claimedBy === token) {
    delete entry.claimedBy;
    delete entry.claimedUntil;
  }
}

/** The report's alerts with the status and metrics recomputed without silenced ones. */
function withStatus(result: RunResult, alerts: Alert[]): RunResult {
  const counted = alerts.filter((a) => !a.silenced);
  const critical = counted.filter((a) => a.level === 'critical').length;
  return {
    ...result,
    alerts,
    overall_status: overallStatus(counted),
    metrics: {
      ...result.metrics,
      alerts_triggered: counted.length,
      critical_alerts: critical,
      warning_alerts: counted.length - critical,
      silenced_alerts: alerts.length - counted.length,
    },
  };
}

/** Alert data leaves the host in notifications: the same redaction as every other output. */
function redactDetails(details: Record<string, unknown>, redactor: Redactor): Record<string, unknown> {
  return JSON.parse(redactor.redact(JSON.stringify(details))) as Record<string, unknown>;
}

function removeEntry(state: AlertingState, entry: OutboxEntry): void {
  state.outbox = state.outbox.filter((e) => e.notification.id !== entry.notification.id);
}

function bury(state: AlertingState, entry: OutboxEntry, now: Date, reason: string): void {
  removeEntry(state, entry);
  const { claimedBy: _by, claimedUntil: _until, ...rest } = entry;
  state.dead.push({ ...rest, lastError: reason, failedAt: now.toISOString() });
  if (state.dead.length > DEAD_KEPT) state.dead.splice(0, state.dead.length - DEAD_KEPT);
}

function describeKinds(events: NotificationEvent[]): string {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}
