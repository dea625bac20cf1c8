import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createTwilioNotifier, septets, smsBody, toGsm, twilioConfigSchema } from '../../src/notifiers/twilio.js';
import { type RecordedHttpRequest, useHttpServer } from '../helpers/http-server.js';
import { event, notification, sendContext, storm } from '../helpers/notifications.js';
import { describeDeliveryContract, problems, sendError } from './contract.js';

const ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';
const AUTH_TOKEN = 'f00dfeedcafebabe0123456789abcdef';
const SERVICE_SID = 'MG0123456789abcdef0123456789abcdef';
const RECIPIENTS = ['+15550002222', '+15550003333', '+15550004444'];
const MESSAGES_PATH = `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`;

/** Every character of the GSM 03.38 default alphabet and its extension table. */
const GSM = /^[@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&'()*+,\-./0-9:;<=>?¡A-ZÄÖÑÜ§¿a-zäöñüà^{}\\[~\]|€]*$/;

const server = useHttpServer((req) => created(req));

/** Twilio's 201 answer: the Message resource, queued. */
function created(req: RecordedHttpRequest): { status: number; body: unknown } {
  const form = new URLSearchParams(req.body);
  return {
    status: 201,
    body: {
      sid: `SM${'a'.repeat(32)}`,
      account_sid: ACCOUNT_SID,
      to: form.get('To'),
      from: form.get('From'),
      body: form.get('Body'),
      status: 'queued',
      error_code: null,
    },
  };
}

function twilioError(status: number, code: number, message: string): { status: number; body: unknown } {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status } };
}

function config(overrides: Record<string, unknown> = {}): z.output<typeof twilioConfigSchema> {
  return twilioConfigSchema.parse({
    name: 'sms',
    type: 'twilio',
    account_sid: ACCOUNT_SID,
    auth_token: AUTH_TOKEN,
    from: '+15550001111',
    to: RECIPIENTS,
    api_base_url: server.url,
    ...overrides,
  });
}

function forms(): URLSearchParams[] {
  return server.requests.map((r) => new URLSearchParams(r.body));
}

/**
 * Twilio's documentation ("How long can a message be?",
 * https://www.twilio.com/docs/glossary/what-sms-character-limit): a GSM-7 SMS of several
 * segments carries 153 characters per segment; a body may have up to 1600 characters,
 * and Twilio recommends at most 320 for SMS. Sentinel sends at most two segments.
 */
const GSM7_PER_SEGMENT = 153;
const TWO_SEGMENTS = 2 * GSM7_PER_SEGMENT;
const TWILIO_MAX_BODY = 1600;

function expectSmsSized(body: string): void {
  expect(body.length).toBeLessThanOrEqual(320);
  expect(body.length).toBeLessThanOrEqual(TWILIO_MAX_BODY);
  expect(septets(body)).toBeLessThanOrEqual(TWO_SEGMENTS);
  expect(body).toMatch(GSM);
}

