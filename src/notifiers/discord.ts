import { z } from 'zod';
import { baseNotifierFields, httpUrl, notifierBasics, runbookUrlField, timeoutMs, urlSecrets } from './base.js';
import type { Notification, NotificationEvent, Notifier, SendContext } from './contract.js';
import { readableDetails } from './details.js';
import { byUrgency, cutClean, eventRunbook, eventWhen, headline, KIND_LABEL, truncate, waterLevel } from './format.js';
import { hostOf, request } from './http.js';

/**
 * Discord Execute Webhook: one message per notification, one embed per alert.
 *
 * `POST <webhook_url>?wait=true` (any query already in the URL, such as
 * `thread_id`, is kept) with a JSON body. Discord answers 200 with the created
 * message when `wait=true` (204 without it); 400 `{"code":50035,"message":"Invalid
 * Form Body","errors":{…}}` when a limit is broken; 404 `{"code":10015,"message":
 * "Unknown Webhook"}` when the webhook was deleted; 429 `{"retry_after":0.64,
 * "global":false,…}` (seconds, fractional) plus a `Retry-After` header.
 *
 * Limits (Discord's Embed Limits): content ≤ 2000, ≤ 10 embeds, title ≤ 256,
 * description ≤ 4096, ≤ 25 fields, field name ≤ 256, field value ≤ 1024, footer ≤
 * 2048, author name ≤ 256, and the sum of all titles, descriptions, field names and
 * values, footers and author names of all embeds ≤ 6000. A storm that does not fit
 * gets nine alert embeds and a tenth that counts and lists the rest, so the total
 * is never silently smaller than the number of alerts.
 *
 * Alert text is untrusted: `allowed_mentions: { parse: [] }` means no text can ping
 * (`@everyone`, roles, users), and markdown in alert data is escaped so it cannot
 * render masked links or mention markup.
 */

/** Discord's documented limits. */
export const DISCORD_LIMITS = {
  content: 2000,
  embeds: 10,
  title: 256,
  description: 4096,
  fields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  authorName: 256,
  total: 6000,
  username: 80,
} as const;

/** Our own caps, well inside Discord's, so one alert cannot crowd out the others. */
const MAX_FOOTER = 200;
const MAX_SUMMARY_DESCRIPTION = 1500;
const MAX_SUMMARY_LINE = 120;

/** Colours as Discord wants them: an RGB integer. */
export const DISCORD_COLORS = {
  critical: 0xd32f2f,
  warning: 0xf5a623,
  resolved: 0x2eb67d,
  test: 0x3498db,
  summary: 0x95a5a6,
} as const;

export const discordConfigSchema = z.strictObject({
  ...baseNotifierFields,
  ...runbookUrlField,
  type: z.literal('discord'),
  /** `https://discord.com/api/webhooks/<id>/<token>`: a secret (the token is in the path). */
  webhook_url: httpUrl,
  /** The name the message is posted as (Discord: 1–80 characters, none of "clyde" or "discord"). */
  username: z
    .string()
    .trim()
    .min(1)
    .max(DISCORD_LIMITS.username)
    .refine((name) => !/clyde|discord/i.test(name), 'Discord rejects webhook names that contain "clyde" or "discord"')
    .default('Sentinel'),
  avatar_url: httpUrl.optional(),
});

export type DiscordConfig = z.output<typeof discordConfigSchema>;

export function createDiscordNotifier(config: DiscordConfig): Notifier {
  const url = withWait(config.webhook_url);
  const label = `discord webhook (${hostOf(config.webhook_url)})`;
  const secrets = [...urlSecrets(config.webhook_url), url];
  return {
    ...notifierBasics(config, secrets),
    // Execute Webhook has no idempotency key: a message sent twice is shown twice.
    idempotent: false,
    async send(notification: Notification, ctx: SendContext): Promise<void> {
      await request(
        {
          url,
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(discordBody(notification, config)),
          label,
          secrets,
          timeoutMs: timeoutMs(config),
          interpret: interpretDiscordError,
        },
        ctx.signal,
      );
    },
  };
}

