import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { errorSpikeCheck } from '../../src/checks/error_spike.js';
import { allChecks } from '../../src/checks/index.js';
import { queueBacklogCheck } from '../../src/checks/queue_backlog.js';
import { schemaCacheCheck } from '../../src/checks/schema_cache.js';
import { collectSnapshot, effectiveThresholds, FINISHED_LOOKBACK_HOURS } from '../../src/checks/snapshot.js';
import { sourceFreshnessCheck } from '../../src/checks/source_freshness.js';
import { stuckBatchesCheck } from '../../src/checks/stuck_batches.js';
import type { ConfigFile } from '../../src/config/schema.js';
import type { Logger } from '../../src/log.js';
import { renderJson } from '../../src/report/json.js';
import { Runner } from '../../src/run.js';
import { MemoryStateStore } from '../../src/state/store.js';
import type { CheckThresholds, HourlyFigures } from '../../src/types.js';
import { testConfig, testContext } from '../helpers/context.js';
import { createTestDatabase, useTestDatabase } from '../helpers/db.js';
import { explainQueries } from '../helpers/explain.js';
import { answers, type FakePostgrest, startFakePostgrest } from '../helpers/fake-postgrest.js';
import { type BatchFixture, insertBatch } from '../helpers/fixtures.js';
import { within } from '../helpers/wait.js';

// 10:15:30 UTC: the current hour bucket is 10:00, the previous one 09:00.
const NOW = new Date('2025-01-04T10:15:30Z');
const CURRENT_HOUR = '2025-01-04T10:00:00.000Z';
const PREVIOUS_HOUR = '2025-01-04T09:00:00.000Z';
const at = (offsetSeconds: number): Date => new Date(NOW.getTime() + offsetSeconds * 1000);
const minutesAgo = (m: number): Date => at(-m * 60);

const database = useTestDatabase();

const snapshot = (file: ConfigFile = {}) => collectSnapshot(testContext(database().pool, NOW, testConfig(file)));

async function batches(list: BatchFixture[]): Promise<void> {
  for (const b of list) await insertBatch(database().pool, b);
}

/** In flight: `updated_at` is what counts; created a little earlier. */
const inFlight = (status: BatchFixture['status'], updatedAt: Date, source = 'vendor_a'): BatchFixture => ({
  source,
  status,
  created_at: new Date(updatedAt.getTime() - 5 * 60_000),
  updated_at: updatedAt,
});

/** A finished batch uploaded at `createdAt` with these rows. */
const rows = (createdAt: string, source: string, total: number, errors: number, skipped: number): BatchFixture => ({
  source,
  status: 'completed',
  created_at: createdAt,
  completed_at: createdAt,
  total_rows: total,
  error_rows: errors,
  skipped_rows: skipped,
  inserted_rows: total - errors - skipped,
});

const noRows = (hour_bucket = CURRENT_HOUR): HourlyFigures => ({
  hour_bucket,
  judged: false,
  total_rows: 0,
  error_rows: 0,
  skipped_rows: 0,
  error_rate_pct: null,
  dedupe_rate_pct: null,
});

/** The thresholds of the default configuration, in base units. */
const DEFAULT_THRESHOLDS: CheckThresholds = {
  seconds: [
    { check: 'stuck_batches', value: 600 },
    { check: 'queue_backlog', value: 1800 },
    { check: 'processing_time', value: 300 },
  ],
  ratios: [
    { check: 'error_spike', value: 0.15 },
    { check: 'dedupe_rate', value: 0.5 },
  ],
  min_rows: 100,
};

