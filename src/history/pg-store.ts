import type pg from 'pg';
import { SQLSTATE } from '../db/errors.js';
import { createPool, createWritePool, endPool } from '../db/pool.js';
import type { RunRecord } from './record.js';
import type { RunHistoryStore } from './store.js';

/**
 * The run history of replicas: one row per run in `sentinel.run_history` (created by
 * `sentinel migrate`, supabase/migrations/*_sentinel_state.sql) in the state database, written by the
 * leader. Each append also deletes the rows past the retention: a range delete on
 * the primary key, which finds nothing to do on most runs.
 */
export class PgRunHistory implements RunHistoryStore {
  private readonly pool: pg.Pool;

  constructor(
    connectionString: string,
    private readonly environment: string,
    private readonly retentionDays: number,
    options: { readOnly?: boolean; connectTimeoutMs?: number; statementTimeoutMs?: number } = {},
  ) {
    const poolOptions = {
      max: 1,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
    };
    this.pool = options.readOnly
      ? createPool(connectionString, poolOptions)
      : createWritePool(connectionString, poolOptions);
  }

  async append(record: RunRecord): Promise<void> {
    await this.pool
      .query(
        `with pruned as (
           delete from sentinel.run_history
            where environment = $1 and at < $2::timestamptz - make_interval(days => $4::int)
         )
         insert into sentinel.run_history (environment, at, record) values ($1, $2::timestamptz, $3::jsonb)
         on conflict (environment, at) do nothing`,
        [this.environment, record.timestamp, JSON.stringify(record), this.retentionDays],
      )
      .catch(explain);
  }

  async read(from: Date, to: Date): Promise<RunRecord[]> {
    const { rows } = await this.pool
      .query<{ record: RunRecord }>(
        `select record from sentinel.run_history
          where environment = $1 and at >= $2::timestamptz and at <= $3::timestamptz
          order by at`,
        [this.environment, from.toISOString(), to.toISOString()],
      )
      .catch(explain);
    return rows.map((r) => r.record);
  }

  async close(): Promise<void> {
    await endPool(this.pool);
  }
}

function explain(err: unknown): never {
  if ((err as { code?: string }).code === SQLSTATE.undefinedTable) {
    throw new Error(
      'the run history table sentinel.run_history does not exist: run `sentinel migrate` (replicas need it)',
      { cause: err },
    );
  }
  throw err;
}
