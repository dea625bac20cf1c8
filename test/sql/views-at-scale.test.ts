/**
 * The ops views at scale (issue 6): the rewritten v_batch_performance and the
 * rollup-backed v_error_distribution return exactly what the guide's literal
 * definitions (bench/baseline.sql) return on the same data, in every state the
 * rollup can be in: never refreshed, current, behind, partly refreshed, with
 * deleted, updated or truncated rows, and with a writer still in flight while
 * the refresh runs. The plans read indexes only, whatever the history's size.
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';

const BASELINE_SQL = new URL('../../bench/baseline.sql', import.meta.url);
const GENERATE_SQL = new URL('../../bench/generate.sql', import.meta.url);

let db: TestDb;

/** bench/generate.sql at a small size, as `npm run bench` runs it. */
async function generate(batches: number, errors: number): Promise<void> {
  const sql = (await readFile(GENERATE_SQL, 'utf8'))
    .replaceAll(':batches', String(batches))
    .replaceAll(':errors', String(errors))
    .replaceAll(':days', '10')
    .replaceAll(':now', 'now()');
  await db.pool.query(sql);
}

interface Refresh {
  watermark: number;
  added_rows: number;
  recomputed_codes: number;
  pending_rows: number;
}

async function refresh(maxRows: number | null = null, client: pg.ClientBase | pg.Pool = db.pool): Promise<Refresh> {
  const { rows } = await client.query<{ r: Refresh }>(
    `select sentinel.refresh_error_rollup($1::bigint, interval '0') as r`,
    [maxRows],
  );
  return rows[0]!.r;
}

/** Refreshes until nothing is pending (the first call of a quiet database only records a mark). */
async function refreshFully(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    if ((await refresh()).pending_rows === 0) return;
  }
  throw new Error('the rollup did not catch up in 5 refreshes');
}

/**
 * Rows of ours and of the baseline for the same query, read in one snapshot, as
 * text (the exact rounding, no type parser in between).
 */
async function both(query: string): Promise<{ ours: string[]; baseline: string[] }> {
  const client = await db.pool.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    const read = async (sql: string): Promise<string[]> => {
      const { rows } = await client.query({
        text: `select to_jsonb(q)::text as row from (${sql}) q`,
        rowMode: 'array',
      });
      return rows.map((r) => String(r[0]));
    };
    const ours = await read(query);
    const baseline = await read(query.replaceAll('ops.', 'baseline.'));
    await client.query('commit');
    return { ours, baseline };
  } finally {
    client.release();
  }
}

const ALL_ERRORS = 'select * from ops.v_error_distribution order by error_code';
const ALL_HOURS = 'select * from ops.v_batch_performance order by hour_bucket';

async function expectErrorsIdentical(): Promise<string[]> {
  const { ours, baseline } = await both(ALL_ERRORS);
  expect(ours).toEqual(baseline);
  return ours;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query(await readFile(BASELINE_SQL, 'utf8'));
  await generate(3000, 30_000);
});
afterAll(async () => {
  await db?.drop();
});

