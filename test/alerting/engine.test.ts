import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_DELIVERY, failureReason } from '../../src/alerting/deliver.js';
import { type AlertingDeps, AlertingEngine, type AlertingSettings } from '../../src/alerting/engine.js';
import { AlertStore } from '../../src/alerting/store.js';
import { silentLogger } from '../../src/log.js';
import type { Notification, Notifier } from '../../src/notifiers/contract.js';
import { DeliveryError, request } from '../../src/notifiers/http.js';
import { type Alert, FAILURE_REASONS, overallStatus, type RunResult } from '../../src/types.js';
import { Redactor } from '../../src/util/redact.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { gate, within } from '../helpers/wait.js';

/**
 * The engine with its real file store and a notifier that really POSTs over HTTP
 * to a local server, so delivery, retries and the outbox are exercised end to end.
 * The clock is injected: repeats and backoff are tested without waiting.
 */

let dir: string;
let server: TestHttpServer;
let clock: Date;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sentinel-engine-'));
  server = await startHttpServer();
  clock = new Date('2025-01-04T10:00:00Z');
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function notifier(name = 'hook', overrides: Partial<Notifier> = {}): Notifier {
  return {
    name,
    type: 'test',
    minLevel: 'warning',
    sendResolved: true,
    idempotent: false,
    secrets: () => [],
    async send(n: Notification, ctx) {
      await request(
        {
          url: `${server.url}/${name}`,
          body: JSON.stringify(n),
          headers: { 'content-type': 'application/json' },
          label: name,
          timeoutMs: 2000,
        },
        ctx.signal,
      );
    },
    ...overrides,
  };
}

function engine(
  notifiers: Notifier[] = [notifier()],
  settings: Partial<AlertingSettings> = {},
  deps: Partial<AlertingDeps> = {},
): AlertingEngine {
  return new AlertingEngine({
    store: new AlertStore(dir),
    notifiers,
    settings: {
      ...DEFAULT_DELIVERY,
      repeatIntervalMs: 4 * 3_600_000,
      resolveAfterRuns: 2,
      retryBaseMs: 10,
      retryMaxMs: 50,
      ...settings,
    },
    logger: silentLogger,
    redactor: new Redactor(),
    host: 'test-host',
    now: () => clock,
    random: () => 0.5,
    ...deps,
  });
}

const stuck: Alert = {
  check: 'stuck_batches',
  level: 'critical',
  message: '3 batches stuck > 10m: processing(3)',
  details: {},
};
const spike = (source: string, level: Alert['level'] = 'warning'): Alert => ({
  check: 'error_spike',
  level,
  subject: source,
  message: `Error rate 30.0% > 25.0% threshold for source ${source}`,
  details: { source },
});

function run(alerts: Alert[], failed: string[] = []): RunResult {
  const names = ['stuck_batches', 'error_spike', 'schema_cache'];
  return {
    timestamp: clock.toISOString(),
    environment: 'prod',
    overall_status: overallStatus(alerts),
    alerts,
    checks: names.map((name) => ({
      name,
      outcome: failed.includes(name) ? 'failed' : alerts.some((a) => a.check === name) ? 'alert' : 'ok',
      duration_ms: 1,
    })),
    duration_ms: 1,
    metrics: {
      total_checks: 3,
      alerts_triggered: alerts.length,
      critical_alerts: 0,
      warning_alerts: 0,
      skipped_checks: 0,
    },
  };
}

const bodies = (path = '/hook'): Notification[] =>
  server.requests.filter((r) => r.url === path).map((r) => JSON.parse(r.body) as Notification);
const advance = (minutes: number): void => {
  clock = new Date(clock.getTime() + minutes * 60_000);
};

