import { describe, expect, it } from 'vitest';
import { stuckBatchesCheck } from '../../src/checks/stuck_batches.js';
import { testConfig, testContext } from '../helpers/context.js';
import { useTestDatabase } from '../helpers/db.js';
import { type BatchStatus, insertBatch } from '../helpers/fixtures.js';

const NOW = new Date('2025-01-04T10:15:30Z');
const minutesAgo = (m: number): Date => new Date(NOW.getTime() - m * 60_000);

const database = useTestDatabase();

async function batch(status: BatchStatus, updatedMinutesAgo: number, source = 'vendor_a'): Promise<string> {
  return insertBatch(database().pool, {
    source,
    status,
    created_at: minutesAgo(updatedMinutesAgo + 5),
    updated_at: minutesAgo(updatedMinutesAgo),
  });
}

const run = (config = testConfig()) => stuckBatchesCheck.run(testContext(database().pool, NOW, config));

describe('stuck_batches', () => {
  it('reports the guide example: statuses in pipeline order with counts and oldest ages', async () => {
    await batch('validating', 12.7);
    await batch('processing', 15.3);
    await batch('processing', 11);
    const alerts = await run();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      check: 'stuck_batches',
      level: 'critical',
      message: '3 batches stuck > 10m: processing(2), validating(1)',
    });
    expect(alerts[0]!.details.stuck_batches).toEqual([
      { status: 'processing', batch_count: 2, oldest_age_minutes: 15.3 },
      { status: 'validating', batch_count: 1, oldest_age_minutes: 12.7 },
    ]);
  });

  it('says "1 batch" when a single batch is stuck', async () => {
    await batch('inserting', 30);
    const [alert] = await run();
    expect(alert!.message).toBe('1 batch stuck > 10m: inserting(1)');
  });

  it('does not alert just under the threshold and alerts just over it', async () => {
    await batch('processing', 9.99);
    expect(await run()).toEqual([]);
    await batch('processing', 10.01);
    const [alert] = await run();
    expect(alert!.message).toBe('1 batch stuck > 10m: processing(1)');
  });

  it('counts only the stuck batches, not every batch in that status', async () => {
    await batch('processing', 20);
    await batch('processing', 2);
    await batch('processing', 1);
    const [alert] = await run();
    expect(alert!.message).toBe('1 batch stuck > 10m: processing(1)');
  });

  it('ignores uploaded, completed and failed batches however old', async () => {
    await batch('uploaded', 500);
    await batch('completed', 500);
    await batch('failed', 500);
    expect(await run()).toEqual([]);
  });

  it('honours a configured threshold and prints it as written', async () => {
    await batch('processing', 20);
    expect(await run(testConfig({ checks: { stuck_batches: { threshold_minutes: 30 } } }))).toEqual([]);
    const [alert] = await run(testConfig({ checks: { stuck_batches: { threshold_minutes: 7.5 } } }));
    expect(alert!.message).toBe('1 batch stuck > 7.5m: processing(1)');
  });

  it('names the oldest stuck batches with id, source and age', async () => {
    const oldest = await batch('processing', 45, 'vendor_x');
    await batch('validating', 20, 'vendor_b');
    const [alert] = await run();
    const named = alert!.details.oldest_batches as Array<Record<string, unknown>>;
    expect(named[0]).toEqual({ id: oldest, source: 'vendor_x', status: 'processing', age_minutes: 45 });
    expect(named.map((b) => b.source)).toEqual(['vendor_x', 'vendor_b']);
  });

  it('names the status each batch is in, never "processing" for all', async () => {
    const id = await batch('validating', 14);
    const [alert] = await run();
    expect(alert!.message).toBe('1 batch stuck > 10m: validating(1)');
    expect(alert!.details.oldest_batches).toEqual([{ id, source: 'vendor_a', status: 'validating', age_minutes: 14 }]);
  });

  it('keeps a hostile source out of the message and cuts it in the details', async () => {
    const evil = `v\u202e\r${'y'.repeat(300)}`;
    const id = await batch('inserting', 120, evil);
    const [alert] = await run();
    expect(alert!.message).toBe('1 batch stuck > 10m: inserting(1)');
    const [named] = alert!.details.oldest_batches as Array<{ id: string; source: string }>;
    expect(named).toEqual(expect.objectContaining({ id, source: `${evil.slice(0, 99)}…` }));
  });
});
