import { describe, expect, it } from 'vitest';
import { runChecks } from '../../src/checks/runner.js';
import { freshnessLookbackMs, sourceFreshnessCheck } from '../../src/checks/source_freshness.js';
import { formatIssues } from '../../src/config/load.js';
import { type ConfigFile, configSchema } from '../../src/config/schema.js';
import { testConfig, testContext } from '../helpers/context.js';
import { useTestDatabase } from '../helpers/db.js';
import { explainQueries } from '../helpers/explain.js';
import { insertBatch } from '../helpers/fixtures.js';

const NOW = new Date('2025-01-04T10:15:30Z');
const ago = (minutes: number): Date => new Date(NOW.getTime() - minutes * 60_000);
const DAY_MINUTES = 24 * 60;

const database = useTestDatabase();

async function batch(source: string, createdMinutesAgo: number): Promise<void> {
  await insertBatch(database().pool, { source, status: 'completed', created_at: ago(createdMinutesAgo) });
}

const run = (file: ConfigFile = {}) => sourceFreshnessCheck.run(testContext(database().pool, NOW, testConfig(file)));
const every = (expected: Record<string, string>): ConfigFile => ({
  sources: Object.fromEntries(Object.entries(expected).map(([source, e]) => [source, { expected_every: e }])),
});
const messages = async (file: ConfigFile): Promise<string[]> => {
  const output = await run(file);
  if (!Array.isArray(output)) throw new Error(`skipped: ${output.skipped}`);
  return output.map((a) => a.message);
};

