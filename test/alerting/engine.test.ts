import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertingEngine, DEFAULT_DELIVERY, type AlertingSettings } from '../../src/alerting/engine.js';
import { AlertStore } from '../../src/alerting/store.js';
import type { Notification, Notifier } from '../../src/alerting/types.js';
import { request } from '../../src/notifiers/http.js';
import { silentLogger } from '../../src/log.js';
import { Redactor } from '../../src/util/redact.js';
import type { Alert, RunResult } from '../../src/types.js';
import { overallStatus } from '../../src/run.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';

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
    secrets: () => [],
    async send(n: Notification, ctx) {
      await request({ url: `${server.url}/${name}`, body: JSON.stringify(n), headers: { 'content-type': 'application/json' }, label: name, timeoutMs: 2000 }, ctx.signal);
    },
    ...overrides,
  };
}

function engine(notifiers: Notifier[] = [notifier()], settings: Partial<AlertingSettings> = {}): AlertingEngine {
  return new AlertingEngine({
    store: new AlertStore(dir),
    notifiers,
    settings: { ...DEFAULT_DELIVERY, repeatIntervalMs: 4 * 3_600_000, resolveAfterRuns: 2, retryBaseMs: 10, retryMaxMs: 50, ...settings },
    logger: silentLogger,
    redactor: new Redactor(),
    host: 'test-host',
    now: () => clock,
    random: () => 0.5,
  });
}

const stuck: Alert = { check: 'stuck_batches', level: 'critical', message: '3 batches stuck > 10m: processing(3)', details: {} };
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
    checks: names.map((name) => ({ name, outcome: failed.includes(name) ? 'failed' : alerts.some((a) => a.check === name) ? 'alert' : 'ok', duration_ms: 1 })),
    duration_ms: 1,
    metrics: { total_checks: 3, alerts_triggered: alerts.length, critical_alerts: 0, warning_alerts: 0, skipped_checks: 0 },
  };
}

const bodies = (path = '/hook'): Notification[] => server.requests.filter((r) => r.url === path).map((r) => JSON.parse(r.body) as Notification);
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
    const e = engine([notifier('team'), notifier('quiet', { sendResolved: false }), notifier('oncall', { minLevel: 'critical' })]);
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
    const started = Date.now();
    const e = engine();
    const { outcome } = await e.process(run([stuck]));
    expect(outcome.notifications[0]).toMatchObject({ sent: 1, pending: 0, failed: 0 });
    expect(server.requests).toHaveLength(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
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
    const started = Date.now();
    const { outcome } = await engine([notifier()], { deliveryTimeoutMs: 1500 }).process(run([stuck]));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(outcome.notifications[0]).toMatchObject({ sent: 0, pending: 1 });
  });

  it('silenced alerts are reported and marked, not notified, and do not count toward the status', async () => {
    const store = new AlertStore(dir);
    await store.write({
      version: 1,
      alerts: {},
      outbox: [],
      dead: [],
      silences: [{ id: 's-1', environment: 'prod', check: 'stuck_batches', reason: 'migration', createdBy: 'sre', createdAt: clock.toISOString(), endsAt: new Date(clock.getTime() + 3_600_000).toISOString() }],
    });
    const e = engine();
    const { result } = await e.process(run([stuck, spike('vendor_x')]));
    expect(result.alerts.find((a) => a.check === 'stuck_batches')).toMatchObject({ silenced: true });
    expect(result.overall_status).toBe('degraded');
    expect(result.metrics).toMatchObject({ alerts_triggered: 1, critical_alerts: 0, warning_alerts: 1, silenced_alerts: 1 });
    expect(bodies().flatMap((n) => n.events.map((ev) => ev.check))).toEqual(['error_spike']);
    // The silence ends while the alert still fires: now it is notified.
    advance(61);
    await e.process(run([stuck, spike('vendor_x')]));
    expect(bodies().map((n) => n.events.map((ev) => `${ev.kind} ${ev.check}`))).toEqual([['firing error_spike'], ['firing stuck_batches']]);
  });

  it('a silence with a source only silences that source', async () => {
    const store = new AlertStore(dir);
    await store.write({
      version: 1, alerts: {}, outbox: [], dead: [],
      silences: [{ id: 's-2', check: 'error_spike', source: 'vendor_x', reason: 'r', createdBy: 'sre', createdAt: clock.toISOString(), endsAt: new Date(clock.getTime() + 3_600_000).toISOString() }],
    });
    const { result } = await engine().process(run([spike('vendor_x'), spike('vendor_y')]));
    expect(result.alerts.map((a) => [a.subject, a.silenced])).toEqual([['vendor_x', true], ['vendor_y', false]]);
  });

  it('an absent alert whose check failed stays firing; the failure is its own alert', async () => {
    const e = engine();
    await e.process(run([spike('vendor_x')]));
    const failure: Alert = { check: 'error_spike', level: 'critical', message: 'Check failed: connection refused', details: {}, failed: true };
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
});