describe('alerting engine', () => {
  it('notifies once per incident across many runs, then once when it resolves', async () => {
    const e = engine();
    for (let i = 0; i < 5; i++) {
      await e.process(run([stuck]));
      advance(5);
    }
    expect(bodies().map((n) => n.events.map((ev) => ev.kind))).toEqual([['firing']]);
    await e.process(run([]));
    expect(bodies()).toHaveLength(1);
    advance(5);
    await e.process(run([]));
    expect(bodies().map((n) => n.events.map((ev) => ev.kind))).toEqual([['firing'], ['resolved']]);
    expect(bodies()[1]!.events[0]!.resolvedAt).toBe(clock.toISOString());
  });

  it('repeats a still-firing alert every repeat_interval', async () => {
    const e = engine([notifier()], { repeatIntervalMs: 60 * 60_000 });
    await e.process(run([stuck]));
    advance(59);
    await e.process(run([stuck]));
    advance(1);
    await e.process(run([stuck]));
    expect(bodies().map((n) => n.events[0]!.kind)).toEqual(['firing', 'repeat']);
  });

  it('escalates to a notifier that only takes critical alerts', async () => {
    const e = engine([notifier('team'), notifier('oncall', { minLevel: 'critical' })]);
    await e.process(run([spike('vendor_x', 'warning')]));
    await e.process(run([spike('vendor_x', 'critical')]));
    expect(bodies('/team').map((n) => n.events[0]!.kind)).toEqual(['firing', 'escalated']);
    expect(bodies('/oncall').map((n) => n.events[0]!.kind)).toEqual(['escalated']);
  });

  it('sends resolved only to notifiers that want it and were told about the alert', async () => {
    const e = engine([
      notifier('team'),
      notifier('quiet', { sendResolved: false }),
      notifier('oncall', { minLevel: 'critical' }),
    ]);
    await e.process(run([spike('vendor_x')]));
    await e.process(run([]));
    await e.process(run([]));
    expect(bodies('/team').map((n) => n.events[0]!.kind)).toEqual(['firing', 'resolved']);
    expect(bodies('/quiet').map((n) => n.events[0]!.kind)).toEqual(['firing']);
    expect(bodies('/oncall')).toEqual([]);
  });

  it('groups a storm of 50 alerts into one message per notifier', async () => {
    const e = engine([notifier('a'), notifier('b')]);
    await e.process(run(Array.from({ length: 50 }, (_, i) => spike(`vendor_${i}`))));
    expect(bodies('/a')).toHaveLength(1);
    expect(bodies('/a')[0]!.events).toHaveLength(50);
    expect(bodies('/b')).toHaveLength(1);
  });

  it('keeps an undelivered notification through an outage and delivers it on a later run', async () => {
    server.fallback({ status: 503, body: 'upstream down' });
    const e = engine([notifier()], { attemptsPerRun: 2 });
    const first = await e.process(run([stuck]));
    expect(first.outcome.notifications[0]).toMatchObject({ sent: 0, pending: 1 });
    const state = JSON.parse(await readFile(join(dir, 'alerting.json'), 'utf8'));
    expect(state.outbox).toHaveLength(1);
    expect(state.outbox[0].lastError).toMatch(/HTTP 503/);

    server.fallback({ status: 200 });
    // Too early for the backoff: nothing is sent, nothing is lost.
    const early = await e.process(run([stuck]));
    expect(early.outcome.notifications[0]).toMatchObject({ sent: 0, pending: 1 });
    advance(1);
    const later = await e.process(run([stuck]));
    expect(later.outcome.notifications[0]).toMatchObject({ sent: 1, pending: 0 });
    const delivered = server.requests.filter((r) => r.url === '/hook' && r.body.includes('"firing"'));
    expect(delivered.length).toBeGreaterThanOrEqual(3); // two failed attempts, then the success
    expect(JSON.parse(await readFile(join(dir, 'alerting.json'), 'utf8')).outbox).toEqual([]);
  });

  it('retries within the run on 5xx and honours Retry-After on 429', async () => {
    server.queue({ status: 500 }, { status: 429, headers: { 'retry-after': '1' } });
    const waits: number[] = [];
    const e = engine([notifier()], {}, { sleep: async (ms) => void waits.push(ms) });
    const { outcome } = await e.process(run([stuck]));
    expect(outcome.notifications[0]).toMatchObject({ sent: 1, pending: 0, failed: 0 });
    expect(server.requests).toHaveLength(3);
    // The wait before the third attempt is the provider's Retry-After (1 s), not the short backoff.
    expect(waits.at(-1)).toBeGreaterThanOrEqual(1000);
  });

  it('gives up at once on a 4xx, reports it, and keeps it visible in the state', async () => {
    server.fallback({ status: 404, body: { message: 'Unknown Webhook', code: 10015 } });
    const { outcome } = await engine().process(run([stuck]));
    expect(server.requests).toHaveLength(1);
    expect(outcome.notifications[0]).toMatchObject({ sent: 0, failed: 1, pending: 0 });
    expect(outcome.notifications[0]!.errors[0]).toMatch(/HTTP 404.*Unknown Webhook/);
    const state = JSON.parse(await readFile(join(dir, 'alerting.json'), 'utf8'));
    expect(state.dead).toHaveLength(1);
    expect(state.outbox).toEqual([]);
  });

  it('bounds the time spent delivering to a hanging provider', async () => {
    server.fallback({ status: 200, hang: true });
    const { outcome } = await within(
      engine([notifier()], { deliveryTimeoutMs: 1500 }).process(run([stuck])),
      20_000,
      'the run against a hanging provider',
    );
    expect(outcome.notifications[0]).toMatchObject({ sent: 0, pending: 1 });
  });

  it('silenced alerts are reported and marked, not notified, and do not count toward the status', async () => {
    const store = new AlertStore(dir);
    await store.write({
      version: 1,
      alerts: {},
      outbox: [],
      dead: [],
      silences: [
        {
          id: 's-1',
          environment: 'prod',
          check: 'stuck_batches',
          reason: 'migration',
          createdBy: 'sre',
          createdAt: clock.toISOString(),
          endsAt: new Date(clock.getTime() + 3_600_000).toISOString(),
        },
      ],
    });
    const e = engine();
    const { result } = await e.process(run([stuck, spike('vendor_x')]));
    expect(result.alerts.find((a) => a.check === 'stuck_batches')).toMatchObject({
      silenced: true,
      since: clock.toISOString(),
    });
    expect(result.overall_status).toBe('degraded');
    expect(result.metrics).toMatchObject({
      alerts_triggered: 1,
      critical_alerts: 0,
      warning_alerts: 1,
      silenced_alerts: 1,
    });
    expect(bodies().flatMap((n) => n.events.map((ev) => ev.check))).toEqual(['error_spike']);
    // The silence ends while the alert still fires: now it is notified.
    advance(61);
    await e.process(run([stuck, spike('vendor_x')]));
    expect(bodies().map((n) => n.events.map((ev) => `${ev.kind} ${ev.check}`))).toEqual([
      ['firing error_spike'],
      ['firing stuck_batches'],
    ]);
  });

  it('a silence with a source only silences that source', async () => {
    const store = new AlertStore(dir);
    await store.write({
      version: 1,
      alerts: {},
      outbox: [],
      dead: [],
      silences: [
        {
          id: 's-2',
          check: 'error_spike',
          source: 'vendor_x',
          reason: 'r',
          createdBy: 'sre',
          createdAt: clock.toISOString(),
          endsAt: new Date(clock.getTime() + 3_600_000).toISOString(),
        },
      ],
    });
    const { result } = await engine().process(run([spike('vendor_x'), spike('vendor_y')]));
    expect(result.alerts.map((a) => [a.subject, a.silenced])).toEqual([
      ['vendor_x', true],
      ['vendor_y', false],
    ]);
  });

  it('an absent alert whose check failed stays firing; the failure is its own alert', async () => {
    const e = engine();
    await e.process(run([spike('vendor_x')]));
    const failure: Alert = {
      check: 'error_spike',
      level: 'critical',
      message: 'Check failed: connection refused',
      details: {},
      failed: true,
    };
    for (let i = 0; i < 3; i++) await e.process(run([failure], ['error_spike']));
    expect(bodies().map((n) => n.events.map((ev) => `${ev.kind} ${ev.message}`))).toEqual([
      ['firing Error rate 30.0% > 25.0% threshold for source vendor_x'],
      ['firing Check failed: connection refused'],
    ]);
  });

  it('resumes a multi-part notification without resending delivered parts', async () => {
    const sentParts: string[] = [];
    let failOnce = true;
    const multi = notifier('multi', {
      async send(_n, ctx) {
        for (const part of ['+1', '+2', '+3']) {
          if (ctx.completed.has(part)) continue;
          if (part === '+2' && failOnce) {
            failOnce = false;
            throw new (await import('../../src/notifiers/http.js')).DeliveryError('boom', true);
          }
          sentParts.push(part);
          ctx.markCompleted(part);
        }
      },
    });
    await engine([multi]).process(run([stuck]));
    expect(sentParts).toEqual(['+1', '+2', '+3']);
  });

  it('two engines on the same state directory at once send one notification', async () => {
    await Promise.all([engine().process(run([stuck])), engine().process(run([stuck]))]);
    expect(bodies()).toHaveLength(1);
  });

  it('keeps environments sharing a state directory apart', async () => {
    server.fallback({ status: 500 });
    const dev = engine([notifier('hook'), notifier('am')], { attemptsPerRun: 1 });
    await dev.process(run([stuck]));
    server.fallback({ status: 200 });
    server.requests.length = 0;
    // prod has only `hook` (pointing elsewhere in real life): it must neither
    // deliver dev's entries nor drop dev's `am` entry, and is not blocked by them.
    const prodRun = { ...run([stuck]), environment: 'prod-2' };
    const prod = engine([notifier('hook')]);
    const { outcome } = await prod.process(prodRun);
    expect(outcome.notifications[0]).toMatchObject({ sent: 1, pending: 0 });
    expect(bodies().map((n) => n.events[0]!.environment)).toEqual(['prod-2']);
    const state = JSON.parse(await readFile(join(dir, 'alerting.json'), 'utf8'));
    expect(
      state.outbox
        .map(
          (e: { environment: string; notification: { notifier: string } }) =>
            `${e.environment}/${e.notification.notifier}`,
        )
        .sort(),
    ).toEqual(['prod/am', 'prod/hook']);
  });

  it('does not resolve an alert because its check was skipped, but does when the check is disabled', async () => {
    const e = engine();
    await e.process(run([stuck]));
    const skipped = (reason: string): RunResult => ({
      ...run([]),
      checks: [
        { name: 'stuck_batches', outcome: 'skipped', duration_ms: 0, reason },
        { name: 'error_spike', outcome: 'ok', duration_ms: 1 },
      ],
    });
    for (let i = 0; i < 3; i++) await e.process(skipped('no PostgREST URL configured'));
    expect(bodies().map((n) => n.events[0]!.kind)).toEqual(['firing']);
    await e.process(skipped('disabled in config'));
    await e.process(skipped('disabled in config'));
    expect(bodies().map((n) => n.events[0]!.kind)).toEqual(['firing', 'resolved']);
  });

  it('sends resolved only to notifiers that received the firing message', async () => {
    server.fallback((req) => (req.url === '/refuses' ? { status: 404, body: 'Unknown Webhook' } : { status: 200 }));
    const e = engine([notifier('hook'), notifier('refuses')]);
    await e.process(run([stuck]));
    server.fallback({ status: 200 });
    await e.process(run([]));
    await e.process(run([]));
    expect(bodies('/hook').map((n) => n.events[0]!.kind)).toEqual(['firing', 'resolved']);
    expect(bodies('/refuses').map((n) => n.events[0]!.kind)).toEqual(['firing']); // the refused one, nothing after
  });

  it('a firing message still waiting when the alert resolves is dropped, not followed by a resolved one', async () => {
    server.fallback({ status: 503 });
    const e = engine([notifier()], { attemptsPerRun: 1 });
    await e.process(run([stuck]));
    await e.process(run([]));
    await e.process(run([]));
    server.fallback({ status: 200 });
    advance(60);
    const { outcome } = await e.process(run([]));
    expect(outcome.notifications[0]).toMatchObject({ sent: 0, pending: 0 });
    expect(server.requests.filter((r) => r.body.includes('"resolved"'))).toEqual([]);
  });

  it('does not hold the state lock while a provider is slow, and never sends one entry twice', async () => {
    const release = gate();
    server.fallback((req) =>
      req.body.includes('stuck_batches') ? { status: 200, until: release.promise } : { status: 200 },
    );
    let slowDone = false;
    const slow = engine()
      .process(run([stuck]))
      .finally(() => (slowDone = true));
    await server.received(1); // the slow delivery is in flight, held by the provider
    const other = await within(
      engine().process({ ...run([spike('vendor_x')]), environment: 'prod' }),
      20_000,
      'a second run while a delivery is held',
    );
    expect(slowDone).toBe(false); // it did not wait for the slow delivery
    release.open();
    await slow;
    const firing = server.requests
      .map((r) => JSON.parse(r.body) as Notification)
      .flatMap((n) => n.events.map((ev) => ev.check));
    expect(firing.filter((c) => c === 'stuck_batches')).toHaveLength(1);
    expect(other.outcome.error).toBeUndefined();
  });

  it('keeps one pending refresh for an every-run notifier through an outage', async () => {
    server.fallback({ status: 500 });
    const am = notifier('am', { everyRun: true });
    const e = engine([am], { attemptsPerRun: 1 });
    for (let i = 0; i < 6; i++) {
      await e.process(run([stuck]));
      advance(5);
    }
    const state = JSON.parse(await readFile(join(dir, 'alerting.json'), 'utf8'));
    expect(state.outbox.length).toBeLessThanOrEqual(2); // the first firing and the latest refresh
  });

  it('an undeliverable entry holds back later messages about the same alert only', async () => {
    server.fallback((req) => (req.body.includes('stuck_batches') ? { status: 503 } : { status: 200 }));
    const e = engine([notifier()], { attemptsPerRun: 1 });
    await e.process(run([stuck]));
    await e.process(run([stuck, spike('vendor_x')]));
    const delivered = server.requests
      .filter((r) => !r.body.includes('stuck_batches'))
      .map((r) => (JSON.parse(r.body) as Notification).events[0]!.check);
    expect(delivered).toEqual(['error_spike']);
  });

  it('masks secrets in what it sends', async () => {
    const e = new AlertingEngine({
      store: new AlertStore(dir),
      notifiers: [notifier()],
      settings: { ...DEFAULT_DELIVERY, repeatIntervalMs: 3_600_000, resolveAfterRuns: 2 },
      logger: silentLogger,
      redactor: new Redactor(['pw-in-error-77']),
      host: 'h',
      now: () => clock,
    });
    await e.process(
      run(
        [
          {
            check: 'error_spike',
            level: 'critical',
            failed: true,
            message: 'Check failed: postgres://u:pw-in-error-77@db/x refused',
            details: { error: 'pw-in-error-77' },
          },
        ],
        ['error_spike'],
      ),
    );
    expect(server.requests[0]!.body).not.toContain('pw-in-error-77');
    expect(server.requests[0]!.body).toContain('***');
  });

  it(
    'reports an unreadable state instead of pretending all is well, and still applies silences from it when it ' +
      'can',
    async () => {
      const { writeFile: write } = await import('node:fs/promises');
      await write(join(dir, 'alerting.json'), '{broken');
      const { result, outcome } = await engine().process(run([stuck]));
      expect(outcome.error).toMatch(/not valid JSON/);
      expect(result.overall_status).toBe('critical');
      expect(server.requests).toHaveLength(0);
    },
  );
});