describe('source_freshness', () => {
  it('is skipped, with the reason, while no source has expected_every', async () => {
    await batch('vendor_x', 10 * DAY_MINUTES);
    expect(await run()).toEqual({ skipped: 'no source has expected_every' });
    expect(await run({ sources: { vendor_x: { error_spike_threshold_pct: 20 } } })).toEqual({
      skipped: 'no source has expected_every',
    });
  });

  it('reports the spec example with the last batch in the details', async () => {
    await batch('vendor_x', 192); // 3h12m ago
    await batch('vendor_x', 300);
    expect(await run(every({ vendor_x: '2h' }))).toEqual([
      {
        check: 'source_freshness',
        level: 'warning',
        message: 'No batches from vendor_x for 3h12m (expected every 2h)',
        subject: 'vendor_x',
        details: {
          source: 'vendor_x',
          expected_every: '2h',
          expected_every_minutes: 120,
          last_batch_at: ago(192).toISOString(),
          silent_minutes: 192,
          lookback: '7d',
        },
      },
    ]);
  });

  it('alerts only when the silence is strictly longer than expected_every', async () => {
    await batch('vendor_x', 120); // exactly 2h: on time
    expect(await messages(every({ vendor_x: '2h' }))).toEqual([]);
    await database().pool.query('truncate intake.simplicity_batches cascade');
    await batch('vendor_x', 119.99);
    expect(await messages(every({ vendor_x: '2h' }))).toEqual([]);
    await database().pool.query('truncate intake.simplicity_batches cascade');
    await batch('vendor_x', 120.5);
    expect(await messages(every({ vendor_x: '2h' }))).toEqual(['No batches from vendor_x for 2h (expected every 2h)']);
  });

  it('formats silences to the minute: 45m, 1d4h, 2m', async () => {
    await batch('a', 45.5);
    await batch('b', DAY_MINUTES + 4 * 60 + 0.5);
    await batch('c', 2.5);
    expect(await messages(every({ a: '30m', b: '1d', c: '90s' }))).toEqual([
      'No batches from a for 45m (expected every 30m)',
      'No batches from b for 1d4h (expected every 1d)',
      'No batches from c for 2m (expected every 1m30s)',
    ]);
  });

  it('judges each source on its own expected_every and ignores sources without one', async () => {
    await batch('vendor_x', 30);
    await batch('vendor_y', 90);
    await batch('vendor_z', 5 * DAY_MINUTES); // no expected_every: never judged
    const file = {
      sources: {
        vendor_x: { expected_every: '1h' },
        vendor_y: { expected_every: '1h' },
        vendor_z: { error_spike_threshold_pct: 20 },
      },
    };
    const output = await run(file);
    expect(output).toEqual([
      expect.objectContaining({
        message: 'No batches from vendor_y for 1h30m (expected every 1h)',
        subject: 'vendor_y',
      }),
    ]);
  });

  it('names a source silent for the whole lookback without a last batch', async () => {
    await batch('vendor_x', 7 * DAY_MINUTES + 1); // just outside the 7-day lookback
    await batch('vendor_y', 10 * DAY_MINUTES); // outside 7d, inside 10 × 1d
    const output = await run(every({ vendor_x: '2h', vendor_y: '1d' }));
    expect(output).toEqual([
      expect.objectContaining({
        message: 'No batches from vendor_x for more than 7d (expected every 2h)',
        details: expect.objectContaining({ last_batch_at: null, silent_minutes: null, lookback: '7d' }),
      }),
      expect.objectContaining({
        message: 'No batches from vendor_y for 10d (expected every 1d)',
        details: expect.objectContaining({ lookback: '10d' }),
      }),
    ]);
  });

  it('alerts for a configured source that never sent anything (empty tables)', async () => {
    expect(await messages(every({ vendor_x: '2h' }))).toEqual([
      'No batches from vendor_x for more than 7d (expected every 2h)',
    ]);
  });

  it('takes the newest batch, not the first one found in the newest hour', async () => {
    // Same UTC hour (09:00), inserted oldest last.
    await batch('vendor_x', 20); // 09:55:30
    await batch('vendor_x', 70); // 09:05:30
    expect(await messages(every({ vendor_x: '15m' }))).toEqual([
      'No batches from vendor_x for 20m (expected every 15m)',
    ]);
  });

  it('ignores batches created after now (clock of the database)', async () => {
    await batch('vendor_x', -5);
    await batch('vendor_x', 200);
    expect(await messages(every({ vendor_x: '2h' }))).toEqual([
      'No batches from vendor_x for 3h20m (expected every 2h)',
    ]);
  });

  it('looks back max(7 days, 10 × expected_every)', () => {
    expect(freshnessLookbackMs(2 * 3_600_000)).toBe(7 * 86_400_000);
    expect(freshnessLookbackMs(86_400_000)).toBe(10 * 86_400_000);
  });

  it('finds the newest batch through the UTC-hour index', async () => {
    const plans = await explainQueries(database().pool, (db) =>
      sourceFreshnessCheck.run(testContext(db, NOW, testConfig(every({ vendor_x: '2h' })))),
    );
    // Silent for the whole 7-day lookback: the doubling slices (1h, 1h, 2h, ... 128h, the rest), each through the
    // index.
    expect(plans).toHaveLength(9);
    for (const plan of plans) {
      expect(plan).toMatch(/sentinel_batches_hour_idx/);
      expect(plan).not.toMatch(/Seq Scan/);
    }
  });

  it('is skipped when disabled in config, even with expected_every set', async () => {
    const config = testConfig({ ...every({ vendor_x: '2h' }), checks: { source_freshness: { enabled: false } } });
    const { alerts, checks } = await runChecks([sourceFreshnessCheck], testContext(database().pool, NOW, config));
    expect(alerts).toEqual([]);
    expect(checks[0]).toMatchObject({ name: 'source_freshness', outcome: 'skipped', reason: 'disabled in config' });
  });

  it('reads expected_every as a duration and names a bad one by its path', () => {
    expect(configSchema.parse(every({ vendor_x: '1h30m' })).sources.vendor_x!.expected_every).toBe(90 * 60_000);
    const bad = configSchema.safeParse({
      sources: { vendor_x: { expected_every: 'soon', dedupe_threshold_pct: 120 } },
      checks: { source_freshness: { expected_every: '2h' } },
    });
    expect(bad.success).toBe(false);
    expect(formatIssues(bad.error!.issues).sort()).toEqual([
      'checks.source_freshness.expected_every: unknown setting',
      'sources.vendor_x.dedupe_threshold_pct: must be at most 100',
      'sources.vendor_x.expected_every: expected a duration such as 30s, 15m, 4h or 1h30m',
    ]);
  });
});
