import pg from 'pg';
import { connectionConfig } from '../db/connect.js';
import type { Logger } from '../log.js';
import type { Redactor } from '../util/redact.js';

/**
 * Leader election between `sentinel serve` replicas with a PostgreSQL session-level
 * advisory lock held on a dedicated connection (a `pg.Client` of its own, never
 * from a pool, `application_name` `sentinel-leader`, TCP keepalive on).
 *
 * - The process holding `pg_try_advisory_lock(lock_key)` is the leader. PostgreSQL
 *   releases the lock when that session ends: the process died (`kill -9` closes
 *   its socket), or its backend was terminated, or the network cut was detected.
 * - Before every run the leader verifies, on that same connection and under a short
 *   query timeout, that its session still holds the lock (pg_locks). A connection
 *   error, a timeout or a missing lock makes it a follower at once: it does not run,
 *   drops the connection (releasing whatever it may still hold) and competes again.
 * - An 'error' or 'end' of the connection flips leadership off immediately, between
 *   runs or in the middle of one, so `stillLeader()` (asked right before the NOTIFY
 *   and before each notification is delivered) answers false without a round trip.
 * - A network cut leaves the lock with a backend whose client is gone. The lock
 *   connection therefore asks the server to notice a dead peer itself: TCP
 *   keepalives and `tcp_user_timeout` in its startup options, so PostgreSQL ends
 *   the orphaned session (releasing the lock) within `deadSessionTimeoutMs`
 *   instead of the operating system's ~2 h. `idle_session_timeout` is left alone:
 *   the lock session is idle between runs by design.
 * - Each lock session's backend (pid and start time) is remembered. When a session
 *   is lost and this process connects again, it first terminates its old backend
 *   if that still exists (`pg_terminate_backend`, allowed for the same role), so the
 *   lock is free at once rather than after the keepalive timeout. Having just lost
 *   the lock, it then stands aside for one attempt: a healthy follower takes over
 *   at its next poll, and this process competes again at its own next one.
 *
 * Split brain is prevented by the lock plus these checks; the alert state shared in
 * PostgreSQL (row locks, outbox claims) keeps even a run that overlaps a takeover
 * from paging twice for one incident.
 */

export interface LeaderElectionOptions {
  connectionString: string;
  lockKey: bigint;
  logger: Logger;
  redactor?: Redactor;
  /** Client-side bound on the verification and lock queries. */
  queryTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Called on every change of role (for the `sentinel_leader` gauge). */
  onChange?: (leader: boolean) => void;
  /**
   * How soon PostgreSQL gives up on the lock session of a process it cannot reach
   * any more (network cut, frozen host), releasing the lock for a follower. Set as
   * server-side TCP keepalives and `tcp_user_timeout` on the lock connection.
   * Default {@link DEFAULT_DEAD_SESSION_TIMEOUT_MS}; at least {@link MIN_DEAD_SESSION_TIMEOUT_MS}.
   */
  deadSessionTimeoutMs?: number;
  /** `PGOPTIONS` (src/config/env.ts): the operator's startup options, kept after ours. */
  pgOptions?: string;
}

export const DEFAULT_DEAD_SESSION_TIMEOUT_MS = 10_000;
/** Below this, a short network hiccup would cost a healthy leader its lock. */
export const MIN_DEAD_SESSION_TIMEOUT_MS = 5_000;

/** The application_name of every lock session (and what an orphan must still carry to be terminated). */
export const LEADER_APPLICATION_NAME = 'sentinel-leader';

/** A backend of ours, identified beyond pid reuse by its start time. */
interface Session {
  pid: number;
  /** pg_stat_activity.backend_start as text (with its UTC offset). */
  backendStart: string;
}

/**
 * Server-side settings that make PostgreSQL drop a session whose client stopped
 * answering within about `timeoutMs` (all user-settable, so any role may set them):
 * the first keepalive after half of it idle, then three probes spread over the
 * rest; `tcp_user_timeout` bounds unacknowledged data the same way.
 */
