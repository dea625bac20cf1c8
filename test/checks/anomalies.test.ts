import { describe, expect, it } from 'vitest';
import { backtest } from '../../src/anomalies/index.js';
import { anomaliesCheck, anomalySettingsFor } from '../../src/checks/anomalies.js';
import { runChecks } from '../../src/checks/runner.js';
import { formatIssues } from '../../src/config/load.js';
import { type ConfigFile, configSchema } from '../../src/config/schema.js';
import { loadSeries, trainingStart } from '../../src/db/anomaly-series.js';
import { refreshHourlyStats } from '../../src/db/hourly.js';
import type { Alert } from '../../src/types.js';
import { testConfig, testContext } from '../helpers/context.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertHourlyHistory, thinHour } from '../helpers/fixtures.js';

/** A Tuesday, ten past two: the last complete hour is 13:00–14:00 UTC. */
const NOW = new Date('2026-11-03T14:10:00Z');
const HOUR_MS = 3_600_000;
const WEEK_MS = 168 * HOUR_MS;
const LAST_HOUR = new Date('2026-11-03T13:00:00Z');

const database = useTestDatabase();

/** `weeks` weeks and an hour of history up to `to` (so `weeks` weeks of history at the last complete hour). */
const history = (sources: string[], weeks: number, to: Date = new Date(LAST_HOUR.getTime() + HOUR_MS)) =>
  insertHourlyHistory(database().pool, sources, new Date(to.getTime() - weeks * WEEK_MS - HOUR_MS), to);

/** Keeps only `keep` of `source`'s batches in the last complete hour: a feed that stopped. */
const dropLastHour = (source: string, keep: number) => thinHour(database().pool, source, LAST_HOUR, keep);

const context = (file: ConfigFile = {}) => testContext(database().pool, NOW, testConfig(file));
async function alertsOf(file: ConfigFile = {}): Promise<Alert[]> {
  const output = await anomaliesCheck.run(context(file));
  if (!Array.isArray(output)) throw new Error(`skipped: ${output.skipped}`);
  return output;
}

