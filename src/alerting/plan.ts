import type { Notification, NotificationEvent, Notifier } from '../notifiers/contract.js';
import { type Alert, DISABLED_IN_CONFIG, type Level, type RunResult } from '../types.js';
import { decide, identityKey, type LifecycleSettings, levelAtLeast, type TrackedAlert } from './decide.js';
import { type ClaimHolderAlive, cancelPending, dropStaleRefreshes } from './outbox.js';
import { activeSilences, isSilenced } from './silences.js';
import { withStatus } from './status.js';
import type { AlertingState, OutboxEntry } from './store.js';

/**
 * One run's alerting decisions as a pure function: from the state before the run
 * and the run's result, the state after it and the notifications to record. It
 * composes the per-alert lifecycle (decide.ts) with what lies between alerts and
 * notifiers:
 *
 * - silences: a silenced alert is tracked and reported, never notified;
 * - acknowledgements: decide() sends no repeats of an acknowledged alert;
 * - routing: each notifier gets the firing/escalated/repeat events at or above its
 *   `minLevel`, and `resolved` only when it wants resolutions and heard of the
 *   alert (or may have: a message whose delivery is unknown);
 * - a resolution cancels the alert's news still waiting undelivered in the outbox,
 *   instead of following it;
 * - an every-run notifier (Alertmanager) gets every firing alert again, this run's
 *   refresh replacing one still waiting;
 * - all events for one notifier in one run are one notification (a storm is one
 *   message).
 *
 * No I/O: the time, the id of a new notification, redaction and whether a claim's
 * holder lives come in as arguments. test/alerting/plan.test.ts walks it as a table.
 */

/** What the planner needs to know of a notifier: its name and routing settings. */
export type Route = Pick<Notifier, 'name' | 'minLevel' | 'sendResolved' | 'everyRun'>;

/** What the planner takes besides the state, the run, the notifiers and the time. */
export interface PlanContext {
  settings: LifecycleSettings;
  /** Sentinel's host name, the source shown in notifications. */
  host: string;
  /** Masks secrets in alert text, which leaves the host in notifications. */
  redact: (text: string) => string;
  /** A new notification's id (a random UUID in production). */
  newId: () => string;
  /** Whether the holder of an outbox claim still runs (see outbox.ts). */
  alive: ClaimHolderAlive;
}

/** What one run changes. */
export interface Plan {
  /** The state after the run: tracked alerts advanced, outbox with `entries` added and cancelled news removed. */
  state: AlertingState;
  /** This run's new notifications, one per notifier that has news (already in `state.outbox`). */
  entries: OutboxEntry[];
  /** The run's result with alert ids, silence and acknowledgement marks, and the status without silenced alerts. */
  result: RunResult;
}

