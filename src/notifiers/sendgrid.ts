import { z } from 'zod';
import { baseNotifierFields, httpUrl, noDuplicates, notifierBasics, runbookUrlField, timeoutMs } from './base.js';
import type { Notification, NotificationEvent, Notifier, SendContext } from './contract.js';
import {
  byUrgency,
  detailLines,
  eventLine,
  eventRunbook,
  eventWhen,
  headline,
  KIND_LABEL,
  truncate,
  utc,
} from './format.js';
import { hostOf, parseRetryAfter, request } from './http.js';

/**
 * SendGrid v3 Mail Send: one email per notification, however many alerts it
 * carries (a storm of 50 is one email listing all 50, most urgent first).
 *
 * `POST {api_base_url}/v3/mail/send` with `Authorization: Bearer <api_key>` and a
 * JSON body; SendGrid answers 202 with an empty body. Errors come as
 * `{"errors":[{"message","field","help"}]}`: 400 (bad request), 401 (bad key),
 * 403 (key without Mail Send permission, or unverified sender), 413 (too large),
 * 429 (rate limited: `X-RateLimit-Reset` epoch seconds), 5xx.
 */

const DEFAULT_BASE_URL = 'https://api.sendgrid.com';
const SEND_PATH = '/v3/mail/send';
const DEFAULT_FROM_NAME = 'Sentinel';

/** Short enough for every mail client's list view; SendGrid itself rejects empty subjects only. */
const MAX_SUBJECT = 200;
/** Per-field caps so one runaway error message cannot make the email huge (SendGrid's limit is 30 MB). */
const MAX_MESSAGE = 4000;
const MAX_DETAIL_LINE = 1000;
const MAX_DETAIL_LINES = 50;
const MAX_REMEDIATION = 4000;

const email = z.email({ error: 'expected an email address like sre@example.com' });

/** `from: sentinel@example.com` or `from: { email: sentinel@example.com, name: Sentinel prod }`. */
const fromSchema = z.preprocess(
  (value) => (typeof value === 'string' ? { email: value } : value),
  z.strictObject({
    email,
    name: z.string().trim().min(1).max(100).optional(),
  }),
);

export const sendgridConfigSchema = z.strictObject({
  ...baseNotifierFields,
  ...runbookUrlField,
  type: z.literal('sendgrid'),
  api_key: z.string().min(1),
  from: fromSchema,
  to: z
    .array(email)
    .min(1)
    // SendGrid's limit on the recipients of one request.
    .max(1000, 'at most 1000 addresses (SendGrid accepts no more in one request)')
    // SendGrid answers 400 when an address appears twice in one personalization.
    .superRefine(
      noDuplicates(
        (address) => (typeof address === 'string' ? address.toLowerCase() : ''),
        (address) => `${address} is listed twice (SendGrid rejects duplicate recipients)`,
      ),
    ),
  /** Put before the subject, e.g. `[Sentinel]` for mail filters. */
  subject_prefix: z.string().max(50).optional(),
  /** `https://api.eu.sendgrid.com` for EU regional subusers; tests point it at a local server. */
  api_base_url: httpUrl.default(DEFAULT_BASE_URL),
});

export type SendgridConfig = z.output<typeof sendgridConfigSchema>;

