import { databaseFailure } from '../checks/reachability.js';
import type { RunResult } from '../types.js';

/**
 * Why the database counts as unreachable in a run, or undefined when it was
 * reached: the same rule as `sentinel_database_up` (src/checks/reachability.ts).
 */
export const databaseUnreachable = databaseFailure;

/** With replicas: whether this process leads (runs the checks) or stands by. */
export type ReplicaRole = 'leader' | 'follower';

export type ReadinessVerdict = ({ ready: true; reason?: undefined } | { ready: false; reason: string }) & {
  /** Only with replicas enabled. */
  role?: ReplicaRole;
};

/** Reasons are one short line: driver messages can be long. */
const MAX_REASON = 300;

/**
 * `/readyz`: ready when the last run finished within two intervals and reached the
 * database. Fed by the loop after each run; read by the HTTP server, which never
 * runs anything itself.
 *
 * With replicas a follower runs nothing: its ticks (an attempt to take the leader
 * lock) count instead of runs, and what it reports is whether the lock database
 * answered, in its own words ("lock database unreachable: …"), never a run it did
 * not make. `role` (when given) says which of the two this process is.
 */
export class Readiness {
  private last: { finishedAt: number; kind: 'run' | 'standby'; unreachable?: string } | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
    /** Masks secrets in reasons (error messages come from drivers). */
    private readonly redact: (text: string) => string = (t) => t,
    /** The current role with replicas enabled; undefined (the default) without. */
    private readonly role: () => ReplicaRole | undefined = () => undefined,
  ) {}

  record(result: RunResult): void {
    const unreachable = databaseUnreachable(result);
    this.last = { finishedAt: this.now(), kind: 'run', ...(unreachable !== undefined ? { unreachable } : {}) };
  }

  /**
   * A replica standing by as follower runs nothing, yet is healthy when it can reach
   * the lock database: it counts as a finished run for readiness (so a load balancer
   * or Kubernetes keeps it, ready to take over). `unreachable` is why the lock
   * database could not be reached.
   */
  standby(unreachable?: string): void {
    this.last = { finishedAt: this.now(), kind: 'standby', ...(unreachable !== undefined ? { unreachable } : {}) };
  }

  verdict(): ReadinessVerdict {
    const role = this.role();
    const withRole = <T extends object>(v: T): T & { role?: ReplicaRole } => (role ? { ...v, role } : v);
    const notReady = (reason: string): ReadinessVerdict =>
      withRole({ ready: false as const, reason: this.redact(reason).slice(0, MAX_REASON) });
    if (!this.last) return notReady('no run has finished yet');
    const age = this.now() - this.last.finishedAt;
    const standby = this.last.kind === 'standby';
    if (age > 2 * this.intervalMs) {
      const what = standby ? 'the last attempt to take the leader lock was' : 'the last run finished';
      return notReady(
        `${what} ${Math.round(age / 1000)}s ago, ` +
          `more than two intervals (${Math.round((2 * this.intervalMs) / 1000)}s)`,
      );
    }
    if (this.last.unreachable !== undefined) {
      return notReady(
        standby
          ? `lock database unreachable: ${this.last.unreachable}`
          : `the database was unreachable in the last run: ${this.last.unreachable}`,
      );
    }
    return withRole({ ready: true as const });
  }
}
