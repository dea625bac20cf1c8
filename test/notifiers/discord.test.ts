import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { NotificationEvent } from '../../src/notifiers/contract.js';
import {
  createDiscordNotifier,
  DISCORD_COLORS,
  type DiscordMessage,
  discordBody,
  discordConfigSchema,
  embedSize,
  escapeMarkdown,
} from '../../src/notifiers/discord.js';
import { useHttpServer } from '../helpers/http-server.js';
import { event, notification, sendContext, storm } from '../helpers/notifications.js';
import { describeDeliveryContract, problems } from './contract.js';

const WEBHOOK_ID = '123456789012345678';
const TOKEN = 'dQw4w9WgXcQ-SeCrEt_tOkEn-0123456789abcdefABCDEF-ghijklmnopqrstuvwxyz012345';
const WEBHOOK_PATH = `/api/webhooks/${WEBHOOK_ID}/${TOKEN}`;

const server = useHttpServer({ status: 200, body: { id: '1', type: 0, content: '' } });

function config(overrides: Record<string, unknown> = {}): z.output<typeof discordConfigSchema> {
  return discordConfigSchema.parse({
    name: 'oncall',
    type: 'discord',
    webhook_url: `${server.url}${WEBHOOK_PATH}`,
    ...overrides,
  });
}

function messageOf(index = 0): DiscordMessage {
  const req = server.requests[index];
  if (!req) throw new Error(`no request #${index}`);
  return JSON.parse(req.body) as DiscordMessage;
}

/**
 * Discord's documented limits, written out here rather than imported from the code under
 * test: message `content` 2000 characters (Execute Webhook), up to 10 embeds; per embed
 * title 256, description 4096, 25 fields, field name 256, field value 1024, footer text
 * 2048, and 6000 characters in all embeds together (Embed Object > Embed Limits,
 * https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
 */
const DISCORD = {
  content: 2000,
  embeds: 10,
  title: 256,
  description: 4096,
  fields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  total: 6000,
} as const;

/** Every documented Discord limit, counted in UTF-16 units (never fewer than Discord's characters). */
function expectWithinDiscordLimits(body: DiscordMessage): void {
  expect(body.content.length).toBeGreaterThan(0);
  expect(body.content.length).toBeLessThanOrEqual(DISCORD.content);
  expect(body.embeds.length).toBeLessThanOrEqual(DISCORD.embeds);
  let total = 0;
  for (const e of body.embeds) {
    expect(e.title.length).toBeGreaterThan(0);
    expect(e.title.length).toBeLessThanOrEqual(DISCORD.title);
    expect(e.description?.length ?? 0).toBeLessThanOrEqual(DISCORD.description);
    expect(e.fields?.length ?? 0).toBeLessThanOrEqual(DISCORD.fields);
    for (const f of e.fields ?? []) {
      expect(f.name.length).toBeGreaterThan(0);
      expect(f.name.length).toBeLessThanOrEqual(DISCORD.fieldName);
      expect(f.value.length).toBeGreaterThan(0);
      expect(f.value.length).toBeLessThanOrEqual(DISCORD.fieldValue);
    }
    expect(e.footer?.text.length ?? 0).toBeLessThanOrEqual(DISCORD.footer);
    total += e.title.length + (e.description?.length ?? 0) + (e.footer?.text.length ?? 0);
    for (const f of e.fields ?? []) total += f.name.length + f.value.length;
  }
  expect(total).toBeLessThanOrEqual(DISCORD.total);
  expect(body.allowed_mentions).toEqual({ parse: [] });
}

function huge(i: number, overrides: Partial<NotificationEvent> = {}): NotificationEvent {
  const details: Record<string, unknown> = {};
  for (let k = 0; k < 100; k++) details[`detail_key_${k}`] = `${'v'.repeat(1990)}${k}`;
  return event({
    id: `huge${i}`,
    dedupKey: `sentinel-prod-x-${i}`,
    subject: `source_${i}_${'s'.repeat(1000)}`,
    message: `${i}: ${'m'.repeat(10_000)}`,
    remediation: 'r'.repeat(10_000),
    details,
    ...overrides,
  });
}

