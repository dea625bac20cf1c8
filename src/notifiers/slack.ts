import { z } from 'zod';
import { baseNotifierFields, httpUrl, notifierBasics, runbookUrlField, timeoutMs, urlSecrets } from './base.js';
import type { Notification, NotificationEvent, Notifier, SendContext } from './contract.js';
import {
  byUrgency,
  cutClean,
  detailLines,
  eventRunbook,
  eventWhen,
  headline,
  KIND_LABEL,
  truncate,
  waterLevel,
} from './format.js';
import { hostOf, request } from './http.js';

/**
 * Slack incoming webhook: one message per notification.
 *
 * `POST <webhook_url>` with JSON `{ text, blocks }`: `text` is what push
 * notifications and screen readers show, `blocks` the layout (a header, then per
 * alert a section and a context line). Slack answers 200 `ok`; errors are plain
 * text codes: 400 `invalid_payload` / `user_not_found`, 403 `invalid_token` /
 * `action_prohibited`, 404 `no_service` / `channel_not_found`, 410
 * `channel_is_archived`, 429 with `Retry-After` (seconds), 500 `rollup_error`.
 *
 * Limits: 50 blocks per message, header text ≤ 150, section text ≤ 3000. Slack also
 * rejects messages whose blocks hold too much text in total (`msg_blocks_too_long`,
 * observed near 12,000 characters and undocumented), so all block text is kept
 * under 11,000. A storm shows the 24 most urgent alerts in full and lists the rest
 * in a last section that starts "…and N more alerts".
 *
 * Alert text is untrusted: `&`, `<` and `>` are escaped as Slack requires, so data
 * cannot form links (`<https://evil|x>`) or mentions (`<!everyone>`, `<@U…>`).
 */

export const SLACK_LIMITS = {
  blocks: 50,
  header: 150,
  section: 3000,
  /** Ours: below the undocumented cumulative limit behind `msg_blocks_too_long`. */
  totalText: 11_000,
} as const;

/** Alerts shown in full: header + 24 × (section + context) + summary = 50 blocks. */
const MAX_FULL_EVENTS = Math.floor((SLACK_LIMITS.blocks - 1) / 2);
const MAX_SUMMARY = 2500;
const MAX_SUMMARY_LINE = 110;
const MAX_HEAD = 300;
const MAX_DETAIL_LINE = 300;
const MAX_CONTEXT = 300;
const FALLBACK_EVENTS = 3;
const MAX_FALLBACK_LINE = 150;

const EMOJI: Record<'critical' | 'warning' | 'resolved' | 'test', string> = {
  critical: ':red_circle:',
  warning: ':large_orange_circle:',
  resolved: ':large_green_circle:',
  test: ':large_blue_circle:',
};

export const slackConfigSchema = z.strictObject({
  ...baseNotifierFields,
  ...runbookUrlField,
  type: z.literal('slack'),
  /** `https://hooks.slack.com/services/T…/B…/…`: a secret (the token is in the path). */
  webhook_url: httpUrl,
});

export type SlackConfig = z.output<typeof slackConfigSchema>;

export function createSlackNotifier(config: SlackConfig): Notifier {
  const label = `slack webhook (${hostOf(config.webhook_url)})`;
  const secrets = urlSecrets(config.webhook_url);
  return {
    ...notifierBasics(config, secrets),
    // Incoming webhooks have no idempotency key: a message sent twice is posted twice.
    idempotent: false,
    async send(notification: Notification, ctx: SendContext): Promise<void> {
      await request(
        {
          url: config.webhook_url,
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(slackBody(notification, config.runbook_url)),
          label,
          secrets,
          timeoutMs: timeoutMs(config),
          interpret: interpretSlackError,
        },
        ctx.signal,
      );
    },
  };
}

type TextObject = { type: 'mrkdwn'; text: string } | { type: 'plain_text'; text: string };
export type SlackBlock =
  | { type: 'header'; text: { type: 'plain_text'; text: string } }
  | { type: 'section'; text: { type: 'mrkdwn'; text: string } }
  | { type: 'context'; elements: TextObject[] };

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

export function slackBody(n: Notification, runbookBase?: string): SlackMessage {
  return { text: fallbackText(n), blocks: slackBlocks(n, runbookBase) };
}

/** Headline and the first alerts, for notifications and clients that do not show blocks. */
function fallbackText(n: Notification): string {
  const events = byUrgency(n.events);
  const lines = [escapeSlack(headline(n))];
  for (const e of events.slice(0, FALLBACK_EVENTS)) {
    const subject = e.subject ? ` (${e.subject})` : '';
    lines.push(
      cut(escapeSlack(`${KIND_LABEL[e.kind]} ${e.level} ${e.check}${subject}: ${e.message}`), MAX_FALLBACK_LINE),
    );
  }
  if (events.length > FALLBACK_EVENTS) lines.push(`…and ${events.length - FALLBACK_EVENTS} more`);
  return lines.join('\n');
}