describe('alerting engine with replicas (mayDeliver)', () => {
  it(
    'a process that lost leadership records but does not deliver; the next leader delivers the same ' +
      'notification once',
    async () => {
      let leader = false;
      const deposed = new AlertingEngine({
        store: new AlertStore(dir),
        notifiers: [notifier()],
        settings: {
          ...DEFAULT_DELIVERY,
          repeatIntervalMs: 4 * 3_600_000,
          resolveAfterRuns: 2,
          retryBaseMs: 10,
          retryMaxMs: 50,
        },
        logger: silentLogger,
        redactor: new Redactor(),
        host: 'test-host',
        now: () => clock,
        mayDeliver: async () => leader,
      });
      const { outcome } = await deposed.process(run([stuck]));
      expect(outcome.notifications).toEqual([]);
      expect(server.requests).toHaveLength(0);
      expect((await new AlertStore(dir).read()).outbox).toHaveLength(1);

      // The new leader (here the same engine, now leading) sends what was recorded, once.
      leader = true;
      advance(1);
      await deposed.process(run([stuck]));
      expect(bodies().map((n) => n.events.map((ev) => ev.kind))).toEqual([['firing']]);
      expect((await new AlertStore(dir).read()).outbox).toHaveLength(0);
    },
  );
});

describe('alerting engine with replicas: leadership asked before every send', () => {
  /** Records one notification per alert for `hook` without delivering (a deposed process records, does not send). */
  async function twoPending(): Promise<void> {
    const recorder = engine([notifier()], {}, { mayDeliver: async () => false });
    await recorder.process(run([stuck]));
    await recorder.process(run([stuck, spike('vendor_x')]));
    const { outbox } = await new AlertStore(dir).read();
    expect(outbox.map((e) => e.notification.events[0]!.check)).toEqual(['stuck_batches', 'error_spike']);
  }

  it(
    'stops delivering when leadership is lost after the first ' + 'send, and releases the rest for the new leader',
    async () => {
      await twoPending();
      let leader = true;
      let asked = 0;
      // The provider accepts the first message; meanwhile this process loses the lock.
      server.fallback(() => {
        leader = false;
        return { status: 200 };
      });
      const e = engine(
        [notifier()],
        {},
        {
          mayDeliver: async () => {
            asked++;
            return leader;
          },
        },
      );
      advance(1);
      const { outcome } = await e.process(run([stuck, spike('vendor_x')]));
      expect(bodies().map((n) => n.events[0]!.check)).toEqual(['stuck_batches']);
      expect(outcome.notifications[0]).toMatchObject({ sent: 1, pending: 1, failed: 0, errors: [] });
      // Once before delivery starts, once before each send (the second said no).
      expect(asked).toBe(3);
      const { outbox } = await new AlertStore(dir).read();
      expect(outbox).toHaveLength(1);
      expect(outbox[0]).toMatchObject({
        attempts: 0,
        notification: { events: [expect.objectContaining({ check: 'error_spike' })] },
      });
      expect(outbox[0]!.claimedBy).toBeUndefined();
      expect(outbox[0]!.claimedUntil).toBeUndefined();

      // The new leader sends what was left, once.
      server.fallback({ status: 200 });
      await engine().process(run([stuck, spike('vendor_x')]));
      expect(bodies().map((n) => n.events[0]!.check)).toEqual(['stuck_batches', 'error_spike']);
      expect((await new AlertStore(dir).read()).outbox).toEqual([]);
    },
  );

  it('does not retry after leadership is lost during the backoff between attempts', async () => {
    let leader = true;
    server.fallback(() => {
      leader = false;
      return { status: 503 };
    });
    const e = engine([notifier()], { attemptsPerRun: 4 }, { mayDeliver: async () => leader });
    const { outcome } = await e.process(run([stuck]));
    expect(server.requests).toHaveLength(1);
    // Not counted as a failure of this process: released untouched for the new leader.
    expect(outcome.notifications[0]).toMatchObject({ sent: 0, pending: 1, failed: 0, errors: [] });
    const { outbox } = await new AlertStore(dir).read();
    expect(outbox[0]).toMatchObject({ attempts: 0 });
    expect(outbox[0]!.claimedBy).toBeUndefined();
    expect(outbox[0]!.nextAttemptAt).toBeUndefined();
  });

  it('one answer "not the leader" stops every notifier delivering in parallel', async () => {
    const recorder = engine([notifier('a'), notifier('b'), notifier('c')], {}, { mayDeliver: async () => false });
    await recorder.process(run([stuck]));
    let answers = 0;
    // Yes before delivery starts, then no: not one message goes out.
    const e = engine([notifier('a'), notifier('b'), notifier('c')], {}, { mayDeliver: async () => ++answers === 1 });
    const { outcome } = await e.process(run([stuck]));
    expect(server.requests).toHaveLength(0);
    expect(outcome.notifications.map((n) => [n.notifier, n.sent, n.pending])).toEqual([
      ['a', 0, 1],
      ['b', 0, 1],
      ['c', 0, 1],
    ]);
    expect((await new AlertStore(dir).read()).outbox.every((o) => o.claimedBy === undefined)).toBe(true);
  });
});

