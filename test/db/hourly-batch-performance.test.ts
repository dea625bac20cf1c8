/**
 * ops.v_batch_performance on the hourly rollup (migration …_hourly_source_timings.sql): the hours
 * before the rollup's horizon from sentinel.hourly_source_stats, the later ones from the batches.
 * Equal to the guide's literal definition (bench/baseline.sql), value for value as PostgreSQL
 * prints them, before and after refreshes, with late writes (a status change, new timings, a
 * delete, a backdated insert, a moved batch, a rename) to hours the rollup has already passed.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { beforeEach, describe, expect, it } from 'vitest';
import { refreshHourlyStats } from '../../src/db/hourly.js';
import { mulberry32 } from '../../src/util/random.js';
import { createTestDatabase, useTestDatabase } from '../helpers/db.js';

const HOURS = 24 * 7;
const STATUSES = ['uploaded', 'processing', 'validating', 'inserting', 'completed', 'failed'] as const;
const TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

const BASELINE = readFileSync(new URL('../../bench/baseline.sql', import.meta.url), 'utf8');
const window = (schema: string) =>
  `select * from ${schema}.v_batch_performance where hour_bucket >= now() - make_interval(hours => $1::int)
    order by hour_bucket desc`;

/** The view's rows and the guide's, as text, in one snapshot and one now(). */
async function bothSides(pool: pg.Pool, hours = HOURS): Promise<{ ours: unknown[]; view: unknown[] }> {
  const client = await pool.connect();
  try {
    await client.query('begin isolation level repeatable read');
    const ours = await client.query({ text: window('ops'), values: [hours], types: TEXT });
    const view = await client.query({ text: window('baseline'), values: [hours], types: TEXT });
    expect(ours.fields.map((f) => f.name)).toEqual(view.fields.map((f) => f.name));
    // The guide's own query: the newest 24 hours that have batches.
    const last = 'select * from %.v_batch_performance order by hour_bucket desc limit 24';
    const a = await client.query({ text: last.replace('%', 'ops'), types: TEXT });
    const b = await client.query({ text: last.replace('%', 'baseline'), types: TEXT });
    expect(a.rows).toEqual(b.rows);
    return { ours: ours.rows, view: view.rows };
  } finally {
    await client.query('rollback');
    client.release();
  }
}

async function expectEqualToView(pool: pg.Pool, hours = HOURS): Promise<number> {
  const { ours, view } = await bothSides(pool, hours);
  expect(ours).toEqual(view);
  return view.length;
}

/** The view's row of the hour that started `ago` hours before the current one. */
async function hourRow(pool: pg.Pool, ago: number): Promise<Record<string, unknown> | undefined> {
  const { rows } = await pool.query({
    text: `select * from ops.v_batch_performance
            where hour_bucket = date_trunc('hour', now(), 'UTC') - make_interval(hours => $1::int)`,
    values: [ago],
    types: TEXT,
  });
  return rows[0];
}

async function horizon(pool: pg.Pool): Promise<Date | null> {
  const { rows } = await pool.query<{ r: Date | null }>(
    'select rolled_up_before as r from sentinel.hourly_source_state where id',
  );
  return rows[0]?.r ?? null;
}

const ms = (rnd: () => number): number | null => (rnd() < 0.15 ? null : Math.floor(rnd() * 20_000));

/** One write of the engine or of a person correcting data, to a batch of the last ~2 days. */
async function randomWrite(db: pg.Pool, rnd: () => number, ids: string[]): Promise<void> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const when = () => new Date(Date.now() - Math.floor(rnd() * 50 * 3600_000));
  const op = rnd();
  if (op < 0.3 || ids.length === 0) {
    const { rows } = await db.query<{ id: string }>(
      `insert into intake.simplicity_batches (source, status, total_rows, parse_ms, db_ms, created_at)
       values ($1, $2, $3, $4, $5, $6) returning id`,
      [pick(['vendor_a', 'vendor_b', 'vendor_c']), pick(STATUSES), Math.floor(rnd() * 5000), ms(rnd), ms(rnd), when()],
    );
    ids.push(rows[0]!.id);
    return;
  }
  const id = pick(ids);
  if (op < 0.38) {
    await db.query('delete from intake.simplicity_batches where id = $1', [id]);
    ids.splice(ids.indexOf(id), 1);
  } else if (op < 0.75) {
    // A status step with its timings and counts, late or not.
    await db.query(
      `update intake.simplicity_batches
          set status = $2, parse_ms = $3, db_ms = $4,
              started_at = case when $2 <> 'uploaded' then coalesce(started_at, created_at) end,
              completed_at = case when $2 in ('completed', 'failed') then created_at + interval '90 seconds' end,
              skipped_rows = total_rows / 5, error_rows = case when $2 = 'failed' then total_rows / 3 else 0 end,
              inserted_rows = total_rows - total_rows / 5
        where id = $1`,
      [id, pick(STATUSES), ms(rnd), ms(rnd)],
    );
  } else if (op < 0.85) {
    await db.query('update intake.simplicity_batches set total_rows = $2, db_ms = $3 where id = $1', [
      id,
      Math.floor(rnd() * 9000),
      ms(rnd),
    ]);
  } else if (op < 0.93) {
    await db.query('update intake.simplicity_batches set source = $2 where id = $1', [id, pick(['vendor_a', 'z'])]);
  } else {
    await db.query('update intake.simplicity_batches set created_at = $2 where id = $1', [id, when()]);
  }
}