describe('anomalies check', () => {
  it('is skipped with a reason naming history while there is too little of it', async () => {
    expect(await anomaliesCheck.run(context())).toEqual({
      skipped: 'no history: no batch in the 4 weeks before the last complete hour',
    });
    await history(['vendor_a'], 1);
    const output = await anomaliesCheck.run(context());
    expect(output).toEqual({ skipped: expect.stringContaining('history') });
    expect((output as { skipped: string }).skipped).toBe(
      'not enough history yet (vendor_a: only 1 of 2 weeks of history at this hour of the week); judging starts ' +
        'once a source has min_training_weeks of history at the hour',
    );
    // min_training_weeks 1 judges with the one week there is.
    expect(await alertsOf({ checks: { anomalies: { min_training_weeks: 1 } } })).toEqual([]);
  });

  it('says nothing about a normal hour, and records a score per source and metric judged', async () => {
    await history(['vendor_a', 'vendor_b'], 5);
    const ctx = context();
    expect(await anomaliesCheck.run(ctx)).toEqual([]);
    expect(ctx.measured.sources_judged).toBe(2);
    expect(ctx.measured.max_abs_score).toBeLessThan(3);
    const scores = ctx.series.filter((s) => s.key === 'score');
    expect(scores.map((s) => `${s.labels.source}/${s.labels.metric}`)).toEqual([
      'vendor_a/volume',
      'vendor_a/error_rate',
      'vendor_a/dedupe_rate',
      'vendor_a/processing_time',
      'vendor_b/volume',
      'vendor_b/error_rate',
      'vendor_b/dedupe_rate',
      'vendor_b/processing_time',
    ]);
    expect(scores.every((s) => Math.abs(s.value) < 3)).toBe(true);
    expect(ctx.series.filter((s) => s.key === 'sensitivity').map((s) => s.value)).toEqual(Array(8).fill(3));
  });

  it('alerts on a feed that stopped, in the contract message and details, and agrees with a backtest', async () => {
    await history(['vendor_a', 'vendor_b'], 5);
    await dropLastHour('vendor_a', 0);
    const alerts = await alertsOf();
    expect(alerts).toHaveLength(1);
    const [alert] = alerts;
    expect(alert).toMatchObject({ check: 'anomalies', level: 'critical', subject: 'vendor_a volume' });
    expect(alert!.message).toMatch(
      /^Volume for vendor_a 13:00–14:00 UTC: 0 batches, usually \d+–\d+ on Tuesdays at this hour$/,
    );
    expect(Object.keys(alert!.details).sort()).toEqual(
      ['expected', 'hour_start', 'lower', 'metric', 'observed', 'score', 'source', 'upper'].sort(),
    );
    expect(alert!.details).toMatchObject({
      source: 'vendor_a',
      metric: 'volume',
      hour_start: '2026-11-03T13:00:00Z',
      observed: 0,
    });
    const d = alert!.details as { expected: number; lower: number; upper: number; score: number };
    expect(d.lower).toBeGreaterThan(0);
    expect(d.expected).toBeGreaterThan(d.lower);
    expect(d.upper).toBeGreaterThan(d.expected);
    expect(d.score).toBeLessThanOrEqual(-6);

    // The same hour judged by a backtest (every hour as if live) gives the same verdict.
    const hour = LAST_HOUR.getTime();
    const { series } = await loadSeries(database().pool, {
      from: trainingStart(hour, { training_weeks: 4 }),
      to: hour + HOUR_MS,
      metrics: ['volume'],
    });
    const { verdicts } = backtest({ series, metrics: ['volume'], from: hour, to: hour + HOUR_MS });
    const a = verdicts.find((v) => v.source === 'vendor_a');
    expect(a).toMatchObject({ judged: true, level: 'critical', ...alert!.details });
  });

  it('reads the same figures before and after the hourly rollup is refreshed', async () => {
    await history(['vendor_a'], 5);
    await dropLastHour('vendor_a', 0);
    const before = await alertsOf();
    await refreshHourlyStats(database().pool, 100_000);
    // A late correction to an hour the rollup already holds reaches the baseline through its deltas.
    expect(await alertsOf()).toEqual(before);
    expect(before).toHaveLength(1);
  });

  it('applies sources.<name>.anomalies over checks.anomalies', async () => {
    await history(['vendor_a', 'vendor_b'], 5);
    await dropLastHour('vendor_a', 0);
    await dropLastHour('vendor_b', 0);
    const subjects = async (file: ConfigFile) => (await alertsOf(file)).map((a) => `${a.subject} ${a.level}`);
    expect(await subjects({})).toEqual(['vendor_a volume critical', 'vendor_b volume critical']);
    expect(await subjects({ sources: { vendor_a: { anomalies: { enabled: false } } } })).toEqual([
      'vendor_b volume critical',
    ]);
    // A wider band: still outside it, no longer twice as far.
    expect(await subjects({ sources: { vendor_b: { anomalies: { sensitivity: 5 } } } })).toEqual([
      'vendor_a volume critical',
      'vendor_b volume warning',
    ]);
    expect(await subjects({ sources: { vendor_b: { anomalies: { metrics: ['error_rate'] } } } })).toEqual([
      'vendor_a volume critical',
    ]);
    expect(await subjects({ checks: { anomalies: { metrics: ['dedupe_rate'] } } })).toEqual([]);
    expect(
      anomalySettingsFor(testConfig({ sources: { vendor_b: { anomalies: { training_weeks: 1 } } } }), 'vendor_b'),
    ).toEqual({
      enabled: true,
      metrics: ['volume', 'error_rate', 'dedupe_rate', 'processing_time'],
      options: { training_weeks: 1, min_training_weeks: 1, sensitivity: 3 },
    });
  });

  it('judges a new feed once it has history of its own, not against weeks of zeros before it existed', async () => {
    await history(['vendor_a'], 5);
    await history(['newcomer'], 1);
    const ctx = context();
    expect(await anomaliesCheck.run(ctx)).toEqual([]);
    expect(ctx.measured.sources_judged).toBe(1);
    expect(ctx.series.some((s) => s.labels.source === 'newcomer')).toBe(false);
    // The same once the rollup holds the history (the horizon past the read's start), and a feed that
    // was silent for a while but existed before is judged against its silence.
    await refreshHourlyStats(database().pool, 100_000);
    const again = context();
    expect(await anomaliesCheck.run(again)).toEqual([]);
    expect(again.measured.sources_judged).toBe(1);
    await insertHourlyHistory(
      database().pool,
      ['returning'],
      new Date(LAST_HOUR.getTime() - 12 * WEEK_MS),
      new Date(LAST_HOUR.getTime() - 10 * WEEK_MS),
    );
    await history(['returning'], 0);
    await refreshHourlyStats(database().pool, 100_000);
    const back = context();
    const alerts = await anomaliesCheck.run(back);
    expect(back.series.some((s) => s.labels.source === 'returning')).toBe(true);
    expect(Array.isArray(alerts) && alerts.some((a) => a.subject === 'returning volume')).toBe(true);
  });

  it('is skipped, naming the step, on a database not migrated or a role that cannot read the rollup', async () => {
    await history(['vendor_a'], 5);
    const client = await database().pool.connect();
    try {
      await client.query('begin');
      await client.query('drop table sentinel.hourly_source_state cascade');
      expect(await anomaliesCheck.run(testContext(client, NOW, testConfig()))).toEqual({
        skipped: 'the hourly rollup is missing: run `sentinel migrate` to create sentinel.hourly_source_stats',
      });
      await client.query('rollback');
      await client.query('begin');
      await client.query('create role sentinel_test_no_rollup nologin');
      await client.query('grant usage on schema intake to sentinel_test_no_rollup');
      await client.query('grant select on all tables in schema intake to sentinel_test_no_rollup');
      await client.query('set local role sentinel_test_no_rollup');
      expect(await anomaliesCheck.run(testContext(client, NOW, testConfig()))).toEqual({
        skipped: expect.stringMatching(/^this role may not read the hourly rollup: grant usage on schema sentinel/),
      });
    } finally {
      await client.query('rollback');
      client.release();
    }
  });

  it('escapes a hostile source name in the message', async () => {
    const hostile = 'evil\u001b[31m\u202eoverride\nsecond line';
    await history([hostile], 5);
    await dropLastHour(hostile, 2);
    const [alert] = await alertsOf();
    expect(alert!.message).not.toMatch(/[\u0000-\u001f\u202e]/);
    expect(alert!.message.split('\n')).toHaveLength(1);
    expect(alert!.details.source).toBe(hostile);
  });

  it('runs in the registry: its scores reach the run summary, a disabled check is skipped', async () => {
    await history(['vendor_a'], 5);
    const config = testConfig({});
    const ctx = testContext(database().pool, NOW, config);
    const run = await runChecks([anomaliesCheck], ctx);
    const summary = run.checks.find((s) => s.name === 'anomalies');
    expect(summary?.outcome).toBe('ok');
    expect(summary?.series?.map((s) => s.labels)).toContainEqual({ source: 'vendor_a', metric: 'volume' });
    const off = await runChecks(
      [anomaliesCheck],
      testContext(database().pool, NOW, testConfig({ checks: { anomalies: { enabled: false } } })),
    );
    expect(off.checks[0]).toMatchObject({ outcome: 'skipped' });
  });
});