describe('v_batch_performance', () => {
  it("returns the baseline rows for all hours, a window, and the guide's last-24 query", async () => {
    const all = await both(ALL_HOURS);
    expect(all.ours.length).toBeGreaterThan(200);
    expect(all.ours).toEqual(all.baseline);
    for (const query of [
      `select * from ops.v_batch_performance where hour_bucket >= now() - interval '24 hours' order by hour_bucket desc`,
      `select * from ops.v_batch_performance order by hour_bucket desc limit 24`,
      `select * from ops.v_batch_performance where hour_bucket between now() - interval '3 days' and now() - interval '2 days' order by 1`,
    ]) {
      const { ours, baseline } = await both(query);
      expect(ours.length).toBeGreaterThan(0);
      expect(ours).toEqual(baseline);
    }
  });

  it('keeps gaps (no row for an hour without batches), nulls and zero-row hours as the baseline does', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      // Far in the past, two hours apart: one unmeasured, zero-row batch, then a half-measured one.
      await client.query(`insert into intake.simplicity_batches (source, status, created_at, total_rows)
                          values ('x', 'failed', '2001-01-01 10:20Z', 0)`);
      await client.query(`insert into intake.simplicity_batches (source, status, created_at, total_rows, parse_ms)
                          values ('x', 'completed', '2001-01-01 12:59:59.999Z', 10, 7)`);
      const read = async (view: string): Promise<unknown[]> =>
        (await client.query(`select * from ${view} where hour_bucket < '2002-01-01' order by 1`)).rows;
      const ours = await read('ops.v_batch_performance');
      expect(ours).toEqual(await read('baseline.v_batch_performance'));
      expect(ours).toHaveLength(2);
      const first = ours[0] as Record<string, unknown>;
      expect(String(first.total_batches)).toBe('1');
      expect(first.error_rate_pct).toBeNull();
      expect(first.avg_parse_ms).toBeNull();
    } finally {
      await client.query('rollback');
      client.release();
    }
  });

  it('reads only the hours asked for, through the hour index', async () => {
    for (const query of [
      `select * from ops.v_batch_performance where hour_bucket >= now() - interval '7 days'`,
      `select * from ops.v_batch_performance order by hour_bucket desc limit 24`,
    ]) {
      const { rows } = await db.pool.query<{ 'QUERY PLAN': string }>(`explain ${query}`);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/sentinel_batches_hour_idx/);
      expect(plan).not.toMatch(/Seq Scan on simplicity_batches/);
    }
  });

  it('an empty table has no rows', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await client.query('delete from intake.simplicity_batches');
      const { rows } = await client.query('select * from ops.v_batch_performance');
      expect(rows).toEqual([]);
    } finally {
      await client.query('rollback');
      client.release();
    }
  });
});