describe('alerting engine: flush (the final delivery on shutdown)', () => {
  it("delivers an entry waiting in Sentinel's own backoff, which a run would not send yet", async () => {
    server.fallback({ status: 503 });
    const e = engine([notifier()], { attemptsPerRun: 1 });
    await e.process(run([stuck]));
    const [entry] = (await new AlertStore(dir).read()).outbox;
    expect(Date.parse(entry!.nextAttemptAt!)).toBeGreaterThan(clock.getTime());
    server.fallback({ status: 200 });
    // A run honours the backoff...
    expect((await e.process(run([stuck]))).outcome.notifications[0]).toMatchObject({ sent: 0, pending: 1 });
    // ...the final flush does not: it is this process's last chance.
    const flushed = await e.flush('prod');
    expect(flushed.notifications[0]).toMatchObject({ sent: 1, pending: 0, failed: 0 });
    expect(bodies().filter((n) => n.events[0]!.kind === 'firing')).toHaveLength(2); // the failed try, then the flush
    expect((await new AlertStore(dir).read()).outbox).toEqual([]);
    // Nothing left: a second flush sends nothing.
    expect((await e.flush('prod')).notifications[0]).toMatchObject({ sent: 0, pending: 0 });
    expect(server.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
  });

  it("honours a wait the provider asked for (429 Retry-After), other runs' claims and other environments", async () => {
    server.fallback({ status: 429, headers: { 'retry-after': '120' } });
    const e = engine([notifier()], { attemptsPerRun: 1 });
    await e.process(run([stuck]));
    expect(server.requests).toHaveLength(1);
    server.fallback({ status: 200 });
    expect((await e.flush('prod')).notifications[0]).toMatchObject({ sent: 0, pending: 1 });
    expect(server.requests).toHaveLength(1);

    // Claimed by another live run (this very process's pid on this host counts as alive).
    const store = new AlertStore(dir);
    await store.update((state) => {
      state.outbox = [];
    });
    const other = engine([notifier()], {}, { mayDeliver: async () => false });
    await other.process(run([spike('vendor_y')]));
    const { hostname } = await import('node:os');
    await store.update((state) => {
      state.outbox[0]!.claimedBy = `${hostname()}|${process.pid}|someone-else`;
      state.outbox[0]!.claimedUntil = new Date(clock.getTime() + 60_000).toISOString();
    });
    expect((await e.flush('prod')).notifications[0]).toMatchObject({ sent: 0, pending: 1 });
    // Another environment's entry is not this process's to send.
    await store.update((state) => {
      delete state.outbox[0]!.claimedBy;
      delete state.outbox[0]!.claimedUntil;
    });
    expect((await e.flush('staging')).notifications[0]).toMatchObject({ sent: 0, pending: 0 });
    expect(server.requests).toHaveLength(1);
    expect((await e.flush('prod')).notifications[0]).toMatchObject({ sent: 1, pending: 0 });
  });

  it('is bounded by delivery_timeout against a provider that hangs, and keeps the entry', async () => {
    server.fallback({ status: 503 });
    const e = engine([notifier()], { attemptsPerRun: 1, deliveryTimeoutMs: 1000 });
    await e.process(run([stuck]));
    server.fallback({ status: 200, hang: true });
    const flushed = await within(e.flush('prod'), 20_000, 'the flush against a hanging provider');
    expect(flushed.notifications[0]).toMatchObject({
      sent: 0,
      pending: 1,
      reasons: expect.objectContaining({ timeout: 1 }),
    });
    expect((await new AlertStore(dir).read()).outbox[0]!.claimedBy).toBeUndefined();
  });

  it('sends nothing when this process is not the leader', async () => {
    server.fallback({ status: 503 });
    await engine([notifier()], { attemptsPerRun: 1 }).process(run([stuck]));
    server.fallback({ status: 200 });
    server.requests.length = 0;
    const flushed = await engine([notifier()], {}, { mayDeliver: async () => false }).flush('prod');
    expect(flushed).toEqual({ notifications: [] });
    expect(server.requests).toHaveLength(0);
  });
});

describe('alerting engine: failure reasons per notifier', () => {
  it('maps delivery errors to a fixed set of reasons', () => {
    expect(failureReason(new DeliveryError('x: HTTP 404', false, 404))).toBe('rejected');
    expect(failureReason(new DeliveryError('x: HTTP 401', false, 401))).toBe('rejected');
    expect(failureReason(new DeliveryError('x: HTTP 429', true, 429, 1000))).toBe('rate_limited');
    expect(failureReason(new DeliveryError('x: HTTP 503', true, 503))).toBe('server_error');
    expect(failureReason(new DeliveryError('x: HTTP 500', true, 500))).toBe('server_error');
    expect(failureReason(new DeliveryError('x: no answer within 2s', true))).toBe('timeout');
    expect(failureReason(new DeliveryError('x: delivery aborted', true))).toBe('timeout');
    expect(failureReason(new DeliveryError('x: connection refused', true), true)).toBe('timeout');
    expect(failureReason(new DeliveryError('x: connection refused', true))).toBe('network');
    expect(failureReason(new DeliveryError('x: host not found', true))).toBe('network');
    expect(failureReason(new Error('socket hang up'))).toBe('network');
    expect(FAILURE_REASONS).toEqual(['rejected', 'expired', 'rate_limited', 'server_error', 'timeout', 'network']);
  });

  it('counts each failed delivery of a run by reason, per notifier, every reason present', async () => {
    const net = await import('node:net');
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as import('node:net').AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));

    server.fallback((req) => {
      if (req.url === '/refused') return { status: 404, body: 'Unknown Webhook' };
      if (req.url === '/limited') return { status: 429, headers: { 'retry-after': '60' } };
      if (req.url === '/down') return { status: 502 };
      if (req.url === '/slow') return { status: 200, hang: true };
      return { status: 200 };
    });
    const unreachable = notifier('unreachable', {
      async send(n, ctx) {
        await request(
          { url: `http://127.0.0.1:${closedPort}/x`, body: JSON.stringify(n), label: 'unreachable', timeoutMs: 2000 },
          ctx.signal,
        );
      },
    });
    const slow = notifier('slow', {
      async send(n, ctx) {
        await request(
          { url: `${server.url}/slow`, body: JSON.stringify(n), label: 'slow', timeoutMs: 200 },
          ctx.signal,
        );
      },
    });
    const all = [notifier('ok'), notifier('refused'), notifier('limited'), notifier('down'), slow, unreachable];
    const e = engine(all, { attemptsPerRun: 1, maxOutboxAgeMs: 30 * 60_000 });
    const { outcome } = await e.process(run([stuck]));
    const zero = Object.fromEntries(FAILURE_REASONS.map((r) => [r, 0]));
    const reasons = Object.fromEntries(outcome.notifications.map((n) => [n.notifier, n.reasons]));
    expect(reasons).toEqual({
      ok: zero,
      refused: { ...zero, rejected: 1 },
      limited: { ...zero, rate_limited: 1 },
      down: { ...zero, server_error: 1 },
      slow: { ...zero, timeout: 1 },
      unreachable: { ...zero, network: 1 },
    });
    // One reason per error message; `failed` is the final ones only.
    for (const n of outcome.notifications)
      expect(Object.values(n.reasons).reduce((a, b) => a + b, 0)).toBe(n.errors.length);
    expect(outcome.notifications.find((n) => n.notifier === 'refused')).toMatchObject({ failed: 1, pending: 0 });

    // Still undelivered after max_outbox_age: given up, counted as expired.
    advance(31);
    const later = await e.process(run([stuck]));
    const expired = Object.fromEntries(
      later.outcome.notifications.filter((n) => n.reasons.expired > 0).map((n) => [n.notifier, n.reasons.expired]),
    );
    expect(expired).toEqual({ limited: 1, down: 1, slow: 1, unreachable: 1 });
    expect(later.outcome.notifications.find((n) => n.notifier === 'down')).toMatchObject({ failed: 1 });
  });
});