export interface DiscordEmbed {
  title: string;
  /** Makes the title a link: the alert's runbook, when the notifier has a `runbook_url`. */
  url?: string;
  description?: string;
  color: number;
  fields?: Array<{ name: string; value: string; inline?: boolean }>;
  footer?: { text: string };
  timestamp?: string;
}

export interface DiscordMessage {
  username: string;
  avatar_url?: string;
  content: string;
  embeds: DiscordEmbed[];
  allowed_mentions: { parse: [] };
}

/** The Execute Webhook body for one notification, within every Discord limit. */
export function discordBody(
  n: Notification,
  config: Pick<DiscordConfig, 'username' | 'avatar_url' | 'runbook_url'>,
): DiscordMessage {
  return {
    username: config.username,
    ...(config.avatar_url ? { avatar_url: config.avatar_url } : {}),
    content: truncate(headline(n), DISCORD_LIMITS.content),
    embeds: discordEmbeds(n, config.runbook_url),
    // Never let alert text ping anyone, whatever it contains.
    allowed_mentions: { parse: [] },
  };
}

/**
 * Embeds for the events, most urgent first. With more than 10 events, the first
 * nine get an embed each and the tenth says "…and N more alerts" and lists them.
 * The 6000-character total is shared out fairly: small embeds stay whole, large
 * ones are cut to the same cap (their description and fields shrink first).
 */
export function discordEmbeds(n: Notification, runbookBase?: string): DiscordEmbed[] {
  const events = byUrgency(n.events);
  let shown = events.length > DISCORD_LIMITS.embeds ? events.slice(0, DISCORD_LIMITS.embeds - 1) : events;
  for (;;) {
    const hidden = events.slice(shown.length);
    // The summary first gets a modest share; once the alert embeds are laid out it
    // may list more alerts in whatever they left over.
    const draft = hidden.length ? summaryEmbed(hidden, MAX_SUMMARY_DESCRIPTION) : undefined;
    const available = DISCORD_LIMITS.total - (draft ? embedSize(draft) : 0);
    const full = shown.map((e) => eventEmbed(e, n.host, Infinity, runbookBase));
    const cap = waterLevel(full.map(embedSize), available);
    const embeds = full.map((embed, i) =>
      embedSize(embed) <= cap ? embed : eventEmbed(shown[i]!, n.host, cap, runbookBase),
    );
    if (draft) {
      const left = DISCORD_LIMITS.total - totalSize(embeds) - draft.title.length;
      embeds.push(summaryEmbed(hidden, Math.min(DISCORD_LIMITS.description, left)));
    }
    // Safety net: only reachable with absurdly long titles and footers; then one
    // more alert moves into the summary rather than breaking the limit.
    if (totalSize(embeds) <= DISCORD_LIMITS.total || shown.length <= 1) return embeds;
    shown = shown.slice(0, -1);
  }
}

/** Discord's count: titles, descriptions, field names and values, footers, author names. */
export function embedSize(e: DiscordEmbed): number {
  let size = e.title.length + (e.description?.length ?? 0) + (e.footer?.text.length ?? 0);
  for (const f of e.fields ?? []) size += f.name.length + f.value.length;
  return size;
}

function totalSize(embeds: DiscordEmbed[]): number {
  return embeds.reduce((sum, e) => sum + embedSize(e), 0);
}

