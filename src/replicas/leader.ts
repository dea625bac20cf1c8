import pg from 'pg';
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
 *   and before notifications are delivered) answers false without a round trip.
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

  constructor(private readonly options: LeaderElectionOptions) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 2000;
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
      const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [String(this.options.lockKey)]);
      this.unreachable = undefined;
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
    if (this.client) return this.client;
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: 'sentinel-leader',
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5000,
      query_timeout: this.queryTimeoutMs,
      statement_timeout: this.queryTimeoutMs,
    });
    const onFailure = (why: string): void => {
      if (this.client !== client) return;
      this.client = undefined;
      // Whatever the server thinks, a session we cannot talk to is not ours to act on.
      if (this.leader) this.lose(why);
      client.end().catch(() => {});
    };
    client.on('error', (err) => onFailure(`the lock connection failed (${this.describe(err)})`));
    client.on('end', () => onFailure('the lock connection ended'));
    this.client = client;
    try {
      await client.connect();
    } catch (err) {
      if (this.client === client) this.client = undefined;
      client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  private async drop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
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
