import type { Notification, NotificationEvent, SendContext } from '../../src/notifiers/contract.js';

/** A realistic event; override what a test cares about. */
export function event(overrides: Partial<NotificationEvent> = {}): NotificationEvent {
  return {
    kind: 'firing',
    id: 'a1b2c3d4',
    dedupKey: 'sentinel-prod-stuck_batches-a1b2c3d4e5f6',
    environment: 'prod',
    check: 'stuck_batches',
    level: 'critical',
    message: '3 batches stuck > 10m: processing(2), validating(1)',
    details: {
      stuck_batches: [{ status: 'processing', batch_count: 2, oldest_age_minutes: 15.3 }],
      total_stuck: 3,
      threshold_minutes: 10,
    },
    remediation: 'Check the worker logs for exceptions and database connectivity.',
    firingSince: '2025-01-04T10:15:32.123Z',
    ...overrides,
  };
}

export function notification(
  events: NotificationEvent[] = [event()],
  overrides: Partial<Notification> = {},
): Notification {
  return {
    id: 'n-0001',
    notifier: 'test',
    createdAt: '2025-01-04T10:16:00.000Z',
    host: 'sentinel-host',
    events,
    ...overrides,
  };
}

/** `count` distinct alerts at once: one source each, as a storm of per-source error spikes looks. */
export function storm(count: number): Notification {
  const events = Array.from({ length: count }, (_, i) =>
    event({
      id: `id${String(i).padStart(6, '0')}`,
      dedupKey: `sentinel-prod-error_spike-vendor_${i}`,
      check: 'error_spike',
      subject: `vendor_${i}`,
      level: i % 5 === 0 ? 'critical' : 'warning',
      message: `Error rate ${30 + (i % 10)}.0% > 25.0% threshold for source vendor_${i}`,
      details: {
        error_rate_pct: 30 + (i % 10),
        threshold_pct: 25,
        hour_bucket: '2025-01-04T10:00:00Z',
        error_rows: 300,
        total_rows: 1000,
        source: `vendor_${i}`,
      },
    }),
  );
  return notification(events, { id: 'n-storm' });
}

/** A SendContext that records completed parts, as the outbox does. */
export function sendContext(
  signal: AbortSignal = new AbortController().signal,
  completed: string[] = [],
): SendContext & { parts: Set<string> } {
  const parts = new Set(completed);
  return { signal, completed: parts, markCompleted: (p) => void parts.add(p), parts };
}
