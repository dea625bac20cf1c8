import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { identityKey, idsFor, type TrackedAlert } from '../../src/alerting/decide.js';
import { claimHolderAlive } from '../../src/alerting/deliver.js';
import {
  BACKOFF,
  bury,
  type ClaimHolderAlive,
  claim,
  completePart,
  DEAD_KEPT,
  delivered,
  due,
  isClaimed,
  nextAttemptAt,
  refused,
  release,
  retryDelayMs,
  retryLater,
  sweep,
  waitingForRetry,
} from '../../src/alerting/outbox.js';
import { type AlertingState, emptyState, type OutboxEntry } from '../../src/alerting/store.js';
import type { NotificationEvent } from '../../src/notifiers/contract.js';
import type { Level } from '../../src/types.js';

/**
 * The outbox operations as tables: which entries are due, claims, the retry
 * policy, what success, failure and refusal leave behind, and giving up after
 * max_outbox_age. Every operation returns a new state; the rows check that the
 * state passed in is unchanged.
 */

const T0 = new Date('2025-01-04T10:00:00Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const alive: ClaimHolderAlive = () => true;
const dead: ClaimHolderAlive = () => false;

/** An event about alert `alert` (a dedup key) at `level`. */
const ev = (
  alert: string,
  kind: NotificationEvent['kind'] = 'firing',
  level: Level = 'critical',
): NotificationEvent => ({
  kind,
  id: alert.slice(0, 8),
  dedupKey: alert,
  environment: 'prod',
  check: 'stuck_batches',
  level,
  message: 'm',
  details: {},
  firingSince: T0.toISOString(),
});

/** Entry `id` for `notifier` about alerts `alerts`, recorded at T0 unless said otherwise. */
function entry(id: string, alerts: string[], overrides: Partial<OutboxEntry> = {}, notifier = 'hook'): OutboxEntry {
  return {
    notification: { id, notifier, createdAt: T0.toISOString(), host: 'h', events: alerts.map((a) => ev(a)) },
    environment: 'prod',
    attempts: 0,
    completedParts: [],
    ...overrides,
  };
}

const withOutbox = (...outbox: OutboxEntry[]): AlertingState => ({ ...emptyState(), outbox });
const ids = (state: AlertingState): string[] => state.outbox.map((e) => e.notification.id);
const claimed = (until: Date, by = 'other|1|x'): Partial<OutboxEntry> => ({
  claimedBy: by,
  claimedUntil: until.toISOString(),
});

describe('retry policy: one function for the wait before the next attempt', () => {
  const rows: Array<[attempts: number, retryAfterMs: number | undefined, waitMs: number]> = [
    [1, undefined, BACKOFF.firstMs],
    [2, undefined, 30_000],
    [3, undefined, 60_000],
    [6, undefined, 480_000],
    [7, undefined, BACKOFF.maxMs],
    [30, undefined, BACKOFF.maxMs],
    [1, 120_000, 120_000],
    [1, 1_000, BACKOFF.firstMs],
    [7, 3_600_000, 3_600_000],
  ];
  it.each(rows)('after %i failed attempts, Retry-After %s → wait %i ms', (attempts, retryAfterMs, waitMs) => {
    expect(retryDelayMs(attempts, retryAfterMs)).toBe(waitMs);
    expect(nextAttemptAt(T0, attempts, retryAfterMs)).toBe(new Date(T0.getTime() + waitMs).toISOString());
  });
});

describe('claims', () => {
  const rows: Array<[name: string, entry: OutboxEntry, holder: ClaimHolderAlive, claimed: boolean]> = [
    ['never claimed', entry('a', ['x']), alive, false],
    ['claim ran out', entry('a', ['x'], claimed(at(-1))), alive, false],
    ['claim runs out now', entry('a', ['x'], claimed(T0)), alive, false],
    ['claim current, holder alive', entry('a', ['x'], claimed(at(1))), alive, true],
    ['claim current, holder died', entry('a', ['x'], claimed(at(1))), dead, false],
  ];
  it.each(rows)('%s → claimed %s', (_name, e, holder, expected) => {
    expect(isClaimed(e, T0, holder)).toBe(expected);
  });

  it('claim marks the given entries for the token, until the given time', () => {
    const state = withOutbox(entry('a', ['x']), entry('b', ['y']));
    const next = claim(state, ['b'], 'me|2|t', at(2));
    expect(next.outbox.map((e) => [e.claimedBy, e.claimedUntil])).toEqual([
      [undefined, undefined],
      ['me|2|t', at(2).toISOString()],
    ]);
    expect(state.outbox[1]!.claimedBy).toBeUndefined();
  });

  const releases: Array<[name: string, token: string, released: boolean]> = [
    ['its holder releases it', 'me|2|t', true],
    ['another token cannot', 'other|1|x', false],
  ];
  it.each(releases)('release: %s', (_name, token, released) => {
    const state = withOutbox(entry('a', ['x'], claimed(at(2), 'me|2|t')));
    const next = release(state, 'a', token);
    expect(next.outbox[0]!.claimedBy === undefined).toBe(released);
    expect(next.outbox[0]!.claimedUntil === undefined).toBe(released);
    expect(state.outbox[0]!.claimedBy).toBe('me|2|t');
  });

  it('claims of this host are void when their process is gone; others are trusted', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    await once(child, 'exit');
    expect(claimHolderAlive(`${hostname()}|${process.pid}|t`)).toBe(true);
    expect(claimHolderAlive(`${hostname()}|${child.pid}|t`)).toBe(false);
    expect(claimHolderAlive(`another-host|${child.pid}|t`)).toBe(true);
    expect(claimHolderAlive(undefined)).toBe(true);
  });
});

