/**
 * What Sentinel costs the database it monitors: the engine's own writes, with and
 * without Sentinel's migration installed.
 *
 * Two scratch databases with identical data:
 * - "without": sql/intake.sql only (the engine's tables, primary keys, the foreign
 *   key, the updated_at trigger), pre-filled with bench/generate.sql;
 * - "with": a file copy of "without", then `sentinel migrate` as a user runs it (the
 *   sentinel_* indexes on the intake tables, the ops views, Sentinel's own tables and
 *   whatever else the migrations add, such as triggers).
 *
 * Each operation is written as the engine writes it: one statement per transaction
 * (autocommit) over one connection per database, parameters bound by the driver.
 * The two sides take turns statement by statement (who goes first alternates), so
 * that the disk's and the host's slow moments fall on both alike; see
 * IngestionFigure for how the rounds are summarised. The operations of a round:
 * - batch_insert: one `uploaded` batch per statement (created_at = now());
 * - status_update: each of those batches through processing → validating →
 *   inserting → completed (row counts and completion time at the end), one UPDATE
 *   per step;
 * - row_error_insert: one multi-row INSERT of 200 row errors per batch, as the
 *   engine writes a batch's rejected rows (the rate is in rows per second).
 *
 * Commits are durable (synchronous_commit as configured, on by default): a commit's
 * WAL flush is part of what the engine pays per statement, and what Sentinel's
 * indexes add is judged against it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import {
  DEFAULT_DATABASE_URL,
  isMain,
  median,
  REPO_ROOT,
  round,
  runCli,
  runMain,
  sentinelEnv,
  tempDir,
} from './lib-proc.js';

/**
 * One operation's rates. The host's commit latency swings several-fold from one
 * round to the next (other work on the disk), far more than Sentinel changes it, so
 * the comparison is made within each round, where both sides took turns statement
 * by statement: the with/without ratio is the median of the per-round ratios, and
 * `withSentinelPerSec` is `withoutSentinelPerSec` times that ratio.
 */
export interface IngestionFigure {
  operation: 'batch_insert' | 'status_update' | 'row_error_insert';
  /** Statements per second (rows per second for row_error_insert) without Sentinel: the median over the rounds. */
  withoutSentinelPerSec: number;
  /** The same with Sentinel's migration installed: withoutSentinelPerSec × the median per-round ratio. */
  withSentinelPerSec: number;
  /** 100 × (1 − with/without): positive when Sentinel slows the engine down. */
  slowdownPct: number;
  /** Rounds per side. */
  reps: number;
  /**
   * `all`: "without" is the bare reference schema, so every index Sentinel's
   * migrations create counts. `engine_fk_index`: "without" already has the index on
   * intake.row_errors (batch_id) that any engine with `on delete cascade` needs (the
   * first migration creates it when missing), so the figure is what Sentinel adds
   * beyond that. `hourly_rollup`: both sides are migrated, "without" has the hourly rollup's
   * triggers dropped, so the figure is what the rollup alone adds to Sentinel's cost.
   */
  variant: 'all' | 'engine_fk_index' | 'hourly_rollup';
}

export interface IngestionOptions {
  adminUrl: string;
  /** History pre-filled into both databases (bench/generate.sql); default 200k batches, 1M row errors, 90 days. */
  batches?: number;
  errors?: number;
  days?: number;
  /** Rounds per side (default 7). */
  rounds?: number;
  /** Batches inserted per round and side (each gets 4 status updates and one 200-row error insert); default 300. */
  batchesPerRound?: number;
  /** Give "without" the foreign key's index too (see IngestionFigure.variant). */
  engineFkIndex?: boolean;
  /** Migrate both sides and drop the hourly rollup's triggers on "without" (see IngestionFigure.variant). */
  hourlyRollupOnly?: boolean;
}

const ERRORS_PER_BATCH = 200;
const WARMUP_BATCHES = 50;
const ERROR_CODES = [
  'E_REQUIRED_FIELD',
  'E_DATE_FORMAT',
  'E_DUPLICATE_KEY',
  'E_INVALID_EMAIL',
  'E_NUMERIC_RANGE',
  'E_UNKNOWN_SKU',
  'E_ENCODING',
  'E_COLUMN_COUNT',
];
const SOURCES = ['vendor_a', 'vendor_b', 'vendor_c', 'vendor_d', 'vendor_e', 'vendor_f', 'vendor_g', 'vendor_h'];

