import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { NotificationEvent } from '../../src/notifiers/contract.js';
import {
  blockTextLength,
  createSlackNotifier,
  escapeSlack,
  type SlackBlock,
  type SlackMessage,
  slackBody,
  slackConfigSchema,
} from '../../src/notifiers/slack.js';
import { useHttpServer } from '../helpers/http-server.js';
import { event, notification, sendContext, storm } from '../helpers/notifications.js';
import { describeDeliveryContract, problems } from './contract.js';

const TOKEN = 'xQ7bR2kLmN9pT4vW8yZ1aC3e';
const WEBHOOK_PATH = `/services/T0123ABCD/B0456EFGH/${TOKEN}`;

const server = useHttpServer({ status: 200, body: 'ok' });

function config(overrides: Record<string, unknown> = {}): z.output<typeof slackConfigSchema> {
  return slackConfigSchema.parse({
    name: 'team',
    type: 'slack',
    webhook_url: `${server.url}${WEBHOOK_PATH}`,
    ...overrides,
  });
}

function messageOf(index = 0): SlackMessage {
  const req = server.requests[index];
  if (!req) throw new Error(`no request #${index}`);
  return JSON.parse(req.body) as SlackMessage;
}

/**
 * Slack's documented limits, written out here rather than imported from the code under
 * test: 50 blocks per message; header block text 150 characters; section text and any
 * text object (the context elements) 3000 (Block Kit reference,
 * https://docs.slack.dev/reference/block-kit/blocks). The top-level `text` is truncated
 * by Slack at 40,000 characters; Sentinel keeps it to a section's 3000. The total over
 * all blocks is undocumented: Slack answers `msg_blocks_too_long` from about 13,000
 * characters (slackapi/bolt-js#2509), so Sentinel stays at 11,000.
 */
const SLACK = { blocks: 50, header: 150, section: 3000, text: 40_000, totalText: 11_000 } as const;

function expectWithinSlackLimits(body: SlackMessage): void {
  expect(body.blocks.length).toBeLessThanOrEqual(SLACK.blocks);
  for (const b of body.blocks) {
    if (b.type === 'header') expect(b.text.text.length).toBeLessThanOrEqual(SLACK.header);
    if (b.type === 'section') expect(b.text.text.length).toBeLessThanOrEqual(SLACK.section);
    if (b.type === 'context') for (const el of b.elements) expect(el.text.length).toBeLessThanOrEqual(SLACK.section);
    expect(blockTextLength(b)).toBeGreaterThan(0);
  }
  expect(body.blocks.reduce((sum, b) => sum + blockTextLength(b), 0)).toBeLessThanOrEqual(SLACK.totalText);
  expect(body.text.length).toBeGreaterThan(0);
  expect(body.text.length).toBeLessThanOrEqual(SLACK.section);
  expect(body.text.length).toBeLessThanOrEqual(SLACK.text);
}

/** Every piece of text a message carries, fallback included. */
function allText(body: SlackMessage): string {
  const parts = [body.text];
  for (const b of body.blocks)
    parts.push(b.type === 'context' ? b.elements.map((e) => e.text).join('\n') : b.text.text);
  return parts.join('\n');
}

function sections(body: SlackMessage): Array<Extract<SlackBlock, { type: 'section' }>> {
  return body.blocks.filter((b): b is Extract<SlackBlock, { type: 'section' }> => b.type === 'section');
}

function huge(i: number): NotificationEvent {
  const details: Record<string, unknown> = {};
  for (let k = 0; k < 100; k++) details[`detail_key_${k}`] = 'v'.repeat(2000);
  return event({
    id: `huge${i}`,
    subject: `src_${i}`,
    message: `${i}: ${'m'.repeat(10_000)}`,
    remediation: 'r'.repeat(10_000),
    details,
  });
}

