import { describe, expect, it } from 'vitest';
import { dedupeRateCheck } from '../../src/checks/dedupe_rate.js';
import { runChecks } from '../../src/checks/runner.js';
import type { ConfigFile } from '../../src/config/schema.js';
import { testConfig, testContext } from '../helpers/context.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch } from '../helpers/fixtures.js';

// 10:15 UTC: the current bucket is 10:00, the previous one 09:00.
const NOW = new Date('2025-01-04T10:15:30Z');
const CURRENT = new Date('2025-01-04T10:05:00Z');
const PREVIOUS = new Date('2025-01-04T09:30:00Z');

const database = useTestDatabase();

async function rows(at: Date, total: number, skipped: number, source = 'vendor_a', errors = 0): Promise<void> {
  await insertBatch(database().pool, {
    source,
    status: 'completed',
    total_rows: total,
    skipped_rows: skipped,
    error_rows: errors,
    inserted_rows: total - skipped - errors,
    created_at: at,
    updated_at: at,
  });
}

const run = (file: ConfigFile = {}) => dedupeRateCheck.run(testContext(database().pool, NOW, testConfig(file)));
const truncate = () => database().pool.query('truncate intake.simplicity_batches cascade');

describe('dedupe_rate', () => {
  it('reports the spec example for the current hour', async () => {
    await rows(CURRENT, 1000, 620);
    expect(await run()).toEqual([
      {
        check: 'dedupe_rate',
        level: 'warning',
        message: 'Dedupe rate 62.0% > 50.0% threshold',
        subject: undefined,
        details: {
          dedupe_rate_pct: 62,
          threshold_pct: 50,
          hour_bucket: '2025-01-04T10:00:00Z',
          skipped_rows: 620,
          total_rows: 1000,
          min_rows: 100,
        },
      },
    ]);
  });

  it('alerts just over the threshold and not at or just under it', async () => {
    await rows(CURRENT, 10000, 5000); // 50.00% is not above 50%
    expect(await run()).toEqual([]);
    await truncate();
    await rows(CURRENT, 10000, 4999);
    expect(await run()).toEqual([]);
    await truncate();
    await rows(CURRENT, 10000, 5001); // 50.01%
    const [alert] = await run();
    expect(alert!.details.dedupe_rate_pct).toBe(50.01);
    expect(alert!.message).toBe('Dedupe rate 50.01% > 50.00% threshold');
  });

  it('rounds the shown rate half up', async () => {
    await rows(CURRENT, 2000, 1241); // 62.05%
    expect((await run())[0]!.message).toBe('Dedupe rate 62.1% > 50.0% threshold');
  });

  it('judges the dedupe rate, not the error rate', async () => {
    await rows(CURRENT, 1000, 100, 'vendor_a', 900); // 90% errors, 10% duplicates
    expect(await run()).toEqual([]);
  });

  it('takes the threshold from checks.dedupe_rate.threshold_pct', async () => {
    await rows(CURRENT, 1000, 350);
    expect(await run()).toEqual([]);
    expect((await run({ checks: { dedupe_rate: { threshold_pct: 30 } } }))[0]!.message).toBe(
      'Dedupe rate 35.0% > 30.0% threshold',
    );
  });

  it('falls back to the previous hour while the current one has fewer than min_rows rows', async () => {
    await rows(CURRENT, 99, 99);
    await rows(PREVIOUS, 200, 140);
    const [alert] = await run();
    expect(alert!.message).toBe('Dedupe rate 70.0% > 50.0% threshold');
    expect(alert!.details).toMatchObject({ hour_bucket: '2025-01-04T09:00:00Z', total_rows: 200, skipped_rows: 140 });
  });

  it('judges the current hour once it reaches min_rows, even if the previous hour was bad', async () => {
    await rows(CURRENT, 100, 10);
    await rows(PREVIOUS, 1000, 900);
    expect(await run()).toEqual([]);
  });

  it('never alerts on a bucket below error_spike.min_rows, and follows that setting', async () => {
    await rows(CURRENT, 50, 50);
    await rows(PREVIOUS, 99, 99);
    expect(await run()).toEqual([]);
    const alerts = await run({ checks: { error_spike: { min_rows: 40 } } });
    expect(alerts.map((a) => a.message)).toEqual(['Dedupe rate 100.0% > 50.0% threshold']);
    expect(alerts[0]!.details).toMatchObject({ min_rows: 40, hour_bucket: '2025-01-04T10:00:00Z' });
  });

  it('ignores batches older than the previous hour', async () => {
    await rows(new Date('2025-01-04T08:59:59Z'), 1000, 900);
    expect(await run()).toEqual([]);
  });

  it('judges sources with their own threshold alone and leaves them out of the overall rate', async () => {
    await rows(CURRENT, 1000, 800, 'vendor_x'); // 80% > its own 70%
    await rows(CURRENT, 1000, 200, 'vendor_a'); // 20%: healthy overall
    const sources = { vendor_x: { dedupe_threshold_pct: 70 } };
    const alerts = await run({ sources });
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      message: 'Dedupe rate 80.0% > 70.0% threshold for source vendor_x',
      subject: 'vendor_x',
      details: { source: 'vendor_x', threshold_pct: 70, dedupe_rate_pct: 80 },
    });
    // Without its own threshold, vendor_x lifts the overall rate to 50.0% (not above), then over it.
    expect(await run()).toEqual([]);
    await rows(CURRENT, 10, 10, 'vendor_a'); // 1010 / 2010 = 50.25%
    expect((await run())[0]!.message).toBe('Dedupe rate 50.3% > 50.0% threshold');
  });

  it(
    'a source under its own higher threshold does not alert, and ' + 'its error threshold does not split it out',
    async () => {
      await rows(CURRENT, 1000, 600, 'vendor_x');
      expect(await run({ sources: { vendor_x: { dedupe_threshold_pct: 70 } } })).toEqual([]);
      // error_spike_threshold_pct concerns error_spike only: vendor_x stays in the overall dedupe rate.
      expect((await run({ sources: { vendor_x: { error_spike_threshold_pct: 70 } } }))[0]!.message).toBe(
        'Dedupe rate 60.0% > 50.0% threshold',
      );
    },
  );

  it('applies the min_rows fallback per source and reports overall and per-source spikes in one run', async () => {
    await rows(CURRENT, 10, 10, 'vendor_x');
    await rows(PREVIOUS, 400, 360, 'vendor_x'); // 90% > 70%
    await rows(CURRENT, 1000, 550, 'vendor_a'); // 55% > 50%
    const alerts = await run({ sources: { vendor_x: { dedupe_threshold_pct: 70 } } });
    expect(alerts.map((a) => [a.message, a.details.hour_bucket])).toEqual([
      ['Dedupe rate 55.0% > 50.0% threshold', '2025-01-04T10:00:00Z'],
      ['Dedupe rate 90.0% > 70.0% threshold for source vendor_x', '2025-01-04T09:00:00Z'],
    ]);
  });

  it('returns nothing on empty tables and on zero-row batches', async () => {
    expect(await run()).toEqual([]);
    await rows(CURRENT, 0, 0);
    expect(await run()).toEqual([]);
  });

  it('is skipped when disabled in config', async () => {
    await rows(CURRENT, 1000, 900);
    const config = testConfig({ checks: { dedupe_rate: { enabled: false } } });
    const { alerts, checks } = await runChecks([dedupeRateCheck], testContext(database().pool, NOW, config));
    expect(alerts).toEqual([]);
    expect(checks).toEqual([{ name: 'dedupe_rate', outcome: 'skipped', duration_ms: 0, reason: 'disabled in config' }]);
  });
});
