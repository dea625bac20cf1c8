import type pg from 'pg';
import type { Alert, OverallStatus, RunResult } from './types.js';
import type { SentinelConfig } from './config/schema.js';
import type { Logger } from './log.js';
import type { Check } from './checks/types.js';
import type { StateStore } from './state/store.js';
import { createPool, createWritePool, endPool } from './db/pool.js';
import { runChecks } from './checks/runner.js';

export interface RunnerDeps {
  config: SentinelConfig;
  logger: Logger;
  checks: Check[];
  state: StateStore;
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Worst level wins: any critical alert makes the run critical, any warning degraded. */
export function overallStatus(alerts: Alert[]): OverallStatus {
  if (alerts.some((a) => a.level === 'critical')) return 'critical';
  if (alerts.length > 0) return 'degraded';
  return 'healthy';
}

/** Exit codes of SPEC.md §3 (3 is reserved for "Sentinel itself could not run"). */
export function exitCodeFor(status: OverallStatus): 0 | 1 | 2 {
  return status === 'critical' ? 2 : status === 'degraded' ? 1 : 0;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
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
    const now = this.deps.now ?? (await this.databaseClock());
    const { alerts, checks } = await runChecks(
      this.deps.checks,
      {
        db: this.pool,
        config,
        environment: config.env.name,
        now,
        logger,
        state,
        sleep: this.deps.sleep ?? sleep,
        notify: (channel, payload) => this.notify(channel, payload),
      },
      signal,
    );
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
      },
    };
  }

  /**
   * Ages and hour buckets are judged on the database's clock, the one that wrote
   * `updated_at` and `created_at`: a monitor host whose clock is off by minutes
   * must not call a fresh batch stuck. Read once per run; when the database does
   * not answer, the local clock stands in (the checks will report the outage).
   */
  private async databaseClock(): Promise<() => Date> {
    try {
      const { rows } = await this.pool.query<{ now: Date }>('select now() as now');
      const offset = rows[0]!.now.getTime() - Date.now();
      return () => new Date(Date.now() + offset);
    } catch {
      return () => new Date();
    }
  }

  /** NOTIFY over a writable connection of its own; the check pool is read-only. */
  private async notify(channel: string, payload: string): Promise<void> {
    this.writePool ??= createWritePool(this.deps.config.env.databaseUrl, {
      max: 1,
      statementTimeoutMs: 5000,
      connectTimeoutMs: this.deps.config.connect_timeout_seconds * 1000,
    });
    await this.writePool.query('select pg_notify($1, $2)', [channel, payload]);
  }

  async close(): Promise<void> {
    await Promise.all([endPool(this.pool), this.writePool ? endPool(this.writePool) : undefined]);
  }
}
