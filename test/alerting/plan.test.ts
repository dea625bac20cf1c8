import { describe, expect, it } from 'vitest';
import { identityKey, idsFor, type TrackedAlert } from '../../src/alerting/decide.js';
import { type PlanContext, plan, type Route } from '../../src/alerting/plan.js';
import { type AlertingState, emptyState, type OutboxEntry, type Silence } from '../../src/alerting/store.js';
import type { NotificationEvent } from '../../src/notifiers/contract.js';
import type { Alert, CheckSummary, Level, OverallStatus, RunResult } from '../../src/types.js';

/**
 * The planner as a table: one run's state before, alerts and notifiers in; the
 * notifications recorded, the outbox after and the report's status out. Every row
 * also checks that the state passed in is left as it was (the planner is pure).
 */

const T0 = new Date('2025-01-04T10:00:00Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const CHECKS = ['stuck_batches', 'error_spike', 'schema_cache'];

const stuck = (level: Level = 'critical', message = '3 batches stuck > 10m'): Alert => ({
  check: 'stuck_batches',
  level,
  message,
  details: { total_stuck: 3 },
});
const spike = (source: string, level: Level = 'warning'): Alert => ({
  check: 'error_spike',
  level,
  subject: source,
  message: `Error rate 30.0% for source ${source}`,
  details: { source },
});

/** What was known of `alert` after it was notified at T0 (override what a row needs). */
function tracked(alert: Alert, overrides: Partial<TrackedAlert> = {}, environment = 'prod'): TrackedAlert {
  const key = identityKey(environment, alert);
  return {
    key,
    ...idsFor(key),
    environment,
    check: alert.check,
    ...(alert.subject !== undefined ? { subject: alert.subject } : {}),
    level: alert.level,
    message: alert.message,
    details: alert.details,
    firingSince: T0.toISOString(),
    lastSeenAt: T0.toISOString(),
    notifiedLevel: alert.level,
    lastNotifiedAt: T0.toISOString(),
    healthyRuns: 0,
    deliveredTo: { hook: alert.level },
    ...overrides,
  };
}

/** A notification for `notifier` about `alert` waiting in the outbox since T0. */
function pending(
  notifier: string,
  alert: Alert,
  kind: NotificationEvent['kind'] = 'firing',
  overrides: Partial<OutboxEntry> = {},
): OutboxEntry {
  const t = tracked(alert);
  return {
    notification: {
      id: `old-${notifier}-${kind}`,
      notifier,
      createdAt: T0.toISOString(),
      host: 'h',
      events: [
        {
          kind,
          id: t.id,
          dedupKey: t.dedupKey,
          environment: 'prod',
          check: t.check,
          level: t.level,
          message: t.message,
          details: t.details,
          firingSince: t.firingSince,
        },
      ],
    },
    environment: 'prod',
    attempts: 0,
    completedParts: [],
    ...overrides,
  };
}

function stateWith(parts: { alerts?: TrackedAlert[]; outbox?: OutboxEntry[]; silences?: Silence[] }): AlertingState {
  return {
    ...emptyState(),
    alerts: Object.fromEntries((parts.alerts ?? []).map((a) => [a.key, a])),
    outbox: parts.outbox ?? [],
    silences: parts.silences ?? [],
  };
}

function silence(check: string, overrides: Partial<Silence> = {}): Silence {
  return {
    id: `s-${check}`,
    check,
    reason: 'maintenance',
    createdBy: 'sre',
    createdAt: T0.toISOString(),
    endsAt: at(24 * 60).toISOString(),
    ...overrides,
  };
}

/** A run of prod: each check `ok` or `alert`, unless `outcomes` says otherwise. */
function run(alerts: Alert[], outcomes: Record<string, Pick<CheckSummary, 'outcome' | 'reason'>> = {}): RunResult {
  const checks: CheckSummary[] = CHECKS.map((name) => ({
    name,
    outcome: alerts.some((a) => a.check === name) ? 'alert' : 'ok',
    duration_ms: 1,
    ...outcomes[name],
  }));
  return {
    timestamp: T0.toISOString(),
    environment: 'prod',
    overall_status: 'healthy',
    alerts,
    checks,
    duration_ms: 1,
    metrics: { total_checks: 3, alerts_triggered: 0, critical_alerts: 0, warning_alerts: 0, skipped_checks: 0 },
  };
}

const hook: Route = { name: 'hook', minLevel: 'warning', sendResolved: true };
const pager: Route = { name: 'pager', minLevel: 'critical', sendResolved: true };
const quiet: Route = { name: 'quiet', minLevel: 'warning', sendResolved: false };
const am: Route = { name: 'am', minLevel: 'warning', sendResolved: true, everyRun: true };

/** `firing:stuck_batches`, `repeat:error_spike/vendor_x`: an event as the table writes it. */
const show = (e: NotificationEvent): string => `${e.kind}:${e.check}${e.subject ? `/${e.subject}` : ''}`;
/** `hook: firing:stuck_batches, …`: an outbox entry as the table writes it. */
const showEntry = (e: OutboxEntry): string =>
  `${e.notification.notifier}: ${e.notification.events.map(show).join(', ')}`;

interface Row {
  name: string;
  state?: AlertingState;
  result: RunResult;
  notifiers?: Route[];
  now?: Date;
  /** Whether the holders of claims live (default: yes). */
  alive?: boolean;
  /** This run's new notifications, per notifier (one notification each). */
  sent: Record<string, string[]>;
  /** The whole outbox after the run; default: exactly this run's notifications. */
  outbox?: string[];
  status?: OverallStatus;
  /** Marks of the report's alerts, in order. */
  marks?: Array<Partial<Pick<Alert, 'silenced' | 'acknowledged'>>>;
}

const rows: Row[] = [
  {
    name: 'first: a new alert fires to every notifier at its level',
    result: run([stuck()]),
    notifiers: [hook, pager],
    sent: { hook: ['firing:stuck_batches'], pager: ['firing:stuck_batches'] },
    status: 'critical',
    marks: [{ silenced: false, acknowledged: false }],
  },
  {
    name: 'routing: a warning does not reach a critical-only notifier',
    result: run([spike('vendor_x')]),
    notifiers: [hook, pager],
    sent: { hook: ['firing:error_spike/vendor_x'] },
    status: 'degraded',
  },
  {
    name: 'storm: all of a run’s news for one notifier is one notification',
    result: run([stuck(), spike('a'), spike('b')]),
    sent: { hook: ['firing:stuck_batches', 'firing:error_spike/a', 'firing:error_spike/b'] },
  },
  {
    name: 'still firing within repeat_interval: nothing',
    state: stateWith({ alerts: [tracked(stuck())] }),
    result: run([stuck()]),
    now: at(60),
    sent: {},
  },
  {
    name: 'repeat: still firing after repeat_interval',
    state: stateWith({ alerts: [tracked(stuck())] }),
    result: run([stuck()]),
    now: at(240),
    sent: { hook: ['repeat:stuck_batches'] },
  },
  {
    name: 'escalated: warning became critical, now also for the critical-only notifier',
    state: stateWith({ alerts: [tracked(stuck('warning'))] }),
    result: run([stuck('critical')]),
    notifiers: [hook, pager],
    sent: { hook: ['escalated:stuck_batches'], pager: ['escalated:stuck_batches'] },
  },
  {
    name: 'acked: no repeat after repeat_interval, the report marks it',
    state: stateWith({ alerts: [tracked(stuck(), { acknowledged: { at: T0.toISOString(), by: 'sre' } })] }),
    result: run([stuck()]),
    now: at(600),
    sent: {},
    status: 'critical',
    marks: [{ acknowledged: true, silenced: false }],
  },
  {
    name: 'acked but escalated: notified',
    state: stateWith({
      alerts: [tracked(stuck('warning'), { acknowledged: { at: T0.toISOString(), by: 'sre' } })],
    }),
    result: run([stuck('critical')]),
    sent: { hook: ['escalated:stuck_batches'] },
  },
  {
    name: 'silenced: reported and marked, not notified, not counted in the status',
    state: stateWith({ silences: [silence('stuck_batches')] }),
    result: run([stuck()]),
    sent: {},
    status: 'healthy',
    marks: [{ silenced: true }],
  },
  {
    name: 'a silence naming a source silences only that source',
    state: stateWith({ silences: [silence('error_spike', { source: 'a' })] }),
    result: run([spike('a'), spike('b')]),
    sent: { hook: ['firing:error_spike/b'] },
    status: 'degraded',
    marks: [{ silenced: true }, { silenced: false }],
  },
  {
    name: 'a silence of another environment does not apply',
    state: stateWith({ silences: [silence('stuck_batches', { environment: 'staging' })] }),
    result: run([stuck()]),
    sent: { hook: ['firing:stuck_batches'] },
  },
  {
    name: 'an ended or expired silence does not apply',
    state: stateWith({
      silences: [
        silence('stuck_batches', { endsAt: at(-1).toISOString() }),
        silence('error_spike', { expiredAt: T0.toISOString() }),
      ],
    }),
    result: run([stuck(), spike('a')]),
    sent: { hook: ['firing:stuck_batches', 'firing:error_spike/a'] },
  },
  {
    name: 'silence ended: the tracked, never-notified alert fires now',
    state: stateWith({ alerts: [tracked(stuck(), { notifiedLevel: undefined, lastNotifiedAt: undefined })] }),
    result: run([stuck()]),
    now: at(30),
    sent: { hook: ['firing:stuck_batches'] },
  },
  {
    name: 'first healthy run: not resolved yet',
    state: stateWith({ alerts: [tracked(stuck())] }),
    result: run([]),
    sent: {},
  },
  {
    name: 'resolved: to notifiers that heard of it and want resolutions',
    state: stateWith({
      alerts: [tracked(stuck(), { healthyRuns: 1, deliveredTo: { hook: 'critical', quiet: 'critical' } })],
    }),
    result: run([]),
    notifiers: [hook, pager, quiet],
    sent: { hook: ['resolved:stuck_batches'] },
  },
  {
    name: 'resolved while its firing message waits undelivered: both cancelled',
    state: stateWith({
      alerts: [tracked(stuck(), { healthyRuns: 1, deliveredTo: {} })],
      outbox: [pending('hook', stuck())],
    }),
    result: run([]),
    sent: {},
    outbox: [],
  },
  {
    name: 'resolved while its waiting message may have been shown (delivery unknown): resolution follows',
    state: stateWith({
      alerts: [tracked(stuck(), { healthyRuns: 1, deliveredTo: {} })],
      outbox: [pending('hook', stuck(), 'firing', { maybeDelivered: true })],
    }),
    result: run([]),
    sent: { hook: ['resolved:stuck_batches'] },
  },
  {
    name: 'resolved while its message is being delivered by a live run: resolution follows',
    state: stateWith({
      alerts: [tracked(stuck(), { healthyRuns: 1, deliveredTo: {} })],
      outbox: [pending('hook', stuck(), 'firing', { claimedBy: 'other|1|x', claimedUntil: at(5).toISOString() })],
    }),
    result: run([]),
    sent: { hook: ['resolved:stuck_batches'] },
  },
  {
    name: 'resolved while its message is claimed by a run that died: cancelled',
    state: stateWith({
      alerts: [tracked(stuck(), { healthyRuns: 1, deliveredTo: {} })],
      outbox: [pending('hook', stuck(), 'firing', { claimedBy: 'here|1|x', claimedUntil: at(5).toISOString() })],
    }),
    result: run([]),
    alive: false,
    sent: {},
    outbox: [],
  },
  {
    name: 'resolved while a message with delivered parts waits: it stays, resolution only where delivered',
    state: stateWith({
      alerts: [tracked(stuck(), { healthyRuns: 1, deliveredTo: {} })],
      outbox: [pending('hook', stuck(), 'firing', { completedParts: ['+15550001111'] })],
    }),
    result: run([]),
    sent: {},
    outbox: ['hook: firing:stuck_batches'],
  },
  {
    name: 'absent while its check failed: not resolved',
    state: stateWith({ alerts: [tracked(stuck(), { healthyRuns: 1 })] }),
    result: run([], { stuck_batches: { outcome: 'failed' } }),
    sent: {},
  },
  {
    name: 'absent while its check was skipped: not resolved',
    state: stateWith({ alerts: [tracked(stuck(), { healthyRuns: 1 })] }),
    result: run([], { stuck_batches: { outcome: 'skipped', reason: 'database unreachable' } }),
    sent: {},
  },
  {
    name: 'absent because its check is disabled in config: resolved',
    state: stateWith({ alerts: [tracked(stuck(), { healthyRuns: 1 })] }),
    result: run([], { stuck_batches: { outcome: 'skipped', reason: 'disabled in config' } }),
    sent: { hook: ['resolved:stuck_batches'] },
  },
  {
    name: 'another environment’s alerts are left alone',
    state: stateWith({ alerts: [tracked(stuck(), { healthyRuns: 1 }, 'staging')] }),
    result: run([]),
    sent: {},
  },
  {
    name: 'every-run notifier: every firing alert again; this refresh replaces a waiting one',
    state: stateWith({
      alerts: [tracked(stuck(), { deliveredTo: { am: 'critical' } })],
      outbox: [pending('am', stuck(), 'repeat')],
    }),
    result: run([stuck(), spike('a')]),
    notifiers: [hook, am],
    now: at(5),
    sent: { hook: ['firing:error_spike/a'], am: ['firing:error_spike/a', 'repeat:stuck_batches'] },
  },
  {
    name: 'every-run notifier: a waiting refresh being delivered is kept',
    state: stateWith({
      alerts: [tracked(stuck())],
      outbox: [pending('am', stuck(), 'repeat', { claimedBy: 'other|1|x', claimedUntil: at(10).toISOString() })],
    }),
    result: run([stuck()]),
    notifiers: [am],
    now: at(5),
    sent: { am: ['repeat:stuck_batches'] },
    outbox: ['am: repeat:stuck_batches', 'am: repeat:stuck_batches'],
  },
  {
    name: 'every-run notifier: no refresh of a silenced alert',
    state: stateWith({ alerts: [tracked(stuck())], silences: [silence('stuck_batches')] }),
    result: run([stuck()]),
    notifiers: [am],
    now: at(5),
    sent: {},
  },
];

const context = (alive: boolean): PlanContext => {
  let n = 0;
  return {
    settings: { repeatIntervalMs: 4 * 3_600_000, resolveAfterRuns: 2 },
    host: 'h',
    redact: (text) => text.replaceAll('s3cret', '***'),
    newId: () => `n${++n}`,
    alive: () => alive,
  };
};

describe('plan: one run’s decisions and routing', () => {
  it.each(rows)('$name', (row) => {
    const state = row.state ?? emptyState();
    const before = structuredClone(state);
    const planned = plan(state, row.result, row.notifiers ?? [hook], row.now ?? T0, context(row.alive ?? true));

    const sent = Object.fromEntries(
      planned.entries.map((e) => [e.notification.notifier, e.notification.events.map(show)]),
    );
    expect(sent).toEqual(row.sent);
    expect(planned.state.outbox.map(showEntry)).toEqual(row.outbox ?? planned.entries.map(showEntry));
    if (row.status) expect(planned.result.overall_status).toBe(row.status);
    if (row.marks) expect(planned.result.alerts).toMatchObject(row.marks);
    expect(state).toEqual(before);
  });

  it('records new notifications unsent, with ids, host and time', () => {
    const planned = plan(emptyState(), run([stuck()]), [hook], T0, context(true));
    expect(planned.entries).toEqual([
      {
        notification: expect.objectContaining({ id: 'n1', notifier: 'hook', host: 'h', createdAt: T0.toISOString() }),
        environment: 'prod',
        attempts: 0,
        completedParts: [],
      },
    ]);
  });

  it('redacts what leaves the host, not the report', () => {
    const alert = { ...stuck(), message: 'token s3cret leaked', details: { url: 'https://x/s3cret' } };
    const planned = plan(emptyState(), run([alert]), [hook], T0, context(true));
    expect(planned.entries[0]!.notification.events[0]).toMatchObject({
      message: 'token *** leaked',
      details: { url: 'https://x/***' },
    });
    expect(planned.result.alerts[0]!.message).toBe('token s3cret leaked');
  });

  it('tracks, advances and forgets alerts in the state it returns', () => {
    const first = plan(emptyState(), run([stuck()]), [hook], T0, context(true));
    const key = identityKey('prod', stuck());
    expect(first.state.alerts[key]).toMatchObject({ notifiedLevel: 'critical', healthyRuns: 0 });
    const healthy = plan(first.state, run([]), [hook], at(5), context(true));
    expect(healthy.state.alerts[key]).toMatchObject({ healthyRuns: 1 });
    const gone = plan(healthy.state, run([]), [hook], at(10), context(true));
    expect(gone.state.alerts[key]).toBeUndefined();
  });

  it('counts the report without silenced alerts', () => {
    const planned = plan(
      stateWith({ silences: [silence('error_spike')] }),
      run([stuck(), spike('a')]),
      [hook],
      T0,
      context(true),
    );
    expect(planned.result.metrics).toMatchObject({
      alerts_triggered: 1,
      critical_alerts: 1,
      warning_alerts: 0,
      silenced_alerts: 1,
    });
  });
});
