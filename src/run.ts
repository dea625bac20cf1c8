import type pg from 'pg';
import { type DatabaseRootCause, runChecks } from './checks/runner.js';
import { collectSnapshot } from './checks/snapshot.js';
import type { Check, CheckContext } from './checks/types.js';
import type { SentinelConfig } from './config/schema.js';
import { describeError, isSessionLost } from './db/errors.js';
import { createPool, createWritePool, endPool, timedQueries } from './db/pool.js';
import { type RollupRefresher, refreshRollups } from './db/rollup.js';
import type { Logger } from './log.js';
import type { StateStore } from './state/store.js';
import { type OverallStatus, overallStatus, type PipelineSnapshot, type RunResult } from './types.js';
import { linkedAbort } from './util/abort.js';
import { sleep } from './util/sleep.js';

/** The pipeline snapshot's own budget; it never holds up a run longer than this. */
export const SNAPSHOT_TIMEOUT_MS = 10_000;

export interface RunnerDeps {
  config: SentinelConfig;
  logger: Logger;
  checks: Check[];
  state: StateStore;
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Budget of the pipeline snapshot after the checks; default {@link SNAPSHOT_TIMEOUT_MS}. */
  snapshotTimeoutMs?: number;
  /**
   * Replicas: asked right before the one write a check makes (the schema-cache
   * NOTIFY). False (leadership lost during the run) skips it: only the leader acts.
   */
  mayAct?: () => Promise<boolean>;
}

/** Exit codes of docs/contract.md §3 (3 is reserved for "Sentinel itself could not run"). */
export function exitCodeFor(status: OverallStatus): 0 | 1 | 2 {
  return status === 'critical' ? 2 : status === 'degraded' ? 1 : 0;
}

/**
 * Holds the connections of a Sentinel process and runs health checks on demand.
 * One Runner serves a single run or a whole loop: its pools reconnect by
 * themselves after an outage, so every run reports what it saw without the loop
 * having to rebuild anything.
 */
export class Runner {
  private readonly pool: pg.Pool;
  private writePool: pg.Pool | undefined;
  private readonly now: () => Date;
  private rollup: RollupRefresher | undefined;
  /** The last run found the database unreachable or locked. */
  private databaseTrouble: DatabaseRootCause | undefined;

  constructor(private readonly deps: RunnerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.pool = createPool(deps.config.env.databaseUrl, {
      statementTimeoutMs: deps.config.statement_timeout_ms,
      connectTimeoutMs: deps.config.connect_timeout_seconds * 1000,
    });
  }

  async runOnce(signal?: AbortSignal): Promise<RunResult> {
    const started = performance.now();
    const { config, logger, state } = this.deps;
    const timed = timedQueries(this.pool);
    // One connection attempt tells whether the database is there at all, and gives
    // the database's clock. When it fails, no check tries again: one root cause.
    const probe = await this.probeDatabase();
    const now = this.deps.now ?? probe.clock;
    const base: Omit<CheckContext, 'signal'> = {
      db: timed.db,
      config,
      environment: config.env.name,
      now,
      logger,
      state,
      sleep: this.deps.sleep ?? sleep,
      notify: (channel, payload) => this.notify(channel, payload),
    };
    const rootCause: DatabaseRootCause | undefined = probe.error
      ? { kind: 'unreachable', reason: describeError(probe.error), error: probe.error }
      : undefined;
    if (rootCause) logger.error(`Database unreachable: ${rootCause.reason}`);
    const outcome = await runChecks(this.deps.checks, base, signal, rootCause ? { rootCause } : {});
    const { alerts, checks } = outcome;
    // A database found gone or locked is not asked again this run (nor by the rollup refresh after it).
    this.databaseTrouble = outcome.rootCause;
    const pipeline = outcome.rootCause ? undefined : await this.snapshot(base, signal);
    const critical = alerts.filter((a) => a.level === 'critical').length;
    const skipped = checks.filter((c) => c.outcome === 'skipped').length;
    return {
      timestamp: this.now().toISOString(),
      environment: config.env.name,
      overall_status: overallStatus(alerts),
      alerts,
      checks,
      duration_ms: Math.round(performance.now() - started),
      metrics: {
        total_checks: checks.length - skipped,
        alerts_triggered: alerts.length,
        critical_alerts: critical,
        warning_alerts: alerts.length - critical,
        skipped_checks: skipped,
        database_ms: Math.round(timed.totalMs() * 10) / 10,
      },
      ...(pipeline ? { pipeline } : {}),
    };
  }

