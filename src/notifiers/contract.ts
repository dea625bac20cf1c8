import type { Level } from '../types.js';

/**
 * The contract between the alerting engine and the notifiers: what a notifier
 * receives and what it promises. It lives here, below alerting/, so that notifiers
 * never import the engine's layer (alerting depends on notifiers, not the reverse).
 *
 * One Notification is one message to one notifier and may carry many events (a
 * storm is one message, not one per alert); PagerDuty, whose API has one incident
 * per dedup_key, sends one event per request itself.
 */

/** Why an alert is being notified now. `test` comes only from `sentinel notify test`. */
export type EventKind = 'firing' | 'escalated' | 'repeat' | 'resolved' | 'test';

/** One alert's news in a notification. */
export interface NotificationEvent {
  kind: EventKind;
  /** Short stable id of the alert identity (what `sentinel ack` takes). */
  id: string;
  /** Stable per alert identity (environment + check + subject): PagerDuty dedup_key, Alertmanager fingerprint. */
  dedupKey: string;
  environment: string;
  check: string;
  /** The per-source subject, e.g. the source of a per-source error spike. */
  subject?: string;
  /** The alert's current level (for `resolved`, the highest level it was notified at). */
  level: Level;
  message: string;
  details: Record<string, unknown>;
  remediation?: string;
  /** ISO 8601: when the alert started firing. */
  firingSince: string;
  /** ISO 8601: when it resolved, for `resolved` events. */
  resolvedAt?: string;
}

/** One message to one notifier, as recorded in the outbox. */
export interface Notification {
  /** Unique id of this message (outbox key, idempotency). */
  id: string;
  /** Name of the notifier (`notifiers[].name`). */
  notifier: string;
  /** ISO 8601 time the notification was recorded. */
  createdAt: string;
  /** Sentinel's host name, shown as the source of the message. */
  host: string;
  events: NotificationEvent[];
}

/**
 * Passed to `send`: lets a notifier that makes several requests per notification
 * (one per recipient, one per alert) resume where a failed attempt stopped instead
 * of sending duplicates.
 */
export interface SendContext {
  signal: AbortSignal;
  /** Parts already delivered by earlier attempts (persisted in the outbox). */
  completed: ReadonlySet<string>;
  markCompleted(part: string): void;
}

/** A provider, configured. Notifiers are pure senders: the engine decides what and when. */
export interface Notifier {
  name: string;
  type: string;
  /** Events below this level are not sent to this notifier. */
  minLevel: Level;
  /** Whether `resolved` events are sent. */
  sendResolved: boolean;
  /**
   * Delivers one notification with one attempt per request (retries belong to the
   * engine). Resolves when the provider accepted it; throws a DeliveryError (see
   * notifiers/http.ts) otherwise. Must respect `ctx.signal`.
   */
  send(notification: Notification, ctx: SendContext): Promise<void>;
  /**
   * Re-send every firing alert on every run, not only on changes (Alertmanager:
   * alerts that are not refreshed expire there by themselves).
   */
  everyRun?: boolean;
  /**
   * Whether the receiver deduplicates a message sent twice (PagerDuty by
   * dedup_key, Alertmanager by labels, a webhook receiver by Idempotency-Key).
   * Only then is a "delivery unknown" failure (the request was sent whole but no
   * answer came in time) retried within the same run; otherwise it waits for the
   * outbox backoff, so a slow provider gets a message at most once per attempt
   * window instead of once per in-run retry.
   */
  idempotent: boolean;
  /** Every secret in this notifier's config (keys, tokens, webhook URLs), for redaction. */
  secrets(): string[];
}