const started = performance.now();
/** Progress on stderr with BENCH_DEBUG set. */
function debug(message: string): void {
  if (process.env.BENCH_DEBUG)
    process.stderr.write(`ingestion +${Math.round((performance.now() - started) / 1000)}s: ${message}\n`);
}

type Side = 'without' | 'with';
type Operation = IngestionFigure['operation'];

/** Both variants: everything Sentinel creates, and what it adds beyond the foreign key's index. */
export async function measureIngestion(opts: { adminUrl: string }): Promise<IngestionFigure[]> {
  return [...(await measureIngestionWith(opts)), ...(await measureIngestionWith({ ...opts, engineFkIndex: true }))];
}

export async function measureIngestionWith(opts: IngestionOptions): Promise<IngestionFigure[]> {
  const rounds = opts.rounds ?? 7;
  const perRound = opts.batchesPerRound ?? 300;
  const names: Record<Side, string> = {
    without: `sentinel_bench_ingest_without_${process.pid}`,
    with: `sentinel_bench_ingest_with_${process.pid}`,
  };
  const urls: Record<Side, string> = {
    without: databaseUrl(opts.adminUrl, names.without),
    with: databaseUrl(opts.adminUrl, names.with),
  };
  const admin = new pg.Client({ connectionString: opts.adminUrl });
  await admin.connect();
  const clients: pg.Client[] = [];
  try {
    for (const name of Object.values(names)) await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${names.without}`);
    await prefill(urls.without, {
      batches: opts.batches ?? 200_000,
      errors: opts.errors ?? 1_000_000,
      days: opts.days ?? 90,
    });
    if (opts.engineFkIndex) {
      // Under the migration's own name, so that `sentinel migrate` finds it and skips it.
      const fk = new pg.Client({ connectionString: urls.without });
      await fk.connect();
      try {
        await fk.query('create index sentinel_row_errors_batch_id_idx on intake.row_errors (batch_id)');
      } finally {
        await fk.end();
      }
    }
    debug('prefilled');
    const state = await tempDir('sentinel-bench-ingest');
    try {
      if (opts.hourlyRollupOnly) await runCli(['migrate'], sentinelEnv(urls.without, state.path));
      await copyDatabase(admin, names.without, names.with);
      debug('copied');
      if (!opts.hourlyRollupOnly) await runCli(['migrate'], sentinelEnv(urls.with, state.path));
      debug('migrated');
    } finally {
      await state.remove();
    }
    if (opts.hourlyRollupOnly && !process.env.BENCH_INGEST_SAME_SIDES) {
      // (BENCH_INGEST_SAME_SIDES keeps the triggers on both sides: an A/A run, the comparison's own bias.)
      const bare = new pg.Client({ connectionString: urls.without });
      await bare.connect();
      try {
        for (const op of ['insert', 'update', 'delete']) {
          await bare.query(`drop trigger sentinel_hourly_source_${op} on intake.simplicity_batches`);
        }
      } finally {
        await bare.end();
      }
    }

    const db = {} as Record<Side, pg.Client>;
    for (const side of ['without', 'with'] as const) {
      const client = new pg.Client({ connectionString: urls[side], application_name: 'dragonfly-engine-bench' });
      await client.connect();
      clients.push(client);
      await client.query('vacuum analyze');
      db[side] = client;
    }
    await admin.query('checkpoint');
    debug('vacuumed');

    const rates: Record<Operation, Record<Side, number[]>> = {
      batch_insert: { without: [], with: [] },
      status_update: { without: [], with: [] },
      row_error_insert: { without: [], with: [] },
    };
    // Unmeasured: connections, plans, caches and the JIT warm up.
    await writeRound(db, 0, WARMUP_BATCHES, 'without');
    for (let r = 0; r < rounds; r++) {
      // Both sides write the same values: the same sequence numbers.
      const round = await writeRound(db, WARMUP_BATCHES + r * perRound, perRound, r % 2 === 0 ? 'without' : 'with');
      for (const op of Object.keys(round) as Operation[]) {
        rates[op].without.push(round[op].without);
        rates[op].with.push(round[op].with);
      }
      debug(`round ${r}: ${JSON.stringify(round)}`);
    }
    return (Object.keys(rates) as Operation[]).map((operation) => {
      const { without, with: withSentinel } = rates[operation];
      const ratio = median(withSentinel.map((w, r) => w / without[r]!));
      const typical = median(without);
      return {
        operation,
        withoutSentinelPerSec: round(typical, 0),
        withSentinelPerSec: round(typical * ratio, 0),
        slowdownPct: round(100 * (1 - ratio), 1),
        reps: rounds,
        variant: opts.hourlyRollupOnly ? 'hourly_rollup' : opts.engineFkIndex ? 'engine_fk_index' : 'all',
      };
    });
  } finally {
    await Promise.allSettled(clients.map((c) => c.end()));
    for (const name of Object.values(names)) {
      await admin.query(`drop database if exists ${name} with (force)`).catch((err: unknown) => {
        process.stderr.write(
          `ingestion: could not drop ${name}: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      });
    }
    await admin.end();
  }
}

