import { describe, expect, it } from 'vitest';
import { chooseBucket, errorSpikeCheck, type HourlyRow, ratePct, topSources } from '../../src/checks/error_spike.js';
import { testConfig, testContext } from '../helpers/context.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch } from '../helpers/fixtures.js';

// 10:15 UTC: the current bucket is 10:00, the previous one 09:00.
const NOW = new Date('2025-01-04T10:15:30Z');
const CURRENT = new Date('2025-01-04T10:05:00Z');
const PREVIOUS = new Date('2025-01-04T09:30:00Z');

const database = useTestDatabase();

async function rows(at: Date, total: number, errors: number, source = 'vendor_a'): Promise<void> {
  await insertBatch(database().pool, {
    source,
    status: 'completed',
    total_rows: total,
    error_rows: errors,
    inserted_rows: total - errors,
    created_at: at,
    updated_at: at,
  });
}

const run = (file = {}) => errorSpikeCheck.run(testContext(database().pool, NOW, testConfig(file)));

describe('error_spike', () => {
  it('reports the guide example for the current hour', async () => {
    await rows(CURRENT, 1000, 185);
    const alerts = await run();
    expect(alerts).toEqual([
      {
        check: 'error_spike',
        level: 'warning',
        message: 'Error rate 18.5% > 15.0% threshold',
        subject: undefined,
        details: {
          error_rate_pct: 18.5,
          threshold_pct: 15,
          hour_bucket: '2025-01-04T10:00:00Z',
          error_rows: 185,
          total_rows: 1000,
          min_rows: 100,
          top_sources: [{ source: 'vendor_a', error_rate_pct: 18.5, error_rows: 185, total_rows: 1000 }],
          sources_in_bucket: 1,
        },
      },
    ]);
  });

  it('alerts just over the threshold and not at or just under it', async () => {
    await rows(CURRENT, 10000, 1500); // 15.00% is not above 15%
    expect(await run()).toEqual([]);
    await database().pool.query('truncate intake.simplicity_batches cascade');
    await rows(CURRENT, 10000, 1499);
    expect(await run()).toEqual([]);
    await database().pool.query('truncate intake.simplicity_batches cascade');
    await rows(CURRENT, 10000, 1501); // 15.01%
    const [alert] = await run();
    expect(alert!.details.error_rate_pct).toBe(15.01);
    expect(alert!.message).toBe('Error rate 15.01% > 15.00% threshold');
  });

  it('falls back to the previous hour when the current one has fewer than min_rows rows', async () => {
    await rows(CURRENT, 99, 99); // 100% but too small to judge
    await rows(PREVIOUS, 200, 60);
    const [alert] = await run();
    expect(alert!.message).toBe('Error rate 30.0% > 15.0% threshold');
    expect(alert!.details).toMatchObject({ hour_bucket: '2025-01-04T09:00:00Z', total_rows: 200, error_rows: 60 });
  });

  it('judges the current hour once it reaches min_rows, even if the previous hour was bad', async () => {
    await rows(CURRENT, 100, 1);
    await rows(PREVIOUS, 1000, 900);
    expect(await run()).toEqual([]);
  });

  it('never alerts on a bucket below min_rows', async () => {
    await rows(CURRENT, 50, 50);
    await rows(PREVIOUS, 99, 99);
    expect(await run()).toEqual([]);
    expect(await run({ checks: { error_spike: { min_rows: 40 } } })).toHaveLength(1);
  });

  it('ignores batches older than the previous hour', async () => {
    await rows(new Date('2025-01-04T08:59:59Z'), 1000, 900);
    expect(await run()).toEqual([]);
  });

  it('judges sources with their own threshold alone and leaves them out of the overall rate', async () => {
    await rows(CURRENT, 1000, 300, 'vendor_x'); // 30% > its own 25%
    await rows(CURRENT, 1000, 100, 'vendor_a'); // 10%: healthy overall
    const alerts = await run({ sources: { vendor_x: { error_spike_threshold_pct: 25 } } });
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      message: 'Error rate 30.0% > 25.0% threshold for source vendor_x',
      subject: 'vendor_x',
      details: { source: 'vendor_x', threshold_pct: 25, error_rate_pct: 30 },
    });
    // Without its own threshold, vendor_x would have pushed the overall rate to 20%.
    expect((await run())[0]!.message).toBe('Error rate 20.0% > 15.0% threshold');
  });

  it('a source under its own higher threshold does not alert', async () => {
    await rows(CURRENT, 1000, 200, 'vendor_x');
    expect(await run({ sources: { vendor_x: { error_spike_threshold_pct: 25 } } })).toEqual([]);
  });

  it('applies the min_rows fallback per source', async () => {
    await rows(CURRENT, 10, 10, 'vendor_x');
    await rows(PREVIOUS, 400, 160, 'vendor_x');
    const [alert] = await run({ sources: { vendor_x: { error_spike_threshold_pct: 25 } } });
    expect(alert!.message).toBe('Error rate 40.0% > 25.0% threshold for source vendor_x');
    expect(alert!.details.hour_bucket).toBe('2025-01-04T09:00:00Z');
  });

  it('reports both the overall and a per-source spike in one run', async () => {
    await rows(CURRENT, 1000, 500, 'vendor_x');
    await rows(CURRENT, 1000, 200, 'vendor_a');
    const alerts = await run({ sources: { vendor_x: { error_spike_threshold_pct: 25 } } });
    expect(alerts.map((a) => a.message)).toEqual([
      'Error rate 20.0% > 15.0% threshold',
      'Error rate 50.0% > 25.0% threshold for source vendor_x',
    ]);
  });

  it('counts zero-row batches without dividing by zero', async () => {
    await rows(CURRENT, 0, 0);
    expect(await run()).toEqual([]);
  });
});

