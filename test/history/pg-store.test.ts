import { afterEach, describe, expect, it } from 'vitest';
import { PgRunHistory } from '../../src/history/pg-store.js';
import type { RunRecord } from '../../src/history/record.js';
import { useTestDatabase } from '../helpers/db.js';

const database = useTestDatabase();
const DAY = 86_400_000;

function record(timestamp: Date, environment = 'prod'): RunRecord {
  return {
    timestamp: timestamp.toISOString(),
    environment,
    overall_status: 'healthy',
    duration_ms: 5,
    checks: [],
    schema_cache: { probed: true, ok: true },
  };
}

const opened: PgRunHistory[] = [];
function store(environment = 'prod', options: { readOnly?: boolean } = {}): PgRunHistory {
  const s = new PgRunHistory(database().url, environment, 30, options);
  opened.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await database().pool.query('truncate sentinel.run_history');
});

describe('PgRunHistory (replicas)', () => {
  it('records runs per environment and reads a window in order, through a read-only pool', async () => {
    const t = Date.parse('2025-01-04T10:00:00Z');
    await store().append(record(new Date(t + 60_000)));
    await store().append(record(new Date(t)));
    await store('dev').append(record(new Date(t), 'dev'));
    const got = await store('prod', { readOnly: true }).read(new Date(t), new Date(t + 60_000));
    expect(got.map((r) => r.timestamp)).toEqual(['2025-01-04T10:00:00.000Z', '2025-01-04T10:01:00.000Z']);
    expect(got[0]).toEqual(record(new Date(t)));
  });

  it("deletes this environment's rows past the retention when it records a run", async () => {
    const now = Date.parse('2025-02-01T00:00:00Z');
    const old = new Date(now - 30 * DAY - 1);
    const edge = new Date(now - 30 * DAY);
    for (const at of [old, edge]) await store().append(record(at));
    await store('dev').append(record(old, 'dev'));
    await store().append(record(new Date(now)));
    const { rows } = await database().pool.query<{ environment: string; at: Date }>(
      'select environment, at from sentinel.run_history order by environment, at',
    );
    expect(rows.map((r) => `${r.environment} ${r.at.toISOString()}`)).toEqual([
      `dev ${old.toISOString()}`,
      `prod ${edge.toISOString()}`,
      `prod ${new Date(now).toISOString()}`,
    ]);
  });

  it('says to run sentinel migrate when the table is missing', async () => {
    await database().pool.query('alter table sentinel.run_history rename to run_history_moved');
    try {
      await expect(store().append(record(new Date()))).rejects.toThrow(
        'the run history table sentinel.run_history does not exist: run `sentinel migrate` (replicas need it)',
      );
    } finally {
      await database().pool.query('alter table sentinel.run_history_moved rename to run_history');
    }
  });
});
