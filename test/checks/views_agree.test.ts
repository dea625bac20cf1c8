import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorSpikeCheck } from '../../src/checks/error_spike.js';
import { stuckBatchesCheck } from '../../src/checks/stuck_batches.js';
import { testConfig, testContext } from '../helpers/context.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { insertBatch } from '../helpers/fixtures.js';

/**
 * The checks read the intake tables directly (bounded, index-backed queries); the
 * ops views are what people and dashboards read. These tests pin that both tell
 * the same story on the same data.
 */
let db: TestDb;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('checks agree with the ops views', () => {
  it('error_spike reports the same rate and hour bucket as ops.v_batch_performance', async () => {
    await db.pool.query('truncate intake.simplicity_batches cascade');
    const now = new Date('2025-03-09T14:40:00Z');
    const sizes: Array<[number, number, string]> = [
      [1234, 217, '2025-03-09T14:01:00Z'],
      [777, 190, '2025-03-09T14:39:59Z'],
      [3, 0, '2025-03-09T14:20:00Z'],
      [5000, 10, '2025-03-09T13:59:59Z'], // previous hour: must not leak into 14:00
    ];
    for (const [total, errors, at] of sizes) {
      await insertBatch(db.pool, { total_rows: total, error_rows: errors, created_at: at, status: 'completed' });
    }
    const [alert] = await errorSpikeCheck.run(testContext(db.pool, now, testConfig()));
    const { rows } = await db.pool.query(
      `select error_rate_pct::float8 as rate, total_rows::float8 as total, error_rows::float8 as errors
         from ops.v_batch_performance where hour_bucket = '2025-03-09T14:00:00Z'`,
    );
    expect(rows).toHaveLength(1);
    expect(alert!.details).toMatchObject({
      hour_bucket: '2025-03-09T14:00:00Z',
      error_rate_pct: rows[0].rate,
      total_rows: rows[0].total,
      error_rows: rows[0].errors,
    });
  });

  it('stuck_batches finds the oldest processing batch the view shows', async () => {
    await db.pool.query('truncate intake.simplicity_batches cascade');
    const { rows: nowRows } = await db.pool.query<{ now: Date }>('select now() as now');
    const now = nowRows[0]!.now;
    for (const m of [42, 31, 15]) {
      await insertBatch(db.pool, { status: 'processing', updated_at: new Date(now.getTime() - m * 60_000) });
    }
    const [alert] = await stuckBatchesCheck.run(testContext(db.pool, now, testConfig()));
    const { rows } = await db.pool.query(
      `select batch_count, oldest_batch_at from ops.v_pipeline_health where status = 'processing'`,
    );
    const stuck = (alert!.details.stuck_batches as Array<{ batch_count: number; oldest_age_minutes: number }>)[0]!;
    expect(stuck.batch_count).toBe(Number(rows[0].batch_count));
    expect(stuck.oldest_age_minutes).toBeCloseTo(
      (now.getTime() - new Date(rows[0].oldest_batch_at).getTime()) / 60_000,
      1,
    );
  });
});