describe('ops.v_batch_performance on the hourly rollup', () => {
  const getDb = useTestDatabase();
  beforeEach(async () => {
    await getDb().pool.query(BASELINE);
  });

  it("equals the guide's definition with late writes to hours the rollup has passed, folded or not", async () => {
    const db = getDb();
    const rnd = mulberry32(42);
    const ids: string[] = [];
    // Exact with an empty rollup (everything read raw) too.
    for (let i = 0; i < 150; i++) await randomWrite(db.pool, rnd, ids);
    expect(await horizon(db.pool)).toBeNull();
    await expectEqualToView(db.pool);
    await refreshHourlyStats(db.pool);
    const r = await horizon(db.pool);
    expect(r!.getTime()).toBeLessThan(Date.now() - 3 * 3600_000);
    const before = await expectEqualToView(db.pool);
    expect(before).toBeGreaterThan(10);

    // Late writes (to batches created more than 3 hours ago: the triggers' deltas) and recent ones.
    for (let i = 0; i < 400; i++) {
      await randomWrite(db.pool, rnd, ids);
      if (rnd() < 0.05) await refreshHourlyStats(db.pool);
      if (i % 100 === 99) {
        await expectEqualToView(db.pool);
        await expectEqualToView(db.pool, 5);
      }
    }
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from sentinel.hourly_source_deltas');
    expect(rows[0]!.n).toBeGreaterThan(0);
    await expectEqualToView(db.pool);
    await refreshHourlyStats(db.pool);
    await expectEqualToView(db.pool);
    // Other windows: a single hour, a month.
    await expectEqualToView(db.pool, 1);
    await expectEqualToView(db.pool, 24 * 31);
  });

  it('a status change after the rollup passed the hour moves the counts and the averages', async () => {
    const db = getDb();
    const { rows } = await db.pool.query<{ id: string }>(
      `insert into intake.simplicity_batches (source, status, total_rows, parse_ms, db_ms, created_at)
       values ('vendor_a', 'processing', 100, 100, null, date_trunc('hour', now()) - interval '10 hours'),
              ('vendor_b', 'completed', 300, 200, 1000, date_trunc('hour', now()) - interval '10 hours'),
              ('vendor_a', 'uploaded', 50, null, null, date_trunc('hour', now()) - interval '1 hour')
       returning id`,
    );
    await refreshHourlyStats(db.pool);
    expect((await horizon(db.pool))!.getTime()).toBeGreaterThan(Date.now() - 10 * 3600_000);
    await expectEqualToView(db.pool);
    const hour = () => hourRow(db.pool, 10);
    expect(await hour()).toMatchObject({ total_batches: '2', completed_batches: '1', avg_parse_ms: '150.0' });
    expect((await hour())!.avg_db_ms).toBe('1000.0');
    expect(await hourRow(db.pool, 1)).toMatchObject({ total_batches: '1', avg_parse_ms: null });

    // The engine finishes the first batch late: a delta, read before any refresh folds it.
    await db.pool.query(
      `update intake.simplicity_batches set status = 'failed', db_ms = 500, error_rows = 100 where id = $1`,
      [rows[0]!.id],
    );
    await expectEqualToView(db.pool);
    expect(await hour()).toMatchObject({
      completed_batches: '1',
      failed_batches: '1',
      avg_db_ms: '750.0',
      avg_total_ms: '900.0',
      error_rate_pct: '25.00',
    });
    await refreshHourlyStats(db.pool);
    await expectEqualToView(db.pool);
    expect(await hour()).toMatchObject({ failed_batches: '1', avg_total_ms: '900.0' });
    // Deleted by retention: the hour's figures are the other batch's; an hour with no batch has no row.
    await db.pool.query('delete from intake.simplicity_batches where id = any($1::uuid[])', [
      [rows[0]!.id, rows[1]!.id],
    ]);
    await expectEqualToView(db.pool);
    expect(await hour()).toBeUndefined();
    await refreshHourlyStats(db.pool);
    expect(await expectEqualToView(db.pool)).toBe(1);
  });

  it('reads the rollup by its primary key and the recent hours through the hour index', async () => {
    const db = getDb();
    await db.pool.query(
      `insert into intake.simplicity_batches (source, status, created_at)
       select 'vendor_a', 'completed', now() - g * interval '17 minutes' from generate_series(0, 2000) g`,
    );
    await refreshHourlyStats(db.pool);
    await db.pool.query('analyze');
    for (const query of [
      window('ops').replace('$1::int', '168'),
      'select * from ops.v_batch_performance order by hour_bucket desc limit 24',
    ]) {
      const { rows } = await db.pool.query<{ 'QUERY PLAN': string }>(`explain analyze ${query}`);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toContain('hourly_source_stats_pkey');
      expect(plan).toContain('sentinel_batches_hour_idx');
      expect(plan).not.toMatch(/Seq Scan on simplicity_batches/);
      // The hour aggregate runs once per hour read (168, or 24), not per hour of the history.
      expect(plan).not.toMatch(/Aggregate[^\n]*loops=(?:[3-9]\d\d|\d{4,})\)/);
    }
  });

  it('survives the migration being applied again', async () => {
    const db = getDb();
    await db.pool.query(
      `insert into intake.simplicity_batches (source, status, total_rows, parse_ms, db_ms, created_at)
       values ('vendor_a', 'completed', 10, 5, 7, now() - interval '20 hours')`,
    );
    await refreshHourlyStats(db.pool);
    await db.pool.query(
      readFileSync(
        new URL('../../supabase/migrations/20261207000000_hourly_source_timings.sql', import.meta.url),
        'utf8',
      ),
    );
    // Not reset the second time: the rollup keeps its horizon and its figures.
    expect(await horizon(db.pool)).not.toBeNull();
    expect(await expectEqualToView(db.pool)).toBe(1);
  });
});