/** Advances every alert identity of `result.environment` and routes the news to `notifiers`. Pure. */
export function plan(
  state: AlertingState,
  result: RunResult,
  notifiers: readonly Route[],
  now: Date,
  context: PlanContext,
): Plan {
  const env = result.environment;
  const silences = activeSilences(state.silences, now);
  // Absence of an alert is evidence of health only from a check that ran. A check
  // disabled in config has been retired by its owner: its alerts may resolve.
  const evidence = new Set(
    result.checks
      .filter(
        (c) =>
          c.outcome === 'ok' || c.outcome === 'alert' || (c.outcome === 'skipped' && c.reason === DISABLED_IN_CONFIG),
      )
      .map((c) => c.name),
  );
  const known = new Set(result.checks.map((c) => c.name));

  const observed = new Map<string, Alert>();
  for (const alert of result.alerts) observed.set(identityKey(env, alert), alert);

  const alerts: Record<string, TrackedAlert> = { ...state.alerts };
  const events: Array<{ event: NotificationEvent; deliveredTo: Record<string, Level> }> = [];
  const annotated = new Map<string, Alert>();
  const keys = new Set([
    ...observed.keys(),
    ...Object.keys(state.alerts).filter((k) => alerts[k]!.environment === env),
  ]);
  for (const key of keys) {
    const previous = state.alerts[key];
    const alert = observed.get(key);
    const silenced = alert ? isSilenced(silences, env, alert) : false;
    const check = alert?.check ?? previous!.check;
    const decision = decide({
      previous,
      observed: alert ? { ...alert, ...redacted(alert, context.redact), environment: env } : undefined,
      checkRan: evidence.has(check) || !known.has(check),
      silenced,
      now,
      settings: context.settings,
    });
    if (decision.next) alerts[key] = decision.next;
    else delete alerts[key];
    const tracked = decision.next ?? previous!;
    if (alert)
      annotated.set(key, {
        ...alert,
        id: tracked.id,
        silenced,
        acknowledged: Boolean(tracked.acknowledged),
        since: tracked.firingSince,
      });
    if (decision.notify)
      events.push({ event: toEvent(tracked, decision.notify, now), deliveredTo: previous?.deliveredTo ?? {} });
  }

  let next: AlertingState = { ...state, alerts };
  const entries: OutboxEntry[] = [];
  for (const notifier of notifiers) {
    const scope = { environment: env, notifier: notifier.name, now, alive: context.alive };
    const mine: NotificationEvent[] = [];
    for (const { event, deliveredTo } of events) {
      if (event.kind !== 'resolved') {
        if (levelAtLeast(event.level, notifier.minLevel)) mine.push(event);
        continue;
      }
      // A firing message still waiting in the outbox and its resolution cancel
      // out: nobody needs to hear about a problem that is already over, unless
      // the waiting message may have been shown already (delivery unknown).
      const cancelled = cancelPending(next, { ...scope, dedupKey: event.dedupKey });
      next = cancelled.state;
      if (cancelled.outcome === 'cancelled') continue;
      // Resolved only where the firing message was (or may have been) delivered.
      if (notifier.sendResolved && (deliveredTo[notifier.name] || cancelled.outcome === 'maybe delivered'))
        mine.push(event);
    }
    if (notifier.everyRun) {
      // Alertmanager forgets alerts that are not re-posted: refresh every firing one,
      // and let this refresh replace an older refresh still waiting in the outbox.
      const included = new Set(mine.map((e) => e.dedupKey));
      for (const tracked of Object.values(alerts)) {
        if (tracked.environment !== env || !tracked.notifiedLevel || included.has(tracked.dedupKey)) continue;
        const alert = annotated.get(tracked.key);
        if (!alert || alert.silenced || !levelAtLeast(tracked.level, notifier.minLevel)) continue;
        mine.push(toEvent(tracked, 'repeat', now));
      }
      next = dropStaleRefreshes(next, scope);
    }
    if (mine.length === 0) continue;
    const notification: Notification = {
      id: context.newId(),
      notifier: notifier.name,
      createdAt: now.toISOString(),
      host: context.host,
      events: mine,
    };
    entries.push({ notification, environment: env, attempts: 0, completedParts: [] });
  }
  next = { ...next, outbox: [...next.outbox, ...entries] };

  return {
    state: next,
    entries,
    result: withStatus(
      result,
      result.alerts.map((a) => annotated.get(identityKey(env, a)) ?? a),
    ),
  };
}

/** Alert data leaves the host in notifications: the same redaction as every other output. */
function redacted(alert: Alert, redact: (text: string) => string): Pick<Alert, 'message' | 'details'> {
  return {
    message: redact(alert.message),
    details: JSON.parse(redact(JSON.stringify(alert.details))) as Record<string, unknown>,
  };
}

/** The event telling about `tracked` now. */
export function toEvent(tracked: TrackedAlert, kind: NotificationEvent['kind'], now: Date): NotificationEvent {
  return {
    kind,
    id: tracked.id,
    dedupKey: tracked.dedupKey,
    environment: tracked.environment,
    check: tracked.check,
    ...(tracked.subject !== undefined ? { subject: tracked.subject } : {}),
    level: kind === 'resolved' ? (tracked.notifiedLevel ?? tracked.level) : tracked.level,
    message: tracked.message,
    details: tracked.details,
    ...(tracked.remediation ? { remediation: tracked.remediation } : {}),
    firingSince: tracked.firingSince,
    ...(kind === 'resolved' ? { resolvedAt: now.toISOString() } : {}),
  };
}

/** `2 firing, 1 resolved`: the kinds of events in a notification, for the log. */
export function describeKinds(events: readonly NotificationEvent[]): string {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}