describe('v_error_distribution and its rollup', () => {
  beforeEach(async () => {
    await db.pool.query('truncate sentinel.error_rollup, sentinel.error_rollup_marks, sentinel.error_rollup_dirty');
    await db.pool.query('update sentinel.error_rollup_state set watermark = 0');
  });

  it('is exact before any refresh, when current, and when partly refreshed', async () => {
    const before = await expectErrorsIdentical();
    expect(before.length).toBeGreaterThanOrEqual(15);

    // First call: only a mark. max_rows makes the next ones advance in steps.
    await refresh(5000);
    const step = await refresh(5000);
    expect(step.watermark).toBeGreaterThan(0);
    expect(step.pending_rows).toBeGreaterThan(0);
    expect(await expectErrorsIdentical()).toEqual(before);

    await refreshFully();
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from sentinel.error_rollup');
    expect(rows[0]!.n).toBe(before.length);
    expect(await expectErrorsIdentical()).toEqual(before);
  });

  it('adds new rows on top of the rollup: new codes, new and known batches, newer and null messages', async () => {
    await refreshFully();
    const { rows: batches } = await db.pool.query<{ id: string }>(
      `select batch_id as id from intake.row_errors where error_code = 'E_REQUIRED_FIELD' limit 1`,
    );
    const known = batches[0]!.id;
    const { rows: fresh } = await db.pool.query<{ id: string }>(
      `select id from intake.simplicity_batches b
        where not exists (select 1 from intake.row_errors e where e.batch_id = b.id) limit 1`,
    );
    await db.pool.query(
      `insert into intake.row_errors (batch_id, row_number, error_code, error_message, created_at) values
         ($1, 1, 'E_REQUIRED_FIELD', 'same batch, newer message', now() + interval '1 minute'),
         ($2, 1, 'E_REQUIRED_FIELD', null, now() + interval '2 minutes'),
         ($2, 2, 'E_BRAND_NEW', 'a code never seen', now()),
         ($2, 3, 'E_BRAND_NEW', null, now())`,
      [known, fresh[0]!.id],
    );
    const ours = await expectErrorsIdentical();
    const required = JSON.parse(ours.find((r) => r.includes('"E_REQUIRED_FIELD"'))!);
    // The null message is newer but a sample is the latest non-null message.
    expect(required.sample_message).toBe('same batch, newer message');
    expect(ours.some((r) => r.includes('"E_BRAND_NEW"'))).toBe(true);

    await refreshFully();
    expect(await expectErrorsIdentical()).toEqual(ours);
  });

  it('stays exact when rolled-up rows are deleted (cascade), updated or truncated, and recomputes them', async () => {
    await refreshFully();
    // Retention: the oldest batches go, their errors with them (one statement per batch, FK cascade).
    await db.pool.query(
      `delete from intake.simplicity_batches where id in (
         select id from intake.simplicity_batches where error_rows > 0 order by created_at limit 40)`,
    );
    const { rows: dirty } = await db.pool.query('select error_code from sentinel.error_rollup_dirty');
    expect(dirty.length).toBeGreaterThan(0);
    const afterDelete = await expectErrorsIdentical();

    // A correction: one rolled-up row moves to another code and loses its message.
    await db.pool.query(
      `update intake.row_errors set error_code = 'E_CORRECTED', error_message = null
        where id = (select max(id) from intake.row_errors where error_code = 'E_DATE_FORMAT')`,
    );
    const afterUpdate = await expectErrorsIdentical();
    expect(afterUpdate).not.toEqual(afterDelete);

    const r = await refresh();
    expect(r.recomputed_codes).toBeGreaterThan(0);
    const { rows: left } = await db.pool.query('select error_code from sentinel.error_rollup_dirty');
    expect(left).toEqual([]);
    expect(await expectErrorsIdentical()).toEqual(afterUpdate);

    await db.pool.query('truncate intake.row_errors');
    expect(await expectErrorsIdentical()).toEqual([]);
    const { rows: state } = await db.pool.query<{ watermark: number }>(
      'select watermark from sentinel.error_rollup_state',
    );
    expect(Number(state[0]!.watermark)).toBe(0);
    // Restore the fixture for the tests after this one.
    await db.pool.query('delete from intake.simplicity_batches');
    await generate(3000, 30_000);
  });

  it('never rolls up past a writer that is still in flight', async () => {
    await refreshFully();
    const { rows: b } = await db.pool.query<{ id: string }>('select id from intake.simplicity_batches limit 1');
    const batch = b[0]!.id;
    const slow = new pg.Client({ connectionString: db.url });
    await slow.connect();
    try {
      // A writer takes its ids first and commits last.
      await slow.query('begin');
      await slow.query(
        `insert into intake.row_errors (batch_id, error_code, error_message) values ($1, 'E_LATE', 'committed late')`,
        [batch],
      );
      await db.pool.query(
        `insert into intake.row_errors (batch_id, error_code, error_message) values ($1, 'E_EARLY', 'committed early')`,
        [batch],
      );
      for (let i = 0; i < 3; i++) await refresh();
      const { rows } = await db.pool.query<{ early_id: string; watermark: string }>(
        `select (select max(id) from intake.row_errors) as early_id,
                (select watermark from sentinel.error_rollup_state) as watermark`,
      );
      // The early row's id is just above the late one's; the watermark stays below both.
      expect(Number(rows[0]!.watermark)).toBeLessThan(Number(rows[0]!.early_id) - 1);
      await slow.query('commit');
    } finally {
      await slow.end();
    }
    await refreshFully();
    const ours = await expectErrorsIdentical();
    expect(ours.some((r) => r.includes('"E_LATE"'))).toBe(true);
    const { rows: rolled } = await db.pool.query(`select 1 from sentinel.error_rollup where error_code = 'E_LATE'`);
    expect(rolled).toHaveLength(1);
  });

  it('is read from the rollup and the rows since, not the whole table', async () => {
    await refreshFully();
    const { rows } = await db.pool.query<{ 'QUERY PLAN': string }>(
      `explain (analyze, format text) select * from ops.v_error_distribution order by occurrence_count desc limit 10`,
    );
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/error_rollup/);
    expect(plan).not.toMatch(/Seq Scan on row_errors/);
    // Planned at its real cost: nothing here is worth compiling.
    expect(plan).not.toMatch(/JIT/);
  });
});

