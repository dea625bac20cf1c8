import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  createSendgridNotifier,
  interpretSendgridError,
  rateLimitResetMs,
  type SendgridMail,
  sendgridConfigSchema,
} from '../../src/notifiers/sendgrid.js';
import { useHttpServer } from '../helpers/http-server.js';
import { event, notification, sendContext, storm } from '../helpers/notifications.js';
import { describeDeliveryContract, problems } from './contract.js';

const API_KEY = 'SG.test-key-abcdefghijklmnop.qrstuvwxyz0123456789';

const server = useHttpServer({ status: 202 });

function config(overrides: Record<string, unknown> = {}): z.output<typeof sendgridConfigSchema> {
  return sendgridConfigSchema.parse({
    name: 'mail',
    type: 'sendgrid',
    api_key: API_KEY,
    from: 'sentinel@example.com',
    to: ['sre@example.com', 'oncall@example.com'],
    api_base_url: server.url,
    ...overrides,
  });
}

function mailOf(index = 0): SendgridMail {
  const req = server.requests[index];
  if (!req) throw new Error(`no request #${index}`);
  return JSON.parse(req.body) as SendgridMail;
}

describe('sendgrid request', () => {
  it(
    'posts the documented Mail Send request: path, bearer key, ' + 'JSON body with text/plain before text/html',
    async () => {
      const notifier = createSendgridNotifier(config());
      await notifier.send(notification(), sendContext());

      expect(server.requests).toHaveLength(1);
      const req = server.requests[0]!;
      expect(req.method).toBe('POST');
      expect(req.url).toBe('/v3/mail/send');
      expect(req.headers.authorization).toBe(`Bearer ${API_KEY}`);
      expect(req.headers['content-type']).toBe('application/json');

      const mail = mailOf();
      expect(Object.keys(mail).sort()).toEqual(['content', 'from', 'personalizations', 'subject']);
      expect(mail.personalizations).toEqual([{ to: [{ email: 'sre@example.com' }, { email: 'oncall@example.com' }] }]);
      expect(mail.from).toEqual({ email: 'sentinel@example.com', name: 'Sentinel' });
      expect(mail.subject).toBe('[prod] Sentinel: 1 critical: 3 batches stuck > 10m: processing(2), validating(1)');
      expect(mail.content.map((c) => c.type)).toEqual(['text/plain', 'text/html']);

      const [text, html] = mail.content;
      expect(text.value).toContain('3 batches stuck > 10m');
      expect(html.value).toContain('3 batches stuck &gt; 10m');
      for (const body of [text.value, html.value]) {
        expect(body).toContain('Check the worker logs for exceptions and database connectivity.');
        expect(body).toContain('firing since 2025-01-04 10:15 UTC');
        expect(body).toContain('total stuck: 3');
        expect(body).toContain('sentinel ack a1b2c3d4');
        expect(body).toContain('sentinel-host');
      }
      expect(text.value.split('\n')[0]).toBe('[prod] Sentinel: 1 critical');
      expect(text.value).toContain(
        'FIRING critical stuck_batches: 3 batches stuck > 10m: processing(2), validating(1)',
      );
    },
  );

  it('takes a from name and appends the path to an api_base_url with a trailing slash or a path prefix', async () => {
    await createSendgridNotifier(
      config({ from: { email: 'alerts@example.com', name: 'Sentinel prod' }, api_base_url: `${server.url}/` }),
    ).send(notification(), sendContext());
    await createSendgridNotifier(config({ api_base_url: `${server.url}/proxy/sendgrid/` })).send(
      notification(),
      sendContext(),
    );
    expect(server.requests.map((r) => r.url)).toEqual(['/v3/mail/send', '/proxy/sendgrid/v3/mail/send']);
    expect(mailOf(0).from).toEqual({ email: 'alerts@example.com', name: 'Sentinel prod' });
  });

  it('defaults api_base_url to https://api.sendgrid.com', () => {
    const parsed = sendgridConfigSchema.parse({
      name: 'mail',
      type: 'sendgrid',
      api_key: API_KEY,
      from: 'a@example.com',
      to: ['b@example.com'],
    });
    expect(parsed.api_base_url).toBe('https://api.sendgrid.com');
    expect(parsed).toMatchObject({ min_level: 'warning', send_resolved: true, timeout_seconds: 10 });
    const notifier = createSendgridNotifier(parsed);
    expect(notifier).toMatchObject({ name: 'mail', type: 'sendgrid', minLevel: 'warning', sendResolved: true });
    expect(notifier.secrets()).toEqual([API_KEY]);
  });

  it('sends a storm of 50 alerts as ONE email listing all 50, critical first', async () => {
    await createSendgridNotifier(config()).send(storm(50), sendContext());

    expect(server.requests).toHaveLength(1);
    const mail = mailOf();
    expect(mail.subject).toBe(
      '[prod] Sentinel: 10 critical, 40 warning: Error rate 30.0% > 25.0% threshold for source vendor_0 (+49 more)',
    );
    const [text, html] = mail.content;
    for (const body of [text.value, html.value]) {
      const listed = [...body.matchAll(/threshold for source vendor_(\d+)/g)].map((m) => Number(m[1]));
      expect([...listed].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      // The 10 critical alerts (vendor_0, 5, …, 45) come first, in their original order.
      expect(listed.slice(0, 10)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    }
    expect(text.value.match(/^FIRING /gm)).toHaveLength(50);
    // Size stays reasonable: well under SendGrid's 30 MB.
    expect(Buffer.byteLength(server.requests[0]!.body)).toBeLessThan(150_000);
  });

  it('keeps the subject one line of at most 200 characters whatever the alert says', async () => {
    const long = event({ message: `first line\r\nBcc: victim@example.com\n${'x'.repeat(5000)}` });
    await createSendgridNotifier(config({ subject_prefix: '[Sentinel]' })).send(notification([long]), sendContext());
    const { subject } = mailOf();
    expect(subject.length).toBeLessThanOrEqual(200);
    expect(subject).not.toMatch(/[\r\n]/);
    expect(subject.startsWith('[Sentinel] [prod] Sentinel: 1 critical: first line Bcc: victim@example.com xxx')).toBe(
      true,
    );
    expect(subject.endsWith('…')).toBe(true);
  });

  it('names a test notification as such', async () => {
    await createSendgridNotifier(config()).send(
      notification([event({ kind: 'test', message: 'Sentinel test notification' })]),
      sendContext(),
    );
    expect(mailOf().subject).toBe('[prod] Sentinel test notification');
  });

  it('escapes every piece of alert data in the HTML part', async () => {
    const evil = '<script>alert(1)</script>';
    const e = event({
      check: `stuck_batches${evil}`,
      subject: `vendor"'&${evil}`,
      message: `boom ${evil}`,
      details: { [`key${evil}`]: `value ${evil}`, nested: { html: evil } },
      remediation: `run ${evil}`,
      environment: `prod${evil}`,
    });
    await createSendgridNotifier(config()).send(notification([e], { host: `host${evil}` }), sendContext());
    const { content, subject } = mailOf();
    const html = content[1].value;
    expect(html).not.toContain('<script');
    expect(html).not.toMatch(/"'&</);
    expect(html).toContain('boom &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('vendor&quot;&#39;&amp;&lt;script&gt;');
    expect(html).toContain('key&lt;script&gt;alert(1)&lt;/script&gt;: value &lt;script&gt;');
    expect(html).toContain('run &lt;script&gt;');
    expect(html).toContain('host&lt;script&gt;');
    // Only Sentinel's own tags remain: no element carries an on* handler or a script.
    const tags = html.match(/<[a-zA-Z!/][^>]*>/g) ?? [];
    expect(new Set(tags.map((t) => t.match(/^<\/?!?([a-zA-Z][a-zA-Z0-9]*)/)?.[1]?.toLowerCase()))).toEqual(
      new Set(['doctype', 'html', 'head', 'meta', 'body', 'h1', 'div', 'span', 'ul', 'li', 'p']),
    );
    // The plain-text part carries the text as is, and the subject stays one line.
    expect(content[0].value).toContain(`boom ${evil}`);
    expect(subject).not.toMatch(/[\r\n]/);
  });
});

describe('sendgrid config', () => {
  const valid = {
    name: 'mail',
    type: 'sendgrid',
    api_key: API_KEY,
    from: 'sentinel@example.com',
    to: ['sre@example.com'],
  };

  it('accepts from as an address or as { email, name }', () => {
    expect(problems(valid)).toEqual([]);
    expect(problems({ ...valid, from: { email: 'sentinel@example.com', name: 'Sentinel prod' } })).toEqual([]);
  });

  it('names the path of every bad setting at once', () => {
    expect(
      problems({ name: 'mail', type: 'sendgrid', to: [], from: 'not-an-email', subject: 'x', api_base_url: 'ftp://x' }),
    ).toEqual([
      'notifiers.0.api_key: expected a string',
      'notifiers.0.from.email: expected an email address like sre@example.com',
      'notifiers.0.to: must be at least 1',
      'notifiers.0.api_base_url: expected an http:// or https:// URL',
      'notifiers.0.subject: unknown setting',
    ]);
  });

  it('rejects bad recipient addresses, duplicates and unknown keys in from', () => {
    expect(
      problems({
        ...valid,
        to: ['sre@example.com', 'bob', 'SRE@example.com'],
        from: { email: 'a@example.com', nmae: 'x' },
      }),
    ).toEqual([
      'notifiers.0.from.nmae: unknown setting',
      'notifiers.0.to.1: expected an email address like sre@example.com',
      'notifiers.0.to.2: SRE@example.com is listed twice (SendGrid rejects duplicate recipients)',
    ]);
  });

  it('never echoes the api key in a validation message', () => {
    const out = problems({ ...valid, api_key: 12345678 }).join('\n') + problems({ ...valid, to: API_KEY }).join('\n');
    expect(out).not.toContain(API_KEY);
    expect(out).not.toContain('12345678');
  });
});

describe('sendgrid rate limits', () => {
  it('reads X-RateLimit-Reset (epoch seconds) as the wait, Retry-After first', () => {
    const now = 1_700_000_000_000;
    expect(interpretSendgridError(429, '', new Headers({ 'X-RateLimit-Reset': '1700000030' }), now)?.retryAfterMs).toBe(
      30_000,
    );
    expect(
      interpretSendgridError(429, '', new Headers({ 'X-RateLimit-Reset': '1700000030', 'Retry-After': '5' }), now)
        ?.retryAfterMs,
    ).toBe(5_000);
    expect(rateLimitResetMs('1699999990', now)).toBe(0);
    expect(rateLimitResetMs('soon', now)).toBeUndefined();
  });
});

describeDeliveryContract({
  provider: 'sendgrid',
  idempotent: false,
  server,
  create: (overrides) => createSendgridNotifier(config(overrides)),
  pointAt: (root) => ({ api_base_url: root }),
  path: '/v3/mail/send',
  label: (host) => `SendGrid mail send (${host})`,
  accepts: [{ status: 202, body: '' }],
  failures: [
    {
      name: "400: final, with SendGrid's field and message",
      answers: [
        {
          status: 400,
          body: {
            errors: [{ message: 'The from email does not contain a valid address.', field: 'from.email', help: null }],
          },
        },
      ],
      retryable: false,
      status: 400,
      contains: ['The from email does not contain a valid address.', '(SendGrid rejected the from.email field)'],
    },
    {
      name: '401: final, says to check api_key',
      answers: [
        {
          status: 401,
          body: {
            errors: [
              { field: null, message: 'The provided authorization grant is invalid, expired, or revoked', help: null },
            ],
          },
        },
      ],
      retryable: false,
      status: 401,
      matches: [/authorization grant is invalid.*check api_key/],
    },
    {
      name: '403: final, says to verify the sender identity',
      answers: [
        {
          status: 403,
          body: {
            errors: [
              {
                message:
                  'The from address does not match a verified Sender Identity. Mail cannot be sent until this ' +
                  'error is resolved.',
                field: 'from',
                help: null,
              },
            ],
          },
        },
      ],
      retryable: false,
      status: 403,
      contains: ['does not match a verified Sender Identity', 'verify the sender identity'],
    },
    {
      name: '413: final, says the email is too large',
      answers: [{ status: 413, body: '' }],
      retryable: false,
      status: 413,
      contains: ['too large'],
    },
    ...[500, 502, 503].map((status) => ({
      name: `${status}: retryable`,
      answers: [{ status, body: 'upstream trouble' }],
      retryable: true,
      status,
    })),
    {
      name: '429: retryable, honouring Retry-After',
      answers: [
        {
          status: 429,
          headers: { 'Retry-After': '7' },
          body: { errors: [{ field: null, message: 'too many requests' }] },
        },
      ],
      retryable: true,
      status: 429,
      retryAfterMs: 7000,
      contains: ['too many requests'],
    },
    {
      name: '429 with only X-RateLimit-Reset: retryable',
      answers: [
        {
          status: 429,
          headers: { 'X-RateLimit-Reset': String(Math.floor(Date.now() / 1000) + 30) },
          body: { errors: [{ field: null, message: 'too many requests' }] },
        },
      ],
      retryable: true,
      status: 429,
    },
  ],
  secrets: [API_KEY, API_KEY.slice(3, 20)],
  echoes: [
    {
      name: 'never puts the api key in an error, even when SendGrid echoes it back',
      answer: (req) => ({
        status: 401,
        body: { errors: [{ field: null, message: `bad key ${String(req.headers.authorization)}` }], echo: req.headers },
      }),
      contains: ['bad key Bearer ***'],
      excludes: [API_KEY, API_KEY.slice(3, 20)],
    },
  ],
});
