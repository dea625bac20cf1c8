import type { Notification, NotificationEvent } from './contract.js';
import { readableLines } from './details.js';

/**
 * Wording shared by every provider, so a page, an email and a chat message say
 * the same thing. Providers only lay it out and cut it to their limits.
 */

export const KIND_LABEL: Record<NotificationEvent['kind'], string> = {
  firing: 'FIRING',
  escalated: 'ESCALATED',
  repeat: 'STILL FIRING',
  resolved: 'RESOLVED',
  test: 'TEST',
};

/** `[prod] 2 critical, 1 warning, 1 resolved`: the one-line summary of a notification. */
export function headline(n: Notification): string {
  const env = n.events[0]?.environment ?? 'unknown';
  if (n.events.every((e) => e.kind === 'test')) return `[${env}] Sentinel test notification`;
  const active = n.events.filter((e) => e.kind !== 'resolved');
  const critical = active.filter((e) => e.level === 'critical').length;
  const warning = active.length - critical;
  const resolved = n.events.length - active.length;
  const parts: string[] = [];
  if (critical) parts.push(`${critical} critical`);
  if (warning) parts.push(`${warning} warning`);
  if (resolved) parts.push(`${resolved} resolved`);
  return `[${env}] Sentinel: ${parts.join(', ')}`;
}

/** `STILL FIRING critical stuck_batches: 3 batches stuck > 10m: …`. */
export function eventLine(e: NotificationEvent): string {
  const subject = e.subject ? ` (${e.subject})` : '';
  return `${KIND_LABEL[e.kind]} ${e.level} ${e.check}${subject}: ${e.message}`;
}

/** `firing since 2025-01-04 10:15 UTC` / `resolved at …`. */
export function eventWhen(e: NotificationEvent): string {
  if (e.kind === 'resolved' && e.resolvedAt)
    return `resolved at ${utc(e.resolvedAt)} (firing since ${utc(e.firingSince)})`;
  return `firing since ${utc(e.firingSince)}`;
}

export function utc(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}

/** Where the runbooks are when a notifier has no `runbook_url`: the file in Sentinel's package. */
export const RUNBOOKS_PATH = 'docs/runbooks.md';

/**
 * The runbook section of an alert (docs/runbooks.md keeps its anchors stable): the
 * check's section (`#stuck-batches`), `#check-failing` for a check that could not run,
 * `#database-unreachable` for the runner's one-root-cause alert (check `database`,
 * src/checks/runner.ts). Under `base` (a notifier's `runbook_url`) when given.
 */
export function runbookLink(e: Pick<NotificationEvent, 'check' | 'message'>, base: string = RUNBOOKS_PATH): string {
  const anchor =
    e.check === 'database'
      ? 'database-unreachable'
      : e.message.startsWith('Check failed:')
        ? 'check-failing'
        : e.check
            .toLowerCase()
            .replace(/[^a-z0-9]+/g, '-')
            .replace(/^-|-$/g, '');
  return `${base.replace(/#.*$/, '')}#${anchor}`;
}

/** The runbook of an event, or undefined for a test notification (it has none). */
export function eventRunbook(e: NotificationEvent, base?: string): string | undefined {
  return e.kind === 'test' ? undefined : runbookLink(e, base);
}

/** Cuts `text` to at most `max` characters, marking the cut with an ellipsis. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return max <= 1 ? text.slice(0, max) : `${text.slice(0, max - 1)}…`;
}

/**
 * Like truncate(), for text with escapes in it: never leaves half a surrogate pair
 * before the ellipsis, and `dropIncomplete` removes whatever incomplete escape the
 * cut left at the end of the kept text (a lone escaping backslash, half an `&amp;`). A `max` of
 * 1 or less keeps that many characters, without an ellipsis.
 */
export function cutClean(text: string, max: number, dropIncomplete: (head: string) => string = (head) => head): string {
  if (text.length <= max) return text;
  if (max <= 1) return text.slice(0, Math.max(0, max));
  let head = dropIncomplete(text.slice(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head}…`;
}

/**
 * Shares `available` characters fairly between pieces of the given sizes: the
 * largest cap c with Σ min(size, c) ≤ available. Pieces no larger than the cap stay
 * whole; the larger ones are all cut to the cap. Infinity when everything fits.
 */
export function waterLevel(sizes: number[], available: number): number {
  if (sizes.reduce((a, b) => a + b, 0) <= available) return Infinity;
  const sorted = [...sizes].sort((a, b) => a - b);
  let remaining = Math.max(0, available);
  for (let i = 0; i < sorted.length; i++) {
    const share = Math.floor(remaining / (sorted.length - i));
    if (sorted[i]! > share) return share;
    remaining -= sorted[i]!;
  }
  return Infinity;
}

/**
 * Details as readable `label: value` lines for plain-text bodies (src/notifiers/details.ts:
 * units from the key names, lists as phrases, never raw JSON; escaped and bounded).
 */
export function detailLines(details: Record<string, unknown>): string[] {
  return readableLines(details);
}

/** Events most urgent first: critical before warning, active before resolved; stable otherwise. */
export function byUrgency(events: NotificationEvent[]): NotificationEvent[] {
  const rank = (e: NotificationEvent): number => (e.kind === 'resolved' ? 2 : e.level === 'critical' ? 0 : 1);
  return [...events].sort((a, b) => rank(a) - rank(b));
}
