/**
 * sentinel.hourly_source_stats (supabase/migrations/…_hourly_source_stats.sql, src/db/hourly.ts):
 * after any sequence of writes, concurrent or not, refreshed or not, backfilled in chunks or
 * not, what readHourlyStats returns equals a from-scratch aggregate of intake.simplicity_batches.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  bucketSeconds,
  buildHourlyRollup,
  emptyHourlyStats,
  type HourlySourceStats,
  type HourlyStatsRead,
  histogramPercentileSeconds,
  readHourlyStats,
  refreshHourlyStats,
} from '../../src/db/hourly.js';
import { migrate } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/log.js';
import { mulberry32 } from '../../src/util/random.js';
import { createTestDatabase, type TestDb, useTestDatabase } from '../helpers/db.js';
import { explainQueries } from '../helpers/explain.js';
import { within } from '../helpers/wait.js';

/** The rollup's migrations, in order: applying them again must change nothing. */
const MIGRATIONS = ['20261206000000_hourly_source_stats.sql', '20261207000000_hourly_source_timings.sql'].map((f) =>
  readFileSync(new URL(`../../supabase/migrations/${f}`, import.meta.url), 'utf8'),
);
const FROM = new Date('2026-02-27T00:00:00Z');
const TO = new Date('2100-01-01T00:00:00Z');
const BASE = Date.parse('2026-03-01T00:00:00Z');
const HOSTILE = [
  'vendor_a',
  'vendor_b',
  "x'); drop table intake.simplicity_batches; --",
  'bidi \u202e evil \n newline',
  `long_${'z'.repeat(300)}`,
];
const STATUSES = ['uploaded', 'processing', 'validating', 'inserting', 'completed', 'failed'] as const;

/** What the rollup must say, computed from the raw table alone. */
async function fromScratch(db: pg.Pool | pg.ClientBase): Promise<HourlySourceStats[]> {
  const hour = (col: string) => `date_trunc('hour', ${col} at time zone 'UTC') at time zone 'UTC'`;
  const figures = await db.query<{
    source: string;
    hour_start: Date;
    batches: number;
    completed: number;
    failed: number;
    total_rows: number;
    inserted_rows: number;
    skipped_rows: number;
    error_rows: number;
  }>(
    `select source, ${hour('created_at')} as hour_start, count(*)::float8 as batches,
            (count(*) filter (where status = 'completed'))::float8 as completed,
            (count(*) filter (where status = 'failed'))::float8 as failed,
            sum(total_rows)::float8 as total_rows, sum(inserted_rows)::float8 as inserted_rows,
            sum(skipped_rows)::float8 as skipped_rows, sum(error_rows)::float8 as error_rows
       from intake.simplicity_batches
      where created_at >= $1 and created_at < $2
      group by 1, 2`,
    [FROM, TO],
  );
  const durations = await db.query<{ source: string; hour_start: Date; bucket: number; n: number }>(
    `select source, ${hour('completed_at')} as hour_start,
            sentinel.duration_bucket(completed_at - started_at)::int as bucket, count(*)::float8 as n
       from intake.simplicity_batches
      where status = 'completed' and started_at is not null and completed_at >= created_at
        and completed_at >= $1 and completed_at < $2
      group by 1, 2, 3`,
    [FROM, TO],
  );
  const rows = new Map<string, HourlySourceStats & { buckets: [number, number][] }>();
  const at = (source: string, hourStart: Date) => {
    const key = `${hourStart.toISOString()}|${source}`;
    let r = rows.get(key);
    if (!r) {
      r = { ...emptyHourlyStats(source, hourStart), buckets: [] };
      rows.set(key, r);
    }
    return r;
  };
  for (const f of figures.rows) {
    Object.assign(at(f.source, f.hour_start), {
      batches: f.batches,
      completedBatches: f.completed,
      failedBatches: f.failed,
      totalRows: f.total_rows,
      insertedRows: f.inserted_rows,
      skippedRows: f.skipped_rows,
      errorRows: f.error_rows,
    });
  }
  for (const d of durations.rows) at(d.source, d.hour_start).buckets.push([d.bucket, d.n]);
  return [...rows.values()]
    .map(({ buckets, ...r }) => {
      const p95 = histogramPercentileSeconds(buckets, 0.95);
      return {
        ...r,
        finishedBatches: buckets.reduce((n, [, c]) => n + c, 0),
        processingP95Minutes: p95 === null ? null : p95 / 60,
      };
    })
    .sort((a, b) =>
      a.source < b.source ? -1 : a.source > b.source ? 1 : a.hourStart.getTime() - b.hourStart.getTime(),
    );
}