describe('waiting for a retry', () => {
  const rows: Array<
    [
      name: string,
      entry: Partial<OutboxEntry>,
      options: { ignoreBackoff: boolean; idempotent: boolean; providerWaitUntil?: number },
      waiting: boolean,
    ]
  > = [
    ['never failed', {}, { ignoreBackoff: false, idempotent: false }, false],
    ['in backoff', { nextAttemptAt: at(1).toISOString() }, { ignoreBackoff: false, idempotent: false }, true],
    ['backoff over', { nextAttemptAt: at(-1).toISOString() }, { ignoreBackoff: false, idempotent: false }, false],
    [
      'flush skips the backoff',
      { nextAttemptAt: at(1).toISOString() },
      { ignoreBackoff: true, idempotent: false },
      false,
    ],
    [
      'flush honours a wait the provider asked for',
      { nextAttemptAt: at(1).toISOString() },
      { ignoreBackoff: true, idempotent: false, providerWaitUntil: at(1).getTime() },
      true,
    ],
    [
      'flush: the provider’s wait is over',
      { nextAttemptAt: at(1).toISOString() },
      { ignoreBackoff: true, idempotent: false, providerWaitUntil: at(-1).getTime() },
      false,
    ],
    [
      'flush keeps the backoff of a message maybe shown by a provider that cannot tell a repeat',
      { nextAttemptAt: at(1).toISOString(), maybeDelivered: true },
      { ignoreBackoff: true, idempotent: false },
      true,
    ],
    [
      'flush skips it for a provider that deduplicates',
      { nextAttemptAt: at(1).toISOString(), maybeDelivered: true },
      { ignoreBackoff: true, idempotent: true },
      false,
    ],
  ];
  it.each(rows)('%s → %s', (_name, overrides, options, expected) => {
    expect(waitingForRetry(entry('a', ['x'], overrides), T0, options)).toBe(expected);
  });
});