describe('error_spike: the sources behind an overall spike', () => {
  it('names them from the judged bucket, most error rows first, ties by name, at most 5', async () => {
    // Seven sources in the current hour; the previous hour (not judged) would rank them otherwise.
    const current: Array<[string, number, number]> = [
      ['vendor_a', 300, 120],
      ['vendor_b', 300, 61],
      ['vendor_c', 100, 61],
      ['vendor_d', 100, 30],
      ['vendor_e', 100, 20],
      ['vendor_f', 100, 10],
      ['vendor_g', 100, 0],
    ];
    for (const [source, total, errors] of current) await rows(CURRENT, total, errors, source);
    await rows(PREVIOUS, 5000, 5000, 'vendor_g');
    const [alert] = await run();
    expect(alert!.details.hour_bucket).toBe('2025-01-04T10:00:00Z');
    expect(alert!.details.top_sources).toEqual([
      { source: 'vendor_a', error_rate_pct: 40, error_rows: 120, total_rows: 300 },
      { source: 'vendor_b', error_rate_pct: 20.33, error_rows: 61, total_rows: 300 },
      { source: 'vendor_c', error_rate_pct: 61, error_rows: 61, total_rows: 100 },
      { source: 'vendor_d', error_rate_pct: 30, error_rows: 30, total_rows: 100 },
      { source: 'vendor_e', error_rate_pct: 20, error_rows: 20, total_rows: 100 },
    ]);
    expect(alert!.details.sources_in_bucket).toBe(7);
    expect(alert!.message).toBe(
      // 302 of 1100 rows: 27.45 %, shown half up.
      'Error rate 27.5% > 15.0% threshold',
    );
  });

  it('takes them from the previous hour when that is the bucket judged', async () => {
    await rows(CURRENT, 50, 50, 'vendor_now'); // below min_rows: the previous hour is judged
    await rows(PREVIOUS, 200, 80, 'vendor_then');
    await rows(PREVIOUS, 100, 1, 'vendor_quiet');
    const [alert] = await run();
    expect(alert!.details.hour_bucket).toBe('2025-01-04T09:00:00Z');
    expect(alert!.details.top_sources).toEqual([
      { source: 'vendor_then', error_rate_pct: 40, error_rows: 80, total_rows: 200 },
      { source: 'vendor_quiet', error_rate_pct: 1, error_rows: 1, total_rows: 100 },
    ]);
    expect(alert!.details.sources_in_bucket).toBe(2);
  });

  it('leaves out the sources judged on their own threshold, and per-source alerts carry none', async () => {
    await rows(CURRENT, 1000, 900, 'vendor_x');
    await rows(CURRENT, 1000, 300, 'vendor_a');
    const alerts = await run({ sources: { vendor_x: { error_spike_threshold_pct: 25 } } });
    expect(alerts.map((a) => a.subject)).toEqual([undefined, 'vendor_x']);
    expect(alerts[0]!.details).toMatchObject({
      top_sources: [{ source: 'vendor_a', error_rate_pct: 30, error_rows: 300, total_rows: 1000 }],
      sources_in_bucket: 1,
    });
    expect(alerts[1]!.details).not.toHaveProperty('top_sources');
    expect(alerts[1]!.details).not.toHaveProperty('sources_in_bucket');
  });

  it('keeps a hostile source name out of the message and cuts it in the details', async () => {
    const evil = `evil\u001b[2J\n\u202eFORGED${'x'.repeat(300)}`;
    await rows(CURRENT, 1000, 500, evil);
    const [alert] = await run();
    const [top] = alert!.details.top_sources as Array<{ source: string }>;
    expect(top!.source).toHaveLength(100);
    expect(top!.source.endsWith('…')).toBe(true);
    expect(evil.startsWith(top!.source.slice(0, -1))).toBe(true);
    expect(alert!.message).toBe('Error rate 50.0% > 15.0% threshold');
  });
});

