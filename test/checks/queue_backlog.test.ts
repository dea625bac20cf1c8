import { describe, expect, it } from 'vitest';
import { queueBacklogCheck } from '../../src/checks/queue_backlog.js';
import { runChecks } from '../../src/checks/runner.js';
import type { ConfigFile } from '../../src/config/schema.js';
import { testConfig, testContext } from '../helpers/context.js';
import { useTestDatabase } from '../helpers/db.js';
import { explainQueries } from '../helpers/explain.js';
import { type BatchStatus, insertBatch } from '../helpers/fixtures.js';

const NOW = new Date('2025-01-04T10:15:30Z');
const ago = (minutes: number): Date => new Date(NOW.getTime() - minutes * 60_000);

const database = useTestDatabase();

async function batch(minutesWaiting: number, status: BatchStatus = 'uploaded', source = 'vendor_a'): Promise<string> {
  return insertBatch(database().pool, {
    source,
    status,
    created_at: ago(minutesWaiting),
    updated_at: ago(minutesWaiting),
  });
}

const run = (file: ConfigFile = {}) => queueBacklogCheck.run(testContext(database().pool, NOW, testConfig(file)));

describe('queue_backlog', () => {
  it('reports the spec example with the oldest waiting batches', async () => {
    const oldest = await batch(95.25, 'uploaded', 'vendor_b');
    const second = await batch(61);
    await batch(45);
    await batch(31);
    await batch(20); // not waiting long enough
    const alerts = await run();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      check: 'queue_backlog',
      level: 'warning',
      message: '4 batches waiting > 30m in uploaded',
    });
    expect(alerts[0]!.details).toMatchObject({ total_waiting: 4, threshold_minutes: 30, oldest_age_minutes: 95.3 });
    const named = alerts[0]!.details.oldest_batches as Array<{ id: string; source: string; age_minutes: number }>;
    expect(named.map((b) => b.age_minutes)).toEqual([95.3, 61, 45, 31]);
    expect(named.slice(0, 2)).toEqual([
      { id: oldest, source: 'vendor_b', age_minutes: 95.3 },
      { id: second, source: 'vendor_a', age_minutes: 61 },
    ]);
  });

  it('says "1 batch" for a single waiting batch', async () => {
    await batch(40);
    expect((await run())[0]!.message).toBe('1 batch waiting > 30m in uploaded');
  });

  it('alerts only strictly above threshold_minutes', async () => {
    await batch(30); // exactly 30m: not above
    await batch(29.99);
    expect(await run()).toEqual([]);
    await batch(30.01);
    expect((await run())[0]!.details).toMatchObject({ total_waiting: 1 });
  });

  it('counts every waiting batch but names only the five oldest', async () => {
    for (let i = 0; i < 8; i++) await batch(40 + i);
    const [alert] = await run();
    expect(alert!.message).toBe('8 batches waiting > 30m in uploaded');
    expect((alert!.details.oldest_batches as unknown[]).length).toBe(5);
    expect(alert!.details.oldest_age_minutes).toBe(47);
  });

  it('judges only the uploaded status (stuck_batches watches the others)', async () => {
    for (const status of ['processing', 'validating', 'inserting', 'completed', 'failed'] as const)
      await batch(120, status);
    expect(await run()).toEqual([]);
  });

  it('takes the threshold from checks.queue_backlog.threshold_minutes', async () => {
    await batch(20);
    expect(await run()).toEqual([]);
    expect((await run({ checks: { queue_backlog: { threshold_minutes: 15 } } }))[0]!.message).toBe(
      '1 batch waiting > 15m in uploaded',
    );
  });

  it('keeps a hostile source out of the message and cuts it in the details', async () => {
    const evil = `v\u001b[31m\n${'x'.repeat(200)}`;
    const id = await batch(40, 'uploaded', evil);
    const [alert] = await run();
    expect(alert!.message).toBe('1 batch waiting > 30m in uploaded');
    const [named] = alert!.details.oldest_batches as Array<{ id: string; source: string }>;
    expect(named).toEqual({ id, source: `${evil.slice(0, 99)}…`, age_minutes: 40 });
  });

  it('returns nothing on empty tables', async () => {
    expect(await run()).toEqual([]);
  });

  it('reads the in-flight partial index, whatever the history', async () => {
    const plans = await explainQueries(database().pool, (db) =>
      queueBacklogCheck.run(testContext(db, NOW, testConfig())),
    );
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatch(/sentinel_batches_inflight_idx/);
    expect(plans[0]).not.toMatch(/Seq Scan/);
  });

  it('is skipped when disabled in config', async () => {
    await batch(120);
    const config = testConfig({ checks: { queue_backlog: { enabled: false } } });
    const { alerts, checks } = await runChecks([queueBacklogCheck], testContext(database().pool, NOW, config));
    expect(alerts).toEqual([]);
    expect(checks[0]).toMatchObject({ name: 'queue_backlog', outcome: 'skipped', reason: 'disabled in config' });
  });
});