/** One alert as an embed whose size is at most `cap` (if the title and footer leave room). */
function eventEmbed(e: NotificationEvent, host: string, cap: number, runbookBase?: string): DiscordEmbed {
  const subject = e.subject ? ` (${e.subject})` : '';
  const title = cut(escapeMarkdown(`${KIND_LABEL[e.kind]} ${e.level} ${e.check}${subject}`), DISCORD_LIMITS.title);
  const footer = truncate(`${e.environment} · ${host} · alert ${e.id}`, MAX_FOOTER);
  let room = cap - title.length - footer.length;

  const details = detailFields(e.details);
  const wanted = details.reduce((sum, f) => sum + f.name.length + f.value.length, 0);
  // Share what is left between the description and the details: the description
  // may take 60% when both are long, everything the details do not need otherwise.
  const descriptionRoom = Math.min(DISCORD_LIMITS.description, Math.max(Math.floor(room * 0.6), room - wanted));
  const description = describe(e, descriptionRoom);
  room -= description.length;
  // When not every detail fits, keep room for the field that counts the missing ones.
  const noteReserve = wanted > room ? 40 : 0;
  room -= noteReserve;

  const fields: NonNullable<DiscordEmbed['fields']> = [];
  let omitted = 0;
  for (const [i, f] of details.entries()) {
    const moreAfterThis = details.length - i - 1;
    // Keep the last field slot for "N more details" when they cannot all have one.
    if (fields.length === DISCORD_LIMITS.fields - 1 && moreAfterThis > 0) {
      omitted = details.length - i;
      break;
    }
    if (f.name.length + f.value.length <= room) {
      fields.push(f);
      room -= f.name.length + f.value.length;
      continue;
    }
    // A cut value is still worth showing when a reasonable part of it fits.
    if (room - f.name.length >= 40) {
      const value = cut(f.value, room - f.name.length);
      fields.push({ ...f, value, inline: false });
      room -= f.name.length + value.length;
    }
    omitted = details.length - fields.length;
    break;
  }
  room += noteReserve;
  if (omitted > 0) {
    const note = { name: '…', value: `${omitted} more detail${omitted === 1 ? '' : 's'} not shown` };
    if (note.name.length + note.value.length <= room) fields.push(note);
  }

  // Only a real link: the title's url must be an absolute URL (Discord rejects the message otherwise).
  const runbook = runbookBase ? eventRunbook(e, runbookBase) : undefined;
  return {
    title,
    ...(runbook ? { url: runbook } : {}),
    ...(description ? { description } : {}),
    color: colorOf(e),
    ...(fields.length ? { fields } : {}),
    footer: { text: footer },
    timestamp: e.kind === 'resolved' && e.resolvedAt ? e.resolvedAt : e.firingSince,
  };
}

/** `message`, then `**Remediation:** …`, then the italic when-line; the message gives way first. */
function describe(e: NotificationEvent, max: number): string {
  if (max <= 0) return '';
  const when = `*${eventWhen(e)}*`;
  const message = escapeMarkdown(e.message);
  const remediation = e.remediation ? `**Remediation:** ${escapeMarkdown(e.remediation)}` : '';
  const layout = (msg: string, rem: string): string =>
    [msg, [rem, when].filter(Boolean).join('\n')].filter(Boolean).join('\n\n');
  const full = layout(message, remediation);
  if (full.length <= max) return full;
  // The when-line and separators are fixed; message and remediation share the rest,
  // remediation taking at most a third unless the message needs less.
  const fixed = layout('x', remediation ? 'x' : '').length - (remediation ? 2 : 1);
  const budget = max - fixed;
  if (budget < 2) return cut(when, max);
  let remBudget = remediation
    ? Math.min(remediation.length, Math.max(Math.floor(budget / 3), budget - message.length))
    : 0;
  // A remediation cut to a few characters is noise ("**Remed…"): give the room to the message.
  if (remBudget < 40 && remBudget < remediation.length) remBudget = 0;
  const msgBudget = budget - remBudget;
  return layout(msgBudget > 0 ? cut(message, msgBudget) : '', remBudget > 0 ? cut(remediation, remBudget) : '').slice(
    0,
    max,
  );
}

/** One field per detail in the shared readable wording (src/notifiers/details.ts); a list shows an item a line. */
function detailFields(details: Record<string, unknown>): Array<{ name: string; value: string; inline: boolean }> {
  return readableDetails(details).map((entry) => {
    const name = truncate(escapeMarkdown(entry.label), DISCORD_LIMITS.fieldName);
    const text = entry.items
      ? [...entry.items.map((i) => `• ${i}`), ...(entry.more ? [`… and ${entry.more} more`] : [])].join('\n')
      : entry.text;
    // Discord rejects empty field values.
    const value = cut(escapeMarkdown(text), DISCORD_LIMITS.fieldValue) || '—';
    return { name, value, inline: !entry.items && name.length <= 40 && value.length <= 40 };
  });
}

