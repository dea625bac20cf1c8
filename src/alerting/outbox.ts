import type { NotificationEvent } from '../notifiers/contract.js';
import { levelAtLeast } from './decide.js';
import type { AlertingState, OutboxEntry } from './store.js';

/**
 * The outbox as pure operations on the alert state: which entries are due, claiming
 * and releasing them, what a success or a failure leaves behind, when to try again,
 * when to give up. No I/O and no clock: each takes the state and returns the next
 * one (the input is never changed), so test/alerting/outbox.test.ts walks them as
 * tables. The delivery loop (deliver.ts) applies them under the state lock.
 *
 * Two things from outside are passed in rather than looked up: the time, and
 * whether the process holding a claim is still alive ({@link ClaimHolderAlive}).
 */

/**
 * Whether the process named by a claim (`claimedBy`, `host|pid|uuid`) still runs.
 * deliver.ts asks the operating system for processes of this host; tests pass a
 * constant.
 */
export type ClaimHolderAlive = (claimedBy: string | undefined) => boolean;

/** Notifications that failed for good are kept for inspection, the newest this many. */
export const DEAD_KEPT = 50;

/** Sentinel's own backoff between runs: the wait after the first failed attempt, doubling up to the maximum. */
export const BACKOFF = { firstMs: 15_000, maxMs: 15 * 60_000 } as const;

/**
 * The one retry policy of the outbox: how long an entry waits after its
 * `attempts`-th failed attempt (1 for the first): {@link BACKOFF} doubling per
 * attempt, or longer when the provider asked for longer (429 Retry-After).
 */
export function retryDelayMs(attempts: number, retryAfterMs?: number): number {
  const backoff = Math.min(BACKOFF.maxMs, BACKOFF.firstMs * 2 ** (attempts - 1));
  return Math.max(backoff, retryAfterMs ?? 0);
}

/** When an entry that has failed `attempts` times is tried next (ISO 8601), by {@link retryDelayMs}. */
export function nextAttemptAt(now: Date, attempts: number, retryAfterMs?: number): string {
  return new Date(now.getTime() + retryDelayMs(attempts, retryAfterMs)).toISOString();
}

/** Whether another delivery holds `entry` now: its claim has not run out and its holder lives. */
export function isClaimed(entry: OutboxEntry, now: Date, alive: ClaimHolderAlive): boolean {
  if (entry.claimedUntil === undefined || Date.parse(entry.claimedUntil) <= now.getTime()) return false;
  return alive(entry.claimedBy);
}

/** The entry of notification `id`, if it is still in the outbox. */
export function findEntry(state: AlertingState, id: string): OutboxEntry | undefined {
  return state.outbox.find((e) => e.notification.id === id);
}

/** `state` with entry `id` changed by `change` (nothing when it is gone). */
function updateEntry(state: AlertingState, id: string, change: (entry: OutboxEntry) => OutboxEntry): AlertingState {
  return { ...state, outbox: state.outbox.map((e) => (e.notification.id === id ? change(e) : e)) };
}

/** `state` without entry `id`. */
export function removeEntry(state: AlertingState, id: string): AlertingState {
  return { ...state, outbox: state.outbox.filter((e) => e.notification.id !== id) };
}

/** Gives a claimed entry back (it stays in the outbox for a later run); only the claim's holder can. */
export function release(state: AlertingState, id: string, token: string): AlertingState {
  return updateEntry(state, id, (entry) => {
    if (entry.claimedBy !== token) return entry;
    const { claimedBy: _by, claimedUntil: _until, ...rest } = entry;
    return rest;
  });
}

/**
 * Moves `entry` (as given: the caller counts the attempt that failed) from the
 * outbox to the dead letters, unclaimed, with why and when; the oldest dead
 * letters beyond {@link DEAD_KEPT} are dropped.
 */
export function bury(state: AlertingState, entry: OutboxEntry, now: Date, reason: string): AlertingState {
  const { claimedBy: _by, claimedUntil: _until, ...rest } = entry;
  const dead = [...state.dead, { ...rest, lastError: reason, failedAt: now.toISOString() }];
  return { ...removeEntry(state, entry.notification.id), dead: dead.slice(Math.max(0, dead.length - DEAD_KEPT)) };
}