describe('collectSnapshot', () => {
  it('describes an empty database with zeros and no statuses', async () => {
    expect(await snapshot()).toEqual({
      taken_at: '2025-01-04T10:15:30.000Z',
      in_flight: [],
      stuck: { threshold_minutes: 10, by_status: [] },
      hourly: { min_rows: 100, overall: noRows(), sources: [], overall_dedupe: noRows() },
      finished_last_hour: { completed: 0, failed: 0 },
      backlog: { threshold_minutes: 30, batch_count: 0 },
      thresholds: DEFAULT_THRESHOLDS,
    });
  });

  it('counts the batches waiting in uploaded past the queue_backlog threshold, as the check does', async () => {
    await batches([
      inFlight('uploaded', minutesAgo(31)),
      inFlight('uploaded', minutesAgo(45), 'vendor_b'),
      inFlight('uploaded', at(-30 * 60)), // exactly 30 minutes: not "longer than"
      inFlight('processing', minutesAgo(90)), // stuck, not waiting
    ]);
    expect((await snapshot()).backlog).toEqual({ threshold_minutes: 30, batch_count: 2 });
    const alerts = await queueBacklogCheck.run(testContext(database().pool, NOW, testConfig({})));
    expect(alerts.map((a) => a.details.total_waiting)).toEqual([2]);
    expect((await snapshot({ checks: { queue_backlog: { threshold_minutes: 40 } } })).backlog).toEqual({
      threshold_minutes: 40,
      batch_count: 1,
    });
  });

  it('reads each watched source’s newest batch as source_freshness does, only while the check is enabled', async () => {
    await batches([
      rows('2025-01-04T07:03:30Z', 'vendor_a', 10, 0, 0), // 3h12m before NOW
      rows('2025-01-04T10:00:00Z', 'vendor_b', 10, 0, 0), // 15m30s
    ]);
    const sources: ConfigFile['sources'] = {
      vendor_a: { expected_every: '2h' },
      vendor_b: { expected_every: '1h' },
      vendor_silent: { expected_every: '1d' },
      vendor_x: { error_spike_threshold_pct: 25 },
    };
    const s = await snapshot({ sources });
    expect(s.freshness).toEqual([
      { source: 'vendor_a', expected_every_seconds: 7200, last_batch_age_seconds: 11_520, lookback_seconds: 604_800 },
      { source: 'vendor_b', expected_every_seconds: 3600, last_batch_age_seconds: 930, lookback_seconds: 604_800 },
      {
        source: 'vendor_silent',
        expected_every_seconds: 86_400,
        last_batch_age_seconds: null,
        lookback_seconds: 864_000,
      },
    ]);
    expect(s.thresholds!.seconds.filter((t) => t.check === 'source_freshness')).toEqual([
      { check: 'source_freshness', source: 'vendor_a', value: 7200 },
      { check: 'source_freshness', source: 'vendor_b', value: 3600 },
      { check: 'source_freshness', source: 'vendor_silent', value: 86_400 },
    ]);
    expect(s.thresholds!.ratios).toContainEqual({ check: 'error_spike', source: 'vendor_x', value: 0.25 });
    // The check alerts on exactly the sources whose age is above expected_every (or unknown).
    const alerts = await sourceFreshnessCheck.run(testContext(database().pool, NOW, testConfig({ sources })));
    expect(Array.isArray(alerts) ? alerts.map((a) => a.subject) : alerts).toEqual(['vendor_a', 'vendor_silent']);

    const off = await snapshot({ sources, checks: { source_freshness: { enabled: false } } });
    expect(off.freshness).toBeUndefined();
    expect(off.thresholds!.seconds.map((t) => t.check)).not.toContain('source_freshness');
  });

  it(
    'counts in-flight batches per status with the oldest age in seconds on the given clock, and stuck ones as ' +
      'stuck_batches does',
    async () => {
      await batches([
        inFlight('uploaded', minutesAgo(30)), // 1800 s, never stuck (not a processing status)
        inFlight('uploaded', minutesAgo(2)),
        inFlight('processing', minutesAgo(15)), // stuck
        inFlight('processing', minutesAgo(10)), // exactly the threshold: not stuck
        inFlight('processing', minutesAgo(1)),
        inFlight('validating', at(-(45 * 60 + 30))), // 2730 s, stuck
        inFlight('inserting', at(30)), // written after "now" (clock skew): age 0, not negative
        { status: 'completed', created_at: minutesAgo(600), completed_at: minutesAgo(590) },
        { status: 'failed', created_at: minutesAgo(600), completed_at: minutesAgo(590) },
      ]);
      const s = await snapshot();
      expect(s.in_flight).toEqual([
        { status: 'uploaded', batch_count: 2, oldest_age_seconds: 1800 },
        { status: 'processing', batch_count: 3, oldest_age_seconds: 900 },
        { status: 'validating', batch_count: 1, oldest_age_seconds: 2730 },
        { status: 'inserting', batch_count: 1, oldest_age_seconds: 0 },
      ]);
      expect(s.stuck).toEqual({
        threshold_minutes: 10,
        by_status: [
          { status: 'processing', batch_count: 1 },
          { status: 'validating', batch_count: 1 },
        ],
      });

      // The same numbers the check reports.
      const [alert] = await stuckBatchesCheck.run(testContext(database().pool, NOW, testConfig()));
      expect(
        (alert!.details.stuck_batches as Array<{ status: string; batch_count: number }>).map(
          ({ status, batch_count }) => ({ status, batch_count }),
        ),
      ).toEqual(s.stuck.by_status);

      // The configured threshold applies.
      const five = await snapshot({ checks: { stuck_batches: { threshold_minutes: 5 } } });
      expect(five.stuck).toEqual({
        threshold_minutes: 5,
        by_status: [
          { status: 'processing', batch_count: 2 },
          { status: 'validating', batch_count: 1 },
        ],
      });
    },
  );

  it(
    'reports the judged hour bucket overall (without sources ' + 'that have their own threshold) and per source',
    async () => {
      await batches([
        rows('2025-01-04T10:05:00Z', 'vendor_a', 600, 60, 120),
        rows('2025-01-04T10:14:59Z', 'vendor_b', 400, 100, 0),
        rows('2025-01-04T10:02:00Z', 'vendor_x', 50, 50, 0), // vendor_x: current hour too small ...
        rows('2025-01-04T09:10:00Z', 'vendor_x', 300, 90, 30), // ... so its previous hour is judged
        rows('2025-01-04T09:59:59Z', 'vendor_c', 80, 8, 4), // previous hour only, below min_rows
        rows('2025-01-04T08:59:59Z', 'vendor_a', 5000, 5000, 0), // before the window
        rows('2025-01-04T11:00:00Z', 'vendor_b', 5000, 5000, 0), // after it
      ]);
      const config: ConfigFile = { sources: { vendor_x: { error_spike_threshold_pct: 25 } } };
      const s = await snapshot(config);
      // dedupe_rate has no own threshold for vendor_x: its overall bucket keeps vendor_x's 50 current rows.
      expect(s.hourly.overall_dedupe).toEqual({
        hour_bucket: CURRENT_HOUR,
        judged: true,
        total_rows: 1050,
        error_rows: 210,
        skipped_rows: 120,
        error_rate_pct: 20,
        dedupe_rate_pct: 11.43,
      });
      expect(s.hourly).toEqual({
        overall_dedupe: s.hourly.overall_dedupe,
        min_rows: 100,
        // vendor_a + vendor_b of 10:00 (vendor_c's 80 rows are the previous hour's).
        overall: {
          hour_bucket: CURRENT_HOUR,
          judged: true,
          total_rows: 1000,
          error_rows: 160,
          skipped_rows: 120,
          error_rate_pct: 16,
          dedupe_rate_pct: 12,
        },
        sources: [
          {
            source: 'vendor_a',
            hour_bucket: CURRENT_HOUR,
            judged: true,
            total_rows: 600,
            error_rows: 60,
            skipped_rows: 120,
            error_rate_pct: 10,
            dedupe_rate_pct: 20,
          },
          {
            source: 'vendor_b',
            hour_bucket: CURRENT_HOUR,
            judged: true,
            total_rows: 400,
            error_rows: 100,
            skipped_rows: 0,
            error_rate_pct: 25,
            dedupe_rate_pct: 0,
          },
          // Neither hour has min_rows: the current hour's figures, not judged.
          { source: 'vendor_c', ...noRows() },
          {
            source: 'vendor_x',
            hour_bucket: PREVIOUS_HOUR,
            judged: true,
            total_rows: 300,
            error_rows: 90,
            skipped_rows: 30,
            error_rate_pct: 30,
            dedupe_rate_pct: 10,
          },
        ],
      });

      // error_spike judges exactly these buckets: overall 16% > 15%, vendor_x 30% > 25%.
      const alerts = await errorSpikeCheck.run(testContext(database().pool, NOW, testConfig(config)));
      expect(alerts.map((a) => a.details)).toEqual([
        expect.objectContaining({
          hour_bucket: '2025-01-04T10:00:00Z',
          total_rows: 1000,
          error_rows: 160,
          error_rate_pct: 16,
        }),
        expect.objectContaining({
          hour_bucket: '2025-01-04T09:00:00Z',
          total_rows: 300,
          error_rows: 90,
          error_rate_pct: 30,
          source: 'vendor_x',
        }),
      ]);

      // Without the per-source threshold vendor_x counts overall: 1050 rows in 10:00.
      const plain = await snapshot();
      expect(plain.hourly.overall).toEqual({
        hour_bucket: CURRENT_HOUR,
        judged: true,
        total_rows: 1050,
        error_rows: 210,
        skipped_rows: 120,
        error_rate_pct: 20,
        dedupe_rate_pct: 11.43, // 120/1050 = 11.428…
      });
      expect(plain.hourly.sources.map((x) => x.source)).toEqual(['vendor_a', 'vendor_b', 'vendor_c', 'vendor_x']);
    },
  );

  it('falls back to the previous hour overall as error_spike does, and follows min_rows', async () => {
    await batches([
      rows('2025-01-04T10:01:00Z', 'vendor_a', 99, 99, 0),
      rows('2025-01-04T09:30:00Z', 'vendor_a', 300, 100, 25),
    ]);
    const s = await snapshot();
    const previous = {
      hour_bucket: PREVIOUS_HOUR,
      judged: true,
      total_rows: 300,
      error_rows: 100,
      skipped_rows: 25,
      error_rate_pct: 33.33,
      dedupe_rate_pct: 8.33,
    };
    expect(s.hourly.overall).toEqual(previous);
    expect(s.hourly.sources).toEqual([{ source: 'vendor_a', ...previous }]);
    const [alert] = await errorSpikeCheck.run(testContext(database().pool, NOW, testConfig()));
    expect(alert!.details).toMatchObject({ hour_bucket: '2025-01-04T09:00:00Z', error_rate_pct: 33.33 });

    const small = await snapshot({ checks: { error_spike: { min_rows: 50 } } });
    expect(small.hourly.min_rows).toBe(50);
    expect(small.hourly.overall).toEqual({
      hour_bucket: CURRENT_HOUR,
      judged: true,
      total_rows: 99,
      error_rows: 99,
      skipped_rows: 0,
      error_rate_pct: 100,
      dedupe_rate_pct: 0,
    });

    const unjudged = await snapshot({ checks: { error_spike: { min_rows: 1000 } } });
    expect(unjudged.hourly.overall).toEqual({
      hour_bucket: CURRENT_HOUR,
      judged: false,
      total_rows: 99,
      error_rows: 99,
      skipped_rows: 0,
      error_rate_pct: 100,
      dedupe_rate_pct: 0,
    });
  });

  it('counts batches whose completed_at lies within the last hour, by final status', async () => {
    await batches([
      { status: 'completed', created_at: minutesAgo(70), completed_at: minutesAgo(59) }, // counted
      { status: 'completed', created_at: minutesAgo(20 * 60), completed_at: minutesAgo(10) }, // counted: a slow one
      { status: 'failed', created_at: minutesAgo(6), completed_at: minutesAgo(5) }, // counted
      // exactly an hour ago: not within
      { status: 'completed', created_at: minutesAgo(70), completed_at: minutesAgo(60) },
      { status: 'completed', created_at: minutesAgo(70), completed_at: minutesAgo(61) },
      { status: 'failed', created_at: minutesAgo(1), completed_at: at(300) }, // in the future
      // not finished
      { status: 'processing', created_at: minutesAgo(30), completed_at: minutesAgo(10), updated_at: minutesAgo(1) },
      // Uploaded more than FINISHED_LOOKBACK_HOURS ago: outside the indexed window (documented limit).
      { status: 'completed', created_at: minutesAgo((FINISHED_LOOKBACK_HOURS + 6) * 60), completed_at: minutesAgo(10) },
    ]);
    expect((await snapshot()).finished_last_hour).toEqual({ completed: 2, failed: 1 });
  });

  it('agrees with ops.v_pipeline_health on the batches in flight', async () => {
    const { rows: clock } = await database().pool.query<{ now: Date }>('select now() as now');
    const dbNow = clock[0]!.now;
    const ago = (m: number): Date => new Date(dbNow.getTime() - m * 60_000);
    await batches([
      inFlight('uploaded', ago(3)),
      inFlight('processing', ago(40)),
      inFlight('processing', ago(12)),
      inFlight('inserting', ago(1)),
    ]);
    const s = await collectSnapshot(testContext(database().pool, dbNow, testConfig()));
    const { rows: view } = await database().pool.query<{
      status: string;
      batch_count: number;
      oldest_age_minutes: number;
    }>(
      `select status, batch_count::int as batch_count, oldest_age_minutes::float8 as oldest_age_minutes from ` +
        `ops.v_pipeline_health`,
    );
    const byStatus = new Map(view.map((r) => [r.status, r]));
    expect(s.in_flight.map((x) => x.status)).toEqual(['uploaded', 'processing', 'inserting']);
    for (const x of s.in_flight) {
      expect(byStatus.get(x.status)?.batch_count).toBe(x.batch_count);
      expect(Math.abs(byStatus.get(x.status)!.oldest_age_minutes - x.oldest_age_seconds / 60)).toBeLessThan(0.2);
    }
  });

  it('reads the in-flight rows through the partial index and the hour buckets through the UTC-hour index', async () => {
    const explained = await explainQueries(database().pool, (db) =>
      collectSnapshot(testContext(db, NOW, testConfig())),
    );
    expect(explained).toHaveLength(3);
    expect(explained[0]).toMatch(/sentinel_batches_inflight_idx/);
    expect(explained[1]).toMatch(/sentinel_batches_hour_idx/);
    expect(explained[2]).toMatch(/sentinel_batches_hour_idx/);
    for (const plan of explained) expect(plan).not.toMatch(/Seq Scan/);
  });
});

