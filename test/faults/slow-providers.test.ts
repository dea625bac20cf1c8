import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_DELIVERY, type NotifierSummary } from '../../src/alerting/deliver.js';
import { type AlertingDeps, AlertingEngine } from '../../src/alerting/engine.js';
import { AlertStore } from '../../src/alerting/store.js';
import { createLogger } from '../../src/log.js';
import type { Notifier } from '../../src/notifiers/contract.js';
import { createNotifiers, notifierConfigSchema } from '../../src/notifiers/index.js';
import { renderHuman } from '../../src/report/human.js';
import { type Alert, overallStatus, type RunResult } from '../../src/types.js';
import { Redactor } from '../../src/util/redact.js';
import { type Answer, startHttpServer, type TestHttpServer, useHttpServer } from '../helpers/http-server.js';

/**
 * Fault suite, notification sinks: providers that are slow or misbehave, served
 * locally and answering as each service documents. The engine runs with its real
 * file outbox and the real notifiers; each `engine().process()` is one run (a new
 * engine per run, as under cron), and the clock is injected so the outbox backoff
 * passes without waiting.
 *
 * What is asserted is what a user sees: how many requests the provider got per
 * run, the report line and the log line, and that the next run after the backoff
 * sends the message exactly once more.
 */

const TIMEOUT_SECONDS = 0.3;
/** Just past the per-request timeout: the client has given up when this comes. */
const PAST_TIMEOUT_MS = TIMEOUT_SECONDS * 1000 + 300;
const TOKEN = 'tok0123456789abcdefghijklmnop';
const ROUTING_KEY = 'e93facc04764012d7bfb002500d5d1a6';
const ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';

interface Provider {
  type: string;
  name: string;
  /** The notifier's config section, pointed at `root`. */
  config: (root: string) => Record<string, unknown>;
  /** How its errors name the target (`discord webhook (127.0.0.1:4000)`). */
  label: (host: string) => string;
  /** Success, exactly as the service documents it. */
  ok: Answer;
}

/** The providers without an idempotency key: a repeat is a second message. */
const NON_IDEMPOTENT: Provider[] = [
  {
    type: 'discord',
    name: 'oncall',
    config: (root) => ({ webhook_url: `${root}/api/webhooks/123456789012345678/${TOKEN}` }),
    label: (host) => `discord webhook (${host})`,
    // Execute Webhook with ?wait=true (as Sentinel sends it): 200 and the created message.
    ok: {
      status: 200,
      body: {
        id: '1182736451234567890',
        type: 0,
        channel_id: '1182736450000000000',
        content: 'Sentinel',
        webhook_id: '123456789012345678',
      },
    },
  },
  {
    type: 'slack',
    name: 'team',
    config: (root) => ({ webhook_url: `${root}/services/T000/B000/${TOKEN}` }),
    label: (host) => `slack webhook (${host})`,
    ok: { status: 200, headers: { 'content-type': 'text/html' }, body: 'ok' },
  },
  {
    type: 'twilio',
    name: 'sms',
    config: (root) => ({
      account_sid: ACCOUNT_SID,
      auth_token: 'f00dfeedcafebabe0123456789abcdef',
      from: '+15550001111',
      to: ['+15550002222'],
      api_base_url: root,
    }),
    label: (host) => `Twilio SMS to +15550002222 (${host})`,
    ok: {
      status: 201,
      body: {
        sid: `SM${'a'.repeat(32)}`,
        account_sid: ACCOUNT_SID,
        to: '+15550002222',
        from: '+15550001111',
        status: 'queued',
        error_code: null,
      },
    },
  },
  {
    type: 'sendgrid',
    name: 'mail',
    config: (root) => ({
      api_key: 'SG.test-key-abcdefghijklmnop.qrstuvwxyz0123456789',
      from: 'sentinel@example.com',
      to: ['sre@example.com'],
      api_base_url: root,
    }),
    label: (host) => `SendGrid mail send (${host})`,
    ok: { status: 202, body: '' },
  },
];

const PAGERDUTY: Provider = {
  type: 'pagerduty',
  name: 'pager',
  config: (root) => ({ routing_key: ROUTING_KEY, api_base_url: root }),
  label: (host) => `PagerDuty trigger sentinel-prod-stuck (${host})`,
  ok: { status: 202, body: { status: 'success', message: 'Event processed', dedup_key: 'sentinel-prod-stuck' } },
};

