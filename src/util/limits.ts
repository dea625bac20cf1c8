import { z } from 'zod';
import { formatDuration, parseDuration } from './duration.js';

/**
 * The maximum of every number and duration Sentinel accepts, in one place, so that
 * a value that would later break every run is refused at load instead (one line
 * naming the setting and its range, exit 3). Two kinds of limits apply:
 *
 * - timers: Node fires a `setTimeout` longer than 2^31-1 ms at once (with only a
 *   warning), so `--interval 2147484` ran ~95 times a second and a 25-day
 *   `delivery_timeout` aborted every delivery before it started;
 * - date arithmetic: thresholds and `expected_every` are subtracted from "now" in
 *   JavaScript and PostgreSQL; a year (366 days) is the longest that means anything.
 *
 * Within those, each setting has a maximum that makes sense for what it does (a
 * check taking over an hour is broken, not slow). docs/reliability.md lists them.
 */

export const SECOND_MS = 1000;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** The longest delay Node's timers honour (setTimeout/setInterval/AbortSignal.timeout). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest threshold or period: a (leap) year. */
export const MAX_SPAN_MS = 366 * DAY_MS;

/** The largest config file read (checked before reading it). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Limits shared by several settings and flags. */
export const LIMITS = {
  /** `checks.*.timeout_seconds`: one check's whole budget. */
  checkTimeoutSeconds: 3600,
  /** `checks.*.threshold_minutes`, `p95_minutes`: 366 days. */
  thresholdMinutes: MAX_SPAN_MS / MINUTE_MS,
  /** One HTTP request (PostgREST probe, notifier). */
  requestTimeoutSeconds: 120,
  /**
   * `statement_timeout_ms`: an hour, far inside PostgreSQL's 2147483647 ms and Node's timers (pg adds 2 s for its own).
   */
  statementTimeoutMs: HOUR_MS,
} as const;

/** `366 days`, `1 hour`, `5 minutes`, `24h20m`: a limit as a person reads it. */
export function spanText(ms: number): string {
  for (const [unit, size] of [
    ['day', DAY_MS],
    ['hour', HOUR_MS],
    ['minute', MINUTE_MS],
    ['second', SECOND_MS],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${unit}${ms === size ? '' : 's'}`;
  }
  return formatDuration(ms);
}

/** `must be at most 527040 (366 days)`: the wording of every upper bound. */
export function atMost(max: number, unitMs?: number): string {
  return `must be at most ${max}${unitMs === undefined ? '' : ` (${spanText(max * unitMs)})`}`;
}

/**
 * A number greater than 0 (or at least `min`) and at most `max`; `unitMs` says what
 * one unit is (`SECOND_MS` for `*_seconds`), for the message. `int` for counts.
 */
export function bounded(max: number, options: { unitMs?: number; min?: number; int?: boolean } = {}): z.ZodNumber {
  let schema = options.int ? z.int() : z.number();
  schema = options.min === undefined ? schema.positive() : schema.min(options.min);
  return schema.max(max, atMost(max, options.unitMs));
}

/**
 * `30s`, `15m`, `4h`, `1h30m`, or a number of seconds; parsed to milliseconds,
 * greater than 0 and at most `maxMs` (`alerting.delivery_timeout: must be at most 1h`).
 */
export function boundedDuration(maxMs: number): z.ZodType<number, number | string> {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    if (typeof value === 'number' && !(value > 0)) {
      ctx.addIssue({ code: 'custom', message: 'must be greater than 0' });
      return z.NEVER;
    }
    const ms = typeof value === 'number' ? value * 1000 : parseDuration(value);
    if (ms === undefined || !(ms > 0)) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as 30s, 15m, 4h or 1h30m' });
      return z.NEVER;
    }
    if (ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(maxMs)}` });
      return z.NEVER;
    }
    return ms;
  });
}
