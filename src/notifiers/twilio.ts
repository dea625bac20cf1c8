import { z } from 'zod';
import { Redactor } from '../util/redact.js';
import { baseNotifierFields, httpUrl, noDuplicates, notifierBasics, timeoutMs } from './base.js';
import type { Notification, Notifier, SendContext } from './contract.js';
import { aboutAlert } from './details.js';
import { byUrgency, headline, KIND_LABEL } from './format.js';
import { hostOf, request } from './http.js';
import { type Part, sendParts } from './parts.js';

/**
 * Twilio Programmable Messaging: one short SMS per recipient per notification
 * (a storm of 50 alerts is one SMS to each number, not 50).
 *
 * `POST {api_base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic
 * auth `AccountSid:AuthToken`, form fields `To`, `From` and/or
 * `MessagingServiceSid`, `Body`. Twilio answers 201 with the Message resource;
 * errors carry `{"code","message","more_info","status"}` (20003 authenticate,
 * 21211 invalid To, 20429 too many requests, …).
 *
 * Each recipient is a part of the notification: a retry after recipient 2 of 3
 * failed texts only recipients 2 and 3.
 */

const DEFAULT_BASE_URL = 'https://api.twilio.com';

/**
 * Two concatenated GSM-7 segments carry 2 × 153 septets (the user-data header takes
 * the rest of each 160); a longer body would be billed and delivered as three.
 */
export const MAX_SMS_SEPTETS = 306;

const e164 = z.string().regex(/^\+[1-9]\d{1,14}$/, 'expected a phone number in E.164 form, like +15550002222');

export const twilioConfigSchema = z
  .strictObject({
    ...baseNotifierFields,
    type: z.literal('twilio'),
    account_sid: z
      .string()
      .regex(/^AC[0-9a-fA-F]{32}$/, 'expected the Account SID: AC followed by 32 hexadecimal digits'),
    auth_token: z.string().min(1),
    /** An SMS-capable Twilio number of this account. */
    from: e164.optional(),
    /** A Messaging Service (`MG…`) picks the sender from its pool; instead of or in addition to `from`. */
    messaging_service_sid: z
      .string()
      .regex(/^MG[0-9a-fA-F]{32}$/, 'expected a Messaging Service SID: MG followed by 32 hexadecimal digits')
      .optional(),
    to: z
      .array(e164)
      .min(1)
      // One request per number, all within alerting.delivery_timeout.
      .max(100, 'at most 100 numbers (one request each, within alerting.delivery_timeout)')
      .superRefine(
        noDuplicates(
          (number) => number,
          (number) => `${number} is listed twice`,
        ),
      ),
    api_base_url: httpUrl.default(DEFAULT_BASE_URL),
  })
  .superRefine((config, ctx) => {
    if (config.from === undefined && config.messaging_service_sid === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['from'],
        message: 'set from (a Twilio phone number) or messaging_service_sid',
      });
    }
  });

export type TwilioConfig = z.output<typeof twilioConfigSchema>;

/** Failures that concern the account, not one recipient: trying the next number cannot help. */
const ACCOUNT_WIDE_STATUS = new Set([401, 403, 404]);

