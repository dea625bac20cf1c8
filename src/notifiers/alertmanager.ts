import { z } from 'zod';
import { bounded, MINUTE_MS } from '../util/limits.js';
import { baseNotifierFields, hasCredentials, httpUrl, notifierBasics, runbookUrlField, timeoutMs } from './base.js';
import type { Notification, NotificationEvent, Notifier, SendContext } from './contract.js';
import { detailLines, eventRunbook } from './format.js';
import { hostOf, request } from './http.js';

/**
 * Prometheus Alertmanager, API v2: Sentinel acts as an alert source the way
 * Prometheus does, and Alertmanager does the routing, grouping, silencing and paging.
 *
 * `POST <url>/api/v2/alerts` (url is Alertmanager's root, e.g.
 * `http://alertmanager:9093`, or a path prefix behind a proxy) with a JSON array of
 * postable alerts. Alertmanager answers 200 with an empty body; 400 with a JSON
 * string (`"start time must be before end time"`) for invalid alerts; 500.
 *
 * Each event becomes one alert:
 * - labels (its identity in Alertmanager): `alertname` = `Sentinel` + PascalCase(check)
 *   (`SentinelStuckBatches`), `check`, `environment`, `severity` = level and, for
 *   per-source alerts, `source` = subject. Without a subject the `source` label is
 *   left out rather than sent empty: Alertmanager drops empty labels anyway, and an
 *   alert's label set must be the same on every post.
 * - annotations: `summary` = message, `description` = the details as readable
 *   `label: value` lines (src/notifiers/details.ts), `remediation` (each left out when
 *   empty) and `runbook_url` = the alert's section of docs/runbooks.md (under the
 *   notifier's `runbook_url` when set), the annotation Alertmanager templates link.
 * - `startsAt` = when it started firing. `endsAt` = for a resolved alert, when it
 *   resolved; for a firing one, the time of sending + `resolve_timeout_minutes` (not
 *   the notification's time: an outbox delivery made late must not arrive expired).
 *   Alertmanager wants firing alerts re-posted (clients "are expected to continuously
 *   re-send alerts as long as they are still active"): the notifier says `everyRun`
 *   and the engine re-posts every firing alert each run, pushing `endsAt` forward.
 *   If Sentinel stops, its alerts resolve by themselves after the timeout instead
 *   of firing forever. Keep the timeout above the interval between runs.
 * - `generatorURL` is left out: Sentinel has no page per alert.
 *
 * `severity` is a label (routing needs it), so a level change makes a new alert in
 * Alertmanager. When an alert escalates to critical, the warning-level alert is
 * posted once more with `endsAt` = now so it resolves at once instead of lingering
 * until its timeout.
 */

export const ALERTS_PATH = '/api/v2/alerts';
const DEFAULT_RESOLVE_TIMEOUT_MINUTES = 15;

export const alertmanagerConfigSchema = z
  .strictObject({
    ...baseNotifierFields,
    ...runbookUrlField,
    type: z.literal('alertmanager'),
    /** Alertmanager's root URL; `/api/v2/alerts` is appended. */
    url: httpUrl.refine(
      (url) => !hasCredentials(url),
      'credentials in the URL are not sent: use basic_auth: { username, password } instead',
    ),
    /** How long a firing alert stays firing in Alertmanager without being re-posted. */
    resolve_timeout_minutes: bounded(7 * 24 * 60, { unitMs: MINUTE_MS }).default(DEFAULT_RESOLVE_TIMEOUT_MINUTES),
    basic_auth: z.strictObject({ username: z.string().min(1), password: z.string().min(1) }).optional(),
    bearer_token: z.string().min(1).optional(),
  })
  .refine((c) => !(c.basic_auth && c.bearer_token), {
    message: 'set basic_auth or bearer_token, not both',
    path: ['bearer_token'],
  });

export type AlertmanagerConfig = z.output<typeof alertmanagerConfigSchema>;

export interface AlertmanagerOptions {
  /** The clock firing alerts' `endsAt` is counted from; injectable for tests. */
  now?: () => Date;
}

