import { describe, expect, it } from 'vitest';
import { processingTimeCheck } from '../../src/checks/processing_time.js';
import { runChecks } from '../../src/checks/runner.js';
import type { ConfigFile } from '../../src/config/schema.js';
import { testConfig, testContext } from '../helpers/context.js';
import { useTestDatabase } from '../helpers/db.js';
import { explainQueries } from '../helpers/explain.js';
import { type BatchFixture, insertBatch } from '../helpers/fixtures.js';

const NOW = new Date('2025-01-04T10:15:30Z');
const ago = (minutes: number): Date => new Date(NOW.getTime() - minutes * 60_000);

const database = useTestDatabase();

/** A batch completed `completedMinutesAgo` before NOW after `seconds` of processing. */
async function finished(completedMinutesAgo: number, seconds: number, extra: BatchFixture = {}): Promise<void> {
  const completed = ago(completedMinutesAgo);
  const started = new Date(completed.getTime() - seconds * 1000);
  await insertBatch(database().pool, {
    status: 'completed',
    created_at: new Date(started.getTime() - 60_000),
    started_at: started,
    completed_at: completed,
    ...extra,
  });
}

const run = (file: ConfigFile = {}) => processingTimeCheck.run(testContext(database().pool, NOW, testConfig(file)));

describe('processing_time', () => {
  it('gives the guide message and details', async () => {
    await finished(10, 372); // 6.2m
    await finished(20, 372);
    await finished(30, 60);
    // percentile_cont over [1, 6.2, 6.2]: p50 at position 1 and p95 at 1.9 are both 6.2m.
    expect(await run()).toEqual([
      {
        check: 'processing_time',
        level: 'warning',
        message: 'p95 batch processing time 6.2m > 5.0m SLO',
        details: { p50_minutes: 6.2, p95_minutes: 6.2, max_minutes: 6.2, batch_count: 3, threshold_minutes: 5 },
      },
    ]);
  });

  it('interpolates p95 like percentile_cont, so one slow batch among twenty barely moves it', async () => {
    // 19 batches of 2m and one of 8m: p95 sits at position 0.95 * 19 = 18.05, 2 + 0.05 * 6 = 2.3m.
    for (let i = 0; i < 19; i++) await finished(10 + i, 120);
    await finished(5, 480);
    expect(await run()).toEqual([]);
    const [alert] = await run({ checks: { processing_time: { p95_minutes: 2.25 } } });
    expect(alert!.message).toBe('p95 batch processing time 2.30m > 2.25m SLO');
    expect(alert!.details).toEqual({
      p50_minutes: 2,
      p95_minutes: 2.3,
      max_minutes: 8,
      batch_count: 20,
      threshold_minutes: 2.25,
    });
  });

  it('alerts only strictly above p95_minutes', async () => {
    await finished(10, 300); // exactly 5m
    expect(await run()).toEqual([]);
    await database().pool.query('truncate intake.simplicity_batches cascade');
    await finished(10, 299);
    expect(await run()).toEqual([]);
    await database().pool.query('truncate intake.simplicity_batches cascade');
    await finished(10, 301); // 5.02m once rounded to 2 decimals
    const [alert] = await run();
    expect(alert!.message).toBe('p95 batch processing time 5.02m > 5.00m SLO');
    expect(alert!.details.p95_minutes).toBe(5.02);
  });

  it('measures p95, p50 and max in seconds as judged: p95_seconds > threshold is its test', async () => {
    const measuredBy = async (file: ConfigFile = {}) => {
      const ctx = testContext(database().pool, NOW, testConfig(file));
      const alerts = await processingTimeCheck.run(ctx);
      return { alerts, measured: ctx.measured };
    };
    // Nothing completed: the count only, no p95 (a rule has nothing to compare).
    expect((await measuredBy()).measured).toEqual({ batches: 0 });
    await finished(10, 300.2); // 5.0033m: 5.00m judged, so no alert
    const exact = await measuredBy();
    expect(exact.alerts).toEqual([]);
    expect(exact.measured).toEqual({ batches: 1, p95_seconds: 300, p50_seconds: 300, max_seconds: 300 });
    expect(exact.measured.p95_seconds).toBe(5 * 60); // the exported threshold: not above it
    await finished(20, 60);
    const two = await measuredBy({ checks: { processing_time: { p95_minutes: 4.5 } } });
    expect(two.alerts).toHaveLength(1);
    // percentile_cont over [1m, 5.0033m]: p50 3.0017m → 3.00m, p95 4.8032m → 4.80m.
    expect(two.measured).toEqual({ batches: 2, p95_seconds: 4.8 * 60, p50_seconds: 180, max_seconds: 300 });
    expect(Number(two.measured.p95_seconds)).toBeGreaterThan(4.5 * 60);
    expect(processingTimeCheck.measurements.map((m) => m.key)).toEqual([
      'batches',
      'p95_seconds',
      'p50_seconds',
      'max_seconds',
    ]);
  });

  it('takes the SLO from checks.processing_time.p95_minutes', async () => {
    await finished(10, 600);
    expect(await run({ checks: { processing_time: { p95_minutes: 10 } } })).toEqual([]);
    expect((await run({ checks: { processing_time: { p95_minutes: 7.5 } } }))[0]!.message).toBe(
      'p95 batch processing time 10.0m > 7.5m SLO',
    );
  });

  it('counts only batches completed in (now - 1h, now]', async () => {
    await finished(60, 3600); // completed exactly an hour ago: out
    await finished(-1, 3600); // completes after NOW: out
    expect(await run()).toEqual([]);
    await finished(59.9, 3600); // just inside
    expect((await run())[0]!.details).toMatchObject({ batch_count: 1, p95_minutes: 60 });
    await finished(0, 3600); // completed at NOW: in
    expect((await run())[0]!.details).toMatchObject({ batch_count: 2 });
  });

  it('ignores failed batches, batches without started_at and batches created before the 24 h lookback', async () => {
    await finished(10, 900, { status: 'failed' });
    await finished(10, 900, { started_at: null });
    await finished(10, 900, { created_at: ago(24 * 60 + 1) });
    expect(await run()).toEqual([]);
    await finished(10, 900, { created_at: ago(24 * 60 - 1) });
    expect((await run())[0]!.details).toMatchObject({ batch_count: 1 });
  });

  it('does not alert when no batch completed, whatever the in-flight batches', async () => {
    expect(await run()).toEqual([]);
    await insertBatch(database().pool, { status: 'processing', created_at: ago(600), started_at: ago(599) });
    expect(await run()).toEqual([]);
  });

  it('finds the finished batches through the UTC-hour index', async () => {
    const plans = await explainQueries(database().pool, (db) =>
      processingTimeCheck.run(testContext(db, NOW, testConfig())),
    );
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatch(/sentinel_batches_hour_idx/);
    expect(plans[0]).not.toMatch(/Seq Scan/);
  });

  it('is skipped when disabled in config', async () => {
    await finished(10, 900);
    const config = testConfig({ checks: { processing_time: { enabled: false } } });
    const { alerts, checks } = await runChecks([processingTimeCheck], testContext(database().pool, NOW, config));
    expect(alerts).toEqual([]);
    expect(checks[0]).toMatchObject({ name: 'processing_time', outcome: 'skipped', reason: 'disabled in config' });
  });
});