export function deadSessionSettings(timeoutMs: number): Record<string, number> {
  const totalS = Math.max(Math.round(MIN_DEAD_SESSION_TIMEOUT_MS / 1000), Math.round(timeoutMs / 1000));
  const count = 3;
  const idle = Math.max(1, Math.floor(totalS / 2));
  const interval = Math.max(1, Math.floor((totalS - idle) / count));
  return {
    tcp_keepalives_idle: idle,
    tcp_keepalives_interval: interval,
    tcp_keepalives_count: count,
    tcp_user_timeout: totalS * 1000,
  };
}

/**
 * The lock connection's target: `connectionString` with the dead-session settings
 * in its startup `options`. Options the operator already gives (in the URL's
 * `options` parameter, else `pgOptions`, PGOPTIONS read by src/config/env.ts) are
 * kept and come after ours, so an explicit setting there wins.
 */
export function leaderConnection(
  connectionString: string,
  timeoutMs: number,
  pgOptions?: string,
): { connectionString: string; options: string } {
  const ours = Object.entries(deadSessionSettings(timeoutMs))
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
  let target = connectionString;
  let theirs = pgOptions?.trim() || undefined;
  try {
    const url = new URL(connectionString);
    const inUrl = url.searchParams.get('options');
    if (inUrl !== null) {
      theirs = inUrl.trim() || undefined;
      // pg lets the URL's options override the config's: move them into ours.
      url.searchParams.delete('options');
      target = url.toString();
    }
  } catch {
    // Not a URL (a socket path, key=value): given to pg as it is.
  }
  return { connectionString: target, options: theirs ? `${ours} ${theirs}` : ours };
}

export type Role = 'leader' | 'follower';

export class LeaderElection {
  private client: pg.Client | undefined;
  private leader = false;
  /** Why the last attempt could not reach the lock database; undefined when it could. */
  private unreachable: string | undefined;
  /** What was logged last, so that a follower says "Standing by" once, not every poll. */
  private announced: Role | undefined;
  private readonly queryTimeoutMs: number;
  private readonly classid: string;
  private readonly objid: string;
  private readonly target: { connectionString: string; options: string };
  /** The backend of the current lock connection, once known. */
  private session: Session | undefined;
  /** Backends of lost lock connections that may still exist on the server (and hold the lock). */
  private orphans: Session[] = [];
  /** Set when leadership was lost: the next attempt reconnects but does not take the lock. */
  private standAside = false;
  /** A pooler in between refused the startup options: connect without them from now on. */
  private withoutOptions = false;

  constructor(private readonly options: LeaderElectionOptions) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 2000;
    this.target = leaderConnection(
      options.connectionString,
      Math.max(MIN_DEAD_SESSION_TIMEOUT_MS, options.deadSessionTimeoutMs ?? DEFAULT_DEAD_SESSION_TIMEOUT_MS),
      options.pgOptions,
    );
    // How pg_locks shows a bigint advisory key: high 32 bits in classid, low in objid, objsubid 1.
    const unsigned = BigInt.asUintN(64, options.lockKey);
    this.classid = String(unsigned >> 32n);
    this.objid = String(unsigned & 0xffffffffn);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Why the lock database could not be reached on the last attempt (for a follower's readiness). */
  get problem(): string | undefined {
    return this.unreachable;
  }

  get role(): Role {
    return this.leader ? 'leader' : 'follower';
  }

  /** The pid of the current lock session's backend, when connected. */
  get backendPid(): number | undefined {
    return this.session?.pid;
  }

  /**
   * Before a run: a leader verifies that it still holds the lock, a follower tries
   * to take it. Resolves true when this process may run (and act) now. Never throws.
   */
  async check(): Promise<boolean> {
    if (this.leader) {
      const problem = await this.verify();
      if (problem === undefined) return true;
      this.lose(problem);
      await this.drop();
    }
    try {
      const client = await this.connect();
      await this.terminateOrphans(client);
      this.unreachable = undefined;
      if (this.standAside) {
        // This process just lost the lock: a healthy follower gets the first chance.
        this.standAside = false;
        this.announce(
          'follower',
          'Standing by as follower: leadership was just lost; competing again at the next poll',
        );
        return false;
      }
      const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [
        String(this.options.lockKey),
      ]);
      if (rows[0]?.locked && this.client === client) {
        this.setLeader(true);
        this.announce('leader', 'Became leader: this replica runs the checks and sends notifications');
        return true;
      }
      this.announce('follower', 'Standing by as follower: another replica holds the leader lock');
      return false;
    } catch (err) {
      await this.drop();
      this.unreachable = this.describe(err);
      this.announce('follower', `Standing by as follower: cannot reach the lock database (${this.describe(err)})`);
      return false;
    }
  }

