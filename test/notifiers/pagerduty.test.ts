import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createPagerdutyNotifier, type PagerdutyEvent, pagerdutyConfigSchema } from '../../src/notifiers/pagerduty.js';
import { type RecordedHttpRequest, useHttpServer } from '../helpers/http-server.js';
import { event, notification, sendContext, storm } from '../helpers/notifications.js';
import { describeDeliveryContract, problems, sendError } from './contract.js';

const ROUTING_KEY = 'e93facc04764012d7bfb002500d5d1a6';

const server = useHttpServer((req) => accepted(req));

/** PagerDuty's 202 answer. */
function accepted(req: RecordedHttpRequest): { status: number; body: unknown } {
  const sent = JSON.parse(req.body) as PagerdutyEvent;
  return { status: 202, body: { status: 'success', message: 'Event processed', dedup_key: sent.dedup_key } };
}

function invalidEvent(...errors: string[]): { status: number; body: unknown } {
  return { status: 400, body: { status: 'invalid event', message: 'Event object is invalid', errors } };
}

function config(overrides: Record<string, unknown> = {}): z.output<typeof pagerdutyConfigSchema> {
  return pagerdutyConfigSchema.parse({
    name: 'pager',
    type: 'pagerduty',
    routing_key: ROUTING_KEY,
    api_base_url: server.url,
    ...overrides,
  });
}

function sent(): PagerdutyEvent[] {
  return server.requests.map((r) => JSON.parse(r.body) as PagerdutyEvent);
}

const three = () =>
  notification([
    event({ dedupKey: 'k-1', message: 'one' }),
    event({ dedupKey: 'k-2', message: 'two' }),
    event({ dedupKey: 'k-3', message: 'three' }),
  ]);

