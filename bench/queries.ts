/**
 * The queries `npm run bench` times: the SQL Sentinel's checks run (captured from the
 * real check functions, so the bench measures exactly what a run sends) and the
 * dashboard queries over the ops views, each also run against the guide's literal
 * views in schema `baseline` (bench/baseline.sql).
 */
import type pg from 'pg';
import { allChecks } from '../src/checks/index.js';
import { runChecks } from '../src/checks/runner.js';
import { collectSnapshot } from '../src/checks/snapshot.js';
import type { Check, CheckContext } from '../src/checks/types.js';
import { loadConfig } from '../src/config/load.js';
import { createPool, endPool, type Queryable } from '../src/db/pool.js';
import { silentLogger } from '../src/log.js';
import { MemoryStateStore } from '../src/state/store.js';
import { type Stats, stats, timed, withClient } from './lib.js';

// ---------------------------------------------------------------------------
// Timing one query

/**
 * Above this, a query gets fewer repetitions: as many as fit in {@link SLOW_BUDGET_MS}, at least {@link SLOW_MIN_REPS}.
 */
const SLOW_QUERY_MS = 2_000;
const SLOW_BUDGET_MS = 60_000;
const SLOW_MIN_REPS = 5;
const WARMUP_RUNS = 2;

/**
 * Warm (two untimed runs, one when the first already takes over 2 s), then `reps`
 * timed runs on `client`: client-side wall time around `client.query`, rows included.
 */
export async function measureQuery(client: pg.Client, sql: string, params: unknown[], reps: number): Promise<Stats> {
  let warmMs = 0;
  for (let i = 0; i < WARMUP_RUNS; i++) {
    warmMs = (await timed(() => client.query(sql, params))).ms;
    if (warmMs > SLOW_QUERY_MS) break;
  }
  const count =
    warmMs > SLOW_QUERY_MS ? Math.min(reps, Math.max(SLOW_MIN_REPS, Math.floor(SLOW_BUDGET_MS / warmMs))) : reps;
  const samples: number[] = [];
  for (let i = 0; i < count; i++) samples.push((await timed(() => client.query(sql, params))).ms);
  return stats(samples);
}

/** `EXPLAIN (ANALYZE, BUFFERS)` of one query with its parameters, as text. */
export async function explain(client: pg.Client, sql: string, params: unknown[]): Promise<string> {
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${sql}`, params);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

// ---------------------------------------------------------------------------
// Check queries, captured from the real checks

/** One query a check sent, as sent. */
export interface CapturedQuery {
  /** Stable name, `<check>: <what>`; the key for L/S comparisons across result files. */
  name: string;
  /** The check (or `run`, `snapshot`) that sent it. */
  source: string;
  sql: string;
  params: unknown[];
  /** Wall time of this first, captured execution. */
  firstMs: number;
}

/** A `Queryable` that forwards to `inner` and records every query with the label of whoever is running. */
class RecordingQueryable implements Queryable {
  label = 'run';
  readonly calls: Array<Omit<CapturedQuery, 'name'>> = [];

  constructor(private readonly inner: Queryable) {}

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    // Recorded when sent, not when answered: the snapshot sends three at once.
    const call = { source: this.label, sql: text, params: values ? structuredClone(values) : [], firstMs: Number.NaN };
    this.calls.push(call);
    const { value, ms } = await timed(() => this.inner.query<R>(text, values));
    call.firstMs = ms;
    return value;
  }
}

/** Short names for the queries the checks run today; anything new is named by its position. */
const QUERY_HINTS: Array<[RegExp, string]> = [
  [/^select now\(\)/i, 'select now()'],
  // The hourly rollup (src/db/hourly.ts readHourlyStats): its horizon, then the read itself.
  [/^select s\.rolled_up_before from sentinel\.hourly_source_state/, 'rollup horizon'],
  [/sentinel\.hourly_source_stats x/, 'hourly rollup read'],
  [/stuck_count/, 'in-flight by status'],
  [/\blimit\s+\d+/i, 'oldest stuck batches'],
  [/'current' else 'previous'/, 'rows per source, 2 hours'],
  [/completed_at\s*>/, 'finished in the last hour'],
  [/group by status/i, 'stuck by status'],
];

function nameQueries(calls: Array<Omit<CapturedQuery, 'name'>>): CapturedQuery[] {
  const used = new Map<string, number>();
  return calls.map((call, i) => {
    const hint = QUERY_HINTS.find(([re]) => re.test(call.sql))?.[1] ?? `query ${i + 1}`;
    const base = `${call.source}: ${hint}`;
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    return { ...call, name: n === 1 ? base : `${base} #${n}` };
  });
}

/**
 * Runs one health check the way `sentinel` does (the database's clock, every check
 * through the runner, then the pipeline snapshot) on Sentinel's own read-only pool,
 * and returns every query it sent. No PostgREST URL is configured, so schema_cache
 * skips itself: it needs a PostgREST to probe, and its SQL (the statement-timeout
 * diagnosis) only runs after a failed reload, never on a healthy run.
 */