function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * The engine's schema (sql/intake.sql) and history (bench/generate.sql), foreign keys and triggers off while loading.
 */
async function prefill(url: string, size: { batches: number; errors: number; days: number }): Promise<void> {
  const intake = await readFile(join(REPO_ROOT, 'sql', 'intake.sql'), 'utf8');
  const generate = await readFile(join(REPO_ROOT, 'bench', 'generate.sql'), 'utf8');
  const values: Record<string, string> = {
    batches: String(size.batches),
    errors: String(size.errors),
    days: String(size.days),
    now: `'${new Date().toISOString()}'`,
  };
  // `:name` placeholders, never the second colon of a `::type` cast.
  const sql = generate.replace(/(?<!:):(batches|errors|days|now)\b/g, (_, key: string) => values[key]!);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(intake);
    await client.query('set session_replication_role = replica');
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A byte-identical copy (PostgreSQL 15's file_copy strategy is the fast one for a freshly loaded database). */
async function copyDatabase(admin: pg.Client, from: string, to: string): Promise<void> {
  try {
    await admin.query(`create database ${to} template ${from} strategy file_copy`);
  } catch (err) {
    // Before PostgreSQL 15 there is only the one strategy.
    if ((err as { code?: string }).code !== '42601') throw err;
    await admin.query(`create database ${to} template ${from}`);
  }
}

/** Time spent per side; the two sides take turns statement by statement. */
type Clock = Record<Side, number>;

/**
 * One round: `count` batches inserted on both sides, taken through their statuses,
 * given their row errors; returns each side's rates per second. The sides take
 * turns at every statement (who goes first alternates too), so a slow moment of the
 * disk or the host falls on both alike: commit latency here varies several-fold
 * within seconds, far more than Sentinel's indexes change it.
 */
async function writeRound(
  db: Record<Side, pg.Client>,
  seq: number,
  count: number,
  firstSide: Side,
): Promise<Record<Operation, Record<Side, number>>> {
  const other: Side = firstSide === 'with' ? 'without' : 'with';
  const both = async (i: number, clock: Clock, statement: (side: Side) => Promise<void>): Promise<void> => {
    for (const side of i % 2 === 0 ? [firstSide, other] : [other, firstSide]) {
      const t = performance.now();
      await statement(side);
      clock[side] += performance.now() - t;
    }
  };
  const rates = (done: number, clock: Clock): Record<Side, number> => ({
    without: done / (clock.without / 1000),
    with: done / (clock.with / 1000),
  });

  const ids: Record<Side, string[]> = { without: [], with: [] };
  const inserting: Clock = { without: 0, with: 0 };
  for (let i = 0; i < count; i++) {
    const n = seq + i;
    const source = SOURCES[n % SOURCES.length]!;
    await both(i, inserting, async (side) => {
      const { rows } = await db[side].query<{ id: string }>(
        `insert into intake.simplicity_batches (source, filename, status, total_rows, created_at) values ($1, $2, ` +
          `'uploaded', $3, now()) returning id`,
        [source, `${source}/bench-${n}.csv`, 1000 + (n % 5000)],
      );
      ids[side].push(rows[0]!.id);
    });
  }

  const updating: Clock = { without: 0, with: 0 };
  for (let i = 0; i < count; i++) {
    const total = 1000 + ((seq + i) % 5000);
    const steps: [string, unknown[]][] = [
      [`update intake.simplicity_batches set status = 'processing', started_at = now() where id = $1`, []],
      [`update intake.simplicity_batches set status = 'validating', parse_ms = $2 where id = $1`, [300 + (i % 900)]],
      [`update intake.simplicity_batches set status = 'inserting' where id = $1`, []],
      [
        `update intake.simplicity_batches
            set status = 'completed', inserted_rows = $2, skipped_rows = $3, error_rows = $4, db_ms = $5,
                completed_at = now()
          where id = $1`,
        [total - ERRORS_PER_BATCH - 100, 100, ERRORS_PER_BATCH, 500 + (i % 2000)],
      ],
    ];
    for (const [k, [text, values]] of steps.entries()) {
      await both(i + k, updating, async (side) => {
        await db[side].query(text, [ids[side][i], ...values]);
      });
    }
  }

  const insertErrors = rowErrorInsert(ERRORS_PER_BATCH);
  const erring: Clock = { without: 0, with: 0 };
  for (let i = 0; i < count; i++) {
    await both(i, erring, async (side) => {
      await db[side].query(insertErrors, rowErrorValues(ids[side][i]!, seq + i));
    });
  }

  return {
    batch_insert: rates(count, inserting),
    status_update: rates(4 * count, updating),
    row_error_insert: rates(count * ERRORS_PER_BATCH, erring),
  };
}

/** `insert … values ($1, $2, $3, $4), …` for `rows` rows of (batch_id, row_number, error_code, error_message). */
function rowErrorInsert(rows: number): string {
  const tuples = Array.from({ length: rows }, (_, r) => `($${4 * r + 1}, $${4 * r + 2}, $${4 * r + 3}, $${4 * r + 4})`);
  return `insert into intake.row_errors (batch_id, row_number, error_code, error_message) values ${tuples.join(', ')}`;
}

function rowErrorValues(batchId: string, n: number): unknown[] {
  const values: unknown[] = [];
  for (let r = 0; r < ERRORS_PER_BATCH; r++) {
    const row = 1 + r * 7 + (n % 7);
    // A long tail of codes, as in production: the first few most of the rows.
    const u = ((r * 2654435761 + n * 40503) % 1000) / 1000;
    const code = ERROR_CODES[Math.floor(ERROR_CODES.length * u ** 2.5)]!;
    values.push(
      batchId,
      row,
      code,
      `Validation failed: ${code.slice(2).toLowerCase().replaceAll('_', ' ')} (row ${row})`,
    );
  }
  return values;
}

if (isMain(import.meta.url)) {
  const num = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);
  const batches = num('BENCH_INGEST_BATCHES');
  const errors = num('BENCH_INGEST_ERRORS');
  const rounds = num('BENCH_INGEST_ROUNDS');
  const batchesPerRound = num('BENCH_INGEST_PER_ROUND');
  runMain(() =>
    measureIngestionWith({
      adminUrl: process.env.BENCH_ADMIN_URL ?? DEFAULT_DATABASE_URL,
      ...(batches !== undefined ? { batches } : {}),
      ...(errors !== undefined ? { errors } : {}),
      ...(rounds !== undefined ? { rounds } : {}),
      ...(batchesPerRound !== undefined ? { batchesPerRound } : {}),
      ...(process.env.BENCH_INGEST_COMPARE === 'hourly_rollup' ? { hourlyRollupOnly: true } : {}),
      ...(process.env.BENCH_INGEST_COMPARE === 'engine_fk_index' ? { engineFkIndex: true } : {}),
    }),
  );
}