/**
 * Header, then a section and a context block per alert, most urgent first, then
 * (in a storm) one section that counts and lists the alerts not shown in full.
 * Section texts share the total text budget fairly: short ones stay whole, long
 * ones are cut to the same cap.
 */
export function slackBlocks(n: Notification, runbookBase?: string): SlackBlock[] {
  const events = byUrgency(n.events);
  const shown = events.length > MAX_FULL_EVENTS ? events.slice(0, MAX_FULL_EVENTS) : events;
  const hidden = events.slice(shown.length);

  const header: SlackBlock = {
    type: 'header',
    text: { type: 'plain_text', text: truncate(headline(n), SLACK_LIMITS.header) },
  };
  const contexts = shown.map(
    (e): SlackBlock => ({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: contextText(e, n.host, runbookBase) }],
    }),
  );
  const summary = hidden.length ? summaryText(hidden) : undefined;

  const fixed =
    header.text.text.length + contexts.reduce((sum, c) => sum + blockTextLength(c), 0) + (summary?.length ?? 0);
  const full = shown.map((e) => sectionText(e, SLACK_LIMITS.section));
  const cap = Math.min(
    SLACK_LIMITS.section,
    waterLevel(
      full.map((t) => t.length),
      SLACK_LIMITS.totalText - fixed,
    ),
  );
  const sections = shown.map((e, i) => (full[i]!.length <= cap ? full[i]! : sectionText(e, cap)));

  const blocks: SlackBlock[] = [header];
  shown.forEach((_, i) => {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: sections[i]! } });
    blocks.push(contexts[i]!);
  });
  if (summary) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: summary } });
  return blocks;
}

/** Characters of text a block carries (what counts towards Slack's limits). */
export function blockTextLength(block: SlackBlock): number {
  if (block.type === 'context') return block.elements.reduce((sum, el) => sum + el.text.length, 0);
  return block.text.text.length;
}

/**
 * `:red_circle: *FIRING critical* stuck_batches`, the message, `• key: value`
 * detail lines, `*Remediation:* …`, in at most `max` characters: the message gives
 * way to half of the room when everything is long, details are dropped last-first
 * with a count of what is missing.
 */
function sectionText(e: NotificationEvent, max: number): string {
  const subject = e.subject ? ` (${escapeSlack(e.subject)})` : '';
  const head = cut(
    `${EMOJI[e.kind === 'resolved' || e.kind === 'test' ? e.kind : e.level]} *${KIND_LABEL[e.kind]} ${e.level}* ` +
      `${escapeSlack(e.check)}${subject}`,
    MAX_HEAD,
  );
  const message = escapeSlack(e.message);
  const details = detailLines(e.details).map((line) => cut(`• ${escapeSlack(line)}`, MAX_DETAIL_LINE));
  const remediation = e.remediation ? `*Remediation:* ${escapeSlack(e.remediation)}` : '';
  const join = (parts: string[]): string => parts.filter(Boolean).join('\n');

  const full = join([head, message, ...details, remediation]);
  if (full.length <= max) return full;

  let room = max - head.length - 1;
  const detailsWanted = details.reduce((sum, d) => sum + d.length + 1, 0);
  const remWanted = remediation ? remediation.length + 1 : 0;
  const msgRoom = Math.min(message.length, Math.max(Math.floor(room / 2), room - detailsWanted - remWanted));
  const msg = msgRoom > 0 ? cut(message, msgRoom) : '';
  room -= msg.length + 1;

  let rem = '';
  if (remediation && room > 0) {
    const remRoom = Math.min(remediation.length, Math.max(Math.floor(room / 2), room - detailsWanted));
    // A remediation cut to a few characters is noise: leave the room to the details.
    if (remRoom >= 40 || remRoom >= remediation.length) rem = cut(remediation, remRoom);
    room -= rem.length + 1;
  }

  const kept: string[] = [];
  for (const [i, d] of details.entries()) {
    const rest = details.length - i - 1;
    const noteRoom = rest > 0 ? `• …${rest} more details`.length + 1 : 0;
    if (d.length + 1 + noteRoom > room) {
      const note = `• …${details.length - i} more detail${details.length - i === 1 ? '' : 's'}`;
      if (note.length + 1 <= room) kept.push(note);
      break;
    }
    kept.push(d);
    room -= d.length + 1;
  }
  return join([head, msg, ...kept, rem]).slice(0, max);
}

