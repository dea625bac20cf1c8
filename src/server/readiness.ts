import type { RunResult } from '../types.js';
import { databaseFailure } from '../checks/reachability.js';

/**
 * Why the database counts as unreachable in a run, or undefined when it was
 * reached: the same rule as `sentinel_database_up` (src/checks/reachability.ts).
 */
export const databaseUnreachable = databaseFailure;

export type ReadinessVerdict = { ready: true; reason?: undefined } | { ready: false; reason: string };

/**
 * `/readyz`: ready when the last run finished within two intervals and reached the
 * database. Fed by the loop after each run; read by the HTTP server, which never
 * runs anything itself.
 */
export class Readiness {
  private last: { finishedAt: number; unreachable?: string } | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
    /** Masks secrets in reasons (error messages come from drivers). */
    private readonly redact: (text: string) => string = (t) => t,
  ) {}

  record(result: RunResult): void {
    const unreachable = databaseUnreachable(result);
    this.last = { finishedAt: this.now(), ...(unreachable !== undefined ? { unreachable } : {}) };
  }

  /**
   * A replica standing by as follower runs nothing, yet is healthy when it can reach
   * the lock database: it counts as a finished run for readiness (so a load balancer
   * or Kubernetes keeps it, ready to take over). `unreachable` says why it could not.
   */
  standby(unreachable?: string): void {
    this.last = { finishedAt: this.now(), ...(unreachable !== undefined ? { unreachable } : {}) };
  }

  verdict(): ReadinessVerdict {
    if (!this.last) return { ready: false, reason: 'no run has finished yet' };
    const age = this.now() - this.last.finishedAt;
    if (age > 2 * this.intervalMs) {
      return { ready: false, reason: `the last run finished ${Math.round(age / 1000)}s ago, more than two intervals (${Math.round((2 * this.intervalMs) / 1000)}s)` };
    }
    if (this.last.unreachable !== undefined) {
      return { ready: false, reason: this.redact(`the database was unreachable in the last run: ${this.last.unreachable}`).slice(0, 300) };
    }
    return { ready: true };
  }
}
