import { z } from 'zod';
import type { Notification } from '../alerting/types.js';

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
  timeout_seconds: z.number().positive().max(120).default(10),
};

/** An http(s) URL. Webhook URLs are secrets; validation messages never echo them. */
export const httpUrl = z.url({ protocol: /^https?$/, message: 'expected an http:// or https:// URL' });

/** Passed to `send`: lets a notifier that makes several requests per notification (one per recipient, one per alert) resume where a failed attempt stopped instead of sending duplicates. */
export interface SendContext {
  signal: AbortSignal;
  /** Parts already delivered by earlier attempts (persisted in the outbox). */
  completed: ReadonlySet<string>;
  markCompleted(part: string): void;
}

export type SendFn = (notification: Notification, ctx: SendContext) => Promise<void>;