/** The ways a sink misbehaves on the first run; `received`: whether it ends up reading the request. */
const MISBEHAVIOURS: Array<{ name: string; arrange: (sink: TestHttpServer, ok: Answer) => void; received: boolean }> = [
  {
    name: 'reads the whole request, then never answers',
    arrange: (sink) => sink.queue({ status: 200, hang: true }),
    received: true,
  },
  {
    name: 'accepts the connection but never reads the request',
    arrange: (sink) => sink.readLater(Infinity),
    received: false,
  },
  {
    name: 'answers success just past the timeout',
    arrange: (sink, ok) => sink.queue({ ...ok, delayMs: PAST_TIMEOUT_MS }),
    received: true,
  },
  {
    name: 'reads the request only after the timeout (slow accept), then answers success',
    arrange: (sink) => sink.readLater(PAST_TIMEOUT_MS),
    received: true,
  },
];

const sink = useHttpServer({ status: 200 });
let dir: string;
let clock: Date;
let logs: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sentinel-slow-providers-'));
  clock = new Date('2025-01-04T10:00:00Z');
  logs = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function notifierFor(p: Provider, root: string, overrides: Record<string, unknown> = {}): Notifier {
  const config = notifierConfigSchema.parse({
    name: p.name,
    type: p.type,
    timeout_seconds: TIMEOUT_SECONDS,
    ...p.config(root),
    ...overrides,
  });
  return createNotifiers([config])[0]!;
}