async function expectRollupExact(db: pg.Pool): Promise<HourlySourceStats[]> {
  return (await expectRollupExactRead(db)).rows;
}

async function expectRollupExactRead(db: pg.Pool): Promise<HourlyStatsRead> {
  const read = await readHourlyStats(db, { from: FROM, to: TO });
  const expected = await fromScratch(db);
  expect(read.rows).toEqual(expected);
  // The hours before the horizon alone: the rollup and its deltas, no raw batch.
  if (read.rolledUpBefore) {
    const rolled = await readHourlyStats(db, { from: FROM, to: read.rolledUpBefore });
    expect(rolled.rows).toEqual(expected.filter((r) => r.hourStart < read.rolledUpBefore!));
  }
  return read;
}

/** One random write of the engine (or of a person correcting data), on `db`. */
async function randomWrite(db: pg.Pool | pg.ClientBase, rnd: () => number, ids: string[]): Promise<void> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  // Most batches in a past window (written late: the triggers' path), some in the last
  // five hours (the engine's usual writes: read raw until the horizon passes them).
  const when = () =>
    rnd() < 0.75
      ? new Date(BASE + Math.floor(rnd() * 6 * 3600_000))
      : new Date(Date.now() - Math.floor(rnd() * 5 * 3600_000));
  const op = rnd();
  if (op < 0.3 || ids.length === 0) {
    const created = when();
    const { rows } = await db.query<{ id: string }>(
      `insert into intake.simplicity_batches (source, status, total_rows, created_at) values ($1, $2, $3, $4)
       returning id`,
      [pick(HOSTILE), pick(['uploaded', 'uploaded', 'processing', 'failed']), Math.floor(rnd() * 5000), created],
    );
    ids.push(rows[0]!.id);
    return;
  }
  const id = pick(ids);
  if (op < 0.4) {
    await db.query('delete from intake.simplicity_batches where id = $1', [id]);
    ids.splice(ids.indexOf(id), 1);
  } else if (op < 0.75) {
    // A status step; completion fills in the counts and times (a few minutes to hours after creation).
    const status = pick(STATUSES);
    await db.query(
      `update intake.simplicity_batches
          set status = $2,
              started_at = case when $2 <> 'uploaded' then coalesce(started_at, created_at + $3 * interval '1 second')
                           end,
              completed_at = case when $2 in ('completed', 'failed')
                                  then created_at + $4 * interval '1 second' end,
              inserted_rows = case when $2 = 'completed' then total_rows * 8 / 10 else inserted_rows end,
              skipped_rows = case when $2 = 'completed' then total_rows / 10 else skipped_rows end,
              error_rows = case when $2 in ('completed', 'failed') then total_rows / 10 else error_rows end
        where id = $1`,
      [id, status, Math.floor(rnd() * 60), 60 + Math.floor(rnd() * 4 * 3600)],
    );
  } else if (op < 0.85) {
    await db.query('update intake.simplicity_batches set total_rows = $2, error_rows = $3 where id = $1', [
      id,
      Math.floor(rnd() * 9000),
      Math.floor(rnd() * 100),
    ]);
  } else if (op < 0.93) {
    await db.query('update intake.simplicity_batches set source = $2 where id = $1', [id, pick(HOSTILE)]);
  } else {
    // created_at never moves in the engine; a correction might.
    await db.query('update intake.simplicity_batches set created_at = $2 where id = $1', [id, when()]);
  }
}