describe('anomalies settings', () => {
  const problems = (file: unknown): string => {
    const parsed = configSchema.safeParse(file);
    return parsed.success ? '' : formatIssues(parsed.error.issues).join('\n');
  };

  it('names what is wrong, one line each', () => {
    expect(problems({ checks: { anomalies: { metrics: ['volume', 'latency'] } } })).toMatch(
      /checks\.anomalies\.metrics\.1: .*volume.*error_rate.*dedupe_rate.*processing_time/,
    );
    expect(problems({ checks: { anomalies: { metrics: [] } } })).toMatch(
      /checks\.anomalies\.metrics: list at least one/,
    );
    expect(problems({ checks: { anomalies: { metrics: ['volume', 'volume'] } } })).toMatch(/lists a metric twice/);
    expect(problems({ checks: { anomalies: { training_weeks: 3, min_training_weeks: 4 } } })).toMatch(
      /checks\.anomalies\.min_training_weeks: min_training_weeks must not exceed training_weeks/,
    );
    expect(problems({ checks: { anomalies: { training_weeks: 27 } } })).toMatch(/at most 26 weeks/);
    expect(problems({ checks: { anomalies: { sensitivity: 0.5 } } })).toMatch(
      /checks\.anomalies\.sensitivity: must be at least 1/,
    );
    expect(problems({ sources: { vendor_a: { anomalies: { sensitivty: 4 } } } })).toMatch(
      /sources\.vendor_a\.anomalies.*sensitivty/,
    );
    expect(problems({ checks: { anomalies: { sensitivity: 4, metrics: ['volume'] } } })).toBe('');
  });
});
