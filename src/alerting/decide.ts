import { createHash } from 'node:crypto';
import type { EventKind } from '../notifiers/contract.js';
import type { Alert, Level } from '../types.js';

/**
 * The alert lifecycle as a pure function (Alertmanager's `needsUpdate`): given what
 * was known about an alert, what this run observed and the time, decide the next
 * state and whether to notify. No I/O, no clock: the table below is the whole
 * behaviour, and test/alerting/decide.test.ts walks every row.
 *
 *  previous  | observed | condition                                  | next                         | notify
 *  ----------+----------+--------------------------------------------+------------------------------+-----------
 *  none      | none     |                                            | none                         | -
 *  none      | firing   | silenced                                   | tracked, not notified        | -
 *  none      | firing   |                                            | tracked, notified            | firing
 *  tracked   | firing   | silenced                                   | updated                      | -
 *  tracked   | firing   | never notified (its silence just ended)    | notified                     | firing
 *  tracked   | firing   | level above the highest notified level     | notified at the new level    | escalated
 *  tracked   | firing   | acknowledged                               | updated                      | -
 *  tracked   | firing   | repeat_interval passed since last notified | notified again               | repeat
 *  tracked   | firing   | otherwise                                  | updated                      | -
 *  tracked   | none     | its check could not run this time          | unchanged                    | -
 *  tracked   | none     | fewer than resolve_after_runs healthy runs | healthy runs + 1             | -
 *  tracked   | none     | resolve_after_runs healthy runs, notified  | none (forgotten)             | resolved
 *  tracked   | none     | resolve_after_runs healthy runs, never     | none (forgotten)             | -
 *
 * "updated" means: latest level, message and details kept, healthy-run count reset.
 * A new message text is not a new alert: identity is environment + check + subject.
 */

/** What is remembered about one alert identity between runs. */
export interface TrackedAlert {
  key: string;
  id: string;
  dedupKey: string;
  environment: string;
  check: string;
  subject?: string;
  failed?: boolean;
  level: Level;
  message: string;
  details: Record<string, unknown>;
  remediation?: string;
  /** ISO 8601. */
  firingSince: string;
  lastSeenAt: string;
  /** The highest level notified so far; undefined while never notified. */
  notifiedLevel?: Level;
  lastNotifiedAt?: string;
  /** Consecutive runs in which its check ran and did not report it. */
  healthyRuns: number;
  acknowledged?: { at: string; by: string };
  /**
   * Notifiers that accepted a firing/escalated/repeat notification of this alert,
   * with the highest level delivered: a `resolved` message goes only to them.
   */
  deliveredTo?: Record<string, Level>;
}

export interface LifecycleSettings {
  repeatIntervalMs: number;
  resolveAfterRuns: number;
}

export interface DecideInput {
  previous?: TrackedAlert;
  /** The alert as observed in this run (with its environment), or undefined. */
  observed?: Alert & { environment: string };
  /** False when the alert's check failed this run: absence then proves nothing. */
  checkRan: boolean;
  silenced: boolean;
  now: Date;
  settings: LifecycleSettings;
}

export interface Decision {
  /** The state to keep; undefined forgets the alert. */
  next?: TrackedAlert;
  notify?: Exclude<EventKind, 'test'>;
}

const LEVEL_RANK: Record<Level, number> = { warning: 1, critical: 2 };

export function levelAtLeast(level: Level, min: Level): boolean {
  return LEVEL_RANK[level] >= LEVEL_RANK[min];
}

/**
 * `prod|error_spike|vendor_x`: the identity of an alert (docs/contract.md §7). Check failures are
 * their own identity.
 */
export function identityKey(environment: string, alert: Pick<Alert, 'check' | 'subject' | 'failed'>): string {
  return [environment, alert.check, alert.failed ? '!check_failed' : (alert.subject ?? '')].join('|');
}

/** Short id for humans (`sentinel ack 3f9a2c1e`) and a stable dedup key for PagerDuty/Alertmanager. */
export function idsFor(key: string): { id: string; dedupKey: string } {
  const hash = createHash('sha256').update(key).digest('hex');
  return { id: hash.slice(0, 8), dedupKey: `sentinel-${hash.slice(0, 32)}` };
}

export function decide(input: DecideInput): Decision {
  const { previous, observed, now, settings } = input;
  const nowIso = now.toISOString();

  if (!observed) {
    if (!previous) return {};
    if (!input.checkRan) return { next: previous };
    const healthyRuns = previous.healthyRuns + 1;
    if (healthyRuns < settings.resolveAfterRuns) return { next: { ...previous, healthyRuns } };
    return previous.notifiedLevel ? { notify: 'resolved' } : {};
  }

  const key = identityKey(observed.environment, observed);
  const base: TrackedAlert = previous
    ? {
        ...previous,
        level: observed.level,
        message: observed.message,
        details: observed.details,
        remediation: observed.remediation,
        lastSeenAt: nowIso,
        healthyRuns: 0,
      }
    : {
        key,
        ...idsFor(key),
        environment: observed.environment,
        check: observed.check,
        ...(observed.subject !== undefined ? { subject: observed.subject } : {}),
        ...(observed.failed ? { failed: true } : {}),
        level: observed.level,
        message: observed.message,
        details: observed.details,
        remediation: observed.remediation,
        firingSince: nowIso,
        lastSeenAt: nowIso,
        healthyRuns: 0,
      };

  if (input.silenced) return { next: base };
  const notified = (kind: Decision['notify']): Decision => ({
    next: { ...base, notifiedLevel: maxLevel(base.notifiedLevel, observed.level), lastNotifiedAt: nowIso },
    notify: kind,
  });
  if (!base.notifiedLevel) return notified('firing');
  if (LEVEL_RANK[observed.level] > LEVEL_RANK[base.notifiedLevel]) return notified('escalated');
  if (base.acknowledged) return { next: base };
  const last = base.lastNotifiedAt ? Date.parse(base.lastNotifiedAt) : 0;
  if (now.getTime() - last >= settings.repeatIntervalMs) return notified('repeat');
  return { next: base };
}

function maxLevel(a: Level | undefined, b: Level): Level {
  return a && LEVEL_RANK[a] >= LEVEL_RANK[b] ? a : b;
}