  /**
   * Right before acting (the NOTIFY, delivering notifications): is this process still
   * the leader? False at once when the lock connection has failed; otherwise the lock
   * is verified on the server. Never throws.
   */
  async stillLeader(): Promise<boolean> {
    if (!this.leader) return false;
    const problem = await this.verify();
    if (problem === undefined) return true;
    this.lose(problem);
    await this.drop();
    return false;
  }

  /** Ends the lock connection (releasing the lock if held). */
  async close(): Promise<void> {
    if (this.leader) this.setLeader(false);
    await this.drop();
  }

  /** Undefined when this session still holds the lock; else why not. */
  private async verify(): Promise<string | undefined> {
    const client = this.client;
    if (!client) return 'the lock connection is gone';
    try {
      const { rows } = await client.query<{ held: number }>(
        `select count(*)::int as held from pg_locks
          where locktype = 'advisory' and pid = pg_backend_pid() and granted
            and database = (select oid from pg_database where datname = current_database())
            and classid = $1::oid and objid = $2::oid and objsubid = 1`,
        [this.classid, this.objid],
      );
      if (!this.leader) return 'the lock connection failed';
      return (rows[0]?.held ?? 0) > 0 ? undefined : 'the lock is no longer held';
    } catch (err) {
      return `the lock connection failed (${this.describe(err)})`;
    }
  }

  private async connect(): Promise<pg.Client> {
    try {
      return await this.open();
    } catch (err) {
      // PgBouncer and some other poolers refuse startup options. Better a lock
      // session that the server may keep too long after a network cut than none.
      if (this.withoutOptions || !/unsupported startup parameter/i.test((err as Error).message ?? '')) throw err;
      this.withoutOptions = true;
      this.options.logger.warn(
        `The lock database refused the keepalive settings in the startup options (${this.describe(err)}): ` +
          `connecting without them; after a network cut the leader lock may be held until that server ` +
          `notices the lost connection. Connect replicas to PostgreSQL directly, not through a pooler.`,
      );
      return this.open();
    }
  }

  private async open(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({
      ...connectionConfig(this.target.connectionString),
      // Server side: PostgreSQL drops this session soon after its client is gone.
      ...(this.withoutOptions ? {} : { options: this.target.options }),
      application_name: LEADER_APPLICATION_NAME,
      // Client side: this process notices a dead server too.
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5000,
      query_timeout: this.queryTimeoutMs,
      statement_timeout: this.queryTimeoutMs,
    });
    const onFailure = (why: string): void => {
      if (this.client !== client) return;
      this.client = undefined;
      this.orphan();
      // Whatever the server thinks, a session we cannot talk to is not ours to act on.
      if (this.leader) this.lose(why);
      client.end().catch(() => {});
    };
    client.on('error', (err) => onFailure(`the lock connection failed (${this.describe(err)})`));
    client.on('end', () => onFailure('the lock connection ended'));
    this.client = client;
    try {
      await client.connect();
      // Remembered so that, should this connection be lost, its backend can be ended.
      const { rows } = await client.query<{ pid: number; backend_start: string }>(
        'select pid, backend_start::text as backend_start from pg_stat_activity where pid = pg_backend_pid()',
      );
      if (this.client === client && rows[0]) this.session = { pid: rows[0].pid, backendStart: rows[0].backend_start };
    } catch (err) {
      if (this.client === client) this.client = undefined;
      client.end().catch(() => {});
      throw err;
    }
    if (this.client !== client) throw new Error('the lock connection ended while connecting');
    return client;
  }