/** What {@link sweep} took out of the outbox. */
export interface Swept {
  state: AlertingState;
  /** Undelivered for longer than `maxAgeMs` (any environment): buried as `expired undelivered`. */
  expired: OutboxEntry[];
  /** This environment's entries for a notifier that is no longer configured: dropped. */
  dropped: OutboxEntry[];
}

/**
 * Before a delivery pass: gives up on every unclaimed entry older than `maxAgeMs`
 * (`max_outbox_age`), and drops this environment's entries whose notifier is no
 * longer configured.
 */
export function sweep(
  state: AlertingState,
  options: {
    environment: string;
    now: Date;
    maxAgeMs: number;
    configured: ReadonlySet<string>;
    alive: ClaimHolderAlive;
  },
): Swept {
  const { environment, now } = options;
  let next = state;
  const expired: OutboxEntry[] = [];
  const dropped: OutboxEntry[] = [];
  for (const entry of state.outbox) {
    const age = now.getTime() - Date.parse(entry.notification.createdAt);
    if (age > options.maxAgeMs && !isClaimed(entry, now, options.alive)) {
      next = bury(next, entry, now, 'expired undelivered');
      expired.push(entry);
    } else if (entry.environment === environment && !options.configured.has(entry.notification.notifier)) {
      next = removeEntry(next, entry.notification.id);
      dropped.push(entry);
    }
  }
  return { state: next, expired, dropped };
}

/**
 * Whether an entry waits for a later attempt: its `nextAttemptAt` lies ahead.
 * With `ignoreBackoff` (the final flush) only a wait the provider asked for
 * (`providerWaitUntil`, ms) counts, and the backoff of an entry that may have been
 * delivered already to a provider that cannot tell a repeat (`idempotent` false).
 */
export function waitingForRetry(
  entry: OutboxEntry,
  now: Date,
  options: { ignoreBackoff: boolean; idempotent: boolean; providerWaitUntil?: number },
): boolean {
  const inBackoff = entry.nextAttemptAt !== undefined && Date.parse(entry.nextAttemptAt) > now.getTime();
  if (!options.ignoreBackoff || (entry.maybeDelivered && !options.idempotent && inBackoff)) return inBackoff;
  return (options.providerWaitUntil ?? 0) > now.getTime();
}

/**
 * This environment's entries to deliver now, oldest first. Per notifier and alert
 * the order is kept: an entry that is claimed elsewhere or waits for a retry
 * holds back the later entries about the same alerts (only those), and one pass
 * delivers at most one entry per notifier and alert.
 */
export function due(
  state: AlertingState,
  options: { environment: string; now: Date; alive: ClaimHolderAlive; waiting: (entry: OutboxEntry) => boolean },
): OutboxEntry[] {
  const ready: OutboxEntry[] = [];
  const blocked = new Set<string>();
  for (const entry of state.outbox) {
    if (entry.environment !== options.environment) continue;
    const keys = entry.notification.events.map((e) => `${entry.notification.notifier}|${e.dedupKey}`);
    const held = isClaimed(entry, options.now, options.alive) || options.waiting(entry);
    if (!held && !keys.some((k) => blocked.has(k))) ready.push(entry);
    for (const k of keys) blocked.add(k);
  }
  return ready;
}

/** Claims entries `ids` for `token` until `until`, so that no overlapping run sends them too. */
export function claim(state: AlertingState, ids: readonly string[], token: string, until: Date): AlertingState {
  const wanted = new Set(ids);
  return {
    ...state,
    outbox: state.outbox.map((e) =>
      wanted.has(e.notification.id) ? { ...e, claimedBy: token, claimedUntil: until.toISOString() } : e,
    ),
  };
}

/** Records that `part` of entry `id` was accepted, so that no later attempt sends it again. */
export function completePart(state: AlertingState, id: string, part: string): AlertingState {
  return updateEntry(state, id, (entry) =>
    entry.completedParts.includes(part) ? entry : { ...entry, completedParts: [...entry.completedParts, part] },
  );
}

/**
 * Entry `entry` was accepted by notifier `notifier`: it leaves the outbox, and each
 * alert it told about remembers that this notifier heard of it (at the highest
 * level so far), so that the alert's resolution goes there too.
 */
