/**
 * `npm run bench`: fills a fresh database per scale with bench/generate.sql, applies
 * Sentinel's migrations and the guide's literal views (bench/baseline.sql), and times
 * the check queries, the dashboard queries (ours vs the guide's), `sentinel --json`,
 * the HTTP API, the process and ingestion. Prints one table with the targets and
 * writes bench/results/<date>-<scale>.json and <date>-<scale>-plans.txt.
 *
 *   node dist-bench/bench/run.js [--scale S|M|L|S,L] [--reps 20] [--skip-api]
 *                                [--skip-process] [--skip-ingestion] [--skip-backtest] [--keep]
 *
 * Exit 1 when ours and the baseline return different rows for a dashboard query,
 * or when a step fails; a missed target is reported, not an error.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { type LoadFigure, measureApiLoad } from './api-load.js';
import { BACKTEST_SOURCES, type BacktestFigures, measureBacktest } from './backtest.js';
import { type IngestionFigure, measureIngestion } from './ingestion.js';
import {
  createDatabase,
  databaseComment,
  dropDatabase,
  fmtMs,
  fmtRatio,
  formatTable,
  log,
  repoPath,
  round3,
  type Stats,
  setDatabaseComment,
  stats,
  timed,
  withClient,
  withDatabase,
} from './lib.js';
import { DEFAULT_DATABASE_URL, runCli, sentinelEnv, tempDir } from './lib-proc.js';
import { measureProcess, type ProcessFigures } from './process.js';
import {
  baselineSql,
  type CapturedQuery,
  captureCheckQueries,
  DASHBOARD_QUERIES,
  type Equivalence,
  explain,
  measureQuery,
  verifyEquivalence,
} from './queries.js';

// ---------------------------------------------------------------------------
// Options

type Scale = 'S' | 'M' | 'L';

/** Data volume per scale (issue 6): batches, row errors, days of history. */
const SCALES: Record<Scale, { batches: number; errors: number; days: number }> = {
  S: { batches: 10_000, errors: 100_000, days: 90 },
  M: { batches: 100_000, errors: 1_000_000, days: 90 },
  L: { batches: 1_000_000, errors: 10_000_000, days: 90 },
};

const USAGE =
  'usage: node dist-bench/bench/run.js [--scale S|M|L|S,L] [--reps 20] [--skip-api] [--skip-process] ' +
  '[--skip-ingestion] [--skip-backtest] [--keep]';

/** A bad command line: reported in one line with the usage, no stack. */
class UsageError extends Error {}

interface Options {
  scales: Scale[];
  reps: number;
  skipApi: boolean;
  skipProcess: boolean;
  skipIngestion: boolean;
  skipBacktest: boolean;
  keep: boolean;
}

function parseOptions(argv: string[]): Options {
  const parse = () =>
    parseArgs({
      args: argv,
      options: {
        scale: { type: 'string', default: 'S' },
        reps: { type: 'string', default: '20' },
        'skip-api': { type: 'boolean', default: false },
        'skip-process': { type: 'boolean', default: false },
        'skip-ingestion': { type: 'boolean', default: false },
        'skip-backtest': { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
      },
      strict: true,
    });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values } = parsed;
  const scales = values.scale.split(',').map((s) => s.trim().toUpperCase());
  const bad = scales.filter((s) => !(s in SCALES));
  if (bad.length > 0 || scales.length === 0)
    throw new UsageError(`--scale: expected S, M, L or a list such as S,L, got "${values.scale}"`);
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1)
    throw new UsageError(`--reps: expected a whole number >= 1, got "${values.reps}"`);
  const order: Scale[] = ['S', 'M', 'L'];
  return {
    // Smallest first, so that L/S ratios can be computed when L runs.
    scales: order.filter((s) => scales.includes(s)),
    reps,
    skipApi: values['skip-api'],
    skipProcess: values['skip-process'],
    skipIngestion: values['skip-ingestion'],
    skipBacktest: values['skip-backtest'],
    keep: values.keep,
  };
}

// ---------------------------------------------------------------------------
// Results

interface MachineInfo {
  os: string;
  cpuModel: string;
  cpuCount: number;
  totalMemoryGb: number;
  node: string;
  postgres: string;
  settings: Record<string, string>;
}

interface RollupCall {
  ms: number;
  result: unknown;
}

