import type { Alert } from '../types.js';
import type { Silence } from './store.js';

/** The silences in force at `now`: not expired by hand, not past their end. */
export function activeSilences(silences: readonly Silence[], now: Date): Silence[] {
  return silences.filter((s) => !s.expiredAt && Date.parse(s.endsAt) > now.getTime());
}

/**
 * A silence matches its check (failures included) and, when it names a source, only that subject,
 * or the alert whose `details.source` it is (an anomaly's subject is `<source> <metric>`).
 */
export function isSilenced(
  silences: readonly Silence[],
  environment: string,
  alert: Pick<Alert, 'check' | 'subject'> & { details?: Alert['details'] },
): boolean {
  return silences.some(
    (s) =>
      s.check === alert.check &&
      (s.environment === undefined || s.environment === environment) &&
      (s.source === undefined || s.source === alert.subject || s.source === alert.details?.source),
  );
}