describe('discord request', () => {
  it('posts the documented Execute Webhook request: ?wait=true, JSON, one embed per alert, no mentions', async () => {
    const notifier = createDiscordNotifier(config());
    await notifier.send(notification(), sendContext());

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe(`${WEBHOOK_PATH}?wait=true`);
    expect(req.headers['content-type']).toBe('application/json');

    const body = messageOf();
    expect(Object.keys(body).sort()).toEqual(['allowed_mentions', 'content', 'embeds', 'username']);
    expect(body.username).toBe('Sentinel');
    expect(body.content).toBe('[prod] Sentinel: 1 critical');
    expect(body.allowed_mentions).toEqual({ parse: [] });
    expect(body.embeds).toHaveLength(1);
    expect(body.embeds[0]).toEqual({
      title: 'FIRING critical stuck\\_batches',
      description:
        '3 batches stuck \\> 10m: processing(2), validating(1)\n\n' +
        '**Remediation:** Check the worker logs for exceptions and database connectivity.\n' +
        '*firing since 2025-01-04 10:15 UTC*',
      color: DISCORD_COLORS.critical,
      fields: [
        { name: 'stuck batches', value: '• 2 batches in processing, oldest 15 min', inline: false },
        { name: 'total stuck', value: '3', inline: true },
        { name: 'threshold', value: '10 min', inline: true },
      ],
      footer: { text: 'prod · sentinel-host · alert a1b2c3d4' },
      timestamp: '2025-01-04T10:15:32.123Z',
    });
  });

  it('keeps a query already in the webhook URL (thread_id) and adds wait=true', async () => {
    const notifier = createDiscordNotifier(config({ webhook_url: `${server.url}${WEBHOOK_PATH}?thread_id=42` }));
    await notifier.send(notification(), sendContext());
    expect(server.requests[0]!.url).toBe(`${WEBHOOK_PATH}?thread_id=42&wait=true`);
  });

  it('posts as the configured username and avatar', async () => {
    const notifier = createDiscordNotifier(
      config({ username: 'Sentinel prod', avatar_url: 'https://example.com/sentinel.png' }),
    );
    await notifier.send(notification(), sendContext());
    expect(messageOf()).toMatchObject({ username: 'Sentinel prod', avatar_url: 'https://example.com/sentinel.png' });
  });

  it('orders alerts most urgent first and colours them by level and kind', () => {
    const body = discordBody(
      notification([
        event({ kind: 'resolved', check: 'a_resolved', level: 'critical', resolvedAt: '2025-01-04T11:00:00.000Z' }),
        event({ check: 'b_warning', level: 'warning' }),
        event({ check: 'c_critical', level: 'critical' }),
      ]),
      { username: 'Sentinel' },
    );
    expect(body.embeds.map((e) => [e.title, e.color])).toEqual([
      ['FIRING critical c\\_critical', DISCORD_COLORS.critical],
      ['FIRING warning b\\_warning', DISCORD_COLORS.warning],
      ['RESOLVED critical a\\_resolved', DISCORD_COLORS.resolved],
    ]);
    expect(body.embeds[2]!.description).toContain(
      '*resolved at 2025-01-04 11:00 UTC (firing since 2025-01-04 10:15 UTC)*',
    );
    expect(body.embeds[2]!.timestamp).toBe('2025-01-04T11:00:00.000Z');
    expect(body.content).toBe('[prod] Sentinel: 1 critical, 1 warning, 1 resolved');

    const test = discordBody(notification([event({ kind: 'test', level: 'warning', check: 'sentinel_test' })]), {
      username: 'Sentinel',
    });
    expect(test.embeds[0]!.color).toBe(DISCORD_COLORS.test);
    expect(test.content).toBe('[prod] Sentinel test notification');
  });

  it('escapes markdown in alert data so it cannot render masked links or mention markup, and never pings', async () => {
    const notifier = createDiscordNotifier(config());
    const evil = '@everyone <@&123456> [click here](https://evil.example/x) **bold** `code`';
    await notifier.send(
      notification([event({ message: evil, subject: '<@999>', details: { note: evil } })]),
      sendContext(),
    );
    const body = messageOf();
    expect(body.allowed_mentions).toEqual({ parse: [] });
    const embed = body.embeds[0]!;
    expect(embed.title).toBe('FIRING critical stuck\\_batches (\\<@999\\>)');
    expect(embed.description).toContain(
      '@everyone \\<@&123456\\> \\[click here\\](https://evil.example/x) \\*\\*bold\\*\\* \\`code\\`',
    );
    expect(embed.fields![0]!.value).toBe(escapeMarkdown(evil));
    // Unescaped, nothing of the markup remains.
    expect(embed.description).not.toMatch(/(^|[^\\])\[click/);
  });
});

describe('discord limits', () => {
  it('fits a storm of 50 alerts in one message: 9 alert embeds and a tenth counting the other 41', async () => {
    const notifier = createDiscordNotifier(config());
    const n = storm(50);
    await notifier.send(n, sendContext());
    expect(server.requests).toHaveLength(1);
    const body = messageOf();
    expectWithinDiscordLimits(body);
    expect(body.embeds).toHaveLength(10);
    expect(body.content).toBe('[prod] Sentinel: 10 critical, 40 warning');

    const alertEmbeds = body.embeds.slice(0, 9);
    const summary = body.embeds[9]!;
    expect(summary.title).toBe('…and 41 more alerts');
    expect(alertEmbeds.length + 41).toBe(50);
    // Most urgent first: the 10 critical alerts lead, 9 of them get an embed.
    expect(alertEmbeds.every((e) => e.color === DISCORD_COLORS.critical)).toBe(true);
    // Every hidden alert is listed or counted in the summary.
    const listed = summary.description!.split('\n').filter((l) => l.startsWith('• ')).length;
    const notListed = Number(/…and (\d+) more not listed$/.exec(summary.description!)?.[1] ?? 0);
    expect(listed + notListed).toBe(41);
    // Each shown alert keeps its details in a storm (they are small).
    expect(alertEmbeds[0]!.fields!.map((f) => `${f.name}: ${f.value}`)).toEqual([
      'error rate: 30 %',
      'threshold: 25 %',
      'hour bucket: 2025-01-04 10:00 UTC',
      'error rows: 300',
      'total rows: 1000',
      'source: vendor\\_0',
    ]);
  });

  it(
    'keeps every limit with 12 alerts of 10k-character messages, remediations and 100 detail keys of 2000 ' +
      'characters',
    () => {
      const body = discordBody(notification(Array.from({ length: 12 }, (_, i) => huge(i))), { username: 'Sentinel' });
      expectWithinDiscordLimits(body);
      expect(body.embeds).toHaveLength(10);
      expect(body.embeds[9]!.title).toBe('…and 3 more alerts');
      // Each alert embed still says which alert it is and what it says.
      body.embeds.slice(0, 9).forEach((e, i) => {
        expect(e.title).toMatch(new RegExp(`^FIRING critical stuck\\\\_batches \\(source\\\\_${i}\\\\_s+…$`));
        expect(e.description).toMatch(new RegExp(`^${i}: m+…`));
        expect(e.description).toContain('*firing since 2025-01-04 10:15 UTC*');
      });
    },
  );

  it('cuts one huge alert to 25 fields, noting the details left out, within 4096 and 6000', () => {
    const body = discordBody(notification([huge(0, { subject: undefined })]), { username: 'Sentinel' });
    expectWithinDiscordLimits(body);
    const embed = body.embeds[0]!;
    expect(embed.description!.length).toBeLessThanOrEqual(DISCORD.description);
    expect(embed.description).toMatch(/^0: m+…\n\n\*\*Remediation:\*\* r+…\n\*firing since 2025-01-04 10:15 UTC\*$/);
    const last = embed.fields!.at(-1)!;
    expect(last.name).toBe('…');
    const shownDetails = embed.fields!.length - 1;
    expect(last.value).toBe(`${100 - shownDetails} more details not shown`);
  });

  it('caps the fields of an alert with 100 short details at 25, the last counting the rest', () => {
    const details = Object.fromEntries(Array.from({ length: 100 }, (_, k) => [`k${k}`, k]));
    const body = discordBody(notification([event({ details })]), { username: 'Sentinel' });
    expectWithinDiscordLimits(body);
    const fields = body.embeds[0]!.fields!;
    expect(fields).toHaveLength(25);
    expect(fields.slice(0, 24).map((f) => f.name)).toEqual(Array.from({ length: 24 }, (_, k) => `k${k}`));
    expect(fields[24]).toEqual({ name: '…', value: '76 more details not shown' });
  });

  it('gives exactly 10 alerts an embed each without a summary', () => {
    const body = discordBody(storm(10), { username: 'Sentinel' });
    expectWithinDiscordLimits(body);
    expect(body.embeds).toHaveLength(10);
    expect(body.embeds.some((e) => e.title.startsWith('…and'))).toBe(false);
  });

  it('never cuts an escape in half: a cut description does not end in a lone backslash', () => {
    const body = discordBody(
      notification(Array.from({ length: 10 }, (_, i) => event({ id: `u${i}`, message: '_'.repeat(9000) }))),
      { username: 'Sentinel' },
    );
    expectWithinDiscordLimits(body);
    for (const e of body.embeds) {
      const message = e.description!.split('\n\n')[0]!;
      expect(message.endsWith('…')).toBe(true);
      expect(/(^|[^\\])(\\\\)*\\…$/.test(message)).toBe(false);
    }
    expect(embedSize(body.embeds[0]!)).toBeLessThanOrEqual(600);
  });
});

describe('discord config', () => {
  it('applies the defaults and validates a minimal section', () => {
    const parsed = discordConfigSchema.parse({
      name: 'oncall',
      type: 'discord',
      webhook_url: 'https://discord.com/api/webhooks/1/abc',
    });
    expect(parsed).toEqual({
      name: 'oncall',
      type: 'discord',
      webhook_url: 'https://discord.com/api/webhooks/1/abc',
      min_level: 'warning',
      send_resolved: true,
      timeout_seconds: 10,
      username: 'Sentinel',
    });
  });

  it('names the path of every bad setting, without echoing the webhook URL', () => {
    expect(problems({ name: 'oncall', type: 'discord' })).toEqual(['notifiers.0.webhook_url: required']);
    const secretish = `ftp://discord.com/api/webhooks/1/${TOKEN}`;
    const bad = problems({
      name: 'oncall',
      type: 'discord',
      webhook_url: secretish,
      webhok_url: 'x',
      username: 'My Discord bot',
      min_level: 'info',
    });
    expect(bad).toEqual(
      expect.arrayContaining([
        'notifiers.0.webhook_url: expected an http:// or https:// URL',
        'notifiers.0.webhok_url: unknown setting',
        'notifiers.0.username: Discord rejects webhook names that contain "clyde" or "discord"',
        expect.stringMatching(/^notifiers\.0\.min_level: /),
      ]),
    );
    expect(bad.join('\n')).not.toContain(TOKEN);
    expect(
      problems({
        name: 'oncall',
        type: 'discord',
        webhook_url: 'https://discord.com/api/webhooks/1/abc',
        username: 'x'.repeat(81),
      }),
    ).toEqual([expect.stringMatching(/^notifiers\.0\.username: /)]);
  });

  it('reports the webhook URL and its token as secrets, and names the target without them', async () => {
    const notifier = createDiscordNotifier(config());
    expect(notifier.secrets()).toEqual(expect.arrayContaining([`${server.url}${WEBHOOK_PATH}`, TOKEN]));
    expect(notifier).toMatchObject({ name: 'oncall', type: 'discord', minLevel: 'warning', sendResolved: true });
  });
});

describeDeliveryContract({
  provider: 'discord',
  idempotent: false,
  server,
  create: (overrides) => createDiscordNotifier(config(overrides)),
  pointAt: (root) => ({ webhook_url: `${root}${WEBHOOK_PATH}` }),
  path: `${WEBHOOK_PATH}?wait=true`,
  label: (host) => `discord webhook (${host})`,
  // 200 with the message (wait=true), 204 without wait.
  accepts: [{ status: 200, body: { id: '1' } }, { status: 204 }],
  failures: [
    {
      name: 'treats 404 Unknown Webhook as final and says to create a new webhook',
      answers: [{ status: 404, body: { message: 'Unknown Webhook', code: 10015 } }],
      retryable: false,
      status: 404,
      contains: [
        'Unknown Webhook',
        'the webhook was deleted or its URL is wrong: create a new one and update notifiers[].webhook_url',
      ],
      matches: [/^discord webhook \(127\.0\.0\.1:\d+\): HTTP 404/],
    },
    {
      name: 'treats 400 Invalid Form Body as final and shows what Discord objected to',
      answers: [
        {
          status: 400,
          body: {
            code: 50035,
            message: 'Invalid Form Body',
            errors: {
              embeds: { '0': { fields: { '6': { value: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH' }] } } } } },
            },
          },
        },
      ],
      retryable: false,
      status: 400,
      contains: ['Invalid Form Body', 'BASE_TYPE_MAX_LENGTH', 'Sentinel bug'],
    },
    { name: 'retries 5xx', answers: [{ status: 502, body: 'Bad Gateway' }], retryable: true, status: 502 },
    {
      name: "retries 429 after Discord's retry_after (seconds, fractional) from the body",
      answers: [
        {
          status: 429,
          headers: { 'Retry-After': '1' },
          body: { message: 'You are being rate limited.', retry_after: 0.64, global: false },
        },
      ],
      retryable: true,
      status: 429,
      retryAfterMs: 640,
      contains: ['rate limited by Discord'],
    },
    {
      name: 'falls back to the Retry-After header when the 429 body has no retry_after',
      answers: [{ status: 429, headers: { 'Retry-After': '3' }, body: 'slow down' }],
      retryable: true,
      status: 429,
      retryAfterMs: 3000,
    },
  ],
  secrets: [TOKEN, WEBHOOK_PATH],
  echoes: [
    {
      name: 'never shows the webhook URL or token in an error, even when the answer echoes the request',
      answer: (req) => ({
        status: req.body.length ? 400 : 500,
        body: `{"message":"bad ${req.url} from ${JSON.stringify(req.headers)}","code":0}`,
      }),
      contains: ['bad ***'],
      excludes: [TOKEN, WEBHOOK_PATH],
    },
    {
      name: 'never shows the token when a 5xx answer is the request URL',
      answer: (req) => ({ status: 503, body: `${req.url}` }),
      excludes: [TOKEN],
    },
    {
      name: 'masks a token straddling the excerpt cut whole, not cut into an unrecognisable half',
      answer: (req) => ({ status: 500, body: `${'x'.repeat(280)}${req.url}` }),
      excludes: [TOKEN.slice(0, 8)],
    },
  ],
});
