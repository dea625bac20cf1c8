import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { sentinelVersion } from '../util/version.js';
import { baseNotifierFields, hasCredentials, httpUrl, notifierBasics, timeoutMs, urlSecrets } from './base.js';
import type { Notification, NotificationEvent, Notifier, SendContext } from './contract.js';
import { hostOf, request } from './http.js';

/**
 * Generic webhook: the notification as JSON, for receivers of your own.
 *
 * `POST <url>` with `Content-Type: application/json`, `User-Agent: sentinel/<version>`,
 * any `headers` from the config and, when `secret` is set,
 * `X-Sentinel-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the secret>`,
 * and `Idempotency-Key: <notification id>`, the same on every attempt: delivery is
 * at least once (an answer lost after the request was sent is retried), so a
 * receiver drops an id it has already handled.
 * Only the body is signed: there is no separate timestamp header. The body carries
 * the notification `id` and `created_at`, so a receiver that wants replay protection
 * rejects ids it has seen or `created_at` values that are too old. Any 2xx is
 * success; 429 and 5xx are retried (with `Retry-After`), other answers are final.
 *
 * Body (version 1; keys are always present, `null` when an event has no value):
 * ```json
 * { "version": 1, "id": "…", "created_at": "2025-01-04T10:16:00.000Z", "host": "…",
 *   "events": [{ "kind": "firing", "id": "a1b2c3d4", "dedup_key": "…", "environment": "prod",
 *     "check": "stuck_batches", "subject": null, "level": "critical", "message": "…",
 *     "details": {…}, "remediation": "…", "firing_since": "…", "resolved_at": null }] }
 * ```
 * A receiver verifies with `hmac_sha256(secret, raw_body_bytes)` compared in constant
 * time to the hex after `sha256=`, before parsing the JSON.
 */

export const SIGNATURE_HEADER = 'X-Sentinel-Signature';
/** The notification id, the same on every attempt: a receiver that has seen it drops the repeat. */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
export const PAYLOAD_VERSION = 1;

/** Headers Sentinel sets itself; a config that tries to set them is an error, not a silent override. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'host',
  'transfer-encoding',
  'connection',
  SIGNATURE_HEADER.toLowerCase(),
  IDEMPOTENCY_HEADER.toLowerCase(),
]);

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Header names are checked here rather than by a key schema so each problem names its header. */
const headersSchema = z
  .record(z.string(), z.string().regex(/^[^\r\n]*$/, 'header values cannot contain line breaks'))
  .superRefine((headers, ctx) => {
    for (const name of Object.keys(headers)) {
      if (!HEADER_NAME.test(name))
        ctx.addIssue({ code: 'custom', path: [name], message: 'expected an HTTP header name' });
      else if (RESERVED_HEADERS.has(name.toLowerCase()))
        ctx.addIssue({ code: 'custom', path: [name], message: 'Sentinel sets this header itself' });
    }
  });

export const webhookConfigSchema = z.strictObject({
  ...baseNotifierFields,
  type: z.literal('webhook'),
  url: httpUrl.refine(
    (url) => !hasCredentials(url),
    'credentials in the URL are not sent by fetch: use headers: { Authorization: … } instead',
  ),
  /**
   * HMAC-SHA256 key for `X-Sentinel-Signature`. Long enough to be a key, and to be redacted from logs.
   * A refinement rather than `.min(16)`: the config loader words length issues itself
   * ("must not be empty") and would hide this advice.
   */
  secret: z
    .string()
    .refine((secret) => secret.length >= 16, 'use at least 16 characters, e.g. the output of `openssl rand -hex 32`')
    .optional(),
  /** Extra request headers, e.g. `Authorization`. Their values are treated as secrets. */
  headers: headersSchema.optional(),
});

export type WebhookConfig = z.output<typeof webhookConfigSchema>;

/** Sentinel's version, from package.json (found from src/notifiers and dist/notifiers alike). */
export const SENTINEL_VERSION: string = sentinelVersion();

export function createWebhookNotifier(config: WebhookConfig): Notifier {
  const label = `webhook (${hostOf(config.url)})`;
  const extraHeaders = config.headers ?? {};
  const secrets = [
    ...urlSecrets(config.url),
    ...(config.secret ? [config.secret] : []),
    ...Object.values(extraHeaders).filter((v) => v.length > 0),
  ];
  return {
    ...notifierBasics(config, secrets),
    // Each request carries the notification id (body `id`, `Idempotency-Key`): receivers deduplicate on it.
    idempotent: true,
    async send(notification: Notification, ctx: SendContext): Promise<void> {
      const body = JSON.stringify(webhookPayload(notification));
      const headers: Record<string, string> = {
        'User-Agent': `sentinel/${SENTINEL_VERSION}`,
        ...extraHeaders,
        'Content-Type': 'application/json',
        [IDEMPOTENCY_HEADER]: notification.id,
      };
      if (config.secret) headers[SIGNATURE_HEADER] = signature(config.secret, body);
      await request(
        { url: config.url, method: 'POST', headers, body, label, secrets, timeoutMs: timeoutMs(config) },
        ctx.signal,
      );
    },
  };
}

export interface WebhookEvent {
  kind: NotificationEvent['kind'];
  id: string;
  dedup_key: string;
  environment: string;
  check: string;
  subject: string | null;
  level: NotificationEvent['level'];
  message: string;
  details: Record<string, unknown>;
  remediation: string | null;
  firing_since: string;
  resolved_at: string | null;
}

export interface WebhookPayload {
  version: typeof PAYLOAD_VERSION;
  id: string;
  created_at: string;
  host: string;
  events: WebhookEvent[];
}

/** The events as they are (no cutting, no reordering), with snake_case keys. */
export function webhookPayload(n: Notification): WebhookPayload {
  return {
    version: PAYLOAD_VERSION,
    id: n.id,
    created_at: n.createdAt,
    host: n.host,
    events: n.events.map((e) => ({
      kind: e.kind,
      id: e.id,
      dedup_key: e.dedupKey,
      environment: e.environment,
      check: e.check,
      subject: e.subject ?? null,
      level: e.level,
      message: e.message,
      details: e.details,
      remediation: e.remediation ?? null,
      firing_since: e.firingSince,
      resolved_at: e.resolvedAt ?? null,
    })),
  };
}

/** `sha256=<hex>`: HMAC-SHA256 of the body's UTF-8 bytes, exactly as sent. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}
