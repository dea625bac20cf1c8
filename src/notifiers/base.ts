import { z } from 'zod';
import { bounded, LIMITS, SECOND_MS } from '../util/limits.js';
import type { Notifier } from './contract.js';

/**
 * Settings every notifier has. Each provider file extends these with its own
 * fields in a strict object, so a misspelt key in one provider's section is an
 * error naming that provider's path (`notifiers.2.webhok_url: unknown setting`).
 */
export const levelSchema = z.enum(['warning', 'critical']);

export const baseNotifierFields = {
  /** Unique name, used in logs, `--notifier` and the outbox. */
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . and -'),
  min_level: levelSchema.default('warning'),
  send_resolved: z.boolean().default(true),
  /** One HTTP request's timeout. */
  timeout_seconds: bounded(LIMITS.requestTimeoutSeconds, { unitMs: SECOND_MS }).default(10),
};

/**
 * `runbook_url`: where docs/runbooks.md is published (a repository's or an intranet's
 * copy); each alert then links to its section there (`…/runbooks.md#stuck-batches`).
 * Without it, notifications name the section in Sentinel's own package
 * (`docs/runbooks.md#stuck-batches`), which is text, not a link. For the providers
 * that show a runbook (Alertmanager, Slack, Discord, SendGrid, PagerDuty).
 */
export const runbookUrlField = {
  runbook_url: z
    .custom<string>((value) => value !== undefined, { error: 'required' })
    .pipe(z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }))
    .optional(),
};

/** The validated base settings, as every provider's config carries them. */
export interface BaseNotifierConfig {
  name: string;
  type: string;
  min_level: z.output<typeof levelSchema>;
  send_resolved: boolean;
  timeout_seconds: number;
}

const URL_EXPECTED = 'expected an http:// or https:// URL';

/**
 * An http(s) URL. Webhook URLs are secrets; validation messages never echo them.
 *
 * A missing URL says `required`. The presence check comes first, as an issue of its
 * own, because the config loader words type errors itself (`expected a string`)
 * and would hide a message given to the URL's type check; anything present but not
 * an http(s) URL says what is expected.
 */
export const httpUrl = z
  .custom<string>((value) => value !== undefined, { error: 'required' })
  .pipe(z.url({ protocol: /^https?$/, error: URL_EXPECTED }));

/**
 * A `superRefine` check for a list in which each entry may appear once: every
 * entry whose `key` was seen earlier in the list is an issue at its own index
 * (`notifiers.0.to.2: +15550002222 is listed twice`).
 */
export function noDuplicates<T>(
  key: (entry: T) => unknown,
  message: (entry: T) => string,
): (list: T[], ctx: z.RefinementCtx<T[]>) => void {
  return (list, ctx) => {
    const seen = new Set<unknown>();
    list.forEach((entry, i) => {
      const k = key(entry);
      if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [i], message: message(entry) });
      seen.add(k);
    });
  };
}

/** Whether `url` carries a user name or password (`https://user:pass@host`), which fetch refuses to send. */
export function hasCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

/**
 * The secrets of a URL whose path or query holds a token (a webhook URL): the URL
 * itself and the parts of it an answer could echo on their own: the path, the
 * query, and every path segment long enough to be a token (16+ characters).
 */
export function urlSecrets(url: string): string[] {
  const out = [url];
  try {
    const u = new URL(url);
    if (u.pathname.length > 1) out.push(u.pathname);
    if (u.search.length > 1) out.push(u.search.slice(1));
    for (const segment of u.pathname.split('/')) if (segment.length >= 16) out.push(segment);
  } catch {
    // The schema only lets valid URLs through.
  }
  return out;
}

/**
 * The part of a Notifier that comes straight from its config: name, type, level
 * and resolved filters, and its secrets (a fresh copy on every call, so a caller
 * cannot change what the notifier redacts).
 */
export function notifierBasics(
  config: BaseNotifierConfig,
  secrets: readonly string[],
): Omit<Notifier, 'send' | 'everyRun' | 'idempotent'> {
  return {
    name: config.name,
    type: config.type,
    minLevel: config.min_level,
    sendResolved: config.send_resolved,
    secrets: () => [...secrets],
  };
}

/** One request's timeout in milliseconds, from `timeout_seconds`. */
export function timeoutMs(config: Pick<BaseNotifierConfig, 'timeout_seconds'>): number {
  return config.timeout_seconds * 1000;
}
