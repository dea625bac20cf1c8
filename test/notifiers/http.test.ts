import { describe, expect, it } from 'vitest';
import { createDiscordNotifier, discordConfigSchema } from '../../src/notifiers/discord.js';
import { DeliveryError, type RetryPolicy, request, withRetry } from '../../src/notifiers/http.js';
import { startHttpServer, useHttpServer } from '../helpers/http-server.js';
import { notification, sendContext } from '../helpers/notifications.js';
import { sendError } from './contract.js';

const PASSWORD = 'pa55word-0123456789';
const TOKEN = 'tok_0123456789abcdefghijklmnop';

const server = useHttpServer({ status: 200 });

describe('request() redacts every message it builds', () => {
  it('masks the password and token that a network error quotes with the URL', async () => {
    // fetch refuses URLs with credentials, quoting the whole URL in its message.
    const url = `http://sentinel:${PASSWORD}@127.0.0.1:9/hooks/${TOKEN}`;
    const err = await sendError(request({ url, label: 'hook (127.0.0.1:9)', secrets: [TOKEN] }));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^hook \(127\.0\.0\.1:9\): .*credentials/);
    expect(err.message).toContain('***');
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain(TOKEN);
  });

  it('masks URL passwords in a network error even when they are not listed as secrets', async () => {
    const err = await sendError(request({ url: `http://sentinel:${PASSWORD}@127.0.0.1:9/hook`, label: 'hook' }));
    expect(err.message).toContain(`sentinel:***@`);
    expect(err.message).not.toContain(PASSWORD);
  });

  it('masks secrets in the timeout, abort and refused-connection messages', async () => {
    // A label that (wrongly) carries a secret must not carry it into an error.
    const label = `hook ${TOKEN}`;
    server.queue({ status: 200, hang: true });
    const timeout = await sendError(request({ url: `${server.url}/hook`, label, secrets: [TOKEN], timeoutMs: 100 }));
    expect(timeout.message).toBe('hook ***: delivery unknown (no answer within 0.1s after the request was sent)');

    const controller = new AbortController();
    controller.abort();
    const aborted = await sendError(request({ url: `${server.url}/hook`, label, secrets: [TOKEN] }, controller.signal));
    expect(aborted.message).toBe('hook ***: delivery aborted');

    const dead = await startHttpServer();
    await dead.close();
    const refused = await sendError(request({ url: `${dead.url}/hook`, label, secrets: [TOKEN] }));
    expect(refused.message).toBe('hook ***: connection refused');
  });

  it('masks secrets in the whole message of a failed answer, not only in the excerpt of its body', async () => {
    server.queue({ status: 500, body: `echo ${TOKEN}` });
    const err = await sendError(request({ url: `${server.url}/hook`, label: `hook ${TOKEN}`, secrets: [TOKEN] }));
    expect(err.message).toBe('hook ***: HTTP 500 Internal Server Error: echo ***');
  });

  it('keeps a Discord webhook URL with credentials out of the error fetch raises for it', async () => {
    const host = new URL(server.url).host;
    const webhookUrl = `http://sentinel:${PASSWORD}@${host}/api/webhooks/123456789012345678/${TOKEN}`;
    const notifier = createDiscordNotifier(
      discordConfigSchema.parse({ name: 'oncall', type: 'discord', webhook_url: webhookUrl }),
    );
    const err = await sendError(notifier.send(notification(), sendContext()));
    expect(err.message.startsWith(`discord webhook (${new URL(server.url).host}): `)).toBe(true);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain(TOKEN);
    expect(err.message).not.toContain('/api/webhooks/');
    expect(server.requests).toHaveLength(0);
  });
});

