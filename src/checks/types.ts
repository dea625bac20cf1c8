import type { SentinelConfig } from '../config/schema.js';
import type { Queryable } from '../db/pool.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { Alert, Measurement } from '../types.js';

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
}

/** Returned by a check whose inputs are not configured (SPEC.md §5: "reported as skipped"). */
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
  run(ctx: CheckContext): Promise<CheckOutput>;
}

export function isSkipped(output: CheckOutput): output is Skipped {
  return !Array.isArray(output);
}