export function createTwilioNotifier(config: TwilioConfig): Notifier {
  const base = config.api_base_url.replace(/\/+$/, '');
  const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(config.account_sid)}/Messages.json`;
  const credentials = Buffer.from(`${config.account_sid}:${config.auth_token}`, 'utf8').toString('base64');
  // The Authorization header carries the token base64-encoded: mask that spelling too.
  const secrets = [config.auth_token, credentials];
  const redactor = new Redactor(secrets);
  const host = hostOf(config.api_base_url);
  return {
    ...notifierBasics(config, secrets),
    // Messages.json has no idempotency key: a request sent twice is two SMS.
    idempotent: false,
    async send(notification: Notification, ctx: SendContext): Promise<void> {
      const text = smsBody(notification);
      const parts = config.to.map((to): Part => {
        const label = `Twilio SMS to ${to} (${host})`;
        return {
          key: to,
          label,
          send: async () => {
            const form = new URLSearchParams();
            form.set('To', to);
            if (config.from) form.set('From', config.from);
            if (config.messaging_service_sid) form.set('MessagingServiceSid', config.messaging_service_sid);
            form.set('Body', text);
            await request(
              {
                url,
                method: 'POST',
                headers: { Authorization: `Basic ${credentials}`, 'Content-Type': 'application/x-www-form-urlencoded' },
                body: form.toString(),
                label,
                secrets,
                timeoutMs: timeoutMs(config),
                interpret: (status, body) => interpretTwilioError(status, body, redactor),
              },
              ctx.signal,
            );
          },
        };
      });
      // Retryable trouble (429, 5xx, network) is Twilio's, not this number's: stop and
      // let the engine back off. A rejected number (400) must not keep the others
      // from being texted; a rejected account (401/403/404) fails them all alike.
      await sendParts(parts, ctx, {
        provider: 'Twilio',
        redactor,
        failsAll: (failure) => failure.status !== undefined && ACCOUNT_WIDE_STATUS.has(failure.status),
      });
    },
  };
}

/** What to do about the Twilio error codes an alerting SMS can run into. */
const CODE_ADVICE: Record<number, string> = {
  20003: 'check account_sid and auth_token',
  20404: 'check account_sid',
  20429: 'too many concurrent requests to Twilio',
  21211: 'fix this number in to',
  21212: 'check from: it must be a phone number of this Twilio account',
  21408: 'enable SMS to this country in the Twilio console (Messaging Geo Permissions)',
  21606: 'check from: it must be an SMS-capable number of this Twilio account',
  21608: 'trial accounts can only text verified numbers: verify this number or upgrade the account',
  21610: 'the recipient replied STOP: they must text START to this sender to receive alerts again',
  21614: 'this number cannot receive SMS',
  21659: 'check from: it must be an SMS-capable number of this Twilio account',
};

/** Twilio's error code with advice (its message is already in the error's body excerpt). */
export function interpretTwilioError(status: number, body: string, redactor: Redactor): { hint?: string } | undefined {
  let parsed: { code?: unknown; more_info?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return status === 401 ? { hint: 'check account_sid and auth_token' } : undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.code !== 'number') return undefined;
  const advice = CODE_ADVICE[parsed.code] ?? (status === 401 ? 'check account_sid and auth_token' : undefined);
  const docs =
    typeof parsed.more_info === 'string' && /^https:\/\/www\.twilio\.com\/[\w./-]{1,100}$/.test(parsed.more_info)
      ? redactor.redact(parsed.more_info)
      : undefined;
  return { hint: `Twilio error ${parsed.code}${advice ? `: ${advice}` : ''}${docs ? `; see ${docs}` : ''}` };
}

/**
 * The SMS text: the headline, then as many alert messages as fit (most urgent
 * first), then `(+N more)`. Plain GSM-7 so that the body costs one septet per
 * character and stays within two segments; anything else is transliterated or
 * becomes `?` (one emoji would switch the whole SMS to UCS-2: 67 characters a segment).
 *
 * `[prod] Sentinel: 2 critical, 1 warning: 3 batches stuck > 10m: processing(2)...; … (+2 more)`
 */
export function smsBody(n: Notification, maxSeptets: number = MAX_SMS_SEPTETS): string {
  const events = byUrgency(n.events);
  const head = cutSeptets(toGsm(headline(n)), Math.min(100, Math.floor(maxSeptets / 2)));
  if (events.length === 0) return head;
  const items = events.map((e) =>
    // The phone shows only this text: each alert says what it is about (the batch, the sources).
    toGsm(
      `${e.kind === 'firing' || e.kind === 'test' ? '' : `${KIND_LABEL[e.kind]} `}${e.message}` +
        (e.kind === 'resolved' ? '' : aboutAlert(e.details)),
    ),
  );
  let out = head;
  for (let i = 0; i < items.length; i++) {
    const item = items[i] ?? '';
    const separator = i === 0 ? ': ' : '; ';
    const after = items.length - i - 1;
    const suffix = after > 0 ? ` (+${after} more)` : '';
    if (septets(out + separator + item + suffix) <= maxSeptets) {
      out += separator + item;
      continue;
    }
    if (i === 0) {
      // The most urgent alert always shows, cut to the room that is left.
      const room = maxSeptets - septets(out + separator + suffix);
      return out + separator + cutSeptets(item, room) + suffix;
    }
    return `${out} (+${items.length - i} more)`;
  }
  return out;
}

/** GSM 03.38 basic character set (one septet each). */
const GSM_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ ' +
    '!"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
/** GSM 03.38 extension table (escape + character: two septets each). */
const GSM_EXTENDED = new Set('^{}\\[~]|€');

const TRANSLITERATION: Record<string, string> = {
  '…': '...',
  '–': '-',
  '—': '-',
  '−': '-',
  '‘': "'",
  '’': "'",
  '‚': "'",
  '`': "'",
  '´': "'",
  '“': '"',
  '”': '"',
  '„': '"',
  '«': '"',
  '»': '"',
  '≥': '>=',
  '≤': '<=',
  '≠': '!=',
  '→': '->',
  '←': '<-',
  '×': 'x',
  '•': '*',
  '·': '.',
  '°': ' deg',
  µ: 'u',
};

/** Text an SMS can carry in GSM-7: whitespace collapsed, look-alikes transliterated, the rest `?`. */
export function toGsm(text: string): string {
  let out = '';
  for (const ch of text.replace(/\s+/g, ' ').trim()) {
    if (GSM_BASIC.has(ch) || GSM_EXTENDED.has(ch)) out += ch;
    else if (TRANSLITERATION[ch] !== undefined) out += TRANSLITERATION[ch];
    else {
      // Accented letters outside the GSM set lose their accent (ç → c, ő → o).
      const base = ch.normalize('NFKD').replace(/\p{M}+/gu, '');
      out += base && [...base].every((c) => GSM_BASIC.has(c)) ? base : '?';
    }
  }
  return out;
}

/** Septets `text` takes in GSM-7 (extension characters take two). */
export function septets(text: string): number {
  let n = 0;
  for (const ch of text) n += GSM_EXTENDED.has(ch) ? 2 : 1;
  return n;
}

/** Cuts GSM text to at most `max` septets, marking the cut with `...`. */
function cutSeptets(text: string, max: number): string {
  if (septets(text) <= max) return text;
  if (max <= 3) return '.'.repeat(Math.max(0, max));
  let out = '';
  let used = 0;
  for (const ch of text) {
    const cost = GSM_EXTENDED.has(ch) ? 2 : 1;
    if (used + cost > max - 3) break;
    out += ch;
    used += cost;
  }
  return `${out.trimEnd()}...`;
}