export function delivered(state: AlertingState, entry: OutboxEntry, notifier: string): AlertingState {
  const alerts = { ...state.alerts };
  for (const event of entry.notification.events) {
    if (event.kind === 'resolved') continue;
    const key = Object.keys(alerts).find((k) => alerts[k]!.dedupKey === event.dedupKey);
    if (key === undefined) continue;
    const tracked = alerts[key]!;
    const before = tracked.deliveredTo?.[notifier];
    alerts[key] = {
      ...tracked,
      deliveredTo: {
        ...tracked.deliveredTo,
        [notifier]: before && levelAtLeast(before, event.level) ? before : event.level,
      },
    };
  }
  return { ...removeEntry(state, entry.notification.id), alerts };
}

/** A failed attempt that may be retried. */
export interface RetryableFailure {
  /** The error, redacted. */
  message: string;
  /** The failed attempts so far, this one included. */
  attempts: number;
  /** ISO 8601, from {@link nextAttemptAt}. */
  nextAttemptAt: string;
  /** The request was sent whole but no answer came: the provider may have shown it. */
  deliveryUnknown: boolean;
}

/** Entry `id` failed in a way worth retrying: it waits in the outbox for `nextAttemptAt`, released. */
export function retryLater(state: AlertingState, id: string, token: string, failure: RetryableFailure): AlertingState {
  const next = updateEntry(state, id, (entry) => ({
    ...entry,
    attempts: failure.attempts,
    lastError: failure.message,
    nextAttemptAt: failure.nextAttemptAt,
    // Once possibly shown, always: its resolution must follow it even if a later attempt fails otherwise.
    ...(failure.deliveryUnknown ? { maybeDelivered: true } : {}),
  }));
  return release(next, id, token);
}

/** Entry `id` was refused for good (a 4xx): it is buried with the failed attempt counted. */
export function refused(state: AlertingState, id: string, now: Date, message: string): AlertingState {
  const entry = findEntry(state, id);
  return entry ? bury(state, { ...entry, attempts: entry.attempts + 1 }, now, message) : state;
}

/**
 * What removing the undelivered firing/escalated/repeat events of alert `dedupKey`
 * for one notifier found: `cancelled`, one was waiting and never reached the
 * provider; `maybe delivered`, one was waiting that may have been shown (an attempt
 * got no answer after the request was sent, or one is in flight now), so the
 * resolution must follow it; `none`, nothing was waiting.
 */
export type Cancelled = 'none' | 'cancelled' | 'maybe delivered';

/**
 * An alert resolved: its news still waiting for notifier `notifier` is taken out
 * of entries nothing of which was delivered yet (entries left empty go).
 */
export function cancelPending(
  state: AlertingState,
  options: { environment: string; notifier: string; dedupKey: string; now: Date; alive: ClaimHolderAlive },
): { state: AlertingState; outcome: Cancelled } {
  let outcome: Cancelled = 'none';
  const outbox: OutboxEntry[] = [];
  for (const entry of state.outbox) {
    const untouchable =
      entry.environment !== options.environment ||
      entry.notification.notifier !== options.notifier ||
      entry.completedParts.length > 0;
    const events = untouchable
      ? entry.notification.events
      : entry.notification.events.filter((e) => e.dedupKey !== options.dedupKey || e.kind === 'resolved');
    if (events.length !== entry.notification.events.length) {
      if (entry.maybeDelivered || isClaimed(entry, options.now, options.alive)) outcome = 'maybe delivered';
      else if (outcome === 'none') outcome = 'cancelled';
    }
    if (events.length === 0) continue;
    outbox.push(
      events === entry.notification.events ? entry : { ...entry, notification: { ...entry.notification, events } },
    );
  }
  return { state: { ...state, outbox }, outcome };
}

/**
 * For a notifier refreshed every run (Alertmanager): this run's refresh replaces
 * an older one still waiting, when that one only repeats firing alerts, was not
 * started, and is not being delivered now.
 */
export function dropStaleRefreshes(
  state: AlertingState,
  options: { environment: string; notifier: string; now: Date; alive: ClaimHolderAlive },
): AlertingState {
  const stale = (e: OutboxEntry): boolean =>
    e.environment === options.environment &&
    e.notification.notifier === options.notifier &&
    !isClaimed(e, options.now, options.alive) &&
    e.completedParts.length === 0 &&
    e.notification.events.every((ev: NotificationEvent) => ev.kind === 'repeat');
  return { ...state, outbox: state.outbox.filter((e) => !stale(e)) };
}