describe('pagerduty request', () => {
  it('posts a documented Events API v2 trigger for a firing alert', async () => {
    const ctx = sendContext();
    await createPagerdutyNotifier(
      config({ component: 'ingestion-worker', group: 'dragonfly', client_url: 'https://sentinel.example.com/' }),
    ).send(notification(), ctx);

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v2/enqueue');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.authorization).toBeUndefined();
    expect(JSON.parse(req.body)).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'sentinel-prod-stuck_batches-a1b2c3d4e5f6',
      payload: {
        summary: '[prod] 3 batches stuck > 10m: processing(2), validating(1)',
        source: 'sentinel-host',
        severity: 'critical',
        timestamp: '2025-01-04T10:15:32.123Z',
        component: 'ingestion-worker',
        group: 'dragonfly',
        class: 'stuck_batches',
        custom_details: {
          kind: 'firing',
          check: 'stuck_batches',
          environment: 'prod',
          alert_id: 'a1b2c3d4',
          firing_since: '2025-01-04T10:15:32.123Z',
          details: {
            stuck_batches: [{ status: 'processing', batch_count: 2, oldest_age_minutes: 15.3 }],
            total_stuck: 3,
            threshold_minutes: 10,
          },
          remediation: 'Check the worker logs for exceptions and database connectivity.',
          runbook: 'docs/runbooks.md#stuck-batches',
        },
      },
      client: 'Sentinel',
      client_url: 'https://sentinel.example.com/',
    });
    expect([...ctx.parts]).toEqual(['sentinel-prod-stuck_batches-a1b2c3d4e5f6:trigger']);
  });

  it('maps warning to severity warning, keeps the subject, and lets class be configured', async () => {
    await createPagerdutyNotifier(config({ class: 'pipeline health' })).send(
      notification([event({ kind: 'escalated', level: 'warning', subject: 'vendor_7' })]),
      sendContext(),
    );
    const [e] = sent();
    expect(e!.event_action).toBe('trigger');
    expect(e!.payload).toMatchObject({ severity: 'warning', class: 'pipeline health' });
    expect(e!.payload!.custom_details).toMatchObject({ kind: 'escalated', subject: 'vendor_7' });
    expect(e!.payload).not.toHaveProperty('component');
    expect(e!).not.toHaveProperty('client_url');
  });

  it('resolves by the same dedup_key, with nothing else', async () => {
    const ctx = sendContext();
    await createPagerdutyNotifier(config()).send(
      notification([event({ kind: 'resolved', resolvedAt: '2025-01-04T11:00:00.000Z' })]),
      ctx,
    );
    expect(sent()).toEqual([
      { routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'sentinel-prod-stuck_batches-a1b2c3d4e5f6' },
    ]);
    expect([...ctx.parts]).toEqual(['sentinel-prod-stuck_batches-a1b2c3d4e5f6:resolve']);
  });

  it('re-triggers a repeat with the same dedup_key (PagerDuty deduplicates it into the open alert)', async () => {
    await createPagerdutyNotifier(config()).send(notification([event({ kind: 'repeat' })]), sendContext());
    expect(sent()[0]).toMatchObject({ event_action: 'trigger', dedup_key: 'sentinel-prod-stuck_batches-a1b2c3d4e5f6' });
  });

  it('a test triggers an info event with its own key and resolves it at once', async () => {
    const n = notification(
      [
        event({
          kind: 'test',
          dedupKey: 'sentinel-test-1234',
          check: 'notify_test',
          message: 'Test notification from Sentinel on sentinel-host: if you can read this, notifier "pager" works.',
        }),
      ],
      { id: 'n-test' },
    );
    await createPagerdutyNotifier(config()).send(n, sendContext());
    const [trigger, resolve] = sent();
    expect(sent()).toHaveLength(2);
    expect(trigger).toMatchObject({
      event_action: 'trigger',
      dedup_key: 'sentinel-test-1234-n-test',
      payload: {
        severity: 'info',
        summary:
          '[prod] Test notification from Sentinel on sentinel-host: if you can read this, notifier "pager" works.',
      },
    });
    expect(resolve).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'resolve',
      dedup_key: 'sentinel-test-1234-n-test',
    });
  });

  it('sends a storm of 50 alerts as 50 trigger events, one per dedup_key, critical first', async () => {
    const ctx = sendContext();
    await createPagerdutyNotifier(config()).send(storm(50), ctx);
    const events = sent();
    expect(events).toHaveLength(50);
    expect(new Set(events.map((e) => e.dedup_key)).size).toBe(50);
    expect(events.every((e) => e.event_action === 'trigger')).toBe(true);
    expect(events.slice(0, 10).map((e) => e.payload!.severity)).toEqual(Array(10).fill('critical'));
    expect(events.slice(10).every((e) => e.payload!.severity === 'warning')).toBe(true);
    expect(ctx.parts.size).toBe(50);
  });

  // PagerDuty Events API v2: `payload.summary` at most 1024 characters, the whole event at
  // most 512 KB (https://developer.pagerduty.com/docs/events-API-v2/trigger-events/).
  it('says in the summary (what the PagerDuty app shows) which batch a stuck alert is about', async () => {
    const details = { oldest_batches: [{ id: 'b-42', source: 'vendor_a', status: 'validating', age_minutes: 14 }] };
    await createPagerdutyNotifier(config()).send(notification([event({ details })]), sendContext());
    const sent = JSON.parse(server.requests[0]!.body) as { payload: { summary: string; custom_details: unknown } };
    expect(sent.payload.summary).toBe(
      '[prod] 3 batches stuck > 10m: processing(2), validating(1); oldest b-42 from vendor_a, 14 min',
    );
    expect(sent.payload.custom_details).toMatchObject({ details });
  });

  it('keeps the summary within 1024 characters and the event within 512 KB', async () => {
    const huge = { rows: Array.from({ length: 20_000 }, (_, i) => ({ id: i, error: 'x'.repeat(40) })) };
    await createPagerdutyNotifier(config()).send(
      notification([event({ message: `line one\n${'m'.repeat(5000)}`, details: huge })]),
      sendContext(),
    );
    const [e] = sent();
    expect(e!.payload!.summary.length).toBeLessThanOrEqual(1024);
    expect(e!.payload!.summary.startsWith('[prod] line one mmm')).toBe(true);
    expect(Buffer.byteLength(server.requests[0]!.body)).toBeLessThanOrEqual(512 * 1024);
    expect(e!.payload!.custom_details).toMatchObject({ details_truncated: true });
  });

  it(
    'appends /v2/enqueue to an api_base_url with a trailing ' + 'slash; defaults to https://events.pagerduty.com',
    async () => {
      await createPagerdutyNotifier(config({ api_base_url: `${server.url}/` })).send(notification(), sendContext());
      expect(server.requests[0]!.url).toBe('/v2/enqueue');
      const parsed = pagerdutyConfigSchema.parse({ name: 'pager', type: 'pagerduty', routing_key: ROUTING_KEY });
      expect(parsed).toMatchObject({
        api_base_url: 'https://events.pagerduty.com',
        client: 'Sentinel',
        min_level: 'warning',
        send_resolved: true,
        timeout_seconds: 10,
      });
      const notifier = createPagerdutyNotifier(parsed);
      expect(notifier).toMatchObject({ name: 'pager', type: 'pagerduty', minLevel: 'warning', sendResolved: true });
      expect(notifier.secrets()).toEqual([ROUTING_KEY]);
    },
  );
});

