import { randomUUID } from 'node:crypto';
import type { Alert, Level, RunResult } from '../types.js';
import type { Logger } from '../log.js';
import type { Notification, NotificationEvent, Notifier } from './types.js';
import type { SendContext } from '../notifiers/base.js';
import { DeliveryError, withRetry } from '../notifiers/http.js';
import { decide, identityKey, levelAtLeast, type LifecycleSettings, type TrackedAlert } from './decide.js';
import { AlertStore, StateLockTimeout, type AlertingState, type OutboxEntry, type Silence } from './store.js';
import { overallStatus } from '../run.js';
import type { Redactor } from '../util/redact.js';

/**
 * From a run's alerts to delivered notifications:
 *   1. under the state lock, decide each alert identity's transition (decide.ts);
 *   2. group this run's events into one notification per notifier and record them
 *      in the outbox (written to disk before anything is sent);
 *   3. deliver the outbox, oldest first, one notifier in parallel with another,
 *      retrying within a bounded time; what is still undelivered stays for the
 *      next run. Nothing is removed from the outbox before the provider accepted it.
 */

export interface AlertingSettings extends LifecycleSettings {
  /** Upper bound on the time one run spends delivering. */
  deliveryTimeoutMs: number;
  /** An undelivered notification older than this is given up (and logged loudly). */
  maxOutboxAgeMs: number;
  /** Retries within one run for one notification. */
  attemptsPerRun: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

export const DEFAULT_DELIVERY: Omit<AlertingSettings, keyof LifecycleSettings> = {
  deliveryTimeoutMs: 30_000,
  maxOutboxAgeMs: 24 * 3_600_000,
  attemptsPerRun: 4,
  retryBaseMs: 1000,
  retryMaxMs: 10_000,
};

export interface AlertingDeps {
  store: AlertStore;
  notifiers: Notifier[];
  settings: AlertingSettings;
  logger: Logger;
  redactor: Redactor;
  host: string;
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  /** How long to wait for another run holding the state lock. */
  lockWaitMs?: number;
}

/** Per-notifier delivery figures of one run, for the report. */
export interface NotifierSummary {
  notifier: string;
  type: string;
  sent: number;
  pending: number;
  failed: number;
  errors: string[];
}

export interface AlertingOutcome {
  notifications: NotifierSummary[];
  /** Set when alerting could not run (state locked or unreadable); the run's report still stands. */
  error?: string;
}

const DEAD_KEPT = 50;

export class AlertingEngine {
  private readonly now: () => Date;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly deps: AlertingDeps) {
    this.now = deps.now ?? (() => new Date());
    this.sleep = deps.sleep ?? ((ms, signal) => new Promise((r) => {
      const t = setTimeout(r, ms);
      signal?.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
    }));
    this.random = deps.random ?? Math.random;
  }

  /**
   * Applies silences and acknowledgements to `result` (marking its alerts and
   * recomputing the overall status without silenced ones), advances the alert
   * lifecycle, records and delivers notifications. Never throws for delivery or
   * state problems: they are logged and returned, the run's report stands.
   */
  async process(result: RunResult): Promise<{ result: RunResult; outcome: AlertingOutcome }> {
    try {
      return await this.deps.store.withLock(async () => {
        const state = await this.deps.store.read();
        const annotated = this.advance(state, result);
        await this.deps.store.write(state);
        const notifications = await this.deliver(state);
        return { result: annotated, outcome: { notifications } };
      }, { waitMs: this.deps.lockWaitMs });
    } catch (err) {
      const message = err instanceof StateLockTimeout ? `${err.message}; notifications of this run are left to it` : (err as Error).message;
      this.deps.logger.error(`Alerting: ${message}`);
      return { result, outcome: { notifications: [], error: this.deps.redactor.redact(message) } };
    }
  }

