import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  createWebhookNotifier,
  SENTINEL_VERSION,
  signature,
  type WebhookPayload,
  webhookConfigSchema,
} from '../../src/notifiers/webhook.js';
import { useHttpServer } from '../helpers/http-server.js';
import { event, notification, sendContext, storm } from '../helpers/notifications.js';
import { describeDeliveryContract, problems } from './contract.js';

const SECRET = 'hook-secret-0123456789abcdef';
const AUTH = 'Bearer receiver-token-abcdef123456';
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const server = useHttpServer({ status: 204 });

function config(overrides: Record<string, unknown> = {}): z.output<typeof webhookConfigSchema> {
  return webhookConfigSchema.parse({
    name: 'hook',
    type: 'webhook',
    url: `${server.url}/hooks/sentinel`,
    ...overrides,
  });
}

/** What a receiver does: HMAC-SHA256 of the raw body bytes, compared in constant time. */
function verify(secret: string, rawBody: string, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = createHmac('sha256', secret).update(Buffer.from(rawBody, 'utf8')).digest();
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('webhook request', () => {
  it('posts the notification as JSON with the documented headers and snake_case body', async () => {
    const notifier = createWebhookNotifier(config());
    await notifier.send(notification(), sendContext());

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hooks/sentinel');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toBe(`sentinel/${VERSION}`);
    expect(SENTINEL_VERSION).toBe(VERSION);
    expect(req.headers['x-sentinel-signature']).toBeUndefined();
    // The notification id, so a receiver can drop an at-least-once repeat.
    expect(req.headers['idempotency-key']).toBe('n-0001');

    expect(JSON.parse(req.body)).toEqual({
      version: 1,
      id: 'n-0001',
      created_at: '2025-01-04T10:16:00.000Z',
      host: 'sentinel-host',
      events: [
        {
          kind: 'firing',
          id: 'a1b2c3d4',
          dedup_key: 'sentinel-prod-stuck_batches-a1b2c3d4e5f6',
          environment: 'prod',
          check: 'stuck_batches',
          subject: null,
          level: 'critical',
          message: '3 batches stuck > 10m: processing(2), validating(1)',
          details: {
            stuck_batches: [{ status: 'processing', batch_count: 2, oldest_age_minutes: 15.3 }],
            total_stuck: 3,
            threshold_minutes: 10,
          },
          remediation: 'Check the worker logs for exceptions and database connectivity.',
          firing_since: '2025-01-04T10:15:32.123Z',
          resolved_at: null,
        },
      ],
    });
  });

  it('passes events through as they are: order, subject, resolved_at, no cutting', async () => {
    const long = 'x'.repeat(50_000);
    const n = notification([
      event({
        kind: 'resolved',
        level: 'warning',
        subject: 'vendor_a',
        resolvedAt: '2025-01-04T11:00:00.000Z',
        remediation: undefined,
      }),
      event({ id: 'b', message: long }),
    ]);
    await createWebhookNotifier(config()).send(n, sendContext());
    const body = JSON.parse(server.requests[0]!.body) as WebhookPayload;
    expect(body.events.map((e) => [e.kind, e.subject, e.resolved_at, e.remediation])).toEqual([
      ['resolved', 'vendor_a', '2025-01-04T11:00:00.000Z', null],
      ['firing', null, null, 'Check the worker logs for exceptions and database connectivity.'],
    ]);
    expect(body.events[1]!.message).toBe(long);
  });

  it('signs the exact body bytes with HMAC-SHA256 of the secret, and a receiver can verify it', async () => {
    const notifier = createWebhookNotifier(config({ secret: SECRET }));
    // Non-ASCII text: the signature covers UTF-8 bytes, not UTF-16 code units.
    await notifier.send(notification([event({ message: 'Fehlerquote über 25 % — ünïcødé ✓ 🚨' })]), sendContext());
    const req = server.requests[0]!;
    const header = req.headers['x-sentinel-signature'];
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(header).toBe(`sha256=${createHmac('sha256', SECRET).update(Buffer.from(req.body, 'utf8')).digest('hex')}`);
    expect(verify(SECRET, req.body, header)).toBe(true);
    expect(verify('another-secret-0123456789', req.body, header)).toBe(false);
    expect(verify(SECRET, req.body.replace('über', 'uber'), header)).toBe(false);
    expect(signature(SECRET, req.body)).toBe(header);
    expect(req.headers['x-sentinel-timestamp']).toBeUndefined();
  });

  it('sends the configured headers, but not over the ones Sentinel sets', async () => {
    const notifier = createWebhookNotifier(
      config({ headers: { Authorization: AUTH, 'X-Team': 'data-platform', 'User-Agent': 'custom/1' }, secret: SECRET }),
    );
    await notifier.send(notification(), sendContext());
    const req = server.requests[0]!;
    expect(req.headers.authorization).toBe(AUTH);
    expect(req.headers['x-team']).toBe('data-platform');
    expect(req.headers['user-agent']).toBe('custom/1');
    expect(req.headers['content-type']).toBe('application/json');
    expect(verify(SECRET, req.body, req.headers['x-sentinel-signature'])).toBe(true);
  });

  it('sends a storm of 50 as one request carrying all 50 events', async () => {
    await createWebhookNotifier(config()).send(storm(50), sendContext());
    expect(server.requests).toHaveLength(1);
    const body = JSON.parse(server.requests[0]!.body) as WebhookPayload;
    expect(body.events).toHaveLength(50);
    expect(body.events.map((e) => e.subject)).toEqual(Array.from({ length: 50 }, (_, i) => `vendor_${i}`));
  });
});

describe('webhook config', () => {
  it('applies the defaults to a minimal section', () => {
    expect(webhookConfigSchema.parse({ name: 'hook', type: 'webhook', url: 'https://example.com/hook' })).toEqual({
      name: 'hook',
      type: 'webhook',
      url: 'https://example.com/hook',
      min_level: 'warning',
      send_resolved: true,
      timeout_seconds: 10,
    });
  });

  it('names the path of every bad setting', () => {
    expect(problems({ name: 'hook', type: 'webhook' })).toEqual(['notifiers.0.url: required']);
    const bad = problems({
      name: 'hook',
      type: 'webhook',
      url: 'https://user:pa55word@example.com/hook',
      secret: 'short',
      headers: { 'Content-Type': 'text/plain', 'Bad Header': 'x', 'X-Ok': 'a\r\nInjected: 1' },
      retries: 3,
    });
    expect(bad).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^notifiers\.0\.url: credentials in the URL are not sent/),
        'notifiers.0.secret: use at least 16 characters, e.g. the output of `openssl rand -hex 32`',
        'notifiers.0.headers.Content-Type: Sentinel sets this header itself',
        'notifiers.0.headers.Bad Header: expected an HTTP header name',
        'notifiers.0.headers.X-Ok: header values cannot contain line breaks',
        'notifiers.0.retries: unknown setting',
      ]),
    );
    expect(bad.join('\n')).not.toContain('pa55word');
    expect(
      problems({
        name: 'hook',
        type: 'webhook',
        url: 'https://example.com/hook',
        headers: { 'x-sentinel-signature': 'forged', 'Idempotency-Key': 'mine' },
      }),
    ).toEqual([
      'notifiers.0.headers.x-sentinel-signature: Sentinel sets this header itself',
      'notifiers.0.headers.Idempotency-Key: Sentinel sets this header itself',
    ]);
  });

  it('reports the URL, the secret and every header value as secrets', () => {
    const notifier = createWebhookNotifier(
      config({
        url: `${server.url}/hooks/tok_0123456789abcdef?key=query-secret-1`,
        secret: SECRET,
        headers: { Authorization: AUTH },
      }),
    );
    expect(notifier.secrets()).toEqual(
      expect.arrayContaining([
        `${server.url}/hooks/tok_0123456789abcdef?key=query-secret-1`,
        'tok_0123456789abcdef',
        'key=query-secret-1',
        SECRET,
        AUTH,
      ]),
    );
    expect(notifier).toMatchObject({ name: 'hook', type: 'webhook', minLevel: 'warning', sendResolved: true });
  });
});