describe('pagerduty config', () => {
  it('names the path of every bad setting at once', () => {
    expect(
      problems({
        name: 'pager',
        type: 'pagerduty',
        routing_key: 'short',
        client_url: 'javascript:alert(1)',
        severity: 'high',
      }),
    ).toEqual([
      'notifiers.0.routing_key: expected the 32-character Integration Key of an Events API v2 integration',
      'notifiers.0.client_url: expected an http:// or https:// URL',
      'notifiers.0.severity: unknown setting',
    ]);
  });

  it('requires the routing key', () => {
    expect(problems({ name: 'pager', type: 'pagerduty' })).toEqual(['notifiers.0.routing_key: expected a string']);
  });

  it('never echoes the routing key in a validation message', () => {
    const out = problems({ name: 'pager', type: 'pagerduty', routing_key: `${ROUTING_KEY}x` }).join('\n');
    expect(out).not.toContain(ROUTING_KEY);
  });
});

describe('pagerduty partial failures', () => {
  it("400 invalid event: final, with PagerDuty's errors; the other events are still sent", async () => {
    server.queue(invalidEvent("'payload.summary' is missing or blank"));
    const ctx = sendContext();
    const err = await sendError(createPagerdutyNotifier(config()).send(three(), ctx));
    expect(err).toMatchObject({ retryable: false, status: 400 });
    expect(err.message).toContain(`"errors":["'payload.summary' is missing or blank"]`);
    expect(err.message).toContain('PagerDuty rejected the event as invalid');
    expect(sent()).toHaveLength(3);
    expect([...ctx.parts]).toEqual(['k-2:trigger', 'k-3:trigger']);
  });

  it('resumes after a partial failure without sending an accepted event again', async () => {
    server.queue(
      { status: 202, body: { status: 'success', message: 'Event processed', dedup_key: 'k-1' } },
      { status: 503, body: 'unavailable' },
    );
    const ctx = sendContext();
    const notifier = createPagerdutyNotifier(config());

    const err = await sendError(notifier.send(three(), ctx));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('PagerDuty trigger k-2');
    expect([...ctx.parts]).toEqual(['k-1:trigger']);

    server.requests.length = 0;
    await notifier.send(three(), ctx);
    expect(sent().map((e) => e.dedup_key)).toEqual(['k-2', 'k-3']);
    expect([...ctx.parts].sort()).toEqual(['k-1:trigger', 'k-2:trigger', 'k-3:trigger']);
  });
});

describeDeliveryContract({
  provider: 'pagerduty',
  idempotent: true,
  server,
  create: (overrides) => createPagerdutyNotifier(config(overrides)),
  pointAt: (root) => ({ api_base_url: root }),
  path: '/v2/enqueue',
  label: (host) => `PagerDuty trigger sentinel-prod-stuck_batches-a1b2c3d4e5f6 (${host})`,
  accepts: [
    {
      status: 202,
      body: { status: 'success', message: 'Event processed', dedup_key: 'sentinel-prod-stuck_batches-a1b2c3d4e5f6' },
    },
  ],
  failures: [
    {
      name: '400 for the routing key: final, and stops (every event would fail alike)',
      answers: [invalidEvent("Length of 'routing_key' is incorrect (should be 32 characters)")],
      notification: three,
      label: (host) => `PagerDuty trigger k-1 (${host})`,
      retryable: false,
      status: 400,
      contains: ["Length of 'routing_key' is incorrect (should be 32 characters)", 'check routing_key'],
      requests: 1,
    },
    {
      name: '429: retryable (PagerDuty sends no Retry-After), and stops',
      answers: [{ status: 429, body: '' }],
      notification: three,
      label: (host) => `PagerDuty trigger k-1 (${host})`,
      retryable: true,
      status: 429,
      retryAfterMs: undefined,
      contains: ['rate-limits events per routing key'],
      requests: 1,
    },
    ...[500, 502].map((status) => ({
      name: `${status}: retryable`,
      answers: [{ status, body: 'oops' }],
      retryable: true,
      status,
    })),
  ],
  secrets: [ROUTING_KEY],
  echoes: [
    {
      name: 'never puts the routing key in an error, even when PagerDuty echoes the request back',
      answer: (req) => ({
        status: 400,
        body: {
          status: 'invalid event',
          message: 'Event object is invalid',
          errors: [`bad key ${ROUTING_KEY}`, `in ${req.body}`],
        },
      }),
      contains: ['"bad key ***"', 'routing_key\\":\\"***'],
      excludes: [ROUTING_KEY],
    },
  ],
});