interface SetupFigures {
  /** The database was kept from an earlier run (--keep) instead of being generated again. */
  reused: boolean;
  /** Time of bench/generate.sql, from the run that generated the data. */
  generationMs: number | null;
  migrateMs: number;
  baselineMs: number;
  vacuumMs: number;
  rollup: { available: boolean; calls: RollupCall[]; totalMs: number; caughtUp: boolean };
  batches: number;
  rowErrors: number;
}

interface CheckQueryResult {
  name: string;
  source: string;
  sql: string;
  params: unknown[];
  firstMs: number;
  ours: Stats;
  growthLS: number | null;
}

interface DashboardResult {
  key: string;
  name: string;
  sql: string;
  ours: Stats;
  baseline: Stats;
  /** baseline median / ours median */
  ratio: number;
  identical: boolean;
  equivalence: Equivalence;
  growthLS: number | null;
}

interface SentinelJsonFigures {
  wall: Stats;
  /** `metrics.database_ms` of the reports; null when the reports do not carry it. */
  databaseMs: Stats | null;
  exitCodes: number[];
}

interface TargetResult {
  group: string;
  name: string;
  target: string;
  pass: boolean;
}

interface ScaleResult {
  scale: Scale;
  date: string;
  startedAt: string;
  database: string;
  reps: number;
  data: { batches: number; errors: number; days: number };
  machine: MachineInfo;
  setup: SetupFigures;
  checkOutcomes: string[];
  checkQueries: CheckQueryResult[];
  checkRun: { sumOfMediansMs: number; growthLS: number | null };
  /** The live anomalies check: the sum of its queries' medians (they are in checkQueries too). */
  anomalyCheck: { queries: number; sumOfMediansMs: number } | null;
  dashboard: DashboardResult[];
  identical: boolean;
  sentinelJson: SentinelJsonFigures;
  api: LoadFigure[] | null;
  process: ProcessFigures | null;
  ingestion: IngestionFigure[] | null;
  /** One week x 20 sources x 4 metrics, on its own 20-source database (bench/backtest.ts); once per run. */
  backtest: BacktestFigures | null;
  targets: TargetResult[];
  /** The comparison scale of the L/S ratios and where it came from. */
  growthReference: string | null;
  plansFile: string;
}

// ---------------------------------------------------------------------------
// Preparing a database

/** What a bench database holds, kept as its comment so that --keep can tell whether it fits. */
interface DataMarker {
  bench: 'sentinel';
  scale: Scale;
  batches: number;
  errors: number;
  days: number;
  /** sha256 of bench/generate.sql and sql/intake.sql, shortened. */
  generator: string;
  generationMs?: number;
}

function sameData(a: DataMarker, b: DataMarker): boolean {
  return (
    a.scale === b.scale &&
    a.batches === b.batches &&
    a.errors === b.errors &&
    a.days === b.days &&
    a.generator === b.generator
  );
}

function parseMarker(comment: string | null | undefined): DataMarker | undefined {
  if (!comment) return undefined;
  try {
    const parsed = JSON.parse(comment) as Partial<DataMarker>;
    return parsed.bench === 'sentinel' ? (parsed as DataMarker) : undefined;
  } catch {
    return undefined;
  }
}

/** bench/generate.sql with its placeholders replaced (`:now` by `now()`; `::type` casts untouched). */
function generatorSql(template: string, scale: Scale): string {
  const { batches, errors, days } = SCALES[scale];
  const values: Record<string, string> = {
    batches: String(batches),
    errors: String(errors),
    days: String(days),
    now: 'now()',
  };
  return template.replace(/(?<!:):(batches|errors|days|now)\b/g, (_, name: string) => values[name]!);
}