describe('topSources', () => {
  const row = (source: string, error_rows: number, total_rows = 100, bucket: HourlyRow['bucket'] = 'current') => ({
    bucket,
    source,
    error_rows,
    total_rows,
    skipped_rows: 0,
  });
  const none = new Set<string>();
  it.each([
    { name: 'no rows', rows: [], top: [], count: 0 },
    { name: 'only sources without errors are counted, not named', rows: [row('a', 0), row('b', 0)], top: [], count: 2 },
    { name: 'zero-row batches count as a source', rows: [row('a', 0, 0), row('b', 5)], top: ['b'], count: 2 },
    { name: 'ties by name', rows: [row('b', 5), row('a', 5), row('c', 6)], top: ['c', 'a', 'b'], count: 3 },
    {
      name: 'the other bucket is ignored',
      rows: [row('a', 1), row('b', 99, 100, 'previous')],
      top: ['a'],
      count: 1,
    },
    {
      name: 'at most the limit',
      rows: ['a', 'b', 'c', 'd', 'e', 'f'].map((s, i) => row(s, 10 - i)),
      top: ['a', 'b', 'c', 'd', 'e'],
      count: 6,
    },
  ])('$name', ({ rows: input, top, count }) => {
    const result = topSources(input, 'current', none);
    expect(result.top_sources.map((t) => t.source)).toEqual(top);
    expect(result.sources_in_bucket).toBe(count);
  });

  it('leaves out the sources judged alone', () => {
    const result = topSources([row('a', 5), row('x', 50)], 'current', new Set(['x']));
    expect(result).toEqual({
      top_sources: [{ source: 'a', error_rate_pct: 5, error_rows: 5, total_rows: 100 }],
      sources_in_bucket: 1,
    });
  });
});

describe('chooseBucket', () => {
  const start = new Date('2025-01-04T10:00:00Z');
  it.each([
    { current: 100, previous: 500, expected: '10:00' },
    { current: 99, previous: 100, expected: '09:00' },
    { current: 99, previous: 99, expected: undefined },
    { current: 0, previous: 0, expected: undefined },
  ])('current $current rows, previous $previous rows -> $expected', ({ current, previous, expected }) => {
    const bucket = chooseBucket(
      { total_rows: current, error_rows: 0 },
      { total_rows: previous, error_rows: 0 },
      start,
      100,
    );
    expect(bucket?.hour_bucket.toISOString().slice(11, 16)).toBe(expected);
  });
});

describe('ratePct', () => {
  it('rounds half up at 2 decimals like PostgreSQL numeric round()', async () => {
    // 100 * 3001 / 20000 = 15.005 exactly; a float computation gives 15.00.
    expect(ratePct(3001, 20000)).toBe(15.01);
    const { rows } = await database().pool.query(
      'select round(100.0 * 3001 / 20000, 2)::float8 as r, round(100.0 * 1 / 3, 2)::float8 as third',
    );
    expect(ratePct(3001, 20000)).toBe(rows[0].r);
    expect(ratePct(1, 3)).toBe(rows[0].third);
    expect(ratePct(0, 7)).toBe(0);
    expect(ratePct(7, 7)).toBe(100);
  });
});