// --- Runner.runOnce ------------------------------------------------------------------

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { debug() {}, info() {}, error() {}, warn: (m) => void warnings.push(m), warnings };
}

describe('Runner.runOnce', () => {
  let fake: FakePostgrest | undefined;
  let runner: Runner | undefined;
  afterEach(async () => {
    await runner?.close();
    await fake?.close();
    runner = undefined;
    fake = undefined;
  });

  it('reports the pipeline snapshot and the schema_cache measurements, also in the JSON report', async () => {
    await batches([
      inFlight('processing', minutesAgo(20)),
      inFlight('uploaded', minutesAgo(1)),
      rows('2025-01-04T10:05:00Z', 'vendor_a', 1000, 185, 50),
      { status: 'failed', created_at: minutesAgo(30), completed_at: minutesAgo(25) },
    ]);
    fake = await startFakePostgrest(answers.ok());
    const logger = recordingLogger();
    runner = new Runner({
      config: testConfig({}, { databaseUrl: database().url, restUrl: fake.url }),
      logger,
      checks: allChecks(),
      state: new MemoryStateStore(),
      now: () => NOW,
    });
    const result = await runner.runOnce();

    expect(result.overall_status).toBe('critical'); // the stuck batch
    expect(result.pipeline).toEqual({
      taken_at: '2025-01-04T10:15:30.000Z',
      in_flight: [
        { status: 'uploaded', batch_count: 1, oldest_age_seconds: 60 },
        { status: 'processing', batch_count: 1, oldest_age_seconds: 1200 },
      ],
      stuck: { threshold_minutes: 10, by_status: [{ status: 'processing', batch_count: 1 }] },
      hourly: {
        min_rows: 100,
        overall_dedupe: result.pipeline!.hourly.overall,
        overall: {
          hour_bucket: CURRENT_HOUR,
          judged: true,
          total_rows: 1000,
          error_rows: 185,
          skipped_rows: 50,
          error_rate_pct: 18.5,
          dedupe_rate_pct: 5,
        },
        sources: [
          {
            source: 'vendor_a',
            hour_bucket: CURRENT_HOUR,
            judged: true,
            total_rows: 1000,
            error_rows: 185,
            skipped_rows: 50,
            error_rate_pct: 18.5,
            dedupe_rate_pct: 5,
          },
        ],
      },
      finished_last_hour: { completed: 1, failed: 1 },
      backlog: { threshold_minutes: 30, batch_count: 0 },
      thresholds: DEFAULT_THRESHOLDS,
    });
    const schemaCache = result.checks.find((c) => c.name === 'schema_cache')!;
    expect(schemaCache.outcome).toBe('ok');
    expect(schemaCache.measurements).toEqual({ latency_ms: expect.any(Number), result: 'ok', up: true, reloads: 0 });
    expect(result.checks.find((c) => c.name === 'stuck_batches')!.measurements).toBeUndefined();
    expect(logger.warnings).toEqual([]);

    const report = JSON.parse(renderJson(result)) as Record<string, unknown>;
    expect(Object.keys(report).at(-1)).toBe('pipeline');
    expect(report.pipeline).toEqual(result.pipeline);
    expect(
      (report.checks as Array<{ name: string; measurements?: unknown }>).find((c) => c.name === 'schema_cache')!
        .measurements,
    ).toMatchObject({ result: 'ok', up: true });
  });

  it('runs without a snapshot, status unchanged, when the snapshot fails', async () => {
    // A database without the intake tables: every query fails.
    const bare = await createTestDatabase({ template: 'empty' });
    try {
      const logger = recordingLogger();
      runner = new Runner({
        config: testConfig({}, { databaseUrl: bare.url }),
        logger,
        checks: [{ name: 'stuck_batches', run: async () => [] }, schemaCacheCheck],
        state: new MemoryStateStore(),
        now: () => NOW,
      });
      const result = await runner.runOnce();
      expect(result.overall_status).toBe('healthy');
      expect(result.pipeline).toBeUndefined();
      expect('pipeline' in JSON.parse(renderJson(result))).toBe(false);
      expect(logger.warnings).toHaveLength(1);
      expect(logger.warnings[0]).toMatch(
        /^Pipeline snapshot failed: relation "intake\.simplicity_batches" does not exist/,
      );
      await runner.close();
      runner = undefined;
    } finally {
      await bare.drop();
    }
  });

  it('gives up on a snapshot that outlives its timeout without holding up the run', async () => {
    // Another session holds a lock the snapshot's queries wait for.
    const locker = new pg.Client({ connectionString: database().url });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table intake.simplicity_batches in access exclusive mode');
      const logger = recordingLogger();
      runner = new Runner({
        config: testConfig({}, { databaseUrl: database().url }),
        logger,
        checks: [{ name: 'stuck_batches', run: async () => [] }],
        state: new MemoryStateStore(),
        now: () => NOW,
        snapshotTimeoutMs: 300,
      });
      // The run does not wait for the lock: the snapshot gives up after its own 0.3 s (the warning says so).
      const result = await within(runner.runOnce(), 20_000, 'the run with the table locked');
      expect(result.overall_status).toBe('healthy');
      expect(result.pipeline).toBeUndefined();
      expect(logger.warnings).toEqual([
        'Pipeline snapshot failed: timed out after 0.3s; this run reports no pipeline figures',
      ]);
    } finally {
      await locker.query('rollback');
      await locker.end();
    }
  });
});