describe('slack request', () => {
  it('posts the documented incoming-webhook request: JSON with text and blocks', async () => {
    const notifier = createSlackNotifier(config());
    await notifier.send(notification(), sendContext());

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe(WEBHOOK_PATH);
    expect(req.headers['content-type']).toBe('application/json');

    expect(messageOf()).toEqual({
      text:
        '[prod] Sentinel: 1 critical\nFIRING critical stuck_batches: 3 batches stuck &gt; 10m: ' +
        'processing(2), validating(1)',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: '[prod] Sentinel: 1 critical' } },
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text:
              ':red_circle: *FIRING critical* stuck_batches\n' +
              '3 batches stuck &gt; 10m: processing(2), validating(1)\n' +
              '• stuck batches: 2 batches in processing, oldest 15 min\n' +
              '• total stuck: 3\n' +
              '• threshold: 10 min\n' +
              '*Remediation:* Check the worker logs for exceptions and database connectivity.',
          },
        },
        {
          type: 'context',
          elements: [
            {
              type: 'mrkdwn',
              text:
                'firing since 2025-01-04 10:15 UTC · prod · sentinel-host · alert a1b2c3d4 · ' +
                'runbook: docs/runbooks.md#stuck-batches',
            },
          ],
        },
      ],
    });
  });

  it('orders alerts most urgent first with an emoji per level and kind', () => {
    const body = slackBody(
      notification([
        event({ kind: 'resolved', check: 'a', resolvedAt: '2025-01-04T11:00:00.000Z' }),
        event({ check: 'b', level: 'warning' }),
        event({ check: 'c', kind: 'escalated' }),
      ]),
    );
    expect(sections(body).map((s) => s.text.text.split('\n')[0])).toEqual([
      ':red_circle: *ESCALATED critical* c',
      ':large_orange_circle: *FIRING warning* b',
      ':large_green_circle: *RESOLVED critical* a',
    ]);
    const contexts = body.blocks.filter((b) => b.type === 'context');
    expect(contexts.at(-1)).toEqual({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text:
            'resolved at 2025-01-04 11:00 UTC (firing since 2025-01-04 10:15 UTC) · prod · sentinel-host · ' +
            'alert a1b2c3d4 · runbook: docs/runbooks.md#a',
        },
      ],
    });
    expect(slackBody(notification([event({ kind: 'test' })])).blocks[1]).toMatchObject({
      text: { text: expect.stringMatching(/^:large_blue_circle: \*TEST critical\*/) },
    });
  });

  it('escapes &, < and > in alert data so it cannot mention <!everyone> or hide a link', async () => {
    const notifier = createSlackNotifier(config());
    const evil = 'Hi <!everyone> and <@U123>, see <https://evil.example/x|your bank> & more';
    await notifier.send(
      notification([
        event({ message: evil, subject: '<!channel>', remediation: evil, details: { note: evil, '<!here>': 1 } }),
      ]),
      sendContext(),
    );
    const body = messageOf();
    const text = allText(body);
    expect(text).not.toMatch(/<[!@#]|<https?:/);
    expect(text).toContain(escapeSlack(evil));
    expect(escapeSlack(evil)).toBe(
      'Hi &lt;!everyone&gt; and &lt;@U123&gt;, see &lt;https://evil.example/x|your bank&gt; &amp; more',
    );
    expect(sections(body)[0]!.text.text).toContain('(&lt;!channel&gt;)');
    expect(sections(body)[0]!.text.text).toContain('• &lt;!here&gt;: 1');
  });
});

describe('slack limits', () => {
  it('fits a storm of 50 alerts in 50 blocks: 24 alerts in full, a last section counting the other 26', async () => {
    const notifier = createSlackNotifier(config());
    await notifier.send(storm(50), sendContext());
    expect(server.requests).toHaveLength(1);
    const body = messageOf();
    expectWithinSlackLimits(body);
    expect(body.blocks).toHaveLength(50);
    expect(body.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: '[prod] Sentinel: 10 critical, 40 warning' },
    });
    const all = sections(body);
    expect(all).toHaveLength(25);
    const summary = all.at(-1)!.text.text;
    expect(summary.split('\n')[0]).toBe('*…and 26 more alerts:*');
    const listed = summary.split('\n').filter((l) => l.startsWith('• ')).length;
    const notListed = Number(/\n…(\d+) not listed$/.exec(summary)?.[1] ?? 0);
    expect(listed + notListed).toBe(26);
    expect(24 + 26).toBe(50);
    // Most urgent first: the 10 critical alerts come first.
    expect(all.slice(0, 10).every((s) => s.text.text.startsWith(':red_circle:'))).toBe(true);
    expect(body.text).toMatch(/^\[prod\] Sentinel: 10 critical, 40 warning\n(.+\n){3}…and 47 more$/);
  });

  it('keeps every section under 3000 and the whole message under the text budget with 10k-character alerts', () => {
    const body = slackBody(notification(Array.from({ length: 30 }, (_, i) => huge(i))));
    expectWithinSlackLimits(body);
    expect(body.blocks).toHaveLength(50);
    expect(sections(body).at(-1)!.text.text.split('\n')[0]).toBe('*…and 6 more alerts:*');
  });

  it(
    'cuts one huge alert to a 3000-character section that still ' + 'names the alert, and counts the details left out',
    () => {
      const body = slackBody(notification([huge(0)]));
      expectWithinSlackLimits(body);
      const text = sections(body)[0]!.text.text;
      expect(text.length).toBeLessThanOrEqual(3000);
      expect(text.startsWith(':red_circle: *FIRING critical* stuck_batches (src_0)\n0: mmm')).toBe(true);
      expect(text).toMatch(/\n• …\d+ more details/);
    },
  );

  it('never cuts an escaped character in half', () => {
    const body = slackBody(notification([event({ message: '<'.repeat(5000) })]));
    expectWithinSlackLimits(body);
    const line = sections(body)[0]!.text.text.split('\n')[1]!;
    expect(line).toMatch(/^(&lt;)+…$/);
  });
});