  /**
   * Keeps the rollups current (after the run, so it never delays a check): the error
   * rollup behind ops.v_error_distribution and the hourly rollup the anomalies check
   * and the 7-day readers read. Only the leader does it when replicas run; their
   * readers are exact whether or not it happens, it only keeps them cheap.
   */
  async refreshRollups(): Promise<void> {
    if (this.databaseTrouble) return;
    if (this.deps.mayAct && !(await this.deps.mayAct())) return;
    this.rollup ??= refreshRollups(() => this.writable(), this.deps.logger);
    await this.rollup.refresh();
  }

  /**
   * The pipeline snapshot for metrics, under its own timeout. It is not a check:
   * whatever goes wrong is logged as a warning and the run goes on without it, its
   * status unchanged (the checks report an unreachable database themselves).
   */
  private async snapshot(
    base: Omit<CheckContext, 'signal'>,
    outer?: AbortSignal,
  ): Promise<PipelineSnapshot | undefined> {
    if (outer?.aborted) return undefined;
    const timeoutMs = this.deps.snapshotTimeoutMs ?? SNAPSHOT_TIMEOUT_MS;
    const { controller, signal, dispose } = linkedAbort(outer);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        collectSnapshot({ ...base, signal }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            controller.abort();
            reject(new Error(`timed out after ${timeoutMs / 1000}s`));
          }, timeoutMs);
          onAbort = () => reject(new Error('interrupted'));
          outer?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } catch (err) {
      base.logger.warn(`Pipeline snapshot failed: ${describeError(err)}; this run reports no pipeline figures`);
      return undefined;
    } finally {
      clearTimeout(timer);
      dispose();
      if (onAbort) outer?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Ages and hour buckets are judged on the database's clock, the one that wrote
   * `updated_at` and `created_at`: a monitor host whose clock is off by minutes
   * must not call a fresh batch stuck. Read once per run, within one connect
   * timeout even on a pooled connection whose server went silent. A pooled session
   * that turns out to have been terminated (a failover, a pooler restart) is
   * replaced once; any other failure is the run's finding, with the local clock
   * standing in.
   */
  private async probeDatabase(): Promise<{ clock: () => Date; error?: unknown }> {
    const query = { text: 'select now() as now', query_timeout: this.deps.config.connect_timeout_seconds * 1000 };
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.pool.query<{ now: Date }>(query);
        const offset = rows[0]!.now.getTime() - Date.now();
        return { clock: () => new Date(Date.now() + offset) };
      } catch (error) {
        if (attempt === 1 && isSessionLost(error)) continue;
        return { clock: () => new Date(), error };
      }
    }
  }

  /** NOTIFY over a writable connection of its own; the check pool is read-only. */
  private async notify(channel: string, payload: string): Promise<void> {
    if (this.deps.mayAct && !(await this.deps.mayAct())) {
      throw new Error('not the leader any more (replicas): NOTIFY skipped, the new leader decides');
    }
    await this.writable().query('select pg_notify($1, $2)', [channel, payload]);
  }

  /** The writable pool (NOTIFY, rollup refresh), opened on first use. */
  private writable(): pg.Pool {
    this.writePool ??= createWritePool(this.deps.config.env.databaseUrl, {
      max: 1,
      statementTimeoutMs: 5000,
      connectTimeoutMs: this.deps.config.connect_timeout_seconds * 1000,
    });
    return this.writePool;
  }

  async close(): Promise<void> {
    await Promise.all([endPool(this.pool), this.writePool ? endPool(this.writePool) : undefined]);
  }
}