/** When, where, which alert, and its runbook (a link when `runbook_url` is set, the docs path otherwise). */
function contextText(e: NotificationEvent, host: string, runbookBase?: string): string {
  const runbook = eventRunbook(e, runbookBase);
  // The link is built after escaping: its `<…|…>` is Slack's syntax, the URL (from the config) percent-encoded.
  const link = !runbook
    ? ''
    : /^https?:\/\//.test(runbook)
      ? ` · <${runbook.replace(/[<>|]/g, encodeURIComponent)}|runbook>`
      : ` · runbook: ${escapeSlack(runbook)}`;
  const text = cut(escapeSlack(`${eventWhen(e)} · ${e.environment} · ${host} · alert ${e.id}`), MAX_CONTEXT);
  return text.length + link.length <= MAX_CONTEXT ? `${text}${link}` : text;
}

/** `*…and 26 more alerts:*` and one line per alert while they fit. */
function summaryText(hidden: NotificationEvent[]): string {
  const lines = [`*…and ${hidden.length} more alert${hidden.length === 1 ? '' : 's'}:*`];
  let length = lines[0]!.length;
  for (const [i, e] of hidden.entries()) {
    const subject = e.subject ? ` (${e.subject})` : '';
    const line = cut(
      `• ${escapeSlack(`${KIND_LABEL[e.kind]} ${e.level} ${e.check}${subject}: ${e.message}`)}`,
      MAX_SUMMARY_LINE,
    );
    const rest = hidden.length - i - 1;
    const tail = rest > 0 ? `\n…${rest} not listed`.length : 0;
    if (length + 1 + line.length + tail > MAX_SUMMARY) {
      lines.push(`…${hidden.length - i} not listed`);
      break;
    }
    lines.push(line);
    length += 1 + line.length;
  }
  return lines.join('\n');
}

/** Slack's three control characters, escaped as its formatting reference asks. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** cutClean() that never cuts an `&amp;`-style entity in half. */
function cut(text: string, max: number): string {
  return cutClean(text, max, (head) => head.replace(/&[a-z]*$/, ''));
}

const NEW_WEBHOOK = 'create a new incoming webhook and update notifiers[].webhook_url';

/** What to do about each error code Slack documents for incoming webhooks. */
const SLACK_HINTS: Record<string, string> = {
  invalid_payload: 'Slack could not read the message; this is a Sentinel bug: please report it with this error',
  invalid_blocks: 'Slack rejected the message layout; this is a Sentinel bug: please report it with this error',
  invalid_blocks_format: 'Slack rejected the message layout; this is a Sentinel bug: please report it with this error',
  msg_blocks_too_long: 'Slack found the message too long; this is a Sentinel bug: please report it with this error',
  user_not_found: `the user this webhook posts to no longer exists: ${NEW_WEBHOOK}`,
  invalid_token: `the webhook's token is no longer valid (the webhook was revoked or its app removed): ${NEW_WEBHOOK}`,
  action_prohibited:
    'a workspace admin restricted what this webhook may post: ask them, or use a webhook for another channel',
  posting_to_general_channel_denied: `only admins may post in this channel: ${NEW_WEBHOOK} for another channel`,
  no_service: `the webhook was removed or its URL is wrong: ${NEW_WEBHOOK}`,
  no_service_id: `the webhook URL is incomplete: ${NEW_WEBHOOK}`,
  no_team: `the webhook URL names no workspace: ${NEW_WEBHOOK}`,
  team_disabled: 'the Slack workspace is disabled',
  channel_not_found: `the webhook's channel was deleted: ${NEW_WEBHOOK} for an existing channel`,
  channel_is_archived: `the webhook's channel is archived: unarchive it, or ${NEW_WEBHOOK} for another channel`,
  rollup_error: 'Slack had an internal error',
};

/** Reads Slack's plain-text error code (`invalid_token`) and says what to do. */
export function interpretSlackError(status: number, body: string): { hint?: string } | undefined {
  const code = /^[a-z_]+$/.test(body.trim()) ? body.trim() : undefined;
  const known = code ? SLACK_HINTS[code] : undefined;
  if (known) return { hint: known };
  if (status === 429) return { hint: 'rate limited by Slack (about one message per second per webhook)' };
  if (status === 403 || status === 404 || status === 410) return { hint: `Slack refused the webhook: ${NEW_WEBHOOK}` };
  if (status === 400)
    return { hint: 'Slack rejected the message; this may be a Sentinel bug: please report it with this error' };
  return undefined;
}
