import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import { SQLSTATE } from '../db/errors.js';
import { createWritePool, endPool } from '../db/pool.js';
import { type AlertingState, type AlertStateStore, emptyState, type LockOptions, StateLockTimeout } from './store.js';

/**
 * Alert state shared by replicas: one row of `sentinel.alert_state` (created by
 * `sentinel migrate`, supabase/migrations/*_sentinel_state.sql) in the monitored database or in
 * `replicas.state_database_url`.
 *
 * - `update` is one transaction: the row is created if missing, read with
 *   `select ... for update` (so concurrent updates from any process queue on the
 *   row lock and none is lost), changed, and written back.
 * - `withLock` is a transaction holding `pg_advisory_xact_lock` and the row lock;
 *   `read` and `write` called inside its body run in that transaction, so a
 *   `sentinel silence add` read-modify-write is as atomic as `update`.
 * - `read` outside a lock is a plain select (an empty state when there is no row).
 *
 * Lock waits are bounded by `waitMs` (`lock_timeout`), as with the file lock, and
 * end in {@link StateLockTimeout}.
 */

/** The advisory lock of `withLock` (distinct from the migration lock and the leader lock). */
export const ALERT_STATE_LOCK_KEY = '7366746140117261391';
const LOCK_NOT_AVAILABLE = '55P03';

export interface PgAlertStoreOptions {
  connectTimeoutMs?: number;
  /** statement_timeout of each statement (not lock waits, which `waitMs` bounds). */
  statementTimeoutMs?: number;
}

export class PgAlertStore implements AlertStateStore {
  private readonly pool: pg.Pool;
  /** The client of the `withLock` transaction the current async context runs in. */
  private readonly inLock = new AsyncLocalStorage<pg.PoolClient>();

  constructor(connectionString: string, options: PgAlertStoreOptions = {}) {
    this.pool = createWritePool(connectionString, {
      max: 3,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
    });
  }

  async read(): Promise<AlertingState> {
    const db = this.inLock.getStore() ?? this.pool;
    const { rows } = await db
      .query<{ state: Partial<AlertingState> }>('select state from sentinel.alert_state where id = 1')
      .catch(explain);
    return normalize(rows[0]?.state);
  }

  async write(state: AlertingState): Promise<void> {
    const db = this.inLock.getStore() ?? this.pool;
    await db
      .query(
        `insert into sentinel.alert_state (id, state, updated_at) values (1, $1::jsonb, now())
         on conflict (id) do update set state = excluded.state, updated_at = excluded.updated_at`,
        [JSON.stringify(state)],
      )
      .catch(explain);
  }

  async update<T>(change: (state: AlertingState) => T | Promise<T>, options: LockOptions = {}): Promise<T> {
    const outer = this.inLock.getStore();
    if (outer) {
      // Inside withLock: the row is ours already.
      const state = await this.read();
      const result = await change(state);
      await this.write(state);
      return result;
    }
    return this.transaction(options, async (client) => {
      const state = await this.lockRow(client);
      const result = await change(state);
      await client.query('update sentinel.alert_state set state = $1::jsonb, updated_at = now() where id = 1', [
        JSON.stringify(state),
      ]);
      return result;
    });
  }

  async withLock<T>(body: () => Promise<T>, options: LockOptions = {}): Promise<T> {
    if (this.inLock.getStore()) return body();
    return this.transaction(options, async (client) => {
      await client.query(`select pg_advisory_xact_lock(${ALERT_STATE_LOCK_KEY})`);
      // The row lock too: `update` (which takes only the row lock) must wait for us.
      await this.lockRow(client);
      return this.inLock.run(client, body);
    });
  }

  async close(): Promise<void> {
    await endPool(this.pool);
  }

  /** Creates the row if missing, then reads it `for update`. */
  private async lockRow(client: pg.PoolClient): Promise<AlertingState> {
    await client.query(
      `insert into sentinel.alert_state (id, state) values (1, $1::jsonb) on conflict (id) do nothing`,
      [JSON.stringify(emptyState())],
    );
    const { rows } = await client.query<{ state: Partial<AlertingState> }>(
      'select state from sentinel.alert_state where id = 1 for update',
    );
    return normalize(rows[0]?.state);
  }

  private async transaction<T>(options: LockOptions, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const waitMs = options.waitMs ?? 30_000;
    const client = await this.pool.connect().catch((err: Error) => {
      throw new Error(`cannot reach the shared alert state database: ${err.message}`, { cause: err });
    });
    let broken = false;
    try {
      await client.query('begin');
      // Lock waits (advisory and row) are bounded like the file lock's wait.
      await client.query(`set local lock_timeout = ${Math.max(1, Math.round(waitMs))}`);
      const result = await body(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => {
        broken = true;
      });
      if ((err as { code?: string }).code === LOCK_NOT_AVAILABLE) {
        throw new StateLockTimeout(
          `another Sentinel process has held the shared alert state (sentinel.alert_state) for over ` +
            `${Math.round(waitMs / 1000)}s`,
        );
      }
      return explain(err);
    } finally {
      client.release(broken);
    }
  }
}

function normalize(state: Partial<AlertingState> | undefined): AlertingState {
  return { ...emptyState(), ...(state ?? {}), version: 1 };
}

/** A missing table is a missing `sentinel migrate`: say so. */
function explain(err: unknown): never {
  if ((err as { code?: string }).code === SQLSTATE.undefinedTable) {
    throw new Error(
      'the shared alert state table sentinel.alert_state does not exist: run `sentinel migrate` (replicas need it)',
      { cause: err },
    );
  }
  throw err;
}