/**
 * A URL with a token in its path and its query, a signing secret and an Authorization header: every kind of secret a
 * webhook has.
 */
const withSecrets = (): Record<string, unknown> => ({
  url: `${server.url}/hooks/tok_0123456789abcdef?key=query-secret-1`,
  secret: SECRET,
  headers: { Authorization: AUTH },
});
const ALL_SECRETS = [SECRET, AUTH, 'receiver-token-abcdef123456', 'tok_0123456789abcdef', 'query-secret-1'];

describeDeliveryContract({
  provider: 'webhook',
  idempotent: true,
  server,
  create: (overrides) => createWebhookNotifier(config(overrides)),
  pointAt: (root) => ({ url: `${root}/hook` }),
  path: '/hooks/sentinel',
  label: (host) => `webhook (${host})`,
  accepts: [{ status: 200 }, { status: 201 }, { status: 202 }, { status: 204 }],
  failures: [
    ...[400, 401, 404, 410, 422].map((status) => ({
      name: `treats ${status} as final`,
      answers: [{ status, body: { error: 'nope' } }],
      retryable: false,
      status,
      matches: [new RegExp(`^webhook \\(127\\.0\\.0\\.1:\\d+\\): HTTP ${status}`)],
      contains: ['{"error":"nope"}'],
    })),
    {
      name: 'says what to check on 401',
      answers: [{ status: 401 }],
      retryable: false,
      status: 401,
      contains: ['check the key or token'],
    },
    {
      name: 'says what to check on 404',
      answers: [{ status: 404 }],
      retryable: false,
      status: 404,
      contains: ['the URL is wrong'],
    },
    { name: 'retries 5xx', answers: [{ status: 503, body: 'maintenance' }], retryable: true, status: 503 },
    {
      name: 'retries 429 with Retry-After',
      answers: [{ status: 429, headers: { 'Retry-After': '7' } }],
      retryable: true,
      status: 429,
      retryAfterMs: 7000,
    },
  ],
  secrets: ALL_SECRETS,
  secretConfigs: [withSecrets],
  echoes: [
    {
      name: 'never shows the secret, header values or URL token in an error, even when the answer echoes the request',
      overrides: withSecrets,
      answer: (req) => ({ status: 400, body: `bad ${req.url} ${req.headers.authorization} ${SECRET}` }),
      contains: ['bad ***'],
      excludes: ALL_SECRETS,
    },
  ],
});
