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
