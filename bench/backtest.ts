/**
 * The backtest figure of issue 15: one week x 20 sources x 4 metrics, read from the hourly rollup
 * (`loadSeries`, src/db/anomaly-series.ts) and judged hour by hour (`backtest`, src/anomalies),
 * as `sentinel anomalies backtest` does, timed end to end.
 *
 * bench/generate.sql has 8 sources, so this step has its own database, `sentinel_bench_backtest`:
 * the same generator with 20 sources of equal volume at scale L's average rate per source (1,389
 * batches a source-day, 58 a source-hour: 1M batches over 36 days, enough for the week and its
 * four training weeks) and few row errors (the backtest does not read them). What the read costs
 * is source-hours (and the histogram of the open hours), which this holds at L's size.
 *
 *   node dist-bench/bench/backtest.js     (prints its figures as JSON)
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { backtest, METRICS } from '../src/anomalies/index.js';
import { floorHour } from '../src/anomalies/time.js';
import { DEFAULT_OPTIONS, WEEK_MS } from '../src/anomalies/types.js';
import { loadSeries, trainingStart } from '../src/db/anomaly-series.js';
import { createPool, endPool } from '../src/db/pool.js';
import {
  createDatabase,
  databaseComment,
  dropDatabase,
  log,
  repoPath,
  type Stats,
  setDatabaseComment,
  stats,
  timed,
  withClient,
  withDatabase,
} from './lib.js';
import { DEFAULT_DATABASE_URL, isMain, runCli, runMain, sentinelEnv, tempDir } from './lib-proc.js';

export const BACKTEST_SOURCES = 20;
const BATCHES = 1_000_000;
const ERRORS = 10_000;
const DAYS = 36;
const DATABASE = 'sentinel_bench_backtest';
const REPS = 3;

export interface BacktestFigures {
  database: string;
  batches: number;
  sources: number;
  days: number;
  reused: boolean;
  generationMs: number | null;
  migrateMs: number;
  /** The week judged: [from, to). */
  from: string;
  to: string;
  metrics: readonly string[];
  hoursEvaluated: number;
  verdicts: number;
  anomalies: number;
  /** Source-hours read from the rollup. */
  rowsRead: number;
  load: Stats;
  judge: Stats;
  total: Stats;
}

/** generate.sql with its 8 weighted sources replaced by 20 of equal weight (vendor_01 … vendor_20). */
function twentySources(template: string): string {
  const replaced = template.replace(
    /case\s+when w < 0\.32 then 'vendor_a'[\s\S]*?else 'vendor_h'\s+end as source/,
    `'vendor_' || lpad((1 + floor(w * ${BACKTEST_SOURCES}))::int::text, 2, '0') as source`,
  );
  if (replaced === template) throw new Error('bench/generate.sql: the source list to replace was not found');
  return replaced
    .replace(/(?<!:):batches\b/g, String(BATCHES))
    .replace(/(?<!:):errors\b/g, String(ERRORS))
    .replace(/(?<!:):days\b/g, String(DAYS))
    .replace(/(?<!:):now\b/g, 'now()');
}

async function prepare(
  serverUrl: string,
  keep: boolean,
): Promise<{ url: string; reused: boolean; generationMs: number | null; migrateMs: number }> {
  const url = withDatabase(serverUrl, DATABASE);
  const sql = twentySources(await readFile(repoPath('bench/generate.sql'), 'utf8'));
  const intake = await readFile(repoPath('sql/intake.sql'), 'utf8');
  const generator = createHash('sha256').update(sql).update(intake).digest('hex').slice(0, 16);
  let existing: { generator?: string; generationMs?: number } | undefined;
  try {
    existing = JSON.parse((await databaseComment(serverUrl, DATABASE)) ?? 'null') ?? undefined;
  } catch {
    existing = undefined;
  }
  const reused = keep && existing?.generator === generator;
  let generationMs = existing?.generationMs ?? null;
  if (!reused) {
    log(`backtest: creating ${DATABASE} (${BATCHES} batches, ${BACKTEST_SOURCES} sources, ${DAYS} days)`);
    await dropDatabase(serverUrl, DATABASE);
    await createDatabase(serverUrl, DATABASE);
    await withClient(url, (c) => c.query(intake));
    generationMs = (
      await timed(() =>
        withClient(url, async (c) => {
          await c.query('set session_replication_role = replica');
          await c.query(sql);
        }),
      )
    ).ms;
    await setDatabaseComment(
      serverUrl,
      DATABASE,
      JSON.stringify({ generator, generationMs: Math.round(generationMs) }),
    );
    log(`backtest: generated in ${(generationMs / 1000).toFixed(1)} s`);
  }
  const state = await tempDir('sentinel-bench-backtest');
  const migrateMs = (await timed(() => runCli(['migrate'], sentinelEnv(url, state.path)))).ms;
  await state.remove();
  await withClient(url, (c) => c.query('vacuum analyze'));
  return {
    url,
    reused,
    generationMs: generationMs === null ? null : Math.round(generationMs),
    migrateMs: Math.round(migrateMs),
  };
}

/** Times loadSeries + backtest of the last complete week, every source and metric, on one connection. */
export async function measureBacktest(options: { serverUrl: string; keep?: boolean }): Promise<BacktestFigures> {
  const { url, reused, generationMs, migrateMs } = await prepare(options.serverUrl, options.keep ?? false);
  const pool = createPool(url, { max: 1 });
  try {
    // The week that ends with the data's last complete hour (the data may be older than now: --keep).
    const { rows } = await pool.query<{ last: Date }>('select max(created_at) as last from intake.simplicity_batches');
    const to = floorHour(rows[0]!.last.getTime());
    const from = to - WEEK_MS;
    const metrics = [...METRICS];
    const once = async () => {
      const read = await timed(() => loadSeries(pool, { from: trainingStart(from, DEFAULT_OPTIONS), to, metrics }));
      const judged = await timed(async () => backtest({ series: read.value.series, metrics, from, to }));
      return { read, judged };
    };
    log('backtest: warm-up run');
    const first = await once();
    const sources = first.read.value.series.length;
    if (sources !== BACKTEST_SOURCES)
      throw new Error(`backtest: expected ${BACKTEST_SOURCES} sources, read ${sources}`);
    const load: number[] = [];
    const judge: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const r = await once();
      load.push(r.read.ms);
      judge.push(r.judged.ms);
      total.push(r.read.ms + r.judged.ms);
    }
    const verdicts = first.judged.value.verdicts;
    return {
      database: DATABASE,
      batches: BATCHES,
      sources,
      days: DAYS,
      reused,
      generationMs,
      migrateMs,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      metrics,
      hoursEvaluated: first.judged.value.hours_evaluated,
      verdicts: verdicts.length,
      anomalies: verdicts.filter((v) => v.judged && v.level !== 'ok').length,
      rowsRead: first.read.value.rows,
      load: stats(load),
      judge: stats(judge),
      total: stats(total),
    };
  } finally {
    await endPool(pool);
  }
}

if (isMain(import.meta.url)) {
  runMain(() =>
    measureBacktest({
      serverUrl: process.env.BENCH_DATABASE_URL || DEFAULT_DATABASE_URL,
      keep: process.env.BENCH_KEEP === '1',
    }),
  );
}
