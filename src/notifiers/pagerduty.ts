import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Redactor } from '../util/redact.js';
import { baseNotifierFields, httpUrl, notifierBasics, runbookUrlField, timeoutMs } from './base.js';
import type { Notification, NotificationEvent, Notifier, SendContext } from './contract.js';
import { aboutAlert } from './details.js';
import { byUrgency, eventRunbook, truncate } from './format.js';
import { hostOf, request } from './http.js';
import { type Part, sendParts } from './parts.js';

/**
 * PagerDuty Events API v2: `POST {api_base_url}/v2/enqueue`, one JSON event per
 * request. PagerDuty keeps one alert per `dedup_key`, so a notification carrying
 * many alerts becomes one event per alert (PagerDuty groups them into incidents):
 *
 * | Sentinel event               | Events API v2                                            |
 * |------------------------------|----------------------------------------------------------|
 * | firing / escalated / repeat  | `trigger`, dedup_key = the alert's dedupKey, full payload |
 * | resolved                     | `resolve`, same dedup_key                                |
 * | test                         | `trigger` (severity info, a key unique to the notification) then `resolve` of that
 * key: the test proves delivery and leaves no open incident behind |
 *
 * Each event is a part keyed `<dedup_key>:<event_action>`: a retry after event 2
 * of 3 failed sends only events 2 and 3. PagerDuty answers 202
 * `{"status":"success","message":"Event processed","dedup_key":…}`; 400
 * `{"status":"invalid event","errors":[…]}` is final; 429 (rate limit per routing
 * key, no Retry-After) and 5xx are retried by the engine.
 */

const DEFAULT_BASE_URL = 'https://events.pagerduty.com';
const ENQUEUE_PATH = '/v2/enqueue';

/** Documented limits: summary 1024 characters, dedup_key 255, whole event 512 KB. */
const MAX_SUMMARY = 1024;
const MAX_DEDUP_KEY = 255;
const MAX_EVENT_BYTES = 512 * 1024;
/** What custom_details.details may take when the whole event would pass the limit. */
const MAX_DETAILS_CHARS = 100_000;
const MAX_FIELD = 255;

export const pagerdutyConfigSchema = z.strictObject({
  ...baseNotifierFields,
  ...runbookUrlField,
  type: z.literal('pagerduty'),
  /** The Integration Key of an Events API v2 integration (or an Event Orchestration's routing key). */
  routing_key: z
    .string()
    .regex(/^[A-Za-z0-9]{32}$/, 'expected the 32-character Integration Key of an Events API v2 integration'),
  /** payload.component, e.g. `ingestion-worker`. */
  component: z.string().min(1).max(MAX_FIELD).optional(),
  /** payload.group, e.g. `dragonfly`. */
  group: z.string().min(1).max(MAX_FIELD).optional(),
  /** payload.class; the alert's check name when not set. */
  class: z.string().min(1).max(MAX_FIELD).optional(),
  /** Shown in PagerDuty as the monitoring tool that sent the event. */
  client: z.string().min(1).max(MAX_FIELD).default('Sentinel'),
  /** A link from the PagerDuty incident back to the dashboard. */
  client_url: httpUrl.optional(),
  api_base_url: httpUrl.default(DEFAULT_BASE_URL),
});

export type PagerdutyConfig = z.output<typeof pagerdutyConfigSchema>;

export type PagerdutySeverity = 'critical' | 'error' | 'warning' | 'info';

/** An Events API v2 alert event, as documented. */
export interface PagerdutyEvent {
  routing_key: string;
  event_action: 'trigger' | 'resolve';
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: PagerdutySeverity;
    timestamp?: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: Record<string, unknown>;
  };
  client?: string;
  client_url?: string;
  /** Shown as links on the alert: the runbook, when the notifier has a `runbook_url`. */
  links?: Array<{ href: string; text: string }>;
}

export function createPagerdutyNotifier(config: PagerdutyConfig): Notifier {
  const url = config.api_base_url.replace(/\/+$/, '') + ENQUEUE_PATH;
  const secrets = [config.routing_key];
  const redactor = new Redactor(secrets);
  const host = hostOf(config.api_base_url);
  return {
    ...notifierBasics(config, secrets),
    // PagerDuty keeps one alert per dedup_key: a trigger or resolve sent twice is one.
    idempotent: true,
    async send(notification: Notification, ctx: SendContext): Promise<void> {
      const parts = pagerdutyEvents(notification, config).map((event): Part => {
        const label = `PagerDuty ${event.event_action} ${event.dedup_key} (${host})`;
        return {
          key: `${event.dedup_key}:${event.event_action}`,
          label,
          send: async () => {
            await request(
              {
                url,
                method: 'POST',
                headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify(event),
                label,
                secrets,
                timeoutMs: timeoutMs(config),
                interpret: (status, body) => interpretPagerdutyError(status, body),
              },
              ctx.signal,
            );
          },
        };
      });
      // 429 and 5xx concern the integration, not this event: stop and let the
      // engine back off. An invalid event must not keep the others from being
      // sent, unless it is invalid for a reason they share (the routing key).
      await sendParts(parts, ctx, {
        provider: 'PagerDuty',
        redactor,
        failsAll: (failure) => failure.status !== 400 || /routing[_ ]key/i.test(failure.message),
      });
    },
  };
}