/** The tenth embed of a storm: how many alerts have no embed of their own, and a line for each that fits. */
function summaryEmbed(hidden: NotificationEvent[], maxDescription: number): DiscordEmbed {
  const lines: string[] = [];
  let length = 0;
  for (const [i, e] of hidden.entries()) {
    const subject = e.subject ? ` (${e.subject})` : '';
    const line = cut(
      escapeMarkdown(`• ${KIND_LABEL[e.kind]} ${e.level} ${e.check}${subject}: ${e.message}`),
      MAX_SUMMARY_LINE,
    );
    const rest = hidden.length - i - 1;
    const tail = rest > 0 ? `\n…and ${rest} more not listed` : '';
    if (length + line.length + 1 + tail.length > maxDescription) {
      lines.push(`…and ${hidden.length - i} more not listed`);
      break;
    }
    lines.push(line);
    length += line.length + 1;
  }
  return {
    title: `…and ${hidden.length} more alert${hidden.length === 1 ? '' : 's'}`,
    description: lines.join('\n'),
    color: DISCORD_COLORS.summary,
  };
}

function colorOf(e: NotificationEvent): number {
  if (e.kind === 'resolved') return DISCORD_COLORS.resolved;
  if (e.kind === 'test') return DISCORD_COLORS.test;
  return DISCORD_COLORS[e.level];
}

/**
 * Backslash-escapes Discord markdown in alert data so it shows as typed: no masked
 * links (`[x](https://…)`), no mention or channel markup (`<@…>`), no formatting.
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\*_~`|<>[\]]/g, '\\$&');
}

/** cutClean() that never leaves half a markdown escape (a lone backslash) before the ellipsis. */
function cut(text: string, max: number): string {
  return cutClean(text, max, (head) => (/\\*$/.exec(head)![0].length % 2 === 1 ? head.slice(0, -1) : head));
}

/** The webhook URL with `wait=true`, so Discord confirms the message was created (200, not 204). */
function withWait(webhookUrl: string): string {
  const u = new URL(webhookUrl);
  u.searchParams.set('wait', 'true');
  return u.toString();
}

/** Reads Discord's JSON error body: the rate-limit wait (seconds) and what to do about a dead webhook. */
export function interpretDiscordError(
  status: number,
  body: string,
): { hint?: string; retryAfterMs?: number } | undefined {
  let parsed: { code?: unknown; message?: unknown; retry_after?: unknown; global?: unknown } = {};
  try {
    const value: unknown = JSON.parse(body);
    if (value && typeof value === 'object') parsed = value as typeof parsed;
  } catch {
    // Not JSON (a proxy's HTML page, say): the status decides alone.
  }
  if (status === 429) {
    const seconds =
      typeof parsed.retry_after === 'number' && Number.isFinite(parsed.retry_after) && parsed.retry_after >= 0
        ? parsed.retry_after
        : undefined;
    return {
      hint: parsed.global === true ? 'rate limited by Discord (global limit)' : 'rate limited by Discord',
      ...(seconds !== undefined ? { retryAfterMs: Math.ceil(seconds * 1000) } : {}),
    };
  }
  // 10015 Unknown Webhook (404), 50027 Invalid Webhook Token (401).
  if (status === 404 || status === 401 || parsed.code === 10015 || parsed.code === 50027) {
    return { hint: 'the webhook was deleted or its URL is wrong: create a new one and update notifiers[].webhook_url' };
  }
  if (status === 400 && parsed.code === 50035) {
    return {
      hint:
        'Discord rejected the message layout (Invalid Form Body); this is a Sentinel bug: please report it ' +
        'with this error',
    };
  }
  if (status === 403)
    return {
      hint:
        'the webhook may not post to this channel or thread: check its channel permissions and any thread_id ' +
        'in the URL',
    };
  return undefined;
}
