/**
 * The UTC hour of a timestamptz column, written exactly as the migration's
 * `sentinel_batches_hour_idx` index expression, so that PostgreSQL can use that
 * index. (Three-argument date_trunc is only stable, so it cannot be indexed; this
 * form is immutable and gives the same instant.) Every created_at range Sentinel
 * reads adds a condition on it, because the hour index is the only created_at
 * index Sentinel keeps on the engine's table.
 */
export function utcHour(expression: string): string {
  return `(date_trunc('hour', (${expression}) at time zone 'UTC') at time zone 'UTC')`;
}

/**
 * `created_at >= <since>` (an SQL expression), with the UTC-hour condition that lets
 * PostgreSQL read it through `sentinel_batches_hour_idx`: the hour condition selects
 * whole hours, the exact one trims the first.
 */
export function createdSince(since: string): string {
  return `${utcHour('created_at')} >= ${utcHour(since)} and created_at >= ${since}`;
}