export async function captureCheckQueries(
  databaseUrl: string,
  stateDir: string,
): Promise<{ queries: CapturedQuery[]; outcomes: string[] }> {
  const config = await loadConfig({ env: { DATABASE_URL: databaseUrl, SENTINEL_STATE_DIR: stateDir } });
  const pool = createPool(databaseUrl, { statementTimeoutMs: config.statement_timeout_ms });
  const db = new RecordingQueryable(pool);
  try {
    // Runner.databaseClock in src/run.ts; private there, so its one line of SQL is repeated here.
    const { rows } = await db.query<{ now: Date }>('select now() as now');
    const offset = rows[0]!.now.getTime() - Date.now();
    const base: Omit<CheckContext, 'signal'> = {
      db,
      config,
      environment: config.env.name,
      now: () => new Date(Date.now() + offset),
      logger: silentLogger,
      state: new MemoryStateStore(),
      sleep: async () => {},
      notify: async () => {
        throw new Error('the bench sends no NOTIFY');
      },
    };
    const labelled = allChecks().map(
      (check): Check => ({
        name: check.name,
        run: (ctx) => {
          db.label = check.name;
          return check.run(ctx);
        },
      }),
    );
    const { checks } = await runChecks(labelled, base);
    db.label = 'snapshot';
    await collectSnapshot({ ...base, signal: new AbortController().signal });
    return {
      queries: nameQueries(db.calls),
      outcomes: checks.map((c) => `${c.name}=${c.outcome}${c.reason ? ` (${c.reason})` : ''}`),
    };
  } finally {
    await endPool(pool);
  }
}

// ---------------------------------------------------------------------------
// Dashboard queries, ours vs the guide's

export interface DashboardQuery {
  key: string;
  name: string;
  /** The query on schema `ops`; the baseline is the same text on schema `baseline`. */
  sql: string;
  /** Columns that order the rows when the query itself does not. */
  sortBy?: string;
}

export const DASHBOARD_QUERIES: DashboardQuery[] = [
  {
    key: 'a',
    name: 'batch_performance 24h',
    sql:
      `select * from ops.v_batch_performance where hour_bucket >= now() - interval '24 hours' order by ` +
      `hour_bucket desc`,
  },
  {
    key: 'b',
    name: 'batch_performance 7d',
    sql:
      `select * from ops.v_batch_performance where hour_bucket >= now() - interval '7 days' order by ` +
      `hour_bucket desc`,
  },
  {
    key: 'c',
    name: 'batch_performance limit 24',
    sql: `select * from ops.v_batch_performance order by hour_bucket desc limit 24`,
  },
  {
    key: 'd',
    name: 'error_distribution top10 all',
    sql: `select * from ops.v_error_distribution order by occurrence_count desc, error_code limit 10`,
  },
  {
    key: 'e',
    name: 'error_distribution top10 7d',
    sql:
      `select * from ops.v_error_distribution where last_seen_at >= now() - interval '7 days' order by ` +
      `occurrence_count desc, error_code limit 10`,
  },
  { key: 'f', name: 'pipeline_health', sql: `select * from ops.v_pipeline_health`, sortBy: 'status' },
];

export function baselineSql(sql: string): string {
  return sql.replaceAll('ops.', 'baseline.');
}

/** Whether ours and the baseline return the same rows for one dashboard query. */
export interface Equivalence {
  key: string;
  identical: boolean;
  oursRows: number;
  baselineRows: number;
  /** Columns ours has beyond the baseline's (views only ever grow at the end); not compared. */
  extraColumns: string[];
  /** The first differing row of each side, when they differ. */
  firstDifference?: { ours: unknown; baseline: unknown };
}

type TextRow = Record<string, string | null>;

/** Every value as PostgreSQL's text output, so the comparison is exact (no float parsing). */
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

/**
 * Runs every dashboard query on ours and on the baseline inside one repeatable-read
 * transaction (one snapshot and one `now()`, which the pipeline-health ages and the
 * 24 h / 7 d windows depend on) and compares the rows, on the baseline's columns.
 */
export async function verifyEquivalence(databaseUrl: string): Promise<Equivalence[]> {
  return withClient(
    databaseUrl,
    async (client) => {
      await client.query('begin isolation level repeatable read read only');
      try {
        const results: Equivalence[] = [];
        for (const q of DASHBOARD_QUERIES) {
          const ours = await client.query<TextRow>(q.sql);
          const baseline = await client.query<TextRow>(baselineSql(q.sql));
          results.push(compareRows(q, ours, baseline));
        }
        return results;
      } finally {
        await client.query('rollback');
      }
    },
    { types: RAW_TEXT },
  );
}

function compareRows(q: DashboardQuery, ours: pg.QueryResult<TextRow>, baseline: pg.QueryResult<TextRow>): Equivalence {
  const columns = baseline.fields.map((f) => f.name);
  const extraColumns = ours.fields.map((f) => f.name).filter((name) => !columns.includes(name));
  const project = (rows: TextRow[]): TextRow[] => {
    const projected = rows.map((row) => Object.fromEntries(columns.map((c) => [c, row[c] ?? null])) as TextRow);
    const key = q.sortBy;
    return key ? projected.sort((x, y) => String(x[key]).localeCompare(String(y[key]))) : projected;
  };
  const a = project(ours.rows);
  const b = project(baseline.rows);
  const missing = columns.filter((c) => !ours.fields.some((f) => f.name === c));
  let firstDifference: Equivalence['firstDifference'];
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length && !firstDifference; i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) firstDifference = { ours: a[i] ?? null, baseline: b[i] ?? null };
  }
  return {
    key: q.key,
    identical: missing.length === 0 && firstDifference === undefined,
    oursRows: a.length,
    baselineRows: b.length,
    extraColumns,
    ...(firstDifference ? { firstDifference } : {}),
  };
}