describe('the hourly rollup', () => {
  const getDb = useTestDatabase();

  it('equals a from-scratch aggregate after 600 random inserts, updates and deletes, refreshed or not', async () => {
    const db = getDb();
    const rnd = mulberry32(15);
    const ids: string[] = [];
    for (let i = 0; i < 600; i++) {
      await randomWrite(db.pool, rnd, ids);
      if (rnd() < 0.05) await refreshHourlyStats(db.pool);
      // Exact between refreshes too: the reader adds the deltas not folded yet.
      if (i % 150 === 149) await expectRollupExact(db.pool);
    }
    const before = await expectRollupExact(db.pool);
    // Without the processing time: the same counts, no histogram.
    const counts = await readHourlyStats(db.pool, { from: FROM, to: TO, processingTime: false });
    expect(counts.rows).toEqual(
      before
        .filter((r) => r.batches !== 0 || r.totalRows !== 0)
        .map((r) => ({ ...r, finishedBatches: 0, processingP95Minutes: null })),
    );
    const r = await refreshHourlyStats(db.pool);
    expect(r.folded).toBeGreaterThan(0);
    expect(await expectRollupExact(db.pool)).toEqual(before);
    // Every delta is folded, and no zero row is left behind the horizon (past it, rows are partial until
    // their hour is recomputed, and readers do not look at them).
    const { rows } = await db.pool.query<{ deltas: number; empty: number }>(
      `select (select count(*) from sentinel.hourly_source_deltas)::int as deltas,
              (select count(*) from sentinel.hourly_source_stats
                where batches = 0 and hour_start < (select rolled_up_before from sentinel.hourly_source_state))::int
                as empty`,
    );
    expect(rows[0]).toEqual({ deltas: 0, empty: 0 });
    // The hostile names are data like any other.
    expect(new Set(before.map((row) => row.source))).toEqual(new Set(HOSTILE));
    expect(before.reduce((n, row) => n + row.finishedBatches, 0)).toBeGreaterThan(2);
  });

  it('holds a p95 within 2.5 % (+ 0.5 s) of percentile_cont over the exact durations', async () => {
    const db = getDb();
    const rnd = mulberry32(7);
    const values: string[] = [];
    for (let i = 0; i < 300; i++) {
      const created = new Date(BASE + Math.floor(rnd() * 3 * 3600_000));
      const seconds = rnd() < 0.1 ? rnd() * 2 : 10 * Math.exp(rnd() * 6);
      values.push(
        `('vendor_a', 'completed', '${created.toISOString()}', '${created.toISOString()}', ` +
          `'${new Date(created.getTime() + seconds * 1000).toISOString()}')`,
      );
    }
    await db.pool.query(
      `insert into intake.simplicity_batches (source, status, created_at, started_at, completed_at)
       values ${values.join(', ')}`,
    );
    const read = await readHourlyStats(db.pool, { from: FROM, to: TO });
    const exact = await db.pool.query<{ hour_start: Date; p95: number }>(
      `select date_trunc('hour', completed_at at time zone 'UTC') at time zone 'UTC' as hour_start,
              percentile_cont(0.95) within group (order by extract(epoch from completed_at - started_at))::float8
                as p95
         from intake.simplicity_batches group by 1`,
    );
    expect(exact.rows.length).toBeGreaterThanOrEqual(3);
    for (const e of exact.rows) {
      const row = read.rows.find((r) => r.hourStart.getTime() === e.hour_start.getTime());
      const estimate = row!.processingP95Minutes! * 60;
      expect(Math.abs(estimate - e.p95)).toBeLessThanOrEqual(0.0247 * e.p95 + 0.5);
    }
    expect(bucketSeconds(0)).toBe(0.5);
    expect(histogramPercentileSeconds([], 0.95)).toBeNull();
  });

  it('writers never wait for each other or for a refresh, and no concurrent write is lost', async () => {
    const db = getDb();
    await db.pool.query(
      `insert into intake.simplicity_batches (source, status, total_rows, created_at)
       select 'vendor_a', 'uploaded', 100, '2026-03-01T10:00:00Z'::timestamptz + g * interval '1 second'
       from generate_series(1, 4) g`,
    );
    const ids = (
      await db.pool.query<{ id: string }>('select id from intake.simplicity_batches order by created_at')
    ).rows.map((r) => r.id);
    const a = new pg.Client({ connectionString: db.url });
    const b = new pg.Client({ connectionString: db.url });
    const refresher = new pg.Client({ connectionString: db.url });
    await Promise.all([a.connect(), b.connect(), refresher.connect()]);
    try {
      // Two engine transactions on the same source and hour, both open at once.
      await a.query('begin');
      await b.query('begin');
      await a.query(
        `update intake.simplicity_batches set status = 'completed', started_at = created_at,
                completed_at = created_at + interval '5 minutes', error_rows = 7 where id = $1`,
        [ids[0]],
      );
      // Would block behind A if the trigger updated a shared rollup row.
      await within(
        b.query(`update intake.simplicity_batches set status = 'failed', error_rows = 100 where id = $1`, [ids[1]]),
        10_000,
        "B's update while A is open",
      );
      await within(
        b.query(
          `insert into intake.simplicity_batches (source, status, total_rows, created_at)
           values ('vendor_a', 'uploaded', 50, '2026-03-01T10:30:00Z')`,
        ),
        10_000,
        "B's insert while A is open",
      );
      // A refresh while both are open neither waits for them nor folds what they have not committed.
      const r1 = await within(refreshHourlyStats(refresher), 10_000, 'a refresh while A and B are open');
      // Only the four committed inserts are folded (one delta each); A and B stay for later.
      expect(r1.folded).toBe(4);
      await a.query('commit');
      await refreshHourlyStats(refresher);
      await b.query('commit');
      await expectRollupExact(db.pool);
      await refreshHourlyStats(refresher);
      const rows = await expectRollupExact(db.pool);
      expect(rows).toMatchObject([
        { source: 'vendor_a', batches: 5, completedBatches: 1, failedBatches: 1, errorRows: 107, totalRows: 450 },
      ]);
    } finally {
      await Promise.allSettled([a.end(), b.end(), refresher.end()]);
    }
  });

  it('two connections writing at full speed while a third refreshes lose nothing', async () => {
    const db = getDb();
    const clients = [0, 1, 2].map(() => new pg.Client({ connectionString: db.url }));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      let writing = true;
      const writers = [0, 1].map(async (w) => {
        const rnd = mulberry32(100 + w);
        const ids: string[] = [];
        for (let i = 0; i < 250; i++) {
          // Some writes in explicit multi-statement transactions, as a batch loader does.
          if (i % 25 === 0) await clients[w]!.query('begin');
          await randomWrite(clients[w]!, rnd, ids);
          if (i % 25 === 24) await clients[w]!.query('commit');
        }
      });
      let refreshes = 0;
      const refreshing = (async () => {
        while (writing) {
          await refreshHourlyStats(clients[2]!);
          refreshes++;
        }
      })();
      await Promise.all(writers);
      writing = false;
      await refreshing;
      expect(refreshes).toBeGreaterThan(0);
      await expectRollupExact(db.pool);
      await refreshHourlyStats(db.pool);
      await expectRollupExact(db.pool);
    } finally {
      await Promise.allSettled(clients.map((c) => c.end()));
    }
  });

  it('a truncate empties the rollup', async () => {
    const db = getDb();
    await db.pool.query(
      `insert into intake.simplicity_batches (source, status, created_at) values ('vendor_a', 'uploaded', now())`,
    );
    await refreshHourlyStats(db.pool);
    await db.pool.query('truncate intake.simplicity_batches cascade');
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from sentinel.hourly_source_stats');
    expect(rows[0]!.n).toBe(0);
  });

  it('reads the rollup through its primary keys, never the batches, for a range before its horizon', async () => {
    const db = getDb();
    await refreshHourlyStats(db.pool);
    const client = await db.pool.connect();
    const plans: string[] = [];
    try {
      await client.query('begin');
      await client.query('set local enable_seqscan = off');
      // The state query runs for real; the rollup query is EXPLAINed instead.
      const recorder = {
        query: async (text: string, values?: unknown[]) => {
          if (text.startsWith('select s.rolled_up_before')) return client.query(text, values);
          const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain ${text}`, values);
          plans.push(rows.map((r) => r['QUERY PLAN']).join('\n'));
          return { rows: [] };
        },
      };
      const read = await readHourlyStats(recorder as unknown as pg.Pool, {
        from: new Date(Date.now() - 8 * 86_400_000),
        to: new Date(Date.now() - 86_400_000),
        sources: ['vendor_a'],
      });
      expect(read.rolledUpBefore).not.toBeNull();
    } finally {
      await client.query('rollback');
      client.release();
    }
    expect(plans).toHaveLength(1);
    expect(plans[0]).toContain('hourly_source_stats_pkey');
    // Closed completion hours: one p95 row per source-hour, not their histograms.
    expect(plans[0]).toContain('hourly_source_p95_pkey');
    expect(plans[0]).not.toContain('simplicity_batches');
  });

  it('the last hours are read from the batches through the hour index', async () => {
    const db = getDb();
    await refreshHourlyStats(db.pool);
    const plans = await explainQueries(db.pool, async (q) => {
      // explainQueries answers the state query with no row: everything is read raw.
      await readHourlyStats(q, { from: new Date(Date.now() - 3600_000), to: new Date(Date.now() + 3600_000) });
    });
    expect(plans[1]).toContain('sentinel_batches_hour_idx');
  });

  it("the engine's usual writes call no trigger; late ones append a delta", async () => {
    const db = getDb();
    await db.pool.query(
      `insert into intake.simplicity_batches (source, status, created_at)
       values ('fresh', 'uploaded', now()), ('late', 'uploaded', now() - interval '10 hours')`,
    );
    await db.pool.query(`update intake.simplicity_batches set status = 'completed', started_at = created_at,
                           completed_at = now(), total_rows = 10`);
    const { rows } = await db.pool.query<{ source: string; n: number }>(
      'select source, count(*)::int as n from sentinel.hourly_source_deltas group by 1 order by 1',
    );
    // The late batch: its insert, its figures, its processing time.
    expect(rows).toEqual([{ source: 'late', n: 3 }]);
  });
});

describe('the hourly rollup on a database with history', () => {
  async function withHistory(): Promise<TestDb> {
    const db = await createTestDatabase({ template: 'empty' });
    await db.pool.query(readFileSync(new URL('../../sql/intake.sql', import.meta.url), 'utf8'));
    const rnd = mulberry32(3);
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) await randomWrite(db.pool, rnd, ids);
    return db;
  }

  it('the refreshes backfill the history in bounded chunks while writes go on', async () => {
    const db = await withHistory();
    try {
      await migrate(db.url);
      // Exact before any refresh too: everything is read raw.
      expect((await expectRollupExactRead(db.pool)).rolledUpBefore).toBeNull();
      const rnd = mulberry32(4);
      const ids = (await db.pool.query<{ id: string }>('select id from intake.simplicity_batches')).rows.map(
        (r) => r.id,
      );
      // The first refresh starts at the first batch's hour; chunks of two hours, the engine writing in between.
      const first = await refreshHourlyStats(db.pool, 2);
      expect(first.rolledUpBefore).toEqual(new Date(BASE + 2 * 3600_000));
      let last = first;
      for (let i = 0; i < 3; i++) {
        for (let w = 0; w < 10; w++) await randomWrite(db.pool, rnd, ids);
        last = await refreshHourlyStats(db.pool, 2);
        expect(last.recomputedHours).toBe(2);
        await expectRollupExact(db.pool);
      }
      expect(last.rolledUpBefore).toEqual(new Date(BASE + 8 * 3600_000));
      expect(last.pendingHours).toBeGreaterThan(1000);
      const done = await refreshHourlyStats(db.pool, 100_000);
      expect(done.pendingHours).toBe(0);
      // Three hours before the oldest transaction (this one's, at most): the hours of the last
      // three or four are read raw.
      expect(done.rolledUpBefore!.getTime()).toBeGreaterThan(Date.now() - 5 * 3600_000);
      expect(done.rolledUpBefore!.getTime()).toBeLessThanOrEqual(Date.now() - 3 * 3600_000);
      await expectRollupExact(db.pool);

      // Migrating again changes nothing and keeps it exact.
      const again = await migrate(db.url);
      expect(again.every((m) => m.status === 'unchanged')).toBe(true);
      for (const sql of MIGRATIONS) await db.pool.query(sql);
      await expectRollupExact(db.pool);
      expect((await refreshHourlyStats(db.pool)).rolledUpBefore).toEqual(done.rolledUpBefore);
    } finally {
      await db.drop();
    }
  });

  it('buildHourlyRollup (what `sentinel migrate` runs) backfills everything', async () => {
    const db = await withHistory();
    try {
      await migrate(db.url);
      await buildHourlyRollup(db.url, silentLogger);
      await expectRollupExact(db.pool);
      const { rows } = await db.pool.query<{ n: number }>(
        'select count(*)::int as n from sentinel.hourly_source_stats',
      );
      expect(rows[0]!.n).toBeGreaterThan(5);
    } finally {
      await db.drop();
    }
  });
});