describe('due: what a pass delivers, in order per notifier and alert', () => {
  const rows: Array<[name: string, outbox: OutboxEntry[], waiting: string[], due: string[]]> = [
    ['oldest first', [entry('a', ['x']), entry('b', ['y'])], [], ['a', 'b']],
    ['one entry per alert and notifier per pass', [entry('a', ['x']), entry('b', ['x'])], [], ['a']],
    [
      'the same alert for another notifier is not held',
      [entry('a', ['x']), entry('b', ['x'], {}, 'pager')],
      [],
      ['a', 'b'],
    ],
    [
      'a waiting entry holds back later news of its alerts only',
      [entry('a', ['x']), entry('b', ['x']), entry('c', ['y'])],
      ['a'],
      ['c'],
    ],
    [
      'an entry claimed elsewhere holds back later news of its alerts',
      [entry('a', ['x'], claimed(at(1))), entry('b', ['x', 'z']), entry('c', ['z'])],
      [],
      [],
    ],
    ['a claim that ran out does not hold', [entry('a', ['x'], claimed(at(-1)))], [], ['a']],
    [
      'other environments are not this pass’s',
      [entry('a', ['x'], { environment: 'staging' }), entry('b', ['x'])],
      [],
      ['b'],
    ],
  ];
  it.each(rows)('%s', (_name, outbox, waiting, expected) => {
    const state = withOutbox(...outbox);
    const ready = due(state, {
      environment: 'prod',
      now: T0,
      alive,
      waiting: (e) => waiting.includes(e.notification.id),
    });
    expect(ready.map((e) => e.notification.id)).toEqual(expected);
  });
});

describe('max_outbox_age and removed notifiers: sweep', () => {
  const configured = new Set(['hook']);
  // A day and a minute after T0: entries recorded at T0 are past a one-day max_outbox_age.
  const now = at(24 * 60 + 1);
  const recent = (e: OutboxEntry): OutboxEntry => ({
    ...e,
    notification: { ...e.notification, createdAt: at(60).toISOString() },
  });
  const rows: Array<[name: string, outbox: OutboxEntry[], kept: string[], expired: string[], dropped: string[]]> = [
    ['younger than max_outbox_age: stays', [recent(entry('a', ['x']))], ['a'], [], []],
    [
      'older: buried, in any environment',
      [entry('a', ['x']), entry('b', ['x'], { environment: 'staging' })],
      [],
      ['a', 'b'],
      [],
    ],
    ['older but being delivered: kept', [entry('a', ['x'], claimed(at(24 * 60 + 5)))], ['a'], [], []],
    [
      'older, claimed by a process that died: buried',
      [entry('a', ['x'], claimed(at(24 * 60 + 5), 'dead'))],
      [],
      ['a'],
      [],
    ],
    [
      'for a notifier no longer configured: dropped, in this environment only',
      [recent(entry('a', ['x'], {}, 'gone')), recent(entry('b', ['x'], { environment: 'staging' }, 'gone'))],
      ['b'],
      [],
      ['a'],
    ],
  ];
  it.each(rows)('%s', (_name, outbox, kept, expired, dropped) => {
    const state = withOutbox(...outbox);
    const before = structuredClone(state);
    const swept = sweep(state, {
      environment: 'prod',
      now,
      maxAgeMs: 24 * 3_600_000,
      configured,
      alive: (by) => by !== 'dead',
    });
    expect(ids(swept.state)).toEqual(kept);
    expect(swept.expired.map((e) => e.notification.id)).toEqual(expired);
    expect(swept.dropped.map((e) => e.notification.id)).toEqual(dropped);
    expect(swept.state.dead.map((d) => [d.notification.id, d.lastError, d.claimedBy])).toEqual(
      expired.map((id) => [id, 'expired undelivered', undefined]),
    );
    expect(state).toEqual(before);
  });
});