describe('slack config', () => {
  it('applies the defaults to a minimal section', () => {
    expect(
      slackConfigSchema.parse({ name: 'team', type: 'slack', webhook_url: 'https://hooks.slack.com/services/T/B/x' }),
    ).toEqual({
      name: 'team',
      type: 'slack',
      webhook_url: 'https://hooks.slack.com/services/T/B/x',
      min_level: 'warning',
      send_resolved: true,
      timeout_seconds: 10,
    });
  });

  it('names the path of every bad setting without echoing the webhook URL', () => {
    expect(problems({ name: 'team', type: 'slack' })).toEqual(['notifiers.0.webhook_url: required']);
    const bad = problems({
      name: 'team',
      type: 'slack',
      webhook_url: `hooks.slack.com/services/T/B/${TOKEN}`,
      channel: '#ops',
      timeout_seconds: 0,
    });
    expect(bad).toEqual(
      expect.arrayContaining([
        'notifiers.0.webhook_url: expected an http:// or https:// URL',
        'notifiers.0.channel: unknown setting',
        expect.stringMatching(/^notifiers\.0\.timeout_seconds: /),
      ]),
    );
    expect(bad.join('\n')).not.toContain(TOKEN);
  });

  it('reports the webhook URL and its token as secrets', () => {
    const notifier = createSlackNotifier(config({ min_level: 'critical', send_resolved: false }));
    expect(notifier.secrets()).toEqual(expect.arrayContaining([`${server.url}${WEBHOOK_PATH}`, TOKEN]));
    expect(notifier).toMatchObject({ name: 'team', type: 'slack', minLevel: 'critical', sendResolved: false });
  });
});

/** Slack's documented error codes that are final, and the hint each must carry. */
const FINAL_CODES: Array<[status: number, code: string, hint: string]> = [
  [400, 'invalid_payload', 'Sentinel bug'],
  [403, 'invalid_token', 'create a new incoming webhook and update notifiers[].webhook_url'],
  [403, 'action_prohibited', 'workspace admin'],
  [404, 'no_service', 'the webhook was removed or its URL is wrong'],
  [404, 'channel_not_found', "the webhook's channel was deleted"],
  [410, 'channel_is_archived', "the webhook's channel is archived: unarchive it"],
];

describeDeliveryContract({
  provider: 'slack',
  idempotent: false,
  server,
  create: (overrides) => createSlackNotifier(config(overrides)),
  pointAt: (root) => ({ webhook_url: `${root}${WEBHOOK_PATH}` }),
  path: WEBHOOK_PATH,
  label: (host) => `slack webhook (${host})`,
  accepts: [{ status: 200, body: 'ok' }],
  failures: [
    ...FINAL_CODES.map(([status, code, hint]) => ({
      name: `treats ${status} ${code} as final with a hint`,
      answers: [{ status, body: code }],
      retryable: false,
      status,
      contains: [`: ${code} (`, hint],
      matches: [/^slack webhook \(127\.0\.0\.1:\d+\): HTTP \d{3}/],
    })),
    {
      name: 'retries 500 rollup_error',
      answers: [{ status: 500, body: 'rollup_error' }],
      retryable: true,
      status: 500,
    },
    {
      name: 'retries 429 after Retry-After seconds',
      answers: [{ status: 429, headers: { 'Retry-After': '30' }, body: 'rate_limited' }],
      retryable: true,
      status: 429,
      retryAfterMs: 30_000,
      contains: ['rate limited by Slack'],
    },
  ],
  secrets: [TOKEN, 'T0123ABCD/B0456EFGH'],
  echoes: [
    {
      name: 'never shows the webhook URL or token in an error, even when the answer echoes the request',
      answer: (req) => ({ status: 404, body: `no_service for ${req.url} ${JSON.stringify(req.headers)}` }),
      contains: ['no_service for ***'],
      excludes: [TOKEN, 'T0123ABCD/B0456EFGH'],
    },
  ],
});
