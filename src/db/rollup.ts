import type pg from 'pg';
import type { Logger } from '../log.js';
import { describeError, SQLSTATE } from './errors.js';
import { HOURLY_HORIZON_STUCK, refreshHourlyStats } from './hourly.js';

/** Rows of intake.row_errors one refresh may roll up: bounds a first build at scale. */
export const ROLLUP_MAX_ROWS_PER_RUN = 500_000;
/** A refresh's own statement_timeout: a first build step or a recompute after deletes. */
export const ROLLUP_TIMEOUT_MS = 60_000;

export interface RollupRefresher {
  refresh(): Promise<void>;
}

interface RefreshResult {
  watermark: number;
  added_rows: number;
  recomputed_codes: number;
  pending_rows: number;
}

/** One rollup's refresh call: what it runs, its log line when it moved, and what falls back without it. */
interface RollupSpec {
  /** For messages: `error rollup`, `hourly rollup`. */
  name: string;
  /** What stays exact but slower without it (for the one-time message). */
  without: string;
  /** The function to grant execute on. */
  fn: string;
  /**
   * Runs the refresh on `client` inside the caller's transaction: `moved`, a debug line when it did
   * something; `stuck`, why it could not do all of its work (said once per process, the work it could
   * do is kept).
   */
  run(client: pg.PoolClient): Promise<{ moved?: string; stuck?: string }>;
}

const ERROR_ROLLUP: RollupSpec = {
  name: 'error rollup',
  without: 'ops.v_error_distribution stays exact but reads the rows the rollup does not hold',
  fn: 'sentinel.refresh_error_rollup',
  async run(client) {
    const { rows } = await client.query<{ result: RefreshResult }>(
      'select sentinel.refresh_error_rollup($1::bigint) as result',
      [ROLLUP_MAX_ROWS_PER_RUN],
    );
    const r = rows[0]?.result;
    return r && (r.added_rows > 0 || r.recomputed_codes > 0)
      ? {
          moved:
            `Error rollup: ${r.added_rows} rows added, ${r.recomputed_codes} codes recomputed, ` +
            `${r.pending_rows} pending`,
        }
      : {};
  },
};

/** Hours one run may recompute of the hourly rollup: a day's worth keeps a run's refresh short. */
export const HOURLY_ROLLUP_HOURS_PER_RUN = 24;

const HOURLY_ROLLUP: RollupSpec = {
  name: 'hourly rollup',
  without: 'the anomalies check and the hourly readers stay exact but read the raw batches past its horizon (slower)',
  fn: 'sentinel.refresh_hourly_source_stats',
  async run(client) {
    // READ COMMITTED (the refresh refuses anything else): its no-lost-write argument needs it (docs/rollup.md).
    await client.query('set transaction isolation level read committed');
    const r = await refreshHourlyStats(client, HOURLY_ROLLUP_HOURS_PER_RUN);
    return {
      // The late writes are still folded; only the horizon stays (as after `sentinel migrate`).
      ...(r.pendingHours < 0 ? { stuck: HOURLY_HORIZON_STUCK } : {}),
      ...(r.folded > 0 || r.recomputedHours > 0
        ? {
            moved:
              `Hourly rollup: ${r.folded} late writes folded, ${r.recomputedHours} hours recomputed, ` +
              `${r.pendingHours} pending`,
          }
        : {}),
    };
  },
};

/**
 * Calls the rollups' refresh functions (sentinel.refresh_error_rollup() of
 * supabase/migrations/…_ops_views_at_scale.sql, sentinel.refresh_hourly_source_stats() of
 * …_hourly_source_stats.sql), each in its own short write transaction. A database
 * without the migration, a role that may not call one or a read-only replica is told
 * about once per rollup and that rollup is left alone for the rest of the process: its
 * readers stay exact without the refresh, only slower. One failing never stops the other.
 */
export function refreshRollups(pool: () => pg.Pool, logger: Logger): RollupRefresher {
  const disabled = new Set<string>();
  const said = new Set<string>();
  async function refreshOne(spec: RollupSpec): Promise<void> {
    if (disabled.has(spec.name)) return;
    let client: pg.PoolClient | undefined;
    try {
      client = await pool().connect();
      await client.query('begin read write');
      await client.query(`set local statement_timeout = ${ROLLUP_TIMEOUT_MS}`);
      const { moved, stuck } = await spec.run(client);
      await client.query('commit');
      if (moved) logger.debug(moved);
      if (stuck && !said.has(spec.name)) {
        said.add(spec.name);
        logger.warn(stuck);
      }
    } catch (err) {
      await client?.query('rollback').catch(() => {});
      const code = (err as { code?: string }).code;
      if (
        code === SQLSTATE.undefinedFunction ||
        code === SQLSTATE.insufficientPrivilege ||
        code === SQLSTATE.readOnlyTransaction
      ) {
        disabled.add(spec.name);
        logger.info(
          `Not refreshing the ${spec.name} (${describeError(err)}); ${spec.without}: run \`sentinel migrate\`, ` +
            `or grant usage on schema sentinel and execute on ${spec.fn} to the role Sentinel connects as, ` +
            'to keep it fast',
        );
        return;
      }
      logger.warn(
        `${spec.name[0]!.toUpperCase()}${spec.name.slice(1)} refresh failed: ${describeError(err)}; ` +
          'the next run tries again',
      );
    } finally {
      client?.release();
    }
  }
  return {
    async refresh() {
      await refreshOne(ERROR_ROLLUP);
      await refreshOne(HOURLY_ROLLUP);
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
