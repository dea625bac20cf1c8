import { z } from 'zod';
import type { SentinelConfig } from '../config/schema.js';
import type { Queryable } from '../db/pool.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { Alert, Measurement } from '../types.js';
import { bounded, LIMITS, MINUTE_MS, SECOND_MS } from '../util/limits.js';

/**
 * What a check gets to do its work. Checks never read globals, `process.env` or
 * `Date.now()` directly: everything time- or environment-dependent comes from here,
 * which is what makes thresholds and hour boundaries testable.
 */
export interface CheckContext {
  /** Read-only access to the monitored database (pool or client). */
  db: Queryable;
  config: SentinelConfig;
  /** Name of the environment being checked (`dev`, `prod`, ...). */
  environment: string;
  /** The current time. Tests pin it. */
  now: () => Date;
  logger: Logger;
  /** Aborted when the check's timeout passes or the process is shutting down. */
  signal: AbortSignal;
  /**
   * Sends a NOTIFY over a direct, writable connection to the monitored database
   * (the check pool is read-only). Used by the schema-cache reload.
   */
  notify: (channel: string, payload: string) => Promise<void>;
  /** Small persistent key-value state (reload cooldowns and the like). */
  state: StateStore;
  /** Waits `ms` unless `signal` aborts first. Injected so tests need not sleep. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * Records a figure for metrics (`CheckSummary.measurements`); a later call with
   * the same key replaces the value. Optional: the runner provides it, hand-built
   * contexts may not, so checks call it as `ctx.measure?.(key, value)`.
   */
  measure?: (key: string, value: Measurement) => void;
  /**
   * Records a figure of one labelled series (`CheckSummary.series`), e.g. the anomaly score of a
   * source and metric; a later call with the same key and labels replaces the value. Optional like
   * `measure`.
   */
  measureFor?: (key: string, labels: Record<string, string>, value: number) => void;
}

/** Returned by a check whose inputs are not configured (docs/contract.md §5: "reported as skipped"). */
export interface Skipped {
  skipped: string;
}

export type CheckOutput = Alert[] | Skipped;

export interface Check {
  /** Stable name used in alerts, config (`checks.<name>`) and reports. */
  name: string;
  /**
   * False for a check that does its work elsewhere (schema_cache talks to
   * PostgREST): it still runs while the database is unreachable or locked, when
   * the checks that need the database are reported as not run. Default true.
   */
  needsDatabase?: boolean;
  /** Next steps added to its alerts that carry none (registry checks always set it). */
  remediation?: string;
  run(ctx: CheckContext): Promise<CheckOutput>;
}

export function isSkipped(output: CheckOutput): output is Skipped {
  return !Array.isArray(output);
}

/**
 * One figure a check records with `ctx.measure`, declared so that reports find it
 * by property instead of by check name: /metrics exports every numeric declared
 * measurement as `sentinel_check_measurement{check,measurement}`, Nagios adds the
 * ones with `perfdata` to its performance data.
 */
export interface MeasurementSpec {
  /** The key passed to `ctx.measure`. */
  key: string;
  /** What the figure means, for the generated check reference. */
  meaning: string;
  /** Nagios perfdata: the label and unit of measure (`ms`, `%`, or '' for a count). */
  perfdata?: { label: string; uom: string };
}

/**
 * Everything about one check, in its own file: the registry (./index.ts) derives the
 * config section, the CLI help, the remediation hints, the per-source list, the
 * metrics and perfdata and the generated docs/checks.md from these fields.
 */
export interface CheckDefinition<N extends string = string, S extends z.ZodType = z.ZodType> extends Check {
  name: N;
  /** One line: what the check alerts on (CLI help, docs). */
  description: string;
  /** `checks.<name>` in the config file: a strict object whose every key has a default. */
  settings: S;
  /** The guide's next steps, added to the check's alerts that carry none of their own. */
  remediation: string;
  /** Whether its alerts are per source (the subject is the source; `silence --source` matches them). */
  perSource: boolean;
  /** See {@link Check.needsDatabase}; declared explicitly here. */
  needsDatabase: boolean;
  /** What it records with `ctx.measure`. */
  measurements: readonly MeasurementSpec[];
}

/**
 * Identity with types: keeps the literal name, the settings schema's type and the
 * run's own return type (`Promise<Alert[]>` for a check that never skips).
 */
export function defineCheck<const D extends CheckDefinition>(definition: D): D {
  return definition;
}

/**
 * The keys every check's settings have: `enabled` and `timeout_seconds` (the
 * whole check's budget, default `timeoutSeconds`), merged with the check's own.
 */
export function checkSettings<T extends z.ZodRawShape>(timeoutSeconds: number, shape: T) {
  return z.strictObject({
    enabled: z.boolean().default(true).describe('run the check (a disabled check is reported as skipped)'),
    ...shape,
    timeout_seconds: checkTimeout(timeoutSeconds).describe("the whole check's budget; it fails when it passes"),
  });
}

/** `timeout_seconds`: at most an hour (util/limits.ts says why). */
export const checkTimeout = (seconds: number) =>
  bounded(LIMITS.checkTimeoutSeconds, { unitMs: SECOND_MS }).default(seconds);
/** `threshold_minutes` and the like: at most 366 days. */
export const thresholdMinutes = (minutes: number) =>
  bounded(LIMITS.thresholdMinutes, { unitMs: MINUTE_MS }).default(minutes);
