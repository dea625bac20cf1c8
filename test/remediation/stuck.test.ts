import pg from 'pg';
import { beforeEach, describe, expect, it } from 'vitest';
import { type FailStuckOptions, failStuck, findStuck, listAudit } from '../../src/remediation/stuck.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, minutesAgo } from '../helpers/fixtures.js';
import { until } from '../helpers/wait.js';

const getDb = useTestDatabase();
beforeEach(async () => {
  await getDb().pool.query('truncate sentinel.batch_audit');
});

const options = (extra: Partial<FailStuckOptions> = {}): FailStuckOptions => ({
  olderThanMinutes: 30,
  reason: 'worker crashed',
  osUser: 'alice',
  environment: 'test',
  ...extra,
});

/** A connection of its own, named so that pg_stat_activity can tell when it waits for a lock. */
async function connect(name: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: getDb().url, application_name: name });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function waitUntilWaitingForLock(names: string[]): Promise<void> {
  await until(
    async () => {
      const { rows } = await getDb().pool.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = any($1) and wait_event_type = 'Lock'`,
        [names],
      );
      return rows[0]!.n === names.length;
    },
    `${names.join(', ')} to wait for a lock`,
  );
}

async function statuses(): Promise<Record<string, { status: string; rejection_reason: string | null }>> {
  const { rows } = await getDb().pool.query<{ id: string; status: string; rejection_reason: string | null }>(
    'select id::text, status, rejection_reason from intake.simplicity_batches',
  );
  return Object.fromEntries(rows.map((r) => [r.id, { status: r.status, rejection_reason: r.rejection_reason }]));
}

async function auditRows(): Promise<Array<{ id: number; reason: string; batch_ids: string[] }>> {
  const { rows } = await getDb().pool.query(
    'select id::int, reason, batch_ids::text[] as batch_ids from sentinel.batch_audit order by id',
  );
  return rows;
}

describe('findStuck', () => {
  it('lists only processing-status batches older than the threshold, oldest first, ages on the database clock', async () => {
    const db = getDb().pool;
    const old = await insertBatch(db, { status: 'validating', updated_at: minutesAgo(45) });
    const edge = await insertBatch(db, { status: 'processing', updated_at: minutesAgo(30.5) });
    await insertBatch(db, { status: 'inserting', updated_at: minutesAgo(29.5) });
    await insertBatch(db, { status: 'uploaded', updated_at: minutesAgo(90) });
    await insertBatch(db, { status: 'completed', updated_at: minutesAgo(90) });
    await insertBatch(db, { status: 'failed', updated_at: minutesAgo(90) });
    const found = await findStuck(db, { olderThanMinutes: 30 });
    expect(found.map((b) => b.id)).toEqual([old, edge]);
    expect(found[0]).toMatchObject({ source: 'vendor_a', status: 'validating' });
    expect(found[0]!.age_minutes).toBeGreaterThanOrEqual(45);
    expect(found[0]!.age_minutes).toBeLessThan(46);
  });

  it('filters by source', async () => {
    const db = getDb().pool;
    await insertBatch(db, { source: 'vendor_a', status: 'processing', updated_at: minutesAgo(40) });
    const b = await insertBatch(db, { source: 'vendor_b', status: 'processing', updated_at: minutesAgo(40) });
    expect((await findStuck(db, { olderThanMinutes: 30, source: 'vendor_b' })).map((x) => x.id)).toEqual([b]);
  });
});

describe('failStuck', () => {
  it('fails exactly the stuck batches and writes one audit record in the same transaction', async () => {
    const db = getDb().pool;
    const stuck = await insertBatch(db, { source: 'vendor_b', status: 'processing', updated_at: minutesAgo(50) });
    const fresh = await insertBatch(db, { status: 'processing', updated_at: minutesAgo(5) });
    const done = await insertBatch(db, { status: 'completed', updated_at: minutesAgo(50) });
    const client = await connect('fail-a');
    try {
      const result = await failStuck(client, options());
      expect(result.dbRole).toBe('postgres');
      expect(result.batches).toEqual([
        { id: stuck, source: 'vendor_b', status_before: 'processing', age_minutes: expect.closeTo(50, 0) },
      ]);
      expect(result.auditId).toEqual(expect.any(Number));
    } finally {
      await client.end();
    }
    const after = await statuses();
    expect(after[stuck]).toEqual({ status: 'failed', rejection_reason: 'worker crashed' });
    expect(after[fresh]!.status).toBe('processing');
    expect(after[done]!.status).toBe('completed');
    const { rows } = await db.query(
      "select completed_at > now() - interval '1 minute' as recent, updated_at > now() - interval '1 minute' as touched from intake.simplicity_batches where id = $1",
      [stuck],
    );
    expect(rows[0]).toEqual({ recent: true, touched: true });
    const [record] = await listAudit(db, 10);
    expect(record).toMatchObject({
      os_user: 'alice',
      db_role: 'postgres',
      reason: 'worker crashed',
      older_than_minutes: 30,
      source: null,
      environment: 'test',
      batch_ids: [stuck],
    });
  });

  it('writes no audit record when nothing is stuck', async () => {
    await insertBatch(getDb().pool, { status: 'processing', updated_at: minutesAgo(5) });
    const client = await connect('fail-none');
    try {
      expect(await failStuck(client, options())).toEqual({ dbRole: 'postgres', batches: [], auditId: null });
    } finally {
      await client.end();
    }
    expect(await auditRows()).toEqual([]);
  });

  it('leaves alone a batch that a worker completes while fail-stuck waits for its lock', async () => {
    const db = getDb().pool;
    const finishing = await insertBatch(db, { status: 'inserting', updated_at: minutesAgo(40) });
    const stuck = await insertBatch(db, { status: 'processing', updated_at: minutesAgo(40) });
    const worker = await connect('worker');
    const sentinel = await connect('fail-race');
    try {
      await worker.query('begin');
      await worker.query(
        `update intake.simplicity_batches set status = 'completed', completed_at = now() where id = $1`,
        [finishing],
      );
      const pending = failStuck(sentinel, options());
      await waitUntilWaitingForLock(['fail-race']);
      await worker.query('commit');
      const result = await pending;
      expect(result.batches.map((b) => b.id)).toEqual([stuck]);
    } finally {
      await worker.end();
      await sentinel.end();
    }
    const after = await statuses();
    expect(after[finishing]).toEqual({ status: 'completed', rejection_reason: null });
    expect(after[stuck]!.status).toBe('failed');
    expect((await auditRows()).map((r) => r.batch_ids)).toEqual([[stuck]]);
  });

  it('run twice at once, fails each batch once: disjoint audit records whose union is the stuck set', async () => {
    const db = getDb().pool;
    const stuck: string[] = [];
    for (let i = 0; i < 12; i++) {
      stuck.push(
        await insertBatch(db, {
          source: i % 2 ? 'vendor_a' : 'vendor_b',
          status: 'processing',
          updated_at: minutesAgo(40 + i),
        }),
      );
    }
    // A worker holds every stuck batch (without changing them) until both runs wait for it.
    const holder = await connect('holder');
    const a = await connect('fail-a');
    const b = await connect('fail-b');
    try {
      await holder.query('begin');
      await holder.query('select id from intake.simplicity_batches for update');
      const runs = Promise.all([
        failStuck(a, options({ reason: 'run a' })),
        failStuck(b, options({ reason: 'run b', olderThanMinutes: 45 })),
      ]);
      await waitUntilWaitingForLock(['fail-a', 'fail-b']);
      await holder.query('commit');
      const [ra, rb] = await runs;
      expect(ra.batches.length + rb.batches.length).toBe(stuck.length);
    } finally {
      await Promise.all([holder.end(), a.end(), b.end()]);
    }
    const records = await auditRows();
    const ids = records.flatMap((r) => r.batch_ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual([...stuck].sort());
    const after = await statuses();
    for (const r of records)
      for (const id of r.batch_ids) expect(after[id]).toEqual({ status: 'failed', rejection_reason: r.reason });
  });
});