  /** Steps 1 and 2: lifecycle decisions and outbox records. Mutates `state`. */
  private advance(state: AlertingState, result: RunResult): RunResult {
    const now = this.now();
    const env = result.environment;
    const silences = activeSilences(state.silences, now);
    const ranChecks = new Set(result.checks.filter((c) => c.outcome !== 'failed').map((c) => c.name));

    const observed = new Map<string, Alert>();
    for (const alert of result.alerts) observed.set(identityKey(env, alert), alert);

    const events: Array<{ event: NotificationEvent; notifiedLevel?: Level }> = [];
    const keys = new Set([...observed.keys(), ...Object.keys(state.alerts).filter((k) => state.alerts[k]!.environment === env)]);
    const annotated = new Map<string, Alert>();
    for (const key of keys) {
      const previous = state.alerts[key];
      const alert = observed.get(key);
      const silenced = alert ? isSilenced(silences, env, alert) : false;
      const check = alert?.check ?? previous!.check;
      const decision = decide({
        previous,
        observed: alert ? { ...alert, environment: env } : undefined,
        checkRan: ranChecks.has(check) || result.checks.every((c) => c.name !== check),
        silenced,
        now,
        settings: this.deps.settings,
      });
      if (decision.next) state.alerts[key] = decision.next;
      else delete state.alerts[key];
      const tracked = decision.next ?? previous!;
      if (alert) annotated.set(key, { ...alert, id: tracked.id, silenced, acknowledged: Boolean(tracked.acknowledged) });
      if (decision.notify) {
        events.push({ event: toEvent(tracked, decision.notify, now), notifiedLevel: previous?.notifiedLevel ?? tracked.notifiedLevel });
      }
    }

    for (const notifier of this.deps.notifiers) {
      const mine = events
        .filter(({ event, notifiedLevel }) =>
          event.kind === 'resolved' ? notifier.sendResolved && notifiedLevel !== undefined && levelAtLeast(notifiedLevel, notifier.minLevel) : levelAtLeast(event.level, notifier.minLevel),
        )
        .map(({ event }) => event);
      if (notifier.everyRun) {
        // Alertmanager forgets alerts that are not re-posted: refresh every firing one.
        const included = new Set(mine.map((e) => e.dedupKey));
        for (const tracked of Object.values(state.alerts)) {
          if (tracked.environment !== env || !tracked.notifiedLevel || included.has(tracked.dedupKey)) continue;
          const alert = annotated.get(tracked.key);
          if (!alert || alert.silenced || !levelAtLeast(tracked.level, notifier.minLevel)) continue;
          mine.push(toEvent(tracked, 'repeat', now));
        }
      }
      if (mine.length === 0) continue;
      const notification: Notification = { id: randomUUID(), notifier: notifier.name, createdAt: now.toISOString(), host: this.deps.host, events: mine };
      state.outbox.push({ notification, attempts: 0, completedParts: [] });
      this.deps.logger.info(`Recorded a notification for ${notifier.name} (${describeKinds(mine)})`);
    }

    const alerts = result.alerts.map((a) => annotated.get(identityKey(env, a)) ?? a);
    const counted = alerts.filter((a) => !a.silenced);
    const critical = counted.filter((a) => a.level === 'critical').length;
    return {
      ...result,
      alerts,
      overall_status: overallStatus(counted),
      metrics: {
        ...result.metrics,
        alerts_triggered: counted.length,
        critical_alerts: critical,
        warning_alerts: counted.length - critical,
        silenced_alerts: alerts.length - counted.length,
      },
    };
  }

  /** Step 3: deliver what is due, notifiers in parallel, each notifier's entries in order. */
  private async deliver(state: AlertingState): Promise<NotifierSummary[]> {
    const started = performance.now();
    const deadline = started + this.deps.settings.deliveryTimeoutMs;
    const abort = AbortSignal.timeout(this.deps.settings.deliveryTimeoutMs);
    const byName = new Map(this.deps.notifiers.map((n) => [n.name, n]));
    const summaries = new Map<string, NotifierSummary>(
      this.deps.notifiers.map((n) => [n.name, { notifier: n.name, type: n.type, sent: 0, pending: 0, failed: 0, errors: [] }]),
    );
    let saving: Promise<void> = Promise.resolve();
    const persist = (): Promise<void> => (saving = saving.then(() => this.deps.store.write(state)).catch((err: Error) => this.deps.logger.error(`Alerting: cannot save state: ${err.message}`)));

    // Entries whose notifier was removed from the config, or that waited too long.
    const now = this.now();
    for (const entry of [...state.outbox]) {
      const age = now.getTime() - Date.parse(entry.notification.createdAt);
      if (!byName.has(entry.notification.notifier)) {
        this.deps.logger.warn(`Alerting: dropping an undelivered notification for "${entry.notification.notifier}", which is no longer configured`);
        removeEntry(state, entry);
      } else if (age > this.deps.settings.maxOutboxAgeMs) {
        this.deps.logger.error(`Alerting: giving up on a notification for "${entry.notification.notifier}" undelivered for ${Math.round(age / 3_600_000)}h (last error: ${entry.lastError ?? 'none'})`);
        bury(state, entry, now, 'expired undelivered');
        summaries.get(entry.notification.notifier)!.failed++;
      }
    }

    const queues = new Map<string, OutboxEntry[]>();
    for (const entry of state.outbox) {
      const list = queues.get(entry.notification.notifier) ?? [];
      list.push(entry);
      queues.set(entry.notification.notifier, list);
    }

    await Promise.all(
      [...queues].map(async ([name, entries]) => {
        const notifier = byName.get(name)!;
        const summary = summaries.get(name)!;
        for (const entry of entries) {
          // Order matters (firing before resolved): a notifier stops at its first undelivered entry.
          if (entry.nextAttemptAt && Date.parse(entry.nextAttemptAt) > this.now().getTime()) return;
          const delivered = await this.deliverOne(notifier, entry, state, deadline, abort, persist, summary);
          if (!delivered && state.outbox.includes(entry)) return;
        }
      }),
    );
    await persist();
    for (const entry of state.outbox) {
      const summary = summaries.get(entry.notification.notifier);
      if (summary) summary.pending++;
    }
    for (const s of summaries.values()) {
      if (s.sent || s.failed || s.pending) this.deps.logger.info(`Notifier ${s.notifier}: ${s.sent} sent, ${s.pending} pending, ${s.failed} failed`);
    }
    return [...summaries.values()];
  }