export function createAlertmanagerNotifier(
  config: AlertmanagerConfig,
  options: AlertmanagerOptions = {},
): Notifier & { everyRun: true } {
  const now = options.now ?? (() => new Date());
  const url = alertsUrl(config.url);
  const label = `alertmanager (${hostOf(config.url)})`;
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  const secrets: string[] = [];
  if (config.basic_auth) {
    const encoded = Buffer.from(`${config.basic_auth.username}:${config.basic_auth.password}`, 'utf8').toString(
      'base64',
    );
    headers.Authorization = `Basic ${encoded}`;
    // The encoded pair reveals the password as surely as the password does.
    secrets.push(config.basic_auth.password, encoded);
  }
  if (config.bearer_token) {
    headers.Authorization = `Bearer ${config.bearer_token}`;
    secrets.push(config.bearer_token);
  }
  const query = new URL(config.url).search;
  if (query.length > 1) secrets.push(query.slice(1));
  const resolveTimeoutMs = config.resolve_timeout_minutes * 60_000;
  return {
    ...notifierBasics(config, secrets),
    // An alert is identified by its labels: posting it twice is one alert (its endsAt refreshed).
    idempotent: true,
    everyRun: true,
    async send(notification: Notification, ctx: SendContext): Promise<void> {
      await request(
        {
          url,
          method: 'POST',
          headers,
          body: JSON.stringify(alertmanagerAlerts(notification, resolveTimeoutMs, now(), config.runbook_url)),
          label,
          secrets,
          timeoutMs: timeoutMs(config),
          interpret: interpretAlertmanagerError,
        },
        ctx.signal,
      );
    },
  };
}

/** A `postableAlert` of Alertmanager's OpenAPI spec. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
}

/**
 * The alerts to post for one notification, sent at `sentAt`. A firing alert expires
 * `resolveTimeoutMs` after it is sent, not after the notification was made: a
 * delivery the outbox makes late (after an outage) must not arrive already expired.
 * Resolved and superseded alerts end when that happened.
 */
export function alertmanagerAlerts(
  n: Notification,
  resolveTimeoutMs: number,
  sentAt: Date,
  runbookBase?: string,
): PostableAlert[] {
  const expires = new Date(sentAt.getTime() + resolveTimeoutMs).toISOString();
  const alerts: PostableAlert[] = [];
  for (const e of n.events) {
    const resolved = e.kind === 'resolved';
    const alert: PostableAlert = {
      labels: labelsOf(e, e.level),
      annotations: annotationsOf(e, runbookBase),
      startsAt: e.firingSince,
      endsAt: resolved ? (e.resolvedAt ?? n.createdAt) : expires,
    };
    alerts.push(alert);
    // Escalation changed the severity label, so the warning alert is another alert: end it now.
    if (e.kind === 'escalated' && e.level === 'critical') {
      alerts.push({ ...alert, labels: labelsOf(e, 'warning'), endsAt: laterOf(n.createdAt, e.firingSince) });
    }
  }
  return alerts;
}

function labelsOf(e: NotificationEvent, severity: NotificationEvent['level']): Record<string, string> {
  return {
    alertname: alertName(e.check),
    check: e.check,
    environment: e.environment,
    severity,
    ...(e.subject ? { source: e.subject } : {}),
  };
}

function annotationsOf(e: NotificationEvent, runbookBase?: string): Record<string, string> {
  const annotations: Record<string, string> = { summary: e.message };
  const description = detailLines(e.details).join('\n');
  if (description) annotations.description = description;
  if (e.remediation) annotations.remediation = e.remediation;
  const runbook = eventRunbook(e, runbookBase);
  if (runbook) annotations.runbook_url = runbook;
  return annotations;
}

/** `stuck_batches` → `SentinelStuckBatches`: a valid metric-style name whatever the check is called. */
export function alertName(check: string): string {
  const pascal = check
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
  return `Sentinel${pascal}`;
}

/** `<root>/api/v2/alerts`, keeping a path prefix and any query, tolerating a trailing slash. */
export function alertsUrl(root: string): string {
  const u = new URL(root);
  u.pathname = u.pathname.replace(/\/+$/, '') + ALERTS_PATH;
  return u.toString();
}

function laterOf(a: string, b: string): string {
  return Date.parse(a) >= Date.parse(b) ? a : b;
}

export function interpretAlertmanagerError(status: number): { hint?: string } | undefined {
  if (status === 400)
    return {
      hint:
        'Alertmanager rejected the alerts as invalid; this is likely a Sentinel bug: please report it with ' +
        'this error',
    };
  if (status === 401 || status === 403)
    return { hint: 'the credentials were rejected: check basic_auth or bearer_token' };
  if (status === 404 || status === 405) {
    return {
      hint:
        'no Alertmanager API v2 at this URL: url must be the Alertmanager root (e.g. ' +
        'http://alertmanager:9093), and Alertmanager 0.16 or later',
    };
  }
  return undefined;
}