async function prepareDatabase(
  serverUrl: string,
  scale: Scale,
  keep: boolean,
): Promise<{ url: string; name: string; setup: SetupFigures }> {
  const name = `sentinel_bench_${scale.toLowerCase()}`;
  const url = withDatabase(serverUrl, name);
  const template = await readFile(repoPath('bench/generate.sql'), 'utf8');
  const intake = await readFile(repoPath('sql/intake.sql'), 'utf8');
  const marker: DataMarker = {
    bench: 'sentinel',
    scale,
    ...SCALES[scale],
    generator: createHash('sha256').update(template).update(intake).digest('hex').slice(0, 16),
  };

  const existing = parseMarker(await databaseComment(serverUrl, name));
  const reused = keep && existing !== undefined && sameData(existing, marker);
  let generationMs: number | null = existing?.generationMs ?? null;
  if (reused) {
    log(`${scale}: keeping ${name} (same data, generated earlier; note that its "now" is the generation's)`);
  } else {
    log(`${scale}: creating ${name}`);
    await dropDatabase(serverUrl, name);
    await createDatabase(serverUrl, name);
    await withClient(url, (c) => c.query(intake));
    log(`${scale}: generating ${SCALES[scale].batches} batches, ~${SCALES[scale].errors} row errors`);
    generationMs = (
      await timed(() =>
        withClient(url, async (c) => {
          // The generator is consistent by construction: no FK triggers, much faster.
          await c.query('set session_replication_role = replica');
          await c.query(generatorSql(template, scale));
        }),
      )
    ).ms;
    await setDatabaseComment(serverUrl, name, JSON.stringify({ ...marker, generationMs: Math.round(generationMs) }));
    log(`${scale}: generated in ${(generationMs / 1000).toFixed(1)} s`);
  }

  const state = await tempDir('sentinel-bench-migrate');
  const migrateMs = (await timed(() => runCli(['migrate'], sentinelEnv(url, state.path)))).ms;
  await state.remove();
  log(`${scale}: migrated in ${(migrateMs / 1000).toFixed(1)} s`);
  const baselineText = await readFile(repoPath('bench/baseline.sql'), 'utf8');
  const baselineMs = (await timed(() => withClient(url, (c) => c.query(baselineText)))).ms;
  const vacuumMs = (await timed(() => withClient(url, (c) => c.query('vacuum analyze')))).ms;
  const rollup = await refreshRollup(url, scale);
  // The rollup's own tables were just filled: give the planner their statistics too.
  if (rollup.available) await withClient(url, (c) => c.query('analyze'));
  const counts = await withClient(url, async (c) => {
    const { rows } = await c.query<{ batches: string; row_errors: string }>(
      `select (select count(*) from intake.simplicity_batches) as batches, (select count(*) from ` +
        `intake.row_errors) as row_errors`,
    );
    return { batches: Number(rows[0]!.batches), rowErrors: Number(rows[0]!.row_errors) };
  });
  return {
    url,
    name,
    setup: {
      reused,
      generationMs: generationMs === null ? null : Math.round(generationMs),
      migrateMs: Math.round(migrateMs),
      baselineMs: Math.round(baselineMs),
      vacuumMs: Math.round(vacuumMs),
      rollup,
      ...counts,
    },
  };
}

const ROLLUP_MAX_CALLS = 10;
/** Pause before a call that follows one without progress; doubles up to the cap. */
const ROLLUP_FIRST_PAUSE_MS = 250;
const ROLLUP_MAX_PAUSE_MS = 5_000;

/**
 * Brings Sentinel's error rollup up to date: `sentinel.refresh_error_rollup` until it
 * reports no pending rows. The first call may only record a mark, so at least two.
 * A mark is usable only once every transaction older than it has ended, anywhere on
 * the server (xids are cluster-wide): while another client keeps a long transaction
 * open, the watermark cannot move, so calls without progress are spaced out and the
 * warning names the transaction in the way.
 */
async function refreshRollup(url: string, scale: Scale): Promise<SetupFigures['rollup']> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ present: boolean }>(
      `select exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                       where n.nspname = 'sentinel' and p.proname = 'refresh_error_rollup') as present`,
    );
    if (!rows[0]!.present) {
      log(`${scale}: WARNING sentinel.refresh_error_rollup does not exist: the error rollup is not brought up to date`);
      return { available: false, calls: [], totalMs: 0, caughtUp: false };
    }
    const calls: RollupCall[] = [];
    let caughtUp = false;
    let pause = ROLLUP_FIRST_PAUSE_MS;
    for (let i = 0; i < ROLLUP_MAX_CALLS && !caughtUp; i++) {
      const previous = calls.at(-1)?.result;
      if (i >= 2 && field(previous, 'watermark') === field(calls.at(-2)?.result, 'watermark')) {
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, ROLLUP_MAX_PAUSE_MS);
      }
      const { value, ms } = await timed(() =>
        c.query<{ result: unknown }>(`select sentinel.refresh_error_rollup(null, interval '0') as result`),
      );
      const result = value.rows[0]?.result;
      calls.push({ ms: Math.round(ms), result });
      caughtUp = i >= 1 && field(result, 'pending_rows') === 0;
    }
    const totalMs = calls.reduce((n, call) => n + call.ms, 0);
    if (caughtUp) log(`${scale}: error rollup caught up in ${calls.length} calls, ${(totalMs / 1000).toFixed(1)} s`);
    else
      log(
        `${scale}: WARNING the error rollup still reports pending rows after ${ROLLUP_MAX_CALLS} calls` +
          `${await oldestTransaction(c)}`,
      );
    return { available: true, calls, totalMs, caughtUp };
  });
}