describe('sentinel migrate and sentinel runs', () => {
  it('migrate builds the rollup, so the view is cheap from the start', async () => {
    await db.pool.query('truncate sentinel.error_rollup, sentinel.error_rollup_marks, sentinel.error_rollup_dirty');
    await db.pool.query('update sentinel.error_rollup_state set watermark = 0');
    const run = await runCli(['migrate'], { DATABASE_URL: db.url });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/Building the error rollup behind ops\.v_error_distribution \(\d+ rows\)/);
    expect(run.stderr).toMatch(/Error rollup up to date/);
    const { rows } = await db.pool.query<{ watermark: string; max: string }>(
      'select (select watermark from sentinel.error_rollup_state) as watermark, (select max(id) from intake.row_errors) as max',
    );
    expect(rows[0]!.watermark).toBe(rows[0]!.max);
    await expectErrorsIdentical();
  });

  it('a role that may not refresh the rollup is told once, in one line, and the run goes on', async () => {
    const role = `sentinel_ro_${process.pid}`;
    // A password, for servers that ask for one (the embedded fallback does).
    const password = 'ro-pw-not-to-be-printed';
    await db.pool.query(`create role ${role} login password '${password}'`);
    try {
      await db.pool.query(`grant usage on schema intake, ops to ${role}`);
      await db.pool.query(`grant select on all tables in schema intake, ops to ${role}`);
      const url = new URL(db.url);
      url.username = role;
      url.password = password;
      const stateDir = await mkdtemp(join(tmpdir(), 'sentinel-scale-'));
      try {
        const run = await runCli(['--json'], { DATABASE_URL: url.toString(), SENTINEL_STATE_DIR: stateDir });
        expect([0, 1, 2], run.stderr).toContain(run.code);
        expect(JSON.parse(run.stdout).overall_status).toMatch(/healthy|degraded|critical/);
        const lines = run.stderr.split('\n').filter((l) => l.includes('Not refreshing the error rollup'));
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/permission denied for schema sentinel/);
        expect(run.stderr).not.toMatch(/\n\s+at /);
        expect(run.stdout + run.stderr).not.toContain(password);
        // The views themselves work for such a role (the rollup is read with the view owner's rights).
        const reader = new pg.Client({ connectionString: url.toString() });
        await reader.connect();
        try {
          const { rows } = await reader.query('select count(*)::int as n from ops.v_error_distribution');
          expect(rows[0].n).toBeGreaterThan(0);
        } finally {
          await reader.end();
        }
      } finally {
        await rm(stateDir, { recursive: true, force: true });
      }
    } finally {
      await db.pool.query(`drop owned by ${role}`);
      await db.pool.query(`drop role ${role}`);
    }
  });

  it('report the time spent in the database and keep the rollup moving', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'sentinel-scale-'));
    try {
      await db.pool.query('truncate sentinel.error_rollup_marks');
      const run = await runCli(['--json'], { DATABASE_URL: db.url, SENTINEL_STATE_DIR: stateDir });
      expect([0, 1, 2]).toContain(run.code);
      const report = JSON.parse(run.stdout) as { metrics: { database_ms: number } };
      // Reported; how fast the views are at scale is measured by bench/, not here.
      expect(report.metrics.database_ms).toBeGreaterThan(0);
      // The refresh after the run recorded a mark the next run may advance to.
      const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from sentinel.error_rollup_marks');
      expect(rows[0]!.n).toBeGreaterThan(0);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