describe('the timings migration on a database whose rollup was built before it', () => {
  it('resets the horizon once; the refreshes rebuild the history, timings and p95 rows included', async () => {
    const db = await createTestDatabase({ template: 'empty' });
    const file = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
    try {
      await db.pool.query(file('sql/intake.sql'));
      for (const name of [
        '20250104000000_ops_views',
        '20261128000000_ops_views_at_scale',
        '20261205000000_sentinel_state',
        '20261206000000_hourly_source_stats',
      ])
        await db.pool.query(file(`supabase/migrations/${name}.sql`));
      await db.pool.query(BASELINE);
      await db.pool.query(
        `insert into intake.simplicity_batches
           (source, status, total_rows, parse_ms, db_ms, created_at, started_at, completed_at)
         select 'vendor_' || (g % 3), 'completed', g, g % 7 * 100, nullif(g % 5, 0) * 300,
                now() - g * interval '13 minutes', now() - g * interval '13 minutes',
                now() - g * interval '13 minutes' + (g % 11) * interval '1 minute'
           from generate_series(1, 600) g`,
      );
      // The first migration's refresh: a rollup without timings.
      await db.pool.query('select sentinel.refresh_hourly_source_stats(100000)');
      expect(await horizon(db.pool)).not.toBeNull();

      await db.pool.query(file('supabase/migrations/20261207000000_hourly_source_timings.sql'));
      expect(await horizon(db.pool)).toBeNull();
      // Exact before the rebuild (everything read raw) and after it.
      await expectEqualToView(db.pool, 24 * 10);
      await refreshHourlyStats(db.pool, 100_000);
      expect(await horizon(db.pool)).not.toBeNull();
      expect(await expectEqualToView(db.pool, 24 * 10)).toBeGreaterThan(100);
      const { rows } = await db.pool.query<{ p95: number; closed: number }>(
        `select (select count(*) from sentinel.hourly_source_p95)::int as p95,
                (select count(distinct (date_trunc('hour', completed_at, 'UTC'), source))
                   from intake.simplicity_batches
                  where completed_at < (select rolled_up_before from sentinel.hourly_source_state))::int as closed`,
      );
      expect(rows[0]!.p95).toBe(rows[0]!.closed);
      expect(rows[0]!.p95).toBeGreaterThan(100);
    } finally {
      await db.drop();
    }
  });
});
