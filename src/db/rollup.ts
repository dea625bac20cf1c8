import type pg from 'pg';
import type { Logger } from '../log.js';
import { describeError } from './errors.js';

/** Rows of intake.row_errors one refresh may roll up: bounds a first build at scale. */
export const ROLLUP_MAX_ROWS_PER_RUN = 500_000;
/** A refresh's own statement_timeout: a first build step or a recompute after deletes. */
export const ROLLUP_TIMEOUT_MS = 60_000;

const UNDEFINED_FUNCTION = '42883';
const INSUFFICIENT_PRIVILEGE = '42501';
const READ_ONLY_TRANSACTION = '25006';

export interface RollupRefresher {
  refresh(): Promise<void>;
}

interface RefreshResult {
  watermark: number;
  added_rows: number;
  recomputed_codes: number;
  pending_rows: number;
}

/**
 * Calls sentinel.refresh_error_rollup() (supabase/migrations/…_ops_views_at_scale.sql)
 * in a short write transaction. A database without the migration, a role that may
 * not call it or a read-only replica is told about once and left alone for the rest
 * of the process: the views stay exact without the refresh, only slower.
 */
export function refreshErrorRollup(pool: () => pg.Pool, logger: Logger): RollupRefresher {
  let disabled = false;
  return {
    async refresh() {
      if (disabled) return;
      let client: pg.PoolClient | undefined;
      try {
        client = await pool().connect();
        await client.query('begin read write');
        await client.query(`set local statement_timeout = ${ROLLUP_TIMEOUT_MS}`);
        const { rows } = await client.query<{ result: RefreshResult }>(
          'select sentinel.refresh_error_rollup($1::bigint) as result',
          [ROLLUP_MAX_ROWS_PER_RUN],
        );
        await client.query('commit');
        const r = rows[0]?.result;
        if (r && (r.added_rows > 0 || r.recomputed_codes > 0)) {
          logger.debug(
            `Error rollup: ${r.added_rows} rows added, ${r.recomputed_codes} codes recomputed, ${r.pending_rows} ` +
              `pending`,
          );
        }
      } catch (err) {
        await client?.query('rollback').catch(() => {});
        const code = (err as { code?: string }).code;
        if (code === UNDEFINED_FUNCTION || code === INSUFFICIENT_PRIVILEGE || code === READ_ONLY_TRANSACTION) {
          disabled = true;
          logger.info(
            `Not refreshing the error rollup (${describeError(err)}); ops.v_error_distribution stays exact but ` +
              `reads the rows ` +
              'the rollup does not hold: run `sentinel migrate`, or grant usage on schema sentinel and execute ' +
              'on sentinel.refresh_error_rollup to the role Sentinel connects as, to keep it fast',
          );
          return;
        }
        logger.warn(`Error rollup refresh failed: ${describeError(err)}; the next run tries again`);
      } finally {
        client?.release();
      }
    },
  };
}

/**
 * Brings the error rollup up to date right after `sentinel migrate`, so that a
 * database with years of history gets a fast ops.v_error_distribution at once
 * rather than after many runs (about 40 s for 10M rows on a 2-core machine). A
 * mark must be a second old before the watermark may reach it, so the first call
 * only records one. Gives up quietly, leaving the rest to the runs, when a
 * transaction of this database stays open (the rollup may not pass its rows).
 */
export async function buildErrorRollup(
  databaseUrl: string,
  logger: Logger,
  options: { markAgeMs?: number; patience?: number } = {},
): Promise<void> {
  const markAgeMs = options.markAgeMs ?? 1000;
  const { createWritePool, endPool } = await import('./pool.js');
  const pool = createWritePool(databaseUrl, { max: 1, statementTimeoutMs: 0 });
  try {
    let stalled = 0;
    let last = -1;
    while (stalled < (options.patience ?? 3)) {
      const { rows } = await pool.query<{ result: RefreshResult }>(
        `select sentinel.refresh_error_rollup(null, make_interval(secs => $1::float8 / 1000)) as result`,
        [markAgeMs],
      );
      const r = rows[0]!.result;
      if (r.pending_rows === 0) {
        if (last >= 0) logger.info(`Error rollup up to date (${r.watermark} row ids)`);
        return;
      }
      if (r.watermark === last) stalled++;
      else if (last < 0)
        logger.info(`Building the error rollup behind ops.v_error_distribution (${r.pending_rows} rows)...`);
      last = r.watermark;
      await new Promise((resolve) => setTimeout(resolve, markAgeMs + 100));
    }
    logger.info(
      'The error rollup is not complete (a transaction of this database is still open); the runs will finish it',
    );
  } finally {
    await endPool(pool);
  }
}