/** One run's alerting, as a new process would do it: its own engine on the shared state directory. */
function engine(notifier: Notifier, deps: Partial<AlertingDeps> = {}): AlertingEngine {
  const redactor = new Redactor(notifier.secrets());
  return new AlertingEngine({
    store: new AlertStore(dir),
    notifiers: [notifier],
    settings: {
      ...DEFAULT_DELIVERY,
      repeatIntervalMs: 4 * 3_600_000,
      resolveAfterRuns: 2,
      retryBaseMs: 10,
      retryMaxMs: 50,
    },
    logger: createLogger({ write: (line) => logs.push(line), redactor, now: () => clock }),
    redactor,
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

function runResult(alerts: Alert[]): RunResult {
  return {
    timestamp: clock.toISOString(),
    environment: 'prod',
    overall_status: overallStatus(alerts),
    alerts,
    checks: [{ name: 'stuck_batches', outcome: alerts.length ? 'alert' : 'ok', duration_ms: 1 }],
    duration_ms: 1,
    metrics: {
      total_checks: 1,
      alerts_triggered: alerts.length,
      critical_alerts: alerts.length,
      warning_alerts: 0,
      skipped_checks: 0,
    },
  };
}

/**
 * One run (the batch still stuck unless `alerts` says otherwise): the report (human, as printed) and the notifier's
 * figures.
 */
async function run(
  e: AlertingEngine,
  alerts: Alert[] = [stuck],
): Promise<{ report: string; summary: NotifierSummary }> {
  const { result, outcome } = await e.process(runResult(alerts));
  const report = renderHuman({ ...result, notifications: outcome.notifications });
  return { report, summary: outcome.notifications[0]! };
}

const advance = (minutes: number): void => {
  clock = new Date(clock.getTime() + minutes * 60_000);
};
const host = (): string => new URL(sink.url).host;

describe(
  'slow and misbehaving providers without an idempotency key get one copy per run, and the outbox retries ' +
    'after its backoff',
  () => {
    for (const p of NON_IDEMPOTENT) {
      for (const m of MISBEHAVIOURS) {
        it(`${p.type}: a sink that ${m.name}`, async () => {
          sink.fallback(p.ok);
          m.arrange(sink, p.ok);
          const first = await run(engine(notifierFor(p, sink.url)));

          // One attempt in this run, however many attemptsPerRun allows (4).
          expect(sink.accepted).toBe(1);
          const unknown =
            `${p.label(host())}: delivery unknown (no answer within ${TIMEOUT_SECONDS}s after the ` +
            `request was sent); will retry after 15s`;
          expect(first.summary).toMatchObject({ sent: 0, pending: 1, failed: 0, errors: [unknown] });
          expect(first.summary.reasons.timeout).toBe(1);
          expect(first.report).toContain(
            `Notifications ${p.name} (${p.type}): 0 sent, 1 pending, 0 failed: ${unknown}`,
          );
          const warning = logs.find((l) => l.includes('delivery unknown'));
          expect(warning).toContain(
            `| WARNING  | sentinel | Notifier ${p.name} (${p.type}): ${unknown} (2025-01-04T10:00:15.000Z), not ` +
              `sooner: ${p.type} has no idempotency key`,
          );
          // The provider does get it (a slow one late), exactly once.
          if (m.received) await sink.received(1);

          // Neither a run within the backoff nor the final flush of a loop sends it again.
          advance(0.1);
          expect((await run(engine(notifierFor(p, sink.url)))).summary).toMatchObject({ sent: 0, pending: 1 });
          expect((await engine(notifierFor(p, sink.url)).flush('prod')).notifications[0]).toMatchObject({
            sent: 0,
            pending: 1,
          });
          expect(sink.accepted).toBe(1);

          // After the backoff, the provider answering again: exactly one more request.
          sink.readLater(undefined);
          advance(1);
          const later = await run(engine(notifierFor(p, sink.url)));
          expect(later.summary).toMatchObject({ sent: 1, pending: 0, failed: 0, errors: [] });
          expect(sink.accepted).toBe(2);
          await sink.received(m.received ? 2 : 1);
          expect(sink.requests).toHaveLength(m.received ? 2 : 1);
          // The same message both times: at least once, not a new one.
          if (m.received) expect(sink.requests[1]!.body).toBe(sink.requests[0]!.body);
          expect((await new AlertStore(dir).read()).outbox).toEqual([]);
        });
      }
    }

    it('a connection reset after the request was sent is delivery unknown too (slack)', async () => {
      const slack = NON_IDEMPOTENT.find((p) => p.type === 'slack')!;
      sink.fallback(slack.ok);
      sink.queue({ status: 200, reset: true });
      const first = await run(engine(notifierFor(slack, sink.url)));
      expect(sink.requests).toHaveLength(1);
      expect(first.summary.errors).toEqual([
        `${slack.label(host())}: delivery unknown (connection reset after the request was sent); will retry after 15s`,
      ]);
      expect(first.summary.reasons.network).toBe(1);
      advance(1);
      expect((await run(engine(notifierFor(slack, sink.url)))).summary).toMatchObject({ sent: 1, pending: 0 });
      expect(sink.requests).toHaveLength(2);
    });

    it(
      'discord: when the alert resolves before a message of unknown fate was retried, the resolution is sent (the ' +
        'firing one may be on screen) and the stale firing one is not',
      async () => {
        const discord = NON_IDEMPOTENT.find((p) => p.type === 'discord')!;
        sink.fallback(discord.ok);
        sink.queue({ status: 200, hang: true });
        await run(engine(notifierFor(discord, sink.url)));
        expect(sink.requests).toHaveLength(1);
        // resolve_after_runs: 2 runs without the alert.
        advance(0.1);
        await run(engine(notifierFor(discord, sink.url)), []);
        advance(0.1);
        const resolved = await run(engine(notifierFor(discord, sink.url)), []);
        expect(resolved.summary).toMatchObject({ sent: 1, pending: 0 });
        const titles = sink.requests.map((r) =>
          (JSON.parse(r.body) as { embeds: Array<{ title: string }> }).embeds.map((e) => e.title.split(' ')[0]),
        );
        expect(titles).toEqual([['FIRING'], ['RESOLVED']]);
        expect((await new AlertStore(dir).read()).outbox).toEqual([]);
      },
    );

    it(
      'twilio: a recipient whose SMS request got no answer is texted again after the backoff, the one who got it ' +
        'is not',
      async () => {
        const twilio = NON_IDEMPOTENT.find((p) => p.type === 'twilio')!;
        const created = (to: string): Answer => ({ ...twilio.ok, body: { ...(twilio.ok.body as object), to } });
        sink.queue(created('+15550002222'), { status: 200, hang: true });
        sink.fallback(created('+15550003333'));
        const notifier = (): Notifier => notifierFor(twilio, sink.url, { to: ['+15550002222', '+15550003333'] });
        const first = await run(engine(notifier()));
        expect(sink.requests.map((r) => new URLSearchParams(r.body).get('To'))).toEqual([
          '+15550002222',
          '+15550003333',
        ]);
        expect(first.summary.errors).toEqual([
          `Twilio SMS to +15550003333 (${host()}): delivery unknown (no answer within ${TIMEOUT_SECONDS}s after the ` +
            `request was sent); will retry after 15s`,
        ]);
        advance(1);
        expect((await run(engine(notifier()))).summary).toMatchObject({ sent: 1, pending: 0 });
        expect(sink.requests.map((r) => new URLSearchParams(r.body).get('To'))).toEqual([
          '+15550002222',
          '+15550003333',
          '+15550003333',
        ]);
      },
    );

    it(
      'discord: a failure before the request was sent (connection ' + 'refused) is still retried within the run',
      async () => {
        const discord = NON_IDEMPOTENT.find((p) => p.type === 'discord')!;
        // A port nobody listens on yet; the provider comes up during the first backoff.
        const probe = await startHttpServer();
        const root = probe.url;
        await probe.close();
        let up: TestHttpServer | undefined;
        try {
          const sleep = async (): Promise<void> => {
            if (up) return;
            up = await startHttpServer({ port: Number(new URL(root).port) });
            up.fallback(discord.ok);
          };
          const first = await run(engine(notifierFor(discord, root), { sleep }));
          expect(first.summary).toMatchObject({ sent: 1, pending: 0, failed: 0 });
          expect(up!.requests).toHaveLength(1);
        } finally {
          await up?.close();
        }
      },
    );
  },
);

describe('providers that deduplicate may be sent the same message again within the run', () => {
  it(
    'pagerduty: an event that got no answer is sent again at ' + 'once, with the same dedup_key, and accepted',
    async () => {
      sink.fallback(PAGERDUTY.ok);
      sink.queue({ status: 200, hang: true });
      const first = await run(engine(notifierFor(PAGERDUTY, sink.url)));
      expect(first.summary).toMatchObject({ sent: 1, pending: 0, failed: 0 });
      expect(sink.requests).toHaveLength(2);
      const keys = sink.requests.map(
        (r) => (JSON.parse(r.body) as { dedup_key: string; event_action: string }).dedup_key,
      );
      expect(new Set(keys).size).toBe(1);
    },
  );

  it(
    'pagerduty: a sink that never answers gets every in-run ' + 'attempt, and the entry waits for the outbox backoff',
    async () => {
      sink.fallback({ status: 200, hang: true });
      const first = await run(engine(notifierFor(PAGERDUTY, sink.url)));
      expect(sink.requests).toHaveLength(DEFAULT_DELIVERY.attemptsPerRun);
      expect(first.summary).toMatchObject({ sent: 0, pending: 1 });
      expect(first.summary.errors).toEqual([
        expect.stringMatching(/: delivery unknown \(no answer within 0\.3s after the request was sent\)$/),
      ]);
      expect(logs.find((l) => l.includes('delivery unknown'))).toMatch(
        /kept in the outbox, next attempt after 2025-01-04T10:00:15\.000Z$/,
      );
      sink.fallback(PAGERDUTY.ok);
      advance(1);
      expect((await run(engine(notifierFor(PAGERDUTY, sink.url)))).summary).toMatchObject({ sent: 1, pending: 0 });
      expect(sink.requests).toHaveLength(DEFAULT_DELIVERY.attemptsPerRun + 1);
    },
  );

  it('webhook: a request that got no answer is sent again at once, with the same Idempotency-Key', async () => {
    sink.queue({ status: 200, hang: true });
    const webhook = notifierFor(
      { ...PAGERDUTY, type: 'webhook', name: 'hook', config: (root) => ({ url: `${root}/hook` }) },
      sink.url,
    );
    expect((await run(engine(webhook))).summary).toMatchObject({ sent: 1, pending: 0 });
    expect(sink.requests).toHaveLength(2);
    expect(sink.requests[0]!.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(sink.requests[1]!.headers['idempotency-key']).toBe(sink.requests[0]!.headers['idempotency-key']);
  });

  it('alertmanager: alerts that got no answer are posted again at once, with the same labels', async () => {
    sink.queue({ status: 200, hang: true });
    const am = notifierFor(
      { ...PAGERDUTY, type: 'alertmanager', name: 'am', config: (root) => ({ url: root }) },
      sink.url,
    );
    expect((await run(engine(am))).summary).toMatchObject({ sent: 1, pending: 0 });
    const labels = sink.requests.map((r) =>
      JSON.stringify((JSON.parse(r.body) as Array<{ labels: unknown }>).map((a) => a.labels)),
    );
    expect(labels).toHaveLength(2);
    expect(labels[1]).toBe(labels[0]);
  });
});
