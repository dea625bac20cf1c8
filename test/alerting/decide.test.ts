import { describe, expect, it } from 'vitest';
import { type DecideInput, decide, identityKey, idsFor, type TrackedAlert } from '../../src/alerting/decide.js';
import type { Alert, Level } from '../../src/types.js';

const T0 = new Date('2025-01-04T10:00:00Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const settings = { repeatIntervalMs: 4 * 3_600_000, resolveAfterRuns: 2 };

function observed(
  level: Level = 'critical',
  message = '3 batches stuck > 10m: processing(3)',
): Alert & { environment: string } {
  return { environment: 'prod', check: 'stuck_batches', level, message, details: { total_stuck: 3 } };
}

function tracked(overrides: Partial<TrackedAlert> = {}): TrackedAlert {
  const key = identityKey('prod', { check: 'stuck_batches' });
  return {
    key,
    ...idsFor(key),
    environment: 'prod',
    check: 'stuck_batches',
    level: 'critical',
    message: 'old message',
    details: {},
    firingSince: T0.toISOString(),
    lastSeenAt: T0.toISOString(),
    notifiedLevel: 'critical',
    lastNotifiedAt: T0.toISOString(),
    healthyRuns: 0,
    ...overrides,
  };
}

type Row = [
  name: string,
  input: Omit<DecideInput, 'settings'>,
  notify: string | undefined,
  next: Partial<TrackedAlert> | 'forgotten' | 'unchanged',
];

// One row per line of the transition table in src/alerting/decide.ts.
const rows: Row[] = [
  ['nothing known, nothing observed', { checkRan: true, silenced: false, now: at(5) }, undefined, 'forgotten'],
  [
    'new alert while silenced: tracked, not notified',
    { observed: observed(), checkRan: true, silenced: true, now: at(5) },
    undefined,
    { firingSince: at(5).toISOString(), healthyRuns: 0 },
  ],
  [
    'new alert: firing',
    { observed: observed(), checkRan: true, silenced: false, now: at(5) },
    'firing',
    { notifiedLevel: 'critical', lastNotifiedAt: at(5).toISOString(), firingSince: at(5).toISOString() },
  ],
  [
    'tracked and silenced: updated only',
    { previous: tracked(), observed: observed(), checkRan: true, silenced: true, now: at(500) },
    undefined,
    { lastNotifiedAt: T0.toISOString(), message: '3 batches stuck > 10m: processing(3)' },
  ],
  [
    'silence ended on a never-notified alert: firing',
    {
      previous: tracked({ notifiedLevel: undefined, lastNotifiedAt: undefined }),
      observed: observed(),
      checkRan: true,
      silenced: false,
      now: at(30),
    },
    'firing',
    { notifiedLevel: 'critical', firingSince: T0.toISOString() },
  ],
  [
    'level rose above the notified level: escalated',
    {
      previous: tracked({ level: 'warning', notifiedLevel: 'warning' }),
      observed: observed('critical'),
      checkRan: true,
      silenced: false,
      now: at(5),
    },
    'escalated',
    { notifiedLevel: 'critical', lastNotifiedAt: at(5).toISOString() },
  ],
  [
    'escalation notifies even when acknowledged',
    {
      previous: tracked({
        level: 'warning',
        notifiedLevel: 'warning',
        acknowledged: { at: T0.toISOString(), by: 'sre' },
      }),
      observed: observed('critical'),
      checkRan: true,
      silenced: false,
      now: at(5),
    },
    'escalated',
    { notifiedLevel: 'critical' },
  ],
  [
    'level fell: no notification, notified level kept',
    { previous: tracked(), observed: observed('warning'), checkRan: true, silenced: false, now: at(5) },
    undefined,
    { level: 'warning', notifiedLevel: 'critical' },
  ],
  [
    'acknowledged: no repeat even after the interval',
    {
      previous: tracked({ acknowledged: { at: T0.toISOString(), by: 'sre' } }),
      observed: observed(),
      checkRan: true,
      silenced: false,
      now: at(600),
    },
    undefined,
    { lastNotifiedAt: T0.toISOString() },
  ],
  [
    'repeat_interval passed: repeat',
    { previous: tracked(), observed: observed(), checkRan: true, silenced: false, now: at(240) },
    'repeat',
    { lastNotifiedAt: at(240).toISOString(), firingSince: T0.toISOString() },
  ],
  [
    'just before repeat_interval: nothing',
    { previous: tracked(), observed: observed(), checkRan: true, silenced: false, now: at(239.99) },
    undefined,
    { lastNotifiedAt: T0.toISOString() },
  ],
  [
    'still firing, new message text: same alert, nothing sent',
    {
      previous: tracked({ healthyRuns: 1 }),
      observed: observed('critical', '4 batches stuck > 10m: processing(4)'),
      checkRan: true,
      silenced: false,
      now: at(5),
    },
    undefined,
    { message: '4 batches stuck > 10m: processing(4)', healthyRuns: 0 },
  ],
  [
    'absent but its check failed: unchanged',
    { previous: tracked({ healthyRuns: 1 }), checkRan: false, silenced: false, now: at(5) },
    undefined,
    'unchanged',
  ],
  [
    'first healthy run: counted, not resolved',
    { previous: tracked(), checkRan: true, silenced: false, now: at(5) },
    undefined,
    { healthyRuns: 1 },
  ],
  [
    'second healthy run of a notified alert: resolved',
    { previous: tracked({ healthyRuns: 1 }), checkRan: true, silenced: false, now: at(10) },
    'resolved',
    'forgotten',
  ],
  [
    'healthy runs of a never-notified alert: forgotten quietly',
    { previous: tracked({ notifiedLevel: undefined, healthyRuns: 1 }), checkRan: true, silenced: false, now: at(10) },
    undefined,
    'forgotten',
  ],
];

describe('decide: the alert lifecycle table', () => {
  it.each(rows)('%s', (_name, input, notify, next) => {
    const decision = decide({ ...input, settings });
    expect(decision.notify).toBe(notify);
    if (next === 'forgotten') expect(decision.next).toBeUndefined();
    else if (next === 'unchanged') expect(decision.next).toEqual(input.previous);
    else expect(decision.next).toMatchObject(next);
  });

  it('a new silenced alert is remembered as never notified', () => {
    const d = decide({ observed: observed(), checkRan: true, silenced: true, now: at(5), settings });
    expect(d.next?.notifiedLevel).toBeUndefined();
    expect(d.next?.lastNotifiedAt).toBeUndefined();
  });

  it('resolves after exactly resolve_after_runs healthy runs', () => {
    let state: TrackedAlert | undefined = tracked();
    const sent: Array<string | undefined> = [];
    for (let run = 1; run <= 3; run++) {
      const d = decide({
        previous: state,
        checkRan: true,
        silenced: false,
        now: at(run),
        settings: { ...settings, resolveAfterRuns: 3 },
      });
      sent.push(d.notify);
      state = d.next;
    }
    expect(sent).toEqual([undefined, undefined, 'resolved']);
    expect(state).toBeUndefined();
  });

  it('a firing run in between resets the healthy-run count', () => {
    const one = decide({ previous: tracked(), checkRan: true, silenced: false, now: at(1), settings });
    const again = decide({
      previous: one.next,
      observed: observed(),
      checkRan: true,
      silenced: false,
      now: at(2),
      settings,
    });
    const healthy = decide({ previous: again.next, checkRan: true, silenced: false, now: at(3), settings });
    expect(healthy.notify).toBeUndefined();
    expect(healthy.next?.healthyRuns).toBe(1);
  });
});

describe('identity', () => {
  it('is environment + check + subject; a check failure is a separate identity', () => {
    expect(identityKey('prod', { check: 'error_spike', subject: 'vendor_x' })).toBe('prod|error_spike|vendor_x');
    expect(identityKey('prod', { check: 'error_spike' })).not.toBe(
      identityKey('prod', { check: 'error_spike', failed: true }),
    );
    expect(identityKey('dev', { check: 'error_spike' })).not.toBe(identityKey('prod', { check: 'error_spike' }));
  });

  it('gives stable ids: same key, same id and dedup key', () => {
    expect(idsFor('prod|stuck_batches|')).toEqual(idsFor('prod|stuck_batches|'));
    expect(idsFor('prod|stuck_batches|').id).toMatch(/^[0-9a-f]{8}$/);
    expect(idsFor('prod|stuck_batches|').dedupKey).not.toBe(idsFor('prod|error_spike|').dedupKey);
  });
});