describe('request() knows whether the request left this process whole ("body sent")', () => {
  it(
    'a server that accepted the connection but never reads: a small request is in its buffers, so the outcome ' +
      'is unknown',
    async () => {
      server.readLater(Infinity);
      const err = await sendError(
        request({ url: `${server.url}/hook`, body: '{"text":"hello"}', label: 'hook', timeoutMs: 200 }),
      );
      expect(err.retryable).toBe(true);
      expect(err.deliveryUnknown).toBe(true);
      expect(err.message).toBe('hook: delivery unknown (no answer within 0.2s after the request was sent)');
      expect(server.accepted).toBe(1);
      expect(server.requests).toHaveLength(0);
    },
  );

  it(
    'a server that never reads a request too large for the socket ' + 'buffers: not sent whole, so known undelivered',
    async () => {
      server.readLater(Infinity);
      const err = await sendError(
        request({ url: `${server.url}/hook`, body: 'x'.repeat(32 * 1024 * 1024), label: 'hook', timeoutMs: 300 }),
      );
      expect(err.retryable).toBe(true);
      expect(err.deliveryUnknown).toBe(false);
      expect(err.message).toBe('hook: timed out after 0.3s before the request was sent');
    },
  );

  it(
    'a slow-accepting server that reads the body only after the timeout: unknown, and it does receive the ' + 'request',
    async () => {
      server.readLater(400);
      const err = await sendError(
        request({ url: `${server.url}/hook`, body: '{"text":"hello"}', label: 'hook', timeoutMs: 200 }),
      );
      expect(err.deliveryUnknown).toBe(true);
      await server.received(1);
      expect(server.requests.map((r) => r.body)).toEqual(['{"text":"hello"}']);
    },
  );

  it('an answer after the request was sent decides, however slow the body was to be read', async () => {
    server.readLater(50);
    await expect(
      request({ url: `${server.url}/hook`, body: '{}', label: 'hook', timeoutMs: 5000 }),
    ).resolves.toMatchObject({ status: 200 });
  });
});

describe('withRetry and delivery unknown', () => {
  const policy = (overrides: Partial<RetryPolicy> = {}): RetryPolicy => ({
    attempts: 4,
    baseDelayMs: 1,
    maxDelayMs: 1,
    deadline: performance.now() + 60_000,
    sleep: async () => {},
    random: () => 0,
    ...overrides,
  });
  const unknown = new DeliveryError(
    'hook: delivery unknown (no answer within 1s after the request was sent)',
    true,
    undefined,
    undefined,
    true,
  );

  it('does not try again after a delivery unknown unless the receiver deduplicates', async () => {
    let calls = 0;
    const attempt = async (): Promise<void> => {
      calls++;
      throw unknown;
    };
    expect(await withRetry(attempt, policy()).catch((e: unknown) => e)).toBe(unknown);
    expect(calls).toBe(1);
    calls = 0;
    expect(await withRetry(attempt, policy({ retryUnknown: true })).catch((e: unknown) => e)).toBe(unknown);
    expect(calls).toBe(4);
  });

  it('still tries again after a failure before the request was sent', async () => {
    let calls = 0;
    await withRetry(async () => {
      if (++calls < 3) throw new DeliveryError('hook: connection refused', true);
    }, policy());
    expect(calls).toBe(3);
  });
});

describe('request() without fetch keeps what fetch did', () => {
  it('does not follow a redirect: final, with a hint and without the Location (it may carry a token)', async () => {
    server.queue({ status: 301, headers: { location: `https://elsewhere.example/hooks/${TOKEN}` } });
    const err = await sendError(request({ url: `${server.url}/hook`, label: 'hook', secrets: [TOKEN] }));
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(
      'hook: HTTP 301 Moved Permanently (redirects are not followed: set the URL it redirects to)',
    );
    expect(server.requests).toHaveLength(1);
  });

  it('refuses a header value with a line break before anything is sent, without quoting it', async () => {
    const err = await sendError(
      request({ url: `${server.url}/hook`, label: 'hook', headers: { 'X-Token': `${TOKEN}\r\nX-Injected: 1` } }),
    );
    expect(err.retryable).toBe(true);
    expect(err.deliveryUnknown).toBe(false);
    expect(err.message).not.toContain(TOKEN);
    expect(server.accepted).toBe(0);
  });

  it('sends the body with its length, a User-Agent and the content type the caller set', async () => {
    await request({ url: `${server.url}/hook`, label: 'hook', body: new URLSearchParams({ To: '+15550002222' }) });
    const [req] = server.requests;
    expect(req).toMatchObject({ method: 'POST', body: 'To=%2B15550002222' });
    expect(req!.headers).toMatchObject({
      'content-type': 'application/x-www-form-urlencoded;charset=UTF-8',
      'content-length': '17',
      'user-agent': expect.stringMatching(/^sentinel\//),
    });
  });
});