export function createSendgridNotifier(config: SendgridConfig): Notifier {
  const url = joinUrl(config.api_base_url, SEND_PATH);
  const label = `SendGrid mail send (${hostOf(config.api_base_url)})`;
  const secrets = [config.api_key];
  return {
    ...notifierBasics(config, secrets),
    // Mail Send has no idempotency key: a request sent twice is two emails.
    idempotent: false,
    async send(notification: Notification, ctx: SendContext): Promise<void> {
      const body = sendgridBody(notification, config);
      await request(
        {
          url,
          method: 'POST',
          headers: { Authorization: `Bearer ${config.api_key}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
          label,
          secrets,
          timeoutMs: timeoutMs(config),
          interpret: (status, text, headers?: Headers) => interpretSendgridError(status, text, headers),
        },
        ctx.signal,
      );
    },
  };
}

/** The Mail Send request body, as SendGrid documents it (text/plain must precede text/html). */
export interface SendgridMail {
  personalizations: Array<{ to: Array<{ email: string }> }>;
  from: { email: string; name: string };
  subject: string;
  content: [{ type: 'text/plain'; value: string }, { type: 'text/html'; value: string }];
}

export function sendgridBody(
  n: Notification,
  config: Pick<SendgridConfig, 'from' | 'to' | 'subject_prefix' | 'runbook_url'>,
): SendgridMail {
  return {
    personalizations: [{ to: config.to.map((address) => ({ email: address })) }],
    from: { email: config.from.email, name: config.from.name ?? DEFAULT_FROM_NAME },
    subject: emailSubject(n, config.subject_prefix),
    content: [
      { type: 'text/plain', value: plainText(n, config.runbook_url) },
      { type: 'text/html', value: html(n, config.runbook_url) },
    ],
  };
}

/**
 * One line of at most 200 characters: the headline, then the most urgent alert's
 * message and how many more there are. Alert text is untrusted: line breaks and
 * control characters (header injection, broken subjects) become spaces.
 */
export function emailSubject(n: Notification, prefix?: string): string {
  const events = byUrgency(n.events);
  const first = events[0];
  let subject = headline(n);
  if (first && first.kind !== 'test') {
    const more = events.length > 1 ? ` (+${events.length - 1} more)` : '';
    const room = Math.max(20, MAX_SUBJECT - subject.length - more.length - 2);
    subject = `${subject}: ${truncate(oneLine(first.message), room)}${more}`;
  }
  if (prefix) subject = `${prefix} ${subject}`;
  return truncate(oneLine(subject), MAX_SUBJECT);
}

function plainText(n: Notification, runbookBase?: string): string {
  const lines: string[] = [headline(n), ''];
  for (const e of byUrgency(n.events)) {
    lines.push(truncate(eventLine(e), MAX_MESSAGE));
    lines.push(`  ${eventWhen(e)}${ackHint(e)}`);
    for (const d of limitedDetails(e)) lines.push(`  ${d}`);
    if (e.remediation) lines.push(`  What to do: ${truncate(e.remediation, MAX_REMEDIATION)}`);
    const runbook = eventRunbook(e, runbookBase);
    if (runbook) lines.push(`  Runbook: ${runbook}`);
    lines.push('');
  }
  lines.push(footer(n));
  return lines.join('\n');
}

const LEVEL_COLOR = { critical: '#cf222e', warning: '#9a6700', resolved: '#1a7f37' } as const;

function html(n: Notification, runbookBase?: string): string {
  const blocks = byUrgency(n.events).map((e) => {
    const color = e.kind === 'resolved' ? LEVEL_COLOR.resolved : LEVEL_COLOR[e.level];
    const subject = e.subject ? ` (${escapeHtml(e.subject)})` : '';
    const details = limitedDetails(e);
    const label = escapeHtml(`${KIND_LABEL[e.kind]} ${e.level}`);
    return [
      `<div style="border-left:4px solid ${color};background:#f6f8fa;padding:8px 12px;margin:0 0 12px 0;">`,
      `<div style="font-weight:bold;"><span style="color:${color};">${label}</span> ` +
        `${escapeHtml(e.check)}${subject}</div>`,
      `<div style="margin:4px 0;white-space:pre-wrap;">${escapeHtml(truncate(e.message, MAX_MESSAGE))}</div>`,
      `<div style="color:#59636e;font-size:12px;">${escapeHtml(eventWhen(e) + ackHint(e))}</div>`,
      details.length
        ? '<ul style="margin:6px 0 0 0;padding-left:18px;' +
          'font-family:Menlo,Consolas,monospace;font-size:12px;color:#1f2328;">' +
          `${details.map((d) => `<li style="white-space:pre-wrap;">${escapeHtml(d)}</li>`).join('')}</ul>`
        : '',
      e.remediation
        ? `<div style="margin-top:6px;white-space:pre-wrap;"><span style="font-weight:bold;">What to do:</span> ` +
          `${escapeHtml(truncate(e.remediation, MAX_REMEDIATION))}</div>`
        : '',
      runbookHtml(eventRunbook(e, runbookBase)),
      '</div>',
    ].join('');
  });
  return [
    '<!DOCTYPE html><html><head><meta charset="utf-8"></head>',
    '<body style="margin:0;padding:16px;background:#ffffff;color:#1f2328;font-family:-apple-system,\'Segoe ' +
      'UI\',Helvetica,Arial,sans-serif;font-size:14px;line-height:1.4;">',
    `<h1 style="margin:0 0 12px 0;font-size:18px;">${escapeHtml(headline(n))}</h1>`,
    ...blocks,
    `<p style="margin:12px 0 0 0;color:#59636e;font-size:12px;">${escapeHtml(footer(n))}</p>`,
    '</body></html>',
  ].join('\n');
}

/** The runbook as a link when it is an absolute URL (a notifier's `runbook_url`), else as text. */
function runbookHtml(runbook: string | undefined): string {
  if (!runbook) return '';
  const shown = /^https?:\/\//.test(runbook)
    ? `<a href="${escapeHtml(runbook)}">${escapeHtml(runbook)}</a>`
    : escapeHtml(runbook);
  return `<div style="margin-top:6px;"><span style="font-weight:bold;">Runbook:</span> ${shown}</div>`;
}

function ackHint(e: NotificationEvent): string {
  return e.kind === 'firing' || e.kind === 'escalated' || e.kind === 'repeat'
    ? ` · alert ${e.id} (sentinel ack ${e.id} stops repeats)`
    : '';
}

function limitedDetails(e: NotificationEvent): string[] {
  const lines = detailLines(e.details).map((d) => truncate(d, MAX_DETAIL_LINE));
  if (lines.length <= MAX_DETAIL_LINES) return lines;
  return [...lines.slice(0, MAX_DETAIL_LINES), `(${lines.length - MAX_DETAIL_LINES} more details not shown)`];
}

function footer(n: Notification): string {
  return `Sent by Sentinel on ${n.host} at ${utc(n.createdAt)} (notification ${n.id}).`;
}

/** Escapes every character that is markup in HTML text or attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text
    .replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ')
    .replace(/\s{2,}/g, ' ')
    .trim();
}

/**
 * Advice for SendGrid's failures (its own message is already in the error's body
 * excerpt) and the wait a 429 asks for: `Retry-After`, else `X-RateLimit-Reset`
 * from the response headers that `request()` passes.
 */
export function interpretSendgridError(
  status: number,
  body: string,
  headers?: Headers,
  now: number = Date.now(),
): { hint?: string; retryAfterMs?: number } | undefined {
  switch (status) {
    case 400: {
      const fields = errorFields(body);
      const what = fields.length ? `the ${fields.join(', ')} field${fields.length > 1 ? 's' : ''}` : 'the request';
      return { hint: `SendGrid rejected ${what}` };
    }
    case 401:
      return { hint: 'the API key was rejected: check api_key' };
    case 403:
      return {
        hint:
          'verify the sender identity of the from address in SendGrid, and check that the API key has the ' +
          'Mail Send permission',
      };
    case 413:
      return { hint: 'the email is too large for SendGrid' };
    case 429: {
      const retryAfterMs =
        parseRetryAfter(headers?.get('retry-after') ?? null, now) ??
        rateLimitResetMs(headers?.get('x-ratelimit-reset') ?? null, now);
      return { hint: 'rate limited by SendGrid', retryAfterMs };
    }
    default:
      return undefined;
  }
}

/** `X-RateLimit-Reset` (epoch seconds) as a wait in milliseconds from `now`. */
export function rateLimitResetMs(value: string | null, now: number = Date.now()): number | undefined {
  if (!value || !/^\d+$/.test(value.trim())) return undefined;
  return Math.max(0, Number(value.trim()) * 1000 - now);
}

/** The `field` of each error in `{"errors":[{"message","field","help"}]}`, when it looks like a field name. */
function errorFields(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as { errors?: Array<{ field?: unknown }> };
    if (!Array.isArray(parsed.errors)) return [];
    const fields = parsed.errors
      .map((e) => e?.field)
      .filter((f): f is string => typeof f === 'string' && /^[\w.[\]-]{1,80}$/.test(f));
    return [...new Set(fields)].slice(0, 5);
  } catch {
    return [];
  }
}

function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}