/** The oldest other open transaction on the server, as a clause for a warning ('' when none). */
async function oldestTransaction(c: pg.Client): Promise<string> {
  const { rows } = await c.query<{ datname: string | null; pid: number; seconds: number }>(
    `select datname, pid, extract(epoch from now() - xact_start)::float8 as seconds
       from pg_stat_activity
      where pid <> pg_backend_pid() and (backend_xid is not null or backend_xmin is not null) and xact_start is not null
      order by xact_start limit 1`,
  );
  const t = rows[0];
  return t
    ? `; a transaction has been open for ${Math.round(t.seconds)} s in database ${t.datname ?? '?'} (pid ` +
        `${t.pid}) and holds the rollup back`
    : '';
}

/** A numeric field of the refresh function's jsonb answer. */
function field(result: unknown, name: string): number | undefined {
  if (result === null || typeof result !== 'object') return undefined;
  const value = (result as Record<string, unknown>)[name];
  return typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : undefined;
}

async function machineInfo(url: string): Promise<MachineInfo> {
  const cpus = os.cpus();
  const settings = await withClient(url, async (c) => {
    const { rows } = await c.query<{ name: string; setting: string }>(
      `select name, current_setting(name) as setting from unnest(array['server_version', 'shared_buffers', 'work_mem',
              'effective_cache_size', 'max_parallel_workers_per_gather', 'jit', 'random_page_cost']) as name`,
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  });
  return {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    postgres: settings.server_version ?? 'unknown',
    settings,
  };
}

// ---------------------------------------------------------------------------
// Measuring one scale

async function measureCheckQueries(
  client: pg.Client,
  captured: CapturedQuery[],
  reps: number,
): Promise<CheckQueryResult[]> {
  const results: CheckQueryResult[] = [];
  for (const q of captured) {
    const ours = await measureQuery(client, q.sql, q.params, reps);
    results.push({
      name: q.name,
      source: q.source,
      sql: q.sql,
      params: q.params,
      firstMs: round3(q.firstMs),
      ours,
      growthLS: null,
    });
  }
  return results;
}

async function measureDashboard(
  client: pg.Client,
  equivalence: Equivalence[],
  reps: number,
  scale: Scale,
): Promise<DashboardResult[]> {
  const results: DashboardResult[] = [];
  for (const q of DASHBOARD_QUERIES) {
    log(`${scale}: dashboard ${q.key}) ${q.name}`);
    const ours = await measureQuery(client, q.sql, [], reps);
    const baseline = await measureQuery(client, baselineSql(q.sql), [], reps);
    const eq = equivalence.find((e) => e.key === q.key)!;
    results.push({
      key: q.key,
      name: q.name,
      sql: q.sql,
      ours,
      baseline,
      ratio: round3(baseline.medianMs / ours.medianMs),
      identical: eq.identical,
      equivalence: eq,
      growthLS: null,
    });
  }
  return results;
}

/** `sentinel --json` as cron runs it: wall time from spawn to exit, and the report's database time. */
async function measureSentinelJson(url: string, reps: number): Promise<SentinelJsonFigures> {
  const state = await tempDir('sentinel-bench-json');
  try {
    const env = sentinelEnv(url, state.path);
    // Exit 1 and 2 are verdicts on the pipeline (the data has stuck batches), not failures.
    const run = () => runCli(['--json'], env, [0, 1, 2]);
    for (let i = 0; i < 2; i++) await run();
    const wall: number[] = [];
    const database: number[] = [];
    const exitCodes = new Set<number>();
    for (let i = 0; i < reps; i++) {
      const r = await run();
      wall.push(r.ms);
      exitCodes.add(r.code ?? -1);
      const ms = databaseMs(r.stdout);
      if (ms !== undefined) database.push(ms);
    }
    return {
      wall: stats(wall),
      databaseMs: database.length === reps ? stats(database) : null,
      exitCodes: [...exitCodes].sort(),
    };
  } finally {
    await state.remove();
  }
}

function databaseMs(stdout: string): number | undefined {
  try {
    const report = JSON.parse(stdout) as { metrics?: { database_ms?: unknown } };
    const ms = report.metrics?.database_ms;
    return typeof ms === 'number' ? ms : undefined;
  } catch {
    return undefined;
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of every measured query, ours and baseline, as one text file. */
async function explainAll(client: pg.Client, checks: CheckQueryResult[], scale: Scale): Promise<string> {
  const sections: string[] = [];
  const add = async (title: string, sql: string, params: unknown[]): Promise<void> => {
    const plan = await explain(client, sql, params);
    const paramLine = params.length > 0 ? `-- params: ${JSON.stringify(params)}\n` : '';
    sections.push(`=== ${title} ===\n${sql.replace(/^/gm, '-- ')}\n${paramLine}${plan}\n`);
  };
  for (const q of checks) await add(`check: ${q.name}`, q.sql, q.params);
  for (const q of DASHBOARD_QUERIES) {
    await add(`dashboard ${q.key}) ours: ${q.name}`, q.sql, []);
    await add(`dashboard ${q.key}) baseline: ${q.name}`, baselineSql(q.sql), []);
  }
  return `Plans of scale ${scale}, ${new Date().toISOString()}\n\n${sections.join('\n')}`;
}

interface ScaleContext {
  serverUrl: string;
  scale: Scale;
  options: Options;
  date: string;
  ingestion: IngestionFigure[] | null;
  backtest: BacktestFigures | null;
}

async function benchScale({
  serverUrl,
  scale,
  options,
  date,
  ingestion,
  backtest,
}: ScaleContext): Promise<ScaleResult> {
  const startedAt = new Date().toISOString();
  const { url, name, setup } = await prepareDatabase(serverUrl, scale, options.keep);
  const machine = await machineInfo(url);

  log(`${scale}: capturing the check queries`);
  const state = await tempDir('sentinel-bench-checks');
  const captured = await captureCheckQueries(url, state.path).finally(() => state.remove());
  log(`${scale}: ${captured.queries.length} check queries (${captured.outcomes.join(', ')})`);

  log(`${scale}: comparing ours with the baseline`);
  const equivalence = await verifyEquivalence(url);
  for (const e of equivalence.filter((x) => !x.identical)) {
    log(
      `${scale}: MISMATCH dashboard ${e.key}): ours ${e.oursRows} rows, baseline ${e.baselineRows}; first ` +
        `difference ${JSON.stringify(e.firstDifference)}`,
    );
  }

  // One dedicated connection for every timed query: one session, no pool in the way.
  const { checkQueries, dashboard, plans } = await withClient(url, async (client) => {
    log(`${scale}: timing the check queries`);
    const checkQueries = await measureCheckQueries(client, captured.queries, options.reps);
    const dashboard = await measureDashboard(client, equivalence, options.reps, scale);
    log(`${scale}: EXPLAIN (ANALYZE, BUFFERS) of every query`);
    const plans = await explainAll(client, checkQueries, scale);
    return { checkQueries, dashboard, plans };
  });
  const plansFile = `bench/results/${date}-${scale}-plans.txt`;
  await mkdir(repoPath('bench/results'), { recursive: true });
  await writeFile(repoPath(plansFile), plans);

  log(`${scale}: sentinel --json x${options.reps}`);
  const sentinelJson = await measureSentinelJson(url, options.reps);

  let api: LoadFigure[] | null = null;
  if (!options.skipApi) {
    log(`${scale}: API load`);
    api = await measureApiLoad({ databaseUrl: url, connections: 50 });
  }
  let processFigures: ProcessFigures | null = null;
  if (!options.skipProcess) {
    log(`${scale}: process figures`);
    processFigures = await measureProcess({ databaseUrl: url, reps: options.reps });
  }

  return {
    scale,
    date,
    startedAt,
    database: name,
    reps: options.reps,
    data: SCALES[scale],
    machine,
    setup,
    checkOutcomes: captured.outcomes,
    checkQueries,
    checkRun: { sumOfMediansMs: round3(checkQueries.reduce((n, q) => n + q.ours.medianMs, 0)), growthLS: null },
    anomalyCheck: anomalyCheckOf(checkQueries),
    dashboard,
    identical: dashboard.every((d) => d.identical),
    sentinelJson,
    api,
    process: processFigures,
    ingestion,
    backtest,
    targets: [],
    growthReference: null,
    plansFile,
  };
}

/** The anomalies check's queries (loadSeries: the rollup over the training weeks and the day). */
function anomalyCheckOf(queries: CheckQueryResult[]): ScaleResult['anomalyCheck'] {
  const own = queries.filter((q) => q.source === 'anomalies');
  if (own.length === 0) return null;
  return { queries: own.length, sumOfMediansMs: round3(own.reduce((n, q) => n + q.ours.medianMs, 0)) };
}

// ---------------------------------------------------------------------------
// L/S ratios

/** The S results to compare L with: this run's, else the newest bench/results/*-S.json. */
async function smallReference(results: ScaleResult[]): Promise<{ result: ScaleResult; source: string } | undefined> {
  const here = results.find((r) => r.scale === 'S');
  if (here) return { result: here, source: 'S of this run' };
  const files = (await readdir(repoPath('bench/results')).catch(() => [] as string[]))
    .filter((f) => /^\d{4}-\d{2}-\d{2}-S\.json$/.test(f))
    .sort();
  const newest = files.at(-1);
  if (!newest) return undefined;
  const result = JSON.parse(await readFile(repoPath(`bench/results/${newest}`), 'utf8')) as ScaleResult;
  return { result, source: `bench/results/${newest}` };
}

function applyGrowth(large: ScaleResult, small: ScaleResult, source: string): void {
  large.growthReference = source;
  for (const q of large.checkQueries) {
    const s = small.checkQueries.find((x) => x.name === q.name);
    q.growthLS = s ? round3(q.ours.medianMs / s.ours.medianMs) : null;
  }
  for (const d of large.dashboard) {
    const s = small.dashboard.find((x) => x.key === d.key);
    d.growthLS = s ? round3(d.ours.medianMs / s.ours.medianMs) : null;
  }
  large.checkRun.growthLS = round3(large.checkRun.sumOfMediansMs / small.checkRun.sumOfMediansMs);
}

// ---------------------------------------------------------------------------
// Targets and the table

/** One line of the printed table; every cell already formatted. */
interface Row {
  scale: string;
  group: string;
  query: string;
  ours: string;
  baseline: string;
  ratio: string;
  growth: string;
  target: string;
  verdict: string;
}

const CHECK_QUERY_MS = 10;
const CHECK_RUN_DB_MS = 25;
const CHECK_GROWTH = 1.5;
const DASHBOARD_MS = 50;
const DASHBOARD_SPEEDUP = 50;
const API_RPS = 1000;
const API_P99_MS = 50;
const INGESTION_SLOWDOWN_PCT = 5;
const VERSION_COLD_MS = 150;
const LOOP_RSS_MB = 10;
const ANOMALY_CHECK_MS = 50;
const BACKTEST_MS = 10_000;

/** `median / p95`, with the repetitions when a slow query got fewer than asked for. */
const medP95 = (s: Stats, asked: number): string =>
  `${fmtMs(s.medianMs)} / ${fmtMs(s.p95Ms)}${s.reps < asked ? ` (n=${s.reps})` : ''}`;
const seconds = (ms: number | null): string => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);

/** Builds the table rows of one scale and records every target's verdict in `result.targets`. */
function rowsOf(result: ScaleResult): Row[] {
  const rows: Row[] = [];
  const atL = result.scale === 'L';
  const verdict = (pass: boolean): string => (atL ? (pass ? 'PASS' : 'MISS') : pass ? '(pass)' : '(miss)');
  const row = (group: string, query: string, cells: Partial<Row>, judged?: { target: string; pass: boolean }): void => {
    if (judged) result.targets.push({ group, name: query, target: judged.target, pass: judged.pass });
    rows.push({
      scale: result.scale,
      group,
      query,
      ours: '',
      baseline: '',
      ratio: '',
      growth: '',
      ...cells,
      target: judged?.target ?? '',
      verdict: judged ? verdict(judged.pass) : '',
    });
  };
  const growth = (g: number | null): string => (g === null ? '' : fmtRatio(g));
  result.targets = [];

  const { setup } = result;
  row('setup', `generate (${setup.batches} batches, ${setup.rowErrors} row errors)`, {
    ours: seconds(setup.generationMs) + (setup.reused ? ' (kept)' : ''),
  });
  row('setup', 'sentinel migrate', { ours: seconds(setup.migrateMs) });
  row('setup', 'error rollup catch-up', {
    ours: setup.rollup.available
      ? `${seconds(setup.rollup.totalMs)}, ${setup.rollup.calls.length} calls`
      : 'function missing',
  });

  for (const q of result.checkQueries) {
    const pass = q.ours.medianMs < CHECK_QUERY_MS && (q.growthLS === null || q.growthLS <= CHECK_GROWTH);
    row(
      'check',
      q.name,
      { ours: medP95(q.ours, result.reps), growth: growth(q.growthLS) },
      { target: `<${CHECK_QUERY_MS} ms, L/S<=${CHECK_GROWTH}x`, pass },
    );
  }
  row(
    'check',
    'whole run: sum of query medians',
    { ours: `${fmtMs(result.checkRun.sumOfMediansMs)}`, growth: growth(result.checkRun.growthLS) },
    { target: `<${CHECK_RUN_DB_MS} ms`, pass: result.checkRun.sumOfMediansMs < CHECK_RUN_DB_MS },
  );

  if (result.anomalyCheck) {
    const a = result.anomalyCheck;
    row(
      'check',
      `anomalies: the live check's ${a.queries} queries, sum of medians`,
      { ours: fmtMs(a.sumOfMediansMs) },
      { target: `<${ANOMALY_CHECK_MS} ms`, pass: a.sumOfMediansMs < ANOMALY_CHECK_MS },
    );
  }

  const sj = result.sentinelJson;
  row('sentinel', '--json wall time', { ours: medP95(sj.wall, result.reps) });
  if (sj.databaseMs) {
    row(
      'sentinel',
      '--json metrics.database_ms',
      { ours: medP95(sj.databaseMs, result.reps) },
      { target: `<${CHECK_RUN_DB_MS} ms`, pass: sj.databaseMs.medianMs < CHECK_RUN_DB_MS },
    );
  } else {
    row('sentinel', '--json metrics.database_ms', { ours: 'not in report' });
  }

  for (const d of result.dashboard) {
    const pass = d.ours.medianMs < DASHBOARD_MS && d.ratio >= DASHBOARD_SPEEDUP && d.identical;
    row(
      'dashboard',
      `${d.key}) ${d.name}${d.identical ? '' : ' ROWS DIFFER'}`,
      {
        ours: medP95(d.ours, result.reps),
        baseline: medP95(d.baseline, result.reps),
        ratio: fmtRatio(d.ratio),
        growth: growth(d.growthLS),
      },
      { target: `<${DASHBOARD_MS} ms, >=${DASHBOARD_SPEEDUP}x`, pass },
    );
  }

  for (const a of result.api ?? []) {
    const failures = a.errors + a.non2xx;
    row(
      'api',
      `${a.path} (${a.connections} conn)`,
      {
        ours:
          `${Math.round(a.requestsPerSec)} req/s, p50 ${fmtMs(a.p50Ms)}, p99 ${fmtMs(a.p99Ms)} ms` +
          `${failures > 0 ? `, ${failures} failed` : ''}`,
      },
      {
        target: `>=${API_RPS} req/s, p99<${API_P99_MS} ms`,
        pass: a.requestsPerSec >= API_RPS && a.p99Ms < API_P99_MS && failures === 0,
      },
    );
  }

  const p = result.process;
  if (p) {
    const v = p.versionColdStartMs;
    row(
      'process',
      'sentinel --version cold start',
      { ours: `${fmtMs(v.median)} / ${fmtMs(v.p95)}` },
      { target: `<${VERSION_COLD_MS} ms`, pass: v.median < VERSION_COLD_MS },
    );
    const c = p.checkRunColdStartMs;
    row('process', 'sentinel --json cold start', { ours: `${fmtMs(c.median)} / ${fmtMs(c.p95)}` });
    // Judged: the command as users run it; node's defaults are there to show what the bin's settings buy.
    for (const [label, rss, judged] of [
      ['as run (no node flags)', p.loopRss, true],
      ["without the bin's V8 settings (node's defaults)", p.loopRssNodeDefaults, false],
    ] as const) {
      row(
        'process',
        `loop RSS growth, run 10 -> ${rss.runs}, ${label}`,
        {
          ours:
            `${rss.growthMb.toFixed(1)} MB (${rss.rssAt10Mb.toFixed(0)} -> ${rss.rssAtEndMb.toFixed(0)}; heap ` +
            `${rss.heapAt10Mb.toFixed(1)} -> ${rss.heapAtEndMb.toFixed(1)}; ${rss.msPerRun.toFixed(1)} ms/run)`,
        },
        judged ? { target: `<${LOOP_RSS_MB} MB`, pass: rss.growthMb < LOOP_RSS_MB } : undefined,
      );
    }
  }

  const bt = result.backtest;
  if (bt) {
    row(
      'anomalies',
      `backtest: 1 week x ${bt.sources} sources x ${bt.metrics.length} metrics (own ${bt.sources}-source database)`,
      {
        ours:
          `${fmtMs(bt.total.medianMs)} / ${fmtMs(bt.total.p95Ms)} (read ${fmtMs(bt.load.medianMs)}, ` +
          `${bt.rowsRead} source-hours; judge ${fmtMs(bt.judge.medianMs)}, ${bt.verdicts} verdicts)`,
      },
      { target: `<${BACKTEST_MS / 1000} s`, pass: bt.total.medianMs < BACKTEST_MS },
    );
  }

  for (const i of result.ingestion ?? []) {
    row(
      'ingestion',
      i.variant === 'engine_fk_index' ? `${i.operation} (engine has its FK index)` : i.operation,
      {
        ours:
          `${Math.round(i.withSentinelPerSec)}/s with, ${Math.round(i.withoutSentinelPerSec)}/s without ` +
          `(${i.slowdownPct.toFixed(1)}% slower)`,
      },
      { target: `<=${INGESTION_SLOWDOWN_PCT}% slower`, pass: i.slowdownPct <= INGESTION_SLOWDOWN_PCT },
    );
  }
  return rows;
}

function printTable(results: ScaleResult[], rows: Row[]): void {
  const header = [
    'scale',
    'group',
    'query',
    'ours med / p95 ms',
    'baseline med / p95 ms',
    'base/ours',
    'L/S',
    'target',
    'verdict',
  ];
  const cells = rows.map((r) => [
    r.scale,
    r.group,
    r.query,
    r.ours,
    r.baseline,
    r.ratio,
    r.growth,
    r.target,
    r.verdict,
  ]);
  const lines = [formatTable(header, cells), ''];
  for (const r of results) {
    const m = r.machine;
    lines.push(
      `${r.scale}: ${r.reps} reps; ${m.cpuModel} x${m.cpuCount}, ${m.totalMemoryGb} GB, node ${m.node}, ` +
        `PostgreSQL ${m.postgres} (shared_buffers ${m.settings.shared_buffers ?? '?'})` +
        (r.growthReference ? `; L/S against ${r.growthReference}` : ''),
    );
  }
  if (results.some((r) => r.scale !== 'L'))
    lines.push('Targets are set for L; verdicts in parentheses (other scales) are for information.');
  lines.push('(n=…) marks fewer repetitions: queries over 2 s get as many as fit in 60 s, at least 5.');
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const serverUrl = process.env.BENCH_DATABASE_URL || DEFAULT_DATABASE_URL;
  const date = new Date().toISOString().slice(0, 10);

  let ingestion: IngestionFigure[] | null = null;
  if (!options.skipIngestion) {
    // Independent of the history's size: measured once, reported with every scale.
    log('ingestion throughput with and without Sentinel');
    ingestion = await measureIngestion({ adminUrl: serverUrl });
  }

  let backtest: BacktestFigures | null = null;
  if (!options.skipBacktest) {
    // Its own database (bench/generate.sql has 8 sources, the figure is for 20): measured once per run.
    log(`backtest: 1 week x ${BACKTEST_SOURCES} sources x 4 metrics`);
    backtest = await measureBacktest({ serverUrl, keep: options.keep });
  }

  const results: ScaleResult[] = [];
  for (const scale of options.scales)
    results.push(await benchScale({ serverUrl, scale, options, date, ingestion, backtest }));

  const large = results.find((r) => r.scale === 'L');
  if (large) {
    const reference = await smallReference(results);
    if (reference) applyGrowth(large, reference.result, reference.source);
    else log('L: no S results (this run or bench/results/*-S.json): no L/S ratios');
  }

  const rows = results.flatMap(rowsOf);
  await mkdir(repoPath('bench/results'), { recursive: true });
  for (const r of results)
    await writeFile(repoPath(`bench/results/${r.date}-${r.scale}.json`), `${JSON.stringify(r, null, 2)}\n`);
  printTable(results, rows);
  for (const r of results) process.stdout.write(`wrote bench/results/${r.date}-${r.scale}.json and ${r.plansFile}\n`);

  const mismatches = results.flatMap((r) =>
    r.dashboard.filter((d) => !d.identical).map((d) => `${r.scale} ${d.key}) ${d.name}`),
  );
  if (mismatches.length > 0) {
    process.stderr.write(
      `\n*** OURS AND BASELINE DIFFER: ${mismatches.join('; ')} (see "equivalence" in the results JSON) ***\n`,
    );
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
    else process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