describe('outcomes of a send', () => {
  const key = identityKey('prod', { check: 'stuck_batches' });
  const alert = (deliveredTo?: Record<string, Level>): TrackedAlert => ({
    key,
    ...idsFor(key),
    environment: 'prod',
    check: 'stuck_batches',
    level: 'critical',
    message: 'm',
    details: {},
    firingSince: T0.toISOString(),
    lastSeenAt: T0.toISOString(),
    healthyRuns: 0,
    ...(deliveredTo ? { deliveredTo } : {}),
  });
  const dedupKey = idsFor(key).dedupKey;

  const deliveredRows: Array<
    [
      name: string,
      kind: NotificationEvent['kind'],
      level: Level,
      before: Record<string, Level> | undefined,
      after: Record<string, Level> | undefined,
    ]
  > = [
    ['firing: remembered for the notifier', 'firing', 'warning', undefined, { hook: 'warning' }],
    ['a higher level raises it', 'escalated', 'critical', { hook: 'warning' }, { hook: 'critical' }],
    [
      'a lower level does not lower it',
      'repeat',
      'warning',
      { hook: 'critical', pager: 'critical' },
      { hook: 'critical', pager: 'critical' },
    ],
    ['a resolution is not remembered', 'resolved', 'critical', undefined, undefined],
  ];
  it.each(deliveredRows)('delivered, %s; the entry leaves the outbox', (_name, kind, level, before, after) => {
    const e = entry('a', []);
    e.notification.events = [ev(dedupKey, kind, level)];
    const state: AlertingState = { ...withOutbox(e, entry('b', ['y'])), alerts: { [key]: alert(before) } };
    const snapshot = structuredClone(state);
    const next = delivered(state, e, 'hook');
    expect(ids(next)).toEqual(['b']);
    expect(next.alerts[key]!.deliveredTo).toEqual(after);
    expect(state).toEqual(snapshot);
  });

  const retries: Array<[name: string, deliveryUnknown: boolean, maybeDelivered: boolean | undefined]> = [
    ['a retryable failure waits for its next attempt, released', false, undefined],
    ['delivery unknown: marked as maybe shown, for good', true, true],
  ];
  it.each(retries)('%s', (_name, deliveryUnknown, maybeDelivered) => {
    const state = withOutbox(entry('a', ['x'], { ...claimed(at(2), 'me|2|t'), attempts: 1 }));
    const next = retryLater(state, 'a', 'me|2|t', {
      message: 'hook: HTTP 503',
      attempts: 2,
      nextAttemptAt: nextAttemptAt(T0, 2),
      deliveryUnknown,
    });
    expect(next.outbox[0]).toEqual({
      ...entry('a', ['x']),
      attempts: 2,
      lastError: 'hook: HTTP 503',
      nextAttemptAt: at(0.5).toISOString(),
      ...(maybeDelivered ? { maybeDelivered } : {}),
    });
    expect(state.outbox[0]!.attempts).toBe(1);
  });

  it('refused (a 4xx): buried with the attempt counted, unclaimed', () => {
    const state = withOutbox(entry('a', ['x'], { ...claimed(at(2), 'me|2|t'), attempts: 1 }), entry('b', ['y']));
    const next = refused(state, 'a', at(1), 'hook: HTTP 400');
    expect(ids(next)).toEqual(['b']);
    expect(next.dead).toEqual([
      { ...entry('a', ['x']), attempts: 2, lastError: 'hook: HTTP 400', failedAt: at(1).toISOString() },
    ]);
    expect(refused(next, 'a', at(1), 'again')).toEqual(next);
  });

  it(`bury keeps the newest ${DEAD_KEPT} dead letters`, () => {
    let state = withOutbox(...Array.from({ length: DEAD_KEPT + 3 }, (_, i) => entry(`e${i}`, ['x'])));
    for (const e of [...state.outbox]) state = bury(state, e, T0, 'gone');
    expect(state.outbox).toEqual([]);
    expect(state.dead.map((d) => d.notification.id)).toEqual(Array.from({ length: DEAD_KEPT }, (_, i) => `e${i + 3}`));
  });

  it('a completed part is recorded once', () => {
    const state = withOutbox(entry('a', ['x']));
    const once = completePart(state, 'a', '+15550001111');
    expect(completePart(once, 'a', '+15550001111').outbox[0]!.completedParts).toEqual(['+15550001111']);
    expect(state.outbox[0]!.completedParts).toEqual([]);
  });
});