  /** Returns true when the entry left the outbox as delivered. */
  private async deliverOne(
    notifier: Notifier,
    entry: OutboxEntry,
    state: AlertingState,
    deadline: number,
    abort: AbortSignal,
    persist: () => Promise<void>,
    summary: NotifierSummary,
  ): Promise<boolean> {
    const ctx: SendContext = {
      signal: abort,
      completed: new Set(entry.completedParts),
      markCompleted: (part) => {
        if (!entry.completedParts.includes(part)) entry.completedParts.push(part);
        (ctx.completed as Set<string>).add(part);
        void persist();
      },
    };
    try {
      await withRetry(
        () => notifier.send(entry.notification, ctx),
        { attempts: this.deps.settings.attemptsPerRun, baseDelayMs: this.deps.settings.retryBaseMs, maxDelayMs: this.deps.settings.retryMaxMs, deadline, sleep: this.sleep, random: this.random },
        abort,
      );
      removeEntry(state, entry);
      summary.sent++;
      await persist();
      return true;
    } catch (err) {
      const error = err instanceof DeliveryError ? err : new DeliveryError(String(err), true);
      const message = this.deps.redactor.redact(error.message);
      entry.attempts++;
      entry.lastError = message;
      if (!error.retryable) {
        this.deps.logger.error(`Notifier ${notifier.name} (${notifier.type}) rejected a notification for good: ${message}. It will not be retried: fix the notifier's configuration.`);
        bury(state, entry, this.now(), message);
        summary.failed++;
        summary.errors.push(message);
        await persist();
        return false;
      }
      const backoff = Math.min(15 * 60_000, 15_000 * 2 ** (entry.attempts - 1));
      entry.nextAttemptAt = new Date(this.now().getTime() + Math.max(backoff, error.retryAfterMs ?? 0)).toISOString();
      this.deps.logger.warn(`Notifier ${notifier.name} (${notifier.type}): ${message}; kept in the outbox, next attempt after ${entry.nextAttemptAt}`);
      summary.errors.push(message);
      await persist();
      return false;
    }
  }

  /** Sends a marked test message through each notifier now, bypassing state and outbox. */
  async sendTest(environment: string, only?: string): Promise<Array<{ notifier: string; type: string; ok: boolean; error?: string }>> {
    const targets = this.deps.notifiers.filter((n) => !only || n.name === only);
    const now = this.now();
    const deadline = performance.now() + this.deps.settings.deliveryTimeoutMs;
    const abort = AbortSignal.timeout(this.deps.settings.deliveryTimeoutMs);
    return Promise.all(
      targets.map(async (notifier) => {
        const event: NotificationEvent = {
          kind: 'test',
          id: 'test0000',
          dedupKey: `sentinel-test-${randomUUID()}`,
          environment,
          check: 'notify_test',
          level: notifier.minLevel,
          message: `Test notification from Sentinel on ${this.deps.host}: if you can read this, notifier "${notifier.name}" works.`,
          details: { notifier: notifier.name, type: notifier.type },
          firingSince: now.toISOString(),
        };
        const notification: Notification = { id: randomUUID(), notifier: notifier.name, createdAt: now.toISOString(), host: this.deps.host, events: [event] };
        const parts = new Set<string>();
        try {
          await withRetry(
            () => notifier.send(notification, { signal: abort, completed: parts, markCompleted: (p) => void parts.add(p) }),
            { attempts: 2, baseDelayMs: this.deps.settings.retryBaseMs, maxDelayMs: this.deps.settings.retryMaxMs, deadline, sleep: this.sleep, random: this.random },
            abort,
          );
          return { notifier: notifier.name, type: notifier.type, ok: true };
        } catch (err) {
          return { notifier: notifier.name, type: notifier.type, ok: false, error: this.deps.redactor.redact((err as Error).message) };
        }
      }),
    );
  }
}

export function activeSilences(silences: Silence[], now: Date): Silence[] {
  return silences.filter((s) => !s.expiredAt && Date.parse(s.endsAt) > now.getTime());
}

/** A silence matches its check (failures included) and, when it names a source, only that subject. */
export function isSilenced(silences: Silence[], environment: string, alert: Pick<Alert, 'check' | 'subject'>): boolean {
  return silences.some(
    (s) => s.check === alert.check && (s.environment === undefined || s.environment === environment) && (s.source === undefined || s.source === alert.subject),
  );
}

function toEvent(tracked: TrackedAlert, kind: NotificationEvent['kind'], now: Date): NotificationEvent {
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

function removeEntry(state: AlertingState, entry: OutboxEntry): void {
  const i = state.outbox.indexOf(entry);
  if (i !== -1) state.outbox.splice(i, 1);
}

function bury(state: AlertingState, entry: OutboxEntry, now: Date, reason: string): void {
  removeEntry(state, entry);
  state.dead.push({ ...entry, lastError: reason, failedAt: now.toISOString() });
  if (state.dead.length > DEAD_KEPT) state.dead.splice(0, state.dead.length - DEAD_KEPT);
}

function describeKinds(events: NotificationEvent[]): string {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}
