import pg from 'pg';
import { connectionConfig } from './connect.js';

/** The part of `pg.Pool` / `pg.Client` that checks use; tests pass either. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface PoolOptions {
  /** statement_timeout for every session, in milliseconds. */
  statementTimeoutMs?: number;
  /** How long to wait for a connection before failing, in milliseconds. */
  connectTimeoutMs?: number;
  max?: number;
}

// Return numeric and bigint columns as JS numbers. Every count and rate Sentinel
// reads fits comfortably in a double; strings would leak into reports as "18.50".
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number.parseFloat(v));
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

/**
 * A pool for the monitored database. Sessions identify themselves as `sentinel`
 * (visible in pg_stat_activity), default to read-only transactions and carry a
 * statement_timeout, so a check can neither write by accident nor hang a run.
 * Idle-client errors (a restarted server) are swallowed here: the next query
 * reconnects, which is what a loop that survives outages needs.
 */
export function createPool(connectionString: string, options: PoolOptions = {}): pg.Pool {
  const lockTimeout = lockTimeoutFor(options.statementTimeoutMs ?? 5000);
  const pool = new pg.Pool({
    ...connectionConfig(connectionString),
    application_name: 'sentinel',
    max: options.max ?? 4,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? 5000,
    // The server's statement_timeout cannot help when the server or the network
    // stops answering: this client-side timeout (a little longer) and TCP
    // keepalives make sure a query never hangs a run or the process's exit.
    query_timeout: (options.statementTimeoutMs ?? 5000) + 2000,
    keepAlive: true,
    // A lock wait gives up a little before the statement's own timeout, so a locked
    // table is told apart from a slow query (55P03) and diagnosed (src/db/locks.ts).
    options: `-c default_transaction_read_only=on -c lock_timeout=${lockTimeout}`,
  });
  return survivingSessionDeath(pool);
}

/** lock_timeout for a statement_timeout: 80 % of it, so that a wait on a lock is the error that fires. */
export function lockTimeoutFor(statementTimeoutMs: number): number {
  return Math.max(50, Math.floor(statementTimeoutMs * 0.8));
}

/**
 * A session can die at any moment (a failover, a pooler restart,
 * pg_terminate_backend). node-postgres then emits 'error' on the client, and an
 * 'error' event nobody listens to ends the process. pg-pool listens only while a
 * client is idle, so a client checked out with `connect()` and between two queries
 * would crash Sentinel: every client gets a listener of its own for its whole life.
 * The query in flight still fails (and is reported); the pool drops the client.
 */
export function survivingSessionDeath(pool: pg.Pool): pg.Pool {
  pool.on('error', () => {
    /* an idle client died; the pool replaces it on the next query */
  });
  pool.on('connect', (client) => {
    client.on('error', () => {
      /* reported by the query that was running, or by the next one */
    });
  });
  return pool;
}

/** A pool that may write (migrations, the schema-cache NOTIFY, demo data). */
export function createWritePool(connectionString: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    ...connectionConfig(connectionString),
    application_name: 'sentinel',
    max: options.max ?? 2,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    statement_timeout: options.statementTimeoutMs ?? 60_000,
    // 0 means no statement_timeout (a long first build of the error rollup): no client-side limit either.
    query_timeout: options.statementTimeoutMs === 0 ? undefined : (options.statementTimeoutMs ?? 60_000) + 2000,
    keepAlive: true,
  });
  return survivingSessionDeath(pool);
}

/**
 * Ends a pool without waiting forever: a client stuck on a dead server would
 * otherwise keep the process alive after its report was printed.
 */
export async function endPool(pool: pg.Pool, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    pool.end().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

/**
 * Wraps a Queryable so that the time spent waiting for each query is summed: the
 * run's `metrics.database_ms`. Concurrent queries each count their own wait.
 */
export function timedQueries(db: Queryable): { db: Queryable; totalMs: () => number } {
  let total = 0;
  const timed: Queryable = {
    async query(text, values) {
      const started = performance.now();
      try {
        return await db.query(text, values);
      } finally {
        total += performance.now() - started;
      }
    },
  };
  return { db: timed, totalMs: () => total };
}