  /** The current session becomes an orphan, to terminate on the next connection if it still exists. */
  private orphan(): void {
    const session = this.session;
    this.session = undefined;
    if (session && !this.orphans.some((o) => o.pid === session.pid && o.backendStart === session.backendStart))
      this.orphans.push(session);
  }

  /**
   * Ends the backends of our lost lock connections that PostgreSQL still keeps (a
   * network cut the server has not noticed yet), and waits briefly until they are
   * gone, so the lock they may hold is free now. Any of them, not only a leader's:
   * a lock granted just as the connection broke is held without us knowing. Only a
   * backend with the same pid, start time and application_name is touched. If the
   * new connection fails too, they are tried again on the next one; if PostgreSQL
   * refuses, that is logged and the keepalives are left to end them.
   */
  private async terminateOrphans(client: pg.Client): Promise<void> {
    for (const orphan of [...this.orphans]) {
      try {
        const { rows } = await client.query<{ terminated: boolean }>(
          `select pg_terminate_backend(pid) as terminated from pg_stat_activity
            where pid = $1 and backend_start = $2::timestamptz and application_name = $3`,
          [orphan.pid, orphan.backendStart, LEADER_APPLICATION_NAME],
        );
        if (rows.length > 0) {
          this.options.logger.warn(
            `Terminated this process's previous lock session (backend pid ${orphan.pid}), ` +
              `which PostgreSQL still kept after the connection was lost, so the leader lock is free`,
          );
          await this.waitUntilGone(client, orphan);
        }
        this.orphans = this.orphans.filter((o) => o !== orphan);
      } catch (err) {
        // The new connection failed as well: keep the orphan for the next one.
        if (this.client !== client) throw err;
        // Refused (another role, a pooler in between): not retried at every poll;
        // the server-side keepalives end that session soon enough.
        this.orphans = this.orphans.filter((o) => o !== orphan);
        this.options.logger.warn(
          `Could not terminate this process's previous lock session (backend pid ${orphan.pid}): ` +
            `${this.describe(err)}; it ends when PostgreSQL notices the lost connection`,
        );
      }
    }
  }

  /** Until the terminated backend has exited (its locks released), at most about `queryTimeoutMs`. */
  private async waitUntilGone(client: pg.Client, orphan: Session): Promise<void> {
    const deadline = performance.now() + this.queryTimeoutMs;
    while (performance.now() < deadline) {
      const { rows } = await client.query<{ alive: boolean }>(
        `select exists (select 1 from pg_stat_activity where pid = $1 and backend_start = $2::timestamptz)
             or exists (select 1 from pg_locks where pid = $1 and locktype = 'advisory') as alive`,
        [orphan.pid, orphan.backendStart],
      );
      if (!rows[0]?.alive) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async drop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    // If the network is gone, the server keeps the backend (and any lock it holds)
    // whatever this side does: remembered, so the next connection terminates it.
    // (Ended normally, it is gone by then and there is nothing to terminate.)
    this.orphan();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.end().catch(() => {}),
      new Promise<void>((r) => {
        timer = setTimeout(r, 1000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  private lose(why: string): void {
    this.setLeader(false);
    this.standAside = true;
    this.options.logger.warn(`Lost leadership: ${why}; standing by and competing again`);
    this.announced = 'follower';
  }

  private setLeader(leader: boolean): void {
    if (this.leader === leader) return;
    this.leader = leader;
    this.options.onChange?.(leader);
  }

  private announce(role: Role, message: string): void {
    if (this.announced === role) return;
    this.announced = role;
    this.options.logger.info(message);
  }

  private describe(err: unknown): string {
    const text = err instanceof Error ? err.message || err.name : String(err);
    return this.options.redactor ? this.options.redactor.redact(text) : text;
  }
}
