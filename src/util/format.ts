/** `10` → "10", `10.5` → "10.5": thresholds printed as the user wrote them. */
export function trimNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100);
}

/** A percentage with one decimal, as in the guide: `18.5`, `15.0`. */
export function pct1(n: number): string {
  // Half up on the decimal value (32.15 → 32.2): toFixed rounds the binary
  // approximation, which is just below it.
  return (Math.round(n * 10 + 1e-9) / 10).toFixed(1);
}

/** Rounds to `digits` decimals, away from floating noise (0.1 + 0.2). */
export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round((n + Number.EPSILON) * f) / f;
}

/** `2025-01-04T10:00:00Z`: ISO 8601 UTC without milliseconds, for hour buckets. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `1 batch` / `3 batches`. */
export function plural(count: number, singular: string, pluralForm = `${singular}es`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/**
 * An age or a duration in minutes as a person reads it: `7.5 min`, `14 min`,
 * `3 h 12 min`, `2 d 3 h`. Whole minutes from 10 on (a decimal there is noise);
 * the two largest units only.
 */
export function minutesText(minutes: number): string {
  if (!Number.isFinite(minutes)) return String(minutes);
  const m = Math.max(0, minutes);
  if (m < 10) return `${trimNumber(round(m, 1))} min`;
  const whole = Math.round(m);
  if (whole < 60) return `${whole} min`;
  if (whole < 48 * 60) {
    const rest = whole % 60;
    return `${Math.floor(whole / 60)} h${rest ? ` ${rest} min` : ''}`;
  }
  const hours = Math.round(whole / 60);
  const rest = hours % 24;
  return `${Math.floor(hours / 24)} d${rest ? ` ${rest} h` : ''}`;
}