describe('twilio request', () => {
  it('posts one documented Create Message request per recipient: path, Basic auth, form fields', async () => {
    const ctx = sendContext();
    await createTwilioNotifier(config()).send(notification(), ctx);

    expect(server.requests).toHaveLength(3);
    for (const [i, req] of server.requests.entries()) {
      expect(req.method).toBe('POST');
      expect(req.url).toBe(MESSAGES_PATH);
      expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
      const auth = String(req.headers.authorization);
      expect(auth.startsWith('Basic ')).toBe(true);
      expect(Buffer.from(auth.slice('Basic '.length), 'base64').toString('utf8')).toBe(`${ACCOUNT_SID}:${AUTH_TOKEN}`);
      const form = new URLSearchParams(req.body);
      expect([...form.keys()].sort()).toEqual(['Body', 'From', 'To']);
      expect(form.get('To')).toBe(RECIPIENTS[i]);
      expect(form.get('From')).toBe('+15550001111');
      expect(form.get('Body')).toBe('[prod] Sentinel: 1 critical: 3 batches stuck > 10m: processing(2), validating(1)');
    }
    expect([...ctx.parts]).toEqual(RECIPIENTS);
  });

  it('sends MessagingServiceSid when a messaging service is configured instead of from', async () => {
    await createTwilioNotifier(
      config({ from: undefined, messaging_service_sid: SERVICE_SID, to: [RECIPIENTS[0]] }),
    ).send(notification(), sendContext());
    const [form] = forms();
    expect([...form!.keys()].sort()).toEqual(['Body', 'MessagingServiceSid', 'To']);
    expect(form!.get('MessagingServiceSid')).toBe(SERVICE_SID);
  });

  it(
    'appends the documented path to an api_base_url with a ' + 'trailing slash; defaults to https://api.twilio.com',
    async () => {
      await createTwilioNotifier(config({ api_base_url: `${server.url}/`, to: [RECIPIENTS[0]] })).send(
        notification(),
        sendContext(),
      );
      expect(server.requests[0]!.url).toBe(MESSAGES_PATH);
      const parsed = twilioConfigSchema.parse({
        name: 'sms',
        type: 'twilio',
        account_sid: ACCOUNT_SID,
        auth_token: AUTH_TOKEN,
        from: '+15550001111',
        to: ['+15550002222'],
      });
      expect(parsed).toMatchObject({
        api_base_url: 'https://api.twilio.com',
        min_level: 'warning',
        send_resolved: true,
        timeout_seconds: 10,
      });
      const notifier = createTwilioNotifier(parsed);
      expect(notifier).toMatchObject({ name: 'sms', type: 'twilio', minLevel: 'warning', sendResolved: true });
      expect(notifier.secrets()).toContain(AUTH_TOKEN);
      expect(notifier.secrets()).toContain(Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64'));
    },
  );

  it('sends a storm of 50 alerts as exactly ONE SMS per recipient, within two segments', async () => {
    await createTwilioNotifier(config()).send(storm(50), sendContext());
    expect(server.requests).toHaveLength(3);
    const bodies = forms().map((f) => f.get('Body') ?? '');
    expect(new Set(bodies).size).toBe(1);
    const body = bodies[0]!;
    expectSmsSized(body);
    expect(body).toBe(
      '[prod] Sentinel: 10 critical, 40 warning: Error rate 30.0% > 25.0% threshold for source vendor_0; Error ' +
        'rate 35.0% > 25.0% threshold for source vendor_5; ' +
        'Error rate 30.0% > 25.0% threshold for source vendor_10; Error rate 35.0% > 25.0% threshold for source ' +
        'vendor_15 (+46 more)',
    );
  });

  it('reads like the headline, the most urgent alerts, and how many more', () => {
    const n = notification([
      event({ level: 'warning', check: 'error_spike', message: 'Error rate 31.0% > 25.0% for source acme' }),
      event(),
      event({ check: 'schema_cache', message: 'PostgREST schema cache is stale' }),
    ]);
    expect(smsBody(n)).toBe(
      '[prod] Sentinel: 2 critical, 1 warning: 3 batches stuck > 10m: processing(2), validating(1); PostgREST ' +
        'schema cache is stale; Error rate 31.0% > 25.0% for source acme',
    );
    expect(smsBody(n, 110)).toBe(
      '[prod] Sentinel: 2 critical, 1 warning: 3 batches stuck > 10m: processing(2), validating(1) (+2 more)',
    );
    expect(smsBody(notification([event({ kind: 'resolved' })]))).toBe(
      '[prod] Sentinel: 1 resolved: RESOLVED 3 batches stuck > 10m: processing(2), validating(1)',
    );
  });

  it('says what each firing alert is about: the oldest batch, the sources behind a spike', () => {
    const stuck = event({
      details: { oldest_batches: [{ id: 'b-42', source: 'vendor_a', status: 'validating', age_minutes: 14 }] },
    });
    const spike = event({
      level: 'warning',
      check: 'error_spike',
      message: 'Error rate 29.0% > 15.0% threshold',
      details: { top_sources: [{ source: 'vendor_a', error_rate_pct: 41.2, error_rows: 120, total_rows: 291 }] },
    });
    expect(smsBody(notification([stuck, spike]))).toBe(
      '[prod] Sentinel: 1 critical, 1 warning: 3 batches stuck > 10m: processing(2), validating(1); oldest b-42 ' +
        'from vendor_a, 14 min; Error rate 29.0% > 15.0% threshold (top source: vendor_a 41.2%)',
    );
    // A resolved alert is over: no batch or source to look at.
    expect(smsBody(notification([{ ...stuck, kind: 'resolved' }]))).toBe(
      '[prod] Sentinel: 1 resolved: RESOLVED 3 batches stuck > 10m: processing(2), validating(1)',
    );
  });

  it('cuts a 5000-character message to two segments', async () => {
    await createTwilioNotifier(config({ to: [RECIPIENTS[0]] })).send(
      notification([event({ message: 'y'.repeat(5000) }), event({ message: 'z'.repeat(5000) })]),
      sendContext(),
    );
    const body = forms()[0]!.get('Body') ?? '';
    expectSmsSized(body);
    expect(body).toMatch(/^\[prod\] Sentinel: 2 critical: y+\.\.\. \(\+1 more\)$/);
    expect(septets(body)).toBe(TWO_SEGMENTS);
  });

  it('keeps the body GSM-7: emoji, smart quotes and accents are transliterated or replaced', () => {
    expect(toGsm('🔥 “stuck” — naïve façade… ≥ 10m\n\tnext')).toBe('? "stuck" - naive facade... >= 10m next');
    const body = smsBody(notification([event({ message: `${'🚨'.repeat(400)} émoji ça` })]));
    expectSmsSized(body);
  });

  it('names a test notification as such', () => {
    const body = smsBody(
      notification([
        event({
          kind: 'test',
          message: 'Test notification from Sentinel on sentinel-host: if you can read this, notifier "sms" works.',
        }),
      ]),
    );
    expect(body).toBe(
      '[prod] Sentinel test notification: Test notification from Sentinel on sentinel-host: if you can read ' +
        'this, notifier "sms" works.',
    );
  });
});

describe('twilio config', () => {
  const valid = {
    name: 'sms',
    type: 'twilio',
    account_sid: ACCOUNT_SID,
    auth_token: AUTH_TOKEN,
    from: '+15550001111',
    to: ['+15550002222'],
  };

  it('accepts from, messaging_service_sid, or both', () => {
    expect(problems(valid)).toEqual([]);
    expect(problems({ ...valid, from: undefined, messaging_service_sid: SERVICE_SID })).toEqual([]);
    expect(problems({ ...valid, messaging_service_sid: SERVICE_SID })).toEqual([]);
  });

  it('names the path of every bad setting at once', () => {
    expect(
      problems({
        name: 'sms',
        type: 'twilio',
        account_sid: 'AC123',
        from: '555-0001',
        to: ['+15550002222', '0044 20 7946 0000', '+15550002222'],
        authtoken: 'x',
      }),
    ).toEqual([
      'notifiers.0.account_sid: expected the Account SID: AC followed by 32 hexadecimal digits',
      'notifiers.0.auth_token: expected a string',
      'notifiers.0.from: expected a phone number in E.164 form, like +15550002222',
      'notifiers.0.to.1: expected a phone number in E.164 form, like +15550002222',
      'notifiers.0.to.2: +15550002222 is listed twice',
      'notifiers.0.authtoken: unknown setting',
    ]);
  });

  it('requires a sender and at least one recipient, and checks the messaging service SID', () => {
    expect(problems({ ...valid, from: undefined, to: [] })).toEqual([
      'notifiers.0.to: must be at least 1',
      'notifiers.0.from: set from (a Twilio phone number) or messaging_service_sid',
    ]);
    expect(problems({ ...valid, messaging_service_sid: 'PN0123456789abcdef0123456789abcdef' })).toEqual([
      'notifiers.0.messaging_service_sid: expected a Messaging Service SID: MG followed by 32 hexadecimal digits',
    ]);
  });

  it('never echoes the auth token in a validation message', () => {
    const out = [
      ...problems({ ...valid, account_sid: AUTH_TOKEN }),
      ...problems({ ...valid, auth_token: 42 }),
      ...problems({ ...valid, to: [AUTH_TOKEN] }),
    ].join('\n');
    expect(out).not.toContain(AUTH_TOKEN);
  });
});

describe('twilio partial failures', () => {
  it("400 21211: final, with Twilio's code and message, and the other recipients are still texted", async () => {
    server.queue(twilioError(400, 21211, "The 'To' number +15550002222 is not a valid phone number."));
    const ctx = sendContext();
    const err = await sendError(createTwilioNotifier(config()).send(notification(), ctx));
    expect(err).toMatchObject({ retryable: false, status: 400 });
    expect(err.message).toContain('Twilio SMS to +15550002222');
    expect(err.message).toContain("The 'To' number +15550002222 is not a valid phone number.");
    expect(err.message).toContain(
      '(Twilio error 21211: fix this number in to; see https://www.twilio.com/docs/errors/21211)',
    );
    expect(server.requests).toHaveLength(3);
    expect([...ctx.parts]).toEqual(RECIPIENTS.slice(1));
  });

  it('resumes after a partial failure without texting anyone twice', async () => {
    server.queue(created({ method: 'POST', url: '', headers: {}, body: '' }), {
      status: 500,
      body: 'Internal Server Error',
    });
    const ctx = sendContext();
    const notifier = createTwilioNotifier(config());

    const err = await sendError(notifier.send(notification(), ctx));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('Twilio SMS to +15550003333');
    expect([...ctx.parts]).toEqual(['+15550002222']);
    expect(forms().map((f) => f.get('To'))).toEqual(['+15550002222', '+15550003333']);

    server.requests.length = 0;
    await notifier.send(notification(), ctx);
    expect(forms().map((f) => f.get('To'))).toEqual(['+15550003333', '+15550004444']);
    expect([...ctx.parts].sort()).toEqual(RECIPIENTS);
  });
});

describeDeliveryContract({
  provider: 'twilio',
  idempotent: false,
  server,
  create: (overrides) => createTwilioNotifier(config(overrides)),
  pointAt: (root) => ({ api_base_url: root }),
  path: MESSAGES_PATH,
  // The first recipient's request is the one that fails.
  label: (host) => `Twilio SMS to ${RECIPIENTS[0]} (${host})`,
  requestsPerSend: RECIPIENTS.length,
  accepts: [created({ method: 'POST', url: '', headers: {}, body: `To=${encodeURIComponent(RECIPIENTS[0]!)}` })],
  failures: [
    {
      name: '401 20003: final, says to check the credentials, and stops (every recipient would fail alike)',
      answers: [twilioError(401, 20003, 'Authenticate')],
      retryable: false,
      status: 401,
      contains: ['"message":"Authenticate"', 'Twilio error 20003: check account_sid and auth_token'],
      requests: 1,
    },
    {
      name: '429 20429: retryable, honouring Retry-After when given',
      answers: [{ ...twilioError(429, 20429, 'Too Many Requests'), headers: { 'Retry-After': '3' } }],
      retryable: true,
      status: 429,
      retryAfterMs: 3000,
      contains: ['Too Many Requests', 'Twilio error 20429'],
      requests: 1,
    },
    ...[500, 503].map((status) => ({
      name: `${status}: retryable`,
      answers: [{ status, body: 'Service Unavailable' }],
      retryable: true,
      status,
    })),
  ],
  secrets: [AUTH_TOKEN, Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')],
  echoes: [
    {
      name: 'never puts the auth token in an error, even when Twilio echoes the credentials back',
      answer: (req) => {
        const auth = String(req.headers.authorization);
        const decoded = Buffer.from(auth.slice('Basic '.length), 'base64').toString('utf8');
        return {
          status: 401,
          body: {
            code: 20003,
            message: `Authenticate ${auth} ${decoded}`,
            more_info: 'https://www.twilio.com/docs/errors/20003',
            status: 401,
          },
        };
      },
      contains: ['Authenticate Basic ***'],
      excludes: [AUTH_TOKEN, Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')],
    },
  ],
});