/** The requests one notification becomes, in order (most urgent first). */
export function pagerdutyEvents(n: Notification, config: PagerdutyConfig): PagerdutyEvent[] {
  const out: PagerdutyEvent[] = [];
  for (const e of byUrgency(n.events)) {
    if (e.kind === 'test') {
      // `sentinel notify test` gives every test its own dedupKey; the notification id keeps it unique anyway.
      const dedupKey = safeDedupKey(e.dedupKey.includes(n.id) ? e.dedupKey : `${e.dedupKey}-${n.id}`);
      out.push(trigger(e, n, config, dedupKey, 'info', e.message || `Sentinel test notification from ${n.host}`));
      out.push({ routing_key: config.routing_key, event_action: 'resolve', dedup_key: dedupKey });
    } else if (e.kind === 'resolved') {
      out.push({ routing_key: config.routing_key, event_action: 'resolve', dedup_key: safeDedupKey(e.dedupKey) });
    } else {
      // The summary is what the PagerDuty app shows on a phone: say what the alert is about.
      out.push(trigger(e, n, config, safeDedupKey(e.dedupKey), e.level, e.message + aboutAlert(e.details)));
    }
  }
  return out;
}

function trigger(
  e: NotificationEvent,
  n: Notification,
  config: PagerdutyConfig,
  dedupKey: string,
  severity: PagerdutySeverity,
  message: string,
): PagerdutyEvent {
  const customDetails: Record<string, unknown> = {
    kind: e.kind,
    check: e.check,
    environment: e.environment,
    ...(e.subject !== undefined ? { subject: e.subject } : {}),
    alert_id: e.id,
    firing_since: e.firingSince,
    details: e.details,
    ...(e.remediation !== undefined ? { remediation: e.remediation } : {}),
  };
  const runbook = eventRunbook(e, config.runbook_url);
  if (runbook) customDetails.runbook = runbook;
  const event: PagerdutyEvent = {
    routing_key: config.routing_key,
    event_action: 'trigger',
    dedup_key: dedupKey,
    payload: {
      summary: truncate(`[${e.environment}] ${message}`.replace(/\s+/g, ' ').trim(), MAX_SUMMARY),
      // Required and non-blank: the host Sentinel runs on.
      source: truncate(n.host || 'sentinel', MAX_FIELD),
      severity,
      timestamp: e.firingSince,
      ...(config.component !== undefined ? { component: config.component } : {}),
      ...(config.group !== undefined ? { group: config.group } : {}),
      class: config.class ?? truncate(e.check, MAX_FIELD),
      custom_details: customDetails,
    },
    client: config.client,
    ...(config.client_url !== undefined ? { client_url: config.client_url } : {}),
    ...(config.runbook_url !== undefined && runbook ? { links: [{ href: runbook, text: 'Runbook' }] } : {}),
  };
  // Stay under the documented 512 KB: a huge details object is cut to a JSON excerpt.
  if (Buffer.byteLength(JSON.stringify(event), 'utf8') > MAX_EVENT_BYTES) {
    customDetails.details = truncate(JSON.stringify(e.details), MAX_DETAILS_CHARS);
    customDetails.details_truncated = true;
    if (typeof customDetails.remediation === 'string')
      customDetails.remediation = truncate(customDetails.remediation, 10_000);
  }
  return event;
}

/**
 * dedup_key as given, or (past PagerDuty's 255 characters) a stable digest of it, so trigger and resolve still match.
 */
function safeDedupKey(key: string): string {
  if (key.length <= MAX_DEDUP_KEY) return key;
  return `sentinel-sha256-${createHash('sha256').update(key).digest('hex')}`;
}

/** Advice for PagerDuty's failures (its message and errors are already in the error's body excerpt). */
export function interpretPagerdutyError(status: number, body: string): { hint?: string } | undefined {
  if (status === 429) return { hint: 'PagerDuty rate-limits events per routing key' };
  if (status === 404) return { hint: 'check api_base_url: the Events API v2 endpoint is /v2/enqueue' };
  if (status !== 400) return undefined;
  let errors: string[] = [];
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    if (Array.isArray(parsed.errors)) errors = parsed.errors.filter((x): x is string => typeof x === 'string');
  } catch {
    // Not PagerDuty's JSON: the excerpt says what there is to say.
  }
  if (errors.some((x) => /routing_key/i.test(x)))
    return { hint: 'check routing_key: it must be the Integration Key of an Events API v2 integration' };
  return { hint: 'PagerDuty rejected the event as invalid' };
}