describe('effectiveThresholds', () => {
  it('lists what the enabled checks compare against, overall and per source, in seconds and 0–1 ratios', () => {
    const config = testConfig({
      checks: {
        stuck_batches: { threshold_minutes: 12 },
        dedupe_rate: { enabled: false },
        processing_time: { p95_minutes: 7.5 },
        error_spike: { threshold_pct: 20, min_rows: 40 },
      },
      sources: {
        vendor_b: { error_spike_threshold_pct: 30, dedupe_threshold_pct: 70, expected_every: '90m' },
        vendor_a: { error_spike_threshold_pct: 5 },
      },
    });
    expect(effectiveThresholds(config)).toEqual({
      seconds: [
        { check: 'stuck_batches', value: 720 },
        { check: 'queue_backlog', value: 1800 },
        { check: 'processing_time', value: 450 },
        { check: 'source_freshness', source: 'vendor_b', value: 5400 },
      ],
      // dedupe_rate is disabled: neither its overall nor vendor_b's threshold.
      ratios: [
        { check: 'error_spike', value: 0.2 },
        { check: 'error_spike', source: 'vendor_a', value: 0.05 },
        { check: 'error_spike', source: 'vendor_b', value: 0.3 },
      ],
      min_rows: 40,
    });
    const none = testConfig({
      checks: Object.fromEntries(
        ['stuck_batches', 'queue_backlog', 'processing_time', 'source_freshness', 'error_spike', 'dedupe_rate'].map(
          (c) => [c, { enabled: false }],
        ),
      ),
    });
    expect(effectiveThresholds(none)).toEqual({ seconds: [], ratios: [] });
  });
});
