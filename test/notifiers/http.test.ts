import { describe, expect, it } from 'vitest';
import { createDiscordNotifier, discordConfigSchema } from '../../src/notifiers/discord.js';
import { request } from '../../src/notifiers/http.js';
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
    expect(timeout.message).toBe('hook ***: no answer within 0.1s');

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
    const webhookUrl = `http://sentinel:${PASSWORD}@${new URL(server.url).host}/api/webhooks/123456789012345678/${TOKEN}`;
    const notifier = createDiscordNotifier(discordConfigSchema.parse({ name: 'oncall', type: 'discord', webhook_url: webhookUrl }));
    const err = await sendError(notifier.send(notification(), sendContext()));
    expect(err.message.startsWith(`discord webhook (${new URL(server.url).host}): `)).toBe(true);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain(TOKEN);
    expect(err.message).not.toContain('/api/webhooks/');
    expect(server.requests).toHaveLength(0);
  });
});
