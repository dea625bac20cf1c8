import { readFileSync } from 'node:fs';
import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { METRICS } from '../../src/metrics/names.js';
import {
  configuredSourceLabels,
  createMetrics,
  PER_RUN_METRICS,
  RUN_DURATION_BUCKETS,
  sourceSeries,
} from '../../src/metrics/registry.js';
import type { RunResult } from '../../src/types.js';

// --- The exposition format, parsed --------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const m of text.matchAll(re))
    labels[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  return labels;
}

function parse(text: string): Exposition {
  const out: Exposition = { help: new Map(), type: new Map(), samples: [] };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? out.help : out.type).set(meta[2]!, meta[3]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`unparsable exposition line: ${line}`);
    const raw = sample[3]!;
    const value =
      raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' || raw === 'Nan' ? NaN : Number(raw);
    out.samples.push({ name: sample[1]!, labels: parseLabels(sample[2] ?? ''), value });
  }
  return out;
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

/** The value of exactly this label set, or undefined when it is not exported. */
function value(exp: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return exp.samples.find((s) => s.name === name && sameLabels(s.labels, labels))?.value;
}

/** Every label set of a metric, as `{label: value}` objects. */
function series(exp: Exposition, name: string): Array<Record<string, string>> {
  return exp.samples.filter((s) => s.name === name).map((s) => s.labels);
}

async function scrape(m: ReturnType<typeof createMetrics>): Promise<Exposition> {
  return parse(await m.render());
}

// --- Runs as Runner + alerting produce them ------------------------------------------

/** A bad hour: stuck batches, an error spike (vendor_x's silenced), PGRST002 reloaded, one notifier retrying. */
function firstRun(): RunResult {
  return {
    timestamp: '2025-01-04T10:15:32.123Z',
    environment: 'prod',
    overall_status: 'critical',
    alerts: [
      {
        check: 'stuck_batches',
        level: 'critical',
        message: '3 batches stuck > 10m: processing(2), validating(1)',
        details: {},
      },
      { check: 'error_spike', level: 'warning', message: 'Error rate 18.5% > 15.0% threshold', details: {} },
      {
        check: 'error_spike',
        level: 'warning',
        message: 'Error rate 30.0% > 25.0% threshold for source vendor_x',
        subject: 'vendor_x',
        details: {},
        silenced: true,
      },
      { check: 'schema_cache', level: 'warning', message: 'PGRST002 detected - auto-reload triggered', details: {} },
    ],
    checks: [
      { name: 'stuck_batches', outcome: 'alert', duration_ms: 12 },
      { name: 'error_spike', outcome: 'alert', duration_ms: 8 },
      {
        name: 'schema_cache',
        outcome: 'alert',
        duration_ms: 2150,
        measurements: { latency_ms: 42, result: 'ok', up: true, reloads: 1 },
      },
      {
        name: 'anomalies',
        outcome: 'ok',
        duration_ms: 9,
        series: [
          { key: 'score', labels: { source: 'vendor_a', metric: 'volume' }, value: -1.25 },
          { key: 'sensitivity', labels: { source: 'vendor_a', metric: 'volume' }, value: 3 },
          { key: 'level', labels: { source: 'vendor_a', metric: 'volume' }, value: 0 },
        ],
      },
    ],
    duration_ms: 2234,
    metrics: {
      total_checks: 3,
      alerts_triggered: 4,
      critical_alerts: 1,
      warning_alerts: 3,
      skipped_checks: 0,
      silenced_alerts: 1,
    },
    notifications: [
      { notifier: 'oncall', type: 'discord', sent: 2, pending: 0, failed: 0, errors: [] },
      // One refused (400, given up) and one 503 kept for the next run.
      {
        notifier: 'pager',
        type: 'pagerduty',
        sent: 0,
        pending: 1,
        failed: 1,
        errors: ['HTTP 400 Bad Request', 'HTTP 503 Service Unavailable'],
      },
    ],
    pipeline: {
      taken_at: '2025-01-04T10:15:31.000Z',
      in_flight: [
        { status: 'uploaded', batch_count: 2, oldest_age_seconds: 120 },
        { status: 'processing', batch_count: 3, oldest_age_seconds: 1500.5 },
        { status: 'validating', batch_count: 1, oldest_age_seconds: 900 },
      ],
      stuck: {
        threshold_minutes: 10,
        by_status: [
          { status: 'processing', batch_count: 2 },
          { status: 'validating', batch_count: 1 },
        ],
      },
      hourly: {
        min_rows: 100,
        overall: {
          hour_bucket: '2025-01-04T10:00:00.000Z',
          judged: true,
          total_rows: 1000,
          error_rows: 185,
          skipped_rows: 250,
          error_rate_pct: 18.5,
          dedupe_rate_pct: 25,
        },
        sources: [
          {
            source: 'vendor_a',
            hour_bucket: '2025-01-04T10:00:00.000Z',
            judged: true,
            total_rows: 1000,
            error_rows: 185,
            skipped_rows: 250,
            error_rate_pct: 18.5,
            dedupe_rate_pct: 25,
          },
          {
            source: 'vendor_x',
            hour_bucket: '2025-01-04T09:00:00.000Z',
            judged: true,
            total_rows: 400,
            error_rows: 120,
            skipped_rows: 0,
            error_rate_pct: 30,
            dedupe_rate_pct: 0,
          },
        ],
      },
      finished_last_hour: { completed: 12, failed: 1 },
      backlog: { threshold_minutes: 30, batch_count: 2 },
      freshness: [
        { source: 'vendor_q', expected_every_seconds: 7200, last_batch_age_seconds: 11_520, lookback_seconds: 604_800 },
        { source: 'vendor_z', expected_every_seconds: 3600, last_batch_age_seconds: null, lookback_seconds: 604_800 },
      ],
      thresholds: {
        seconds: [
          { check: 'stuck_batches', value: 600 },
          { check: 'queue_backlog', value: 1800 },
          { check: 'processing_time', value: 300 },
          { check: 'source_freshness', source: 'vendor_q', value: 7200 },
          { check: 'source_freshness', source: 'vendor_z', value: 3600 },
        ],
        ratios: [
          { check: 'error_spike', value: 0.15 },
          { check: 'error_spike', source: 'vendor_x', value: 0.25 },
          { check: 'dedupe_rate', value: 0.5 },
        ],
        min_rows: 100,
      },
    },
  };
}

/** Five minutes later: vendor_x quiet, nothing validating, error_spike failed, PGRST002 persisting in the cooldown. */
function secondRun(): RunResult {
  return {
    timestamp: '2025-01-04T10:20:32.000Z',
    environment: 'prod',
    overall_status: 'critical',
    alerts: [
      { check: 'stuck_batches', level: 'critical', message: '2 batches stuck > 10m: processing(2)', details: {} },
      {
        check: 'error_spike',
        level: 'critical',
        message: 'Check failed: canceling statement due to statement timeout',
        details: {},
        failed: true,
      },
      {
        check: 'schema_cache',
        level: 'critical',
        message: 'PGRST002 persists - reload already sent at 2025-01-04T10:15:30.000Z',
        details: {},
      },
    ],
    checks: [
      { name: 'stuck_batches', outcome: 'alert', duration_ms: 10 },
      { name: 'error_spike', outcome: 'failed', duration_ms: 10000 },
      {
        name: 'schema_cache',
        outcome: 'alert',
        duration_ms: 2500,
        measurements: { latency_ms: 7, result: 'PGRST002', up: false, reloads: 0 },
      },
    ],
    duration_ms: 12_600,
    metrics: { total_checks: 3, alerts_triggered: 3, critical_alerts: 3, warning_alerts: 0, skipped_checks: 0 },
    notifications: [
      { notifier: 'oncall', type: 'discord', sent: 1, pending: 0, failed: 0, errors: [] },
      { notifier: 'pager', type: 'pagerduty', sent: 1, pending: 0, failed: 0, errors: [] },
    ],
    pipeline: {
      taken_at: '2025-01-04T10:20:31.000Z',
      in_flight: [
        { status: 'uploaded', batch_count: 1, oldest_age_seconds: 30 },
        { status: 'processing', batch_count: 2, oldest_age_seconds: 1800.5 },
      ],
      stuck: { threshold_minutes: 10, by_status: [{ status: 'processing', batch_count: 2 }] },
      hourly: {
        min_rows: 100,
        overall: {
          hour_bucket: '2025-01-04T10:00:00.000Z',
          judged: true,
          total_rows: 2000,
          error_rows: 200,
          skipped_rows: 100,
          error_rate_pct: 10,
          dedupe_rate_pct: 5,
        },
        sources: [
          {
            source: 'vendor_a',
            hour_bucket: '2025-01-04T10:00:00.000Z',
            judged: true,
            total_rows: 2000,
            error_rows: 200,
            skipped_rows: 100,
            error_rate_pct: 10,
            dedupe_rate_pct: 5,
          },
        ],
      },
      finished_last_hour: { completed: 15, failed: 0 },
      backlog: { threshold_minutes: 30, batch_count: 0 },
      freshness: [
        { source: 'vendor_q', expected_every_seconds: 7200, last_batch_age_seconds: 60, lookback_seconds: 604_800 },
      ],
      thresholds: firstRun().pipeline!.thresholds!,
    },
  };
}

/** The database down: every database check failed, no snapshot, schema_cache not configured. */
function outageRun(): RunResult {
  return {
    timestamp: '2025-01-04T10:25:32.000Z',
    environment: 'prod',
    overall_status: 'critical',
    alerts: [
      {
        check: 'stuck_batches',
        level: 'critical',
        message: 'Check failed: connection refused (127.0.0.1:5432)',
        details: {},
        failed: true,
      },
      {
        check: 'error_spike',
        level: 'critical',
        message: 'Check failed: connection refused (127.0.0.1:5432)',
        details: {},
        failed: true,
      },
    ],
    checks: [
      { name: 'stuck_batches', outcome: 'failed', duration_ms: 3 },
      { name: 'error_spike', outcome: 'failed', duration_ms: 2 },
      { name: 'schema_cache', outcome: 'skipped', duration_ms: 0, reason: 'no PostgREST URL configured' },
    ],
    duration_ms: 8,
    metrics: { total_checks: 2, alerts_triggered: 2, critical_alerts: 2, warning_alerts: 0, skipped_checks: 1 },
  };
}

const PIPELINE_METRICS = METRICS.map((m) => m.name).filter((n) => n.startsWith('sentinel_pipeline_'));

describe('createMetrics', () => {
  it(
    'exports every metric of names.ts with its TYPE and HELP, plus ' + 'the process metrics, on a registry of its own',
    async () => {
      const m = createMetrics({ version: '9.9.9' });
      m.observeRun(firstRun());
      const exp = await scrape(m);
      for (const spec of METRICS) {
        expect(exp.type.get(spec.name), spec.name).toBe(spec.type);
        expect(exp.help.get(spec.name), spec.name).toBe(spec.help);
        expect(
          exp.samples.some((s) => s.name === spec.name || s.name.startsWith(`${spec.name}_`)),
          `${spec.name} has samples`,
        ).toBe(true);
      }
      for (const name of [
        'process_cpu_user_seconds_total',
        'process_resident_memory_bytes',
        'process_start_time_seconds',
        'nodejs_heap_size_used_bytes',
        'nodejs_eventloop_lag_seconds',
      ]) {
        expect(exp.type.has(name), name).toBe(true);
      }
      expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await globalRegistry.getSingleMetric('sentinel_runs_total')).toBeUndefined();
      // Two instances do not clash (one registry each).
      expect(() => createMetrics()).not.toThrow();
    },
  );

  it('sets the pipeline gauges from the snapshot, in seconds and 0–1 ratios', async () => {
    const m = createMetrics();
    m.observeRun(firstRun());
    const exp = await scrape(m);
    expect(value(exp, 'sentinel_pipeline_batches_in_flight', { status: 'uploaded' })).toBe(2);
    expect(value(exp, 'sentinel_pipeline_batches_in_flight', { status: 'processing' })).toBe(3);
    expect(value(exp, 'sentinel_pipeline_batches_in_flight', { status: 'validating' })).toBe(1);
    expect(value(exp, 'sentinel_pipeline_batches_in_flight', { status: 'inserting' })).toBe(0);
    expect(value(exp, 'sentinel_pipeline_oldest_batch_age_seconds', { status: 'processing' })).toBe(1500.5);
    expect(value(exp, 'sentinel_pipeline_oldest_batch_age_seconds', { status: 'uploaded' })).toBe(120);
    expect(value(exp, 'sentinel_pipeline_oldest_batch_age_seconds', { status: 'inserting' })).toBeUndefined();
    expect(series(exp, 'sentinel_pipeline_stuck_batches')).toHaveLength(3);
    expect(value(exp, 'sentinel_pipeline_stuck_batches', { status: 'processing' })).toBe(2);
    expect(value(exp, 'sentinel_pipeline_stuck_batches', { status: 'validating' })).toBe(1);
    expect(value(exp, 'sentinel_pipeline_stuck_batches', { status: 'inserting' })).toBe(0);
    // Overall: no source label.
    expect(value(exp, 'sentinel_pipeline_error_ratio')).toBe(0.185);
    expect(value(exp, 'sentinel_pipeline_dedupe_ratio')).toBe(0.25);
    expect(value(exp, 'sentinel_pipeline_bucket_rows')).toBe(1000);
    expect(value(exp, 'sentinel_pipeline_error_ratio', { source: 'vendor_x' })).toBe(0.3);
    expect(value(exp, 'sentinel_pipeline_dedupe_ratio', { source: 'vendor_x' })).toBe(0);
    expect(value(exp, 'sentinel_pipeline_bucket_rows', { source: 'vendor_x' })).toBe(400);
    expect(value(exp, 'sentinel_pipeline_error_ratio', { source: 'vendor_a' })).toBe(0.185);
    expect(value(exp, 'sentinel_pipeline_batches_finished_last_hour', { status: 'completed' })).toBe(12);
    expect(value(exp, 'sentinel_pipeline_batches_finished_last_hour', { status: 'failed' })).toBe(1);
    expect(value(exp, 'sentinel_pipeline_backlog_batches')).toBe(2);
    // Without overall_dedupe (no source has its own dedupe threshold) the overall bucket is the same.
    expect(value(exp, 'sentinel_pipeline_dedupe_bucket_rows')).toBe(1000);
    expect(value(exp, 'sentinel_pipeline_source_last_batch_age_seconds', { source: 'vendor_q' })).toBe(11_520);
    // Nothing within the lookback: the lookback, which is above expected_every, so the rule fires like the check.
    expect(value(exp, 'sentinel_pipeline_source_last_batch_age_seconds', { source: 'vendor_z' })).toBe(604_800);
  });

  it('exports the thresholds the checks applied, overall (no source label) and per configured source', async () => {
    const m = createMetrics();
    m.observeRun(firstRun());
    const exp = await scrape(m);
    expect(series(exp, 'sentinel_check_threshold_seconds')).toEqual([
      { check: 'stuck_batches' },
      { check: 'queue_backlog' },
      { check: 'processing_time' },
      { check: 'source_freshness', source: 'vendor_q' },
      { check: 'source_freshness', source: 'vendor_z' },
    ]);
    expect(value(exp, 'sentinel_check_threshold_seconds', { check: 'stuck_batches' })).toBe(600);
    expect(value(exp, 'sentinel_check_threshold_seconds', { check: 'source_freshness', source: 'vendor_z' })).toBe(
      3600,
    );
    expect(value(exp, 'sentinel_check_threshold_ratio', { check: 'error_spike' })).toBe(0.15);
    expect(value(exp, 'sentinel_check_threshold_ratio', { check: 'error_spike', source: 'vendor_x' })).toBe(0.25);
    expect(value(exp, 'sentinel_check_threshold_ratio', { check: 'dedupe_rate' })).toBe(0.5);
    expect(value(exp, 'sentinel_check_min_rows')).toBe(100);
    // A run without a snapshot (database down) exports none of them, not zeros.
    m.observeRun({ ...firstRun(), pipeline: undefined });
    const after = await scrape(m);
    for (const name of [
      'sentinel_check_threshold_seconds',
      'sentinel_check_min_rows',
      'sentinel_pipeline_backlog_batches',
    ])
      expect(series(after, name), name).toEqual([]);
  });

  it('rounds the ratios as the checks do, so ratio > threshold is exactly the check’s test', async () => {
    const run = firstRun();
    const figures = { ...run.pipeline!.hourly.overall, total_rows: 3, error_rows: 1, skipped_rows: 2 };
    run.pipeline!.hourly.overall = figures;
    // 15.004 % is 15.00 % to error_spike: not above a 15 % threshold.
    run.pipeline!.hourly.sources = [{ ...figures, source: 'vendor_x', total_rows: 100_000, error_rows: 15_004 }];
    const m = createMetrics();
    m.observeRun(run);
    const exp = await scrape(m);
    expect(value(exp, 'sentinel_pipeline_error_ratio')).toBe(0.3333);
    // ratePct / 100, the operation the threshold goes through too (15.01 % and 0.1501 agree to the bit).
    expect(value(exp, 'sentinel_pipeline_dedupe_ratio')).toBe(66.67 / 100);
    expect(value(exp, 'sentinel_pipeline_error_ratio', { source: 'vendor_x' })).toBe(0.15);
  });

  it('judges the overall dedupe ratio on its own bucket when sources have their own dedupe threshold', async () => {
    const run = firstRun();
    run.pipeline!.hourly.overall_dedupe = {
      ...run.pipeline!.hourly.overall,
      total_rows: 1400,
      skipped_rows: 700,
    };
    const m = createMetrics();
    m.observeRun(run);
    const exp = await scrape(m);
    expect(value(exp, 'sentinel_pipeline_dedupe_ratio')).toBe(0.5);
    expect(value(exp, 'sentinel_pipeline_dedupe_bucket_rows')).toBe(1400);
    // The error side keeps its own overall bucket.
    expect(value(exp, 'sentinel_pipeline_error_ratio')).toBe(0.185);
    expect(value(exp, 'sentinel_pipeline_bucket_rows')).toBe(1000);
  });

  it('gives sources with their own settings series of their own before the busiest, within max_sources', async () => {
    const run = firstRun();
    const busy = (source: string, total_rows: number) => ({
      ...run.pipeline!.hourly.overall,
      source,
      total_rows,
    });
    // vendor_x (own error threshold) is the quietest; max_sources 2.
    run.pipeline!.hourly.sources = [busy('big_1', 9000), busy('big_2', 8000), busy('vendor_x', 10)];
    run.pipeline!.thresholds!.seconds = [];
    const m = createMetrics({ maxSources: 2 });
    m.observeRun(run);
    const exp = await scrape(m);
    expect(series(exp, 'sentinel_pipeline_bucket_rows')).toEqual([
      {},
      { source: 'vendor_x' },
      { source: 'big_1' },
      { source: 'other' },
    ]);
    expect(series(exp, 'sentinel_check_threshold_ratio')).toContainEqual({ check: 'error_spike', source: 'vendor_x' });
  });

  it('drops prom-client’s gauges named _total (promtool check metrics) and keeps the per-type ones', async () => {
    const exp = await scrape(createMetrics());
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      expect(exp.type.has(name), name).toBe(false);
    expect(exp.type.get('nodejs_active_handles')).toBe('gauge');
    expect(exp.type.get('nodejs_active_resources')).toBe('gauge');
  });

  it('sets the schema-cache, check, alert, notification and run metrics', async () => {
    const m = createMetrics();
    m.observeRun(firstRun());
    const exp = await scrape(m);
    expect(value(exp, 'sentinel_schema_cache_up')).toBe(1);
    expect(value(exp, 'sentinel_schema_cache_probe_duration_seconds')).toBe(0.042);
    expect(series(exp, 'sentinel_schema_cache_probe_result')).toEqual([{ result: 'ok' }]);
    expect(value(exp, 'sentinel_schema_cache_probe_result', { result: 'ok' })).toBe(1);
    expect(value(exp, 'sentinel_schema_cache_reloads_total')).toBe(1);

    expect(value(exp, 'sentinel_check_status', { check: 'stuck_batches' })).toBe(2);
    expect(value(exp, 'sentinel_check_status', { check: 'error_spike' })).toBe(1);
    expect(value(exp, 'sentinel_check_status', { check: 'schema_cache' })).toBe(1);
    expect(value(exp, 'sentinel_check_duration_seconds', { check: 'stuck_batches' })).toBe(0.012);
    expect(value(exp, 'sentinel_check_duration_seconds', { check: 'schema_cache' })).toBe(2.15);

    expect(value(exp, 'sentinel_alerts_firing', { check: 'stuck_batches', level: 'critical' })).toBe(1);
    expect(value(exp, 'sentinel_alerts_firing', { check: 'stuck_batches', level: 'warning' })).toBe(0);
    // the silenced one left out
    expect(value(exp, 'sentinel_alerts_firing', { check: 'error_spike', level: 'warning' })).toBe(1);
    expect(value(exp, 'sentinel_alerts_firing', { check: 'schema_cache', level: 'warning' })).toBe(1);
    expect(value(exp, 'sentinel_alerts_silenced', { check: 'error_spike' })).toBe(1);
    expect(value(exp, 'sentinel_alerts_silenced', { check: 'stuck_batches' })).toBe(0);

    expect(value(exp, 'sentinel_notifications_total', { notifier: 'oncall', type: 'discord', result: 'sent' })).toBe(2);
    expect(value(exp, 'sentinel_notifications_total', { notifier: 'oncall', type: 'discord', result: 'failed' })).toBe(
      0,
    );
    expect(value(exp, 'sentinel_notifications_total', { notifier: 'pager', type: 'pagerduty', result: 'sent' })).toBe(
      0,
    );
    expect(value(exp, 'sentinel_notifications_total', { notifier: 'pager', type: 'pagerduty', result: 'failed' })).toBe(
      1,
    );
    expect(
      value(exp, 'sentinel_notifications_total', { notifier: 'pager', type: 'pagerduty', result: 'retrying' }),
    ).toBe(1);
    expect(value(exp, 'sentinel_notifications_pending', { notifier: 'pager' })).toBe(1);
    expect(value(exp, 'sentinel_notifications_pending', { notifier: 'oncall' })).toBe(0);

    expect(value(exp, 'sentinel_runs_total', { status: 'critical' })).toBe(1);
    expect(value(exp, 'sentinel_runs_total', { status: 'healthy' })).toBe(0);
    expect(value(exp, 'sentinel_runs_total', { status: 'degraded' })).toBe(0);
    expect(value(exp, 'sentinel_run_duration_seconds_count')).toBe(1);
    expect(value(exp, 'sentinel_run_duration_seconds_sum')).toBe(2.234);
    expect(value(exp, 'sentinel_run_duration_seconds_bucket', { le: '1' })).toBe(0);
    expect(value(exp, 'sentinel_run_duration_seconds_bucket', { le: '2.5' })).toBe(1);
    expect(value(exp, 'sentinel_run_duration_seconds_bucket', { le: '+Inf' })).toBe(1);
    expect(series(exp, 'sentinel_run_duration_seconds_bucket').map((l) => l.le)).toEqual([
      ...RUN_DURATION_BUCKETS.map(String),
      '+Inf',
    ]);

    expect(value(exp, 'sentinel_database_up')).toBe(1);
    expect(value(exp, 'sentinel_last_run_timestamp_seconds')).toBe(Date.parse('2025-01-04T10:15:32.123Z') / 1000);
    expect(value(exp, 'sentinel_last_successful_run_timestamp_seconds')).toBe(
      Date.parse('2025-01-04T10:15:32.123Z') / 1000,
    );
  });

  it('increments counters across runs and drops label sets a later run no longer reports', async () => {
    const m = createMetrics();
    m.observeRun(firstRun());
    m.observeRun(secondRun());
    const exp = await scrape(m);

    // Counters add up.
    expect(value(exp, 'sentinel_runs_total', { status: 'critical' })).toBe(2);
    expect(value(exp, 'sentinel_schema_cache_reloads_total')).toBe(1); // no NOTIFY in the cooldown
    expect(value(exp, 'sentinel_notifications_total', { notifier: 'oncall', type: 'discord', result: 'sent' })).toBe(3);
    expect(value(exp, 'sentinel_notifications_total', { notifier: 'pager', type: 'pagerduty', result: 'sent' })).toBe(
      1,
    );
    expect(
      value(exp, 'sentinel_notifications_total', { notifier: 'pager', type: 'pagerduty', result: 'retrying' }),
    ).toBe(1);
    expect(value(exp, 'sentinel_run_duration_seconds_count')).toBe(2);
    expect(value(exp, 'sentinel_run_duration_seconds_sum')).toBeCloseTo(14.834, 9);
    expect(value(exp, 'sentinel_run_duration_seconds_bucket', { le: '2.5' })).toBe(1);
    expect(value(exp, 'sentinel_run_duration_seconds_bucket', { le: '30' })).toBe(2);

    // vendor_x and the validating batches are gone, not left at their last values.
    expect(series(exp, 'sentinel_pipeline_error_ratio')).toEqual([{}, { source: 'vendor_a' }]);
    expect(series(exp, 'sentinel_pipeline_dedupe_ratio')).toEqual([{}, { source: 'vendor_a' }]);
    expect(series(exp, 'sentinel_pipeline_bucket_rows')).toEqual([{}, { source: 'vendor_a' }]);
    expect(value(exp, 'sentinel_pipeline_error_ratio')).toBe(0.1);
    expect(value(exp, 'sentinel_pipeline_dedupe_ratio')).toBe(0.05);
    expect(value(exp, 'sentinel_pipeline_oldest_batch_age_seconds', { status: 'validating' })).toBeUndefined();
    expect(series(exp, 'sentinel_pipeline_oldest_batch_age_seconds')).toEqual([
      { status: 'uploaded' },
      { status: 'processing' },
    ]);
    expect(value(exp, 'sentinel_pipeline_oldest_batch_age_seconds', { status: 'processing' })).toBe(1800.5);
    expect(value(exp, 'sentinel_pipeline_batches_in_flight', { status: 'validating' })).toBe(0);
    expect(value(exp, 'sentinel_pipeline_stuck_batches', { status: 'validating' })).toBe(0);
    expect(value(exp, 'sentinel_pipeline_batches_finished_last_hour', { status: 'failed' })).toBe(0);

    // Per-run gauges describe the second run only.
    expect(value(exp, 'sentinel_check_status', { check: 'error_spike' })).toBe(3);
    expect(value(exp, 'sentinel_check_status', { check: 'schema_cache' })).toBe(2);
    expect(value(exp, 'sentinel_alerts_silenced', { check: 'error_spike' })).toBe(0);
    expect(value(exp, 'sentinel_alerts_firing', { check: 'error_spike', level: 'warning' })).toBe(0);
    expect(value(exp, 'sentinel_alerts_firing', { check: 'error_spike', level: 'critical' })).toBe(1);
    expect(value(exp, 'sentinel_notifications_pending', { notifier: 'pager' })).toBe(0);
    expect(value(exp, 'sentinel_schema_cache_up')).toBe(0);
    expect(value(exp, 'sentinel_schema_cache_probe_duration_seconds')).toBe(0.007);
    expect(value(exp, 'sentinel_schema_cache_probe_result', { result: 'PGRST002' })).toBe(1);
    expect(value(exp, 'sentinel_schema_cache_probe_result', { result: 'ok' })).toBe(0);

    // A check failed: the last successful run is still the first one.
    expect(value(exp, 'sentinel_last_run_timestamp_seconds')).toBe(Date.parse('2025-01-04T10:20:32.000Z') / 1000);
    expect(value(exp, 'sentinel_last_successful_run_timestamp_seconds')).toBe(
      Date.parse('2025-01-04T10:15:32.123Z') / 1000,
    );
    expect(value(exp, 'sentinel_database_up')).toBe(1);
  });

  it('drops every pipeline and schema-cache series when a run has neither, and reports the database down', async () => {
    const m = createMetrics();
    m.observeRun(firstRun());
    m.observeRun(outageRun());
    const exp = await scrape(m);
    for (const name of PIPELINE_METRICS) expect(series(exp, name), name).toEqual([]);
    expect(value(exp, 'sentinel_schema_cache_up')).toBeUndefined();
    expect(value(exp, 'sentinel_schema_cache_probe_duration_seconds')).toBeUndefined();
    expect(value(exp, 'sentinel_schema_cache_probe_result', { result: 'ok' })).toBe(0);
    expect(value(exp, 'sentinel_check_status', { check: 'schema_cache' })).toBe(-1);
    expect(value(exp, 'sentinel_check_status', { check: 'stuck_batches' })).toBe(3);
    expect(value(exp, 'sentinel_database_up')).toBe(0);
    // No alerting outcome in this run: no pending figures, counters kept.
    expect(series(exp, 'sentinel_notifications_pending')).toEqual([]);
    expect(value(exp, 'sentinel_notifications_total', { notifier: 'oncall', type: 'discord', result: 'sent' })).toBe(2);
  });

  it('leaves out figures it does not know yet instead of reporting 0, before the first run', async () => {
    const exp = await scrape(createMetrics());
    for (const name of [
      'sentinel_database_up',
      'sentinel_last_run_timestamp_seconds',
      'sentinel_last_successful_run_timestamp_seconds',
      'sentinel_schema_cache_up',
      'sentinel_schema_cache_probe_duration_seconds',
    ]) {
      expect(series(exp, name), name).toEqual([]);
    }
    for (const name of PIPELINE_METRICS) expect(series(exp, name), name).toEqual([]);
    expect(value(exp, 'sentinel_runs_total', { status: 'healthy' })).toBe(0);
    expect(value(exp, 'sentinel_schema_cache_reloads_total')).toBe(0);
    expect(value(exp, 'sentinel_leader')).toBe(1);
  });

  it('counts the overall rate only with rows: a bucket without rows exports rows 0 and no ratio', async () => {
    const m = createMetrics();
    const run = firstRun();
    run.pipeline!.hourly = {
      min_rows: 100,
      overall: {
        hour_bucket: '2025-01-04T10:00:00.000Z',
        judged: false,
        total_rows: 0,
        error_rows: 0,
        skipped_rows: 0,
        error_rate_pct: null,
        dedupe_rate_pct: null,
      },
      sources: [
        {
          source: 'vendor_x',
          hour_bucket: '2025-01-04T10:00:00.000Z',
          judged: false,
          total_rows: 40,
          error_rows: 4,
          skipped_rows: 1,
          error_rate_pct: 10,
          dedupe_rate_pct: 2.5,
        },
      ],
    };
    m.observeRun(run);
    const exp = await scrape(m);
    expect(value(exp, 'sentinel_pipeline_bucket_rows')).toBe(0);
    expect(value(exp, 'sentinel_pipeline_error_ratio')).toBeUndefined();
    expect(value(exp, 'sentinel_pipeline_dedupe_ratio')).toBeUndefined();
    expect(value(exp, 'sentinel_pipeline_error_ratio', { source: 'vendor_x' })).toBe(0.1);
    expect(value(exp, 'sentinel_pipeline_dedupe_ratio', { source: 'vendor_x' })).toBe(0.025);
  });

  it('reports leadership and build info', async () => {
    const m = createMetrics();
    m.setLeader(false);
    let exp = await scrape(m);
    expect(value(exp, 'sentinel_leader')).toBe(0);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(series(exp, 'sentinel_build_info')).toEqual([{ version: pkg.version, node_version: process.version }]);
    expect(value(exp, 'sentinel_build_info', { version: pkg.version, node_version: process.version })).toBe(1);
    m.setLeader(true);
    exp = await scrape(m);
    expect(value(exp, 'sentinel_leader')).toBe(1);
    expect(series(await scrape(createMetrics({ version: '1.2.3' })), 'sentinel_build_info')).toEqual([
      { version: '1.2.3', node_version: process.version },
    ]);
  });

  it('times the whole run when the caller passes its duration', async () => {
    const m = createMetrics();
    m.observeRun(firstRun(), { durationMs: 40_000 });
    const exp = await scrape(m);
    expect(value(exp, 'sentinel_run_duration_seconds_sum')).toBe(40);
    expect(value(exp, 'sentinel_run_duration_seconds_bucket', { le: '30' })).toBe(0);
    expect(value(exp, 'sentinel_run_duration_seconds_bucket', { le: '60' })).toBe(1);
  });

  it('records a healthy run as successful', async () => {
    const m = createMetrics();
    const healthy: RunResult = {
      ...outageRun(),
      overall_status: 'healthy',
      alerts: [],
      checks: [
        { name: 'stuck_batches', outcome: 'ok', duration_ms: 3 },
        { name: 'error_spike', outcome: 'ok', duration_ms: 2 },
        {
          name: 'schema_cache',
          outcome: 'ok',
          duration_ms: 5,
          measurements: { latency_ms: 5, result: 'ok', up: true, reloads: 0 },
        },
      ],
    };
    m.observeRun(healthy);
    // How fast /metrics renders is measured by bench/api-load.ts, not here.
    const exp = await scrape(m);
    expect(value(exp, 'sentinel_runs_total', { status: 'healthy' })).toBe(1);
    expect(value(exp, 'sentinel_database_up')).toBe(1); // the checks reached it, even without a snapshot
    expect(value(exp, 'sentinel_last_successful_run_timestamp_seconds')).toBe(Date.parse(healthy.timestamp) / 1000);
    expect(value(exp, 'sentinel_check_status', { check: 'error_spike' })).toBe(0);
    expect(value(exp, 'sentinel_alerts_firing', { check: 'error_spike', level: 'critical' })).toBe(0);
    expect(value(exp, 'sentinel_schema_cache_reloads_total')).toBe(0);
  });
});

describe('a follower replica', () => {
  /** Gauges a follower keeps exporting (everything else of names.ts that is a gauge is per-run). */
  const KEPT_GAUGES = [
    'sentinel_database_up',
    'sentinel_last_run_timestamp_seconds',
    'sentinel_last_successful_run_timestamp_seconds',
    'sentinel_leader',
    'sentinel_build_info',
  ];

  it('has a decision for every gauge of names.ts: per-run (cleared) or kept', () => {
    const gauges = METRICS.filter((m) => m.type === 'gauge').map((m) => m.name);
    expect([...PER_RUN_METRICS, ...KEPT_GAUGES].sort()).toEqual([...gauges].sort());
    // Counters and the histogram are never cleared.
    for (const name of PER_RUN_METRICS) expect(METRICS.find((m) => m.name === name)!.type, name).toBe('gauge');
  });

  it(
    'exports none of its last run once leadership is lost, and ' + 'keeps counters, timestamps and build info',
    async () => {
      const m = createMetrics({ version: '9.9.9' });
      m.observeRun(firstRun());
      m.observeRun(secondRun());
      const before = await scrape(m);
      // The second run (the database down) judged no anomalies: their series are gone already (and a
      // follower's are checked under sentinel_anomaly_score below).
      for (const name of PER_RUN_METRICS.filter((n) => !n.startsWith('sentinel_anomaly_')))
        expect(series(before, name).length, `${name} before`).toBeGreaterThan(0);
      expect(series(before, 'sentinel_anomaly_score')).toEqual([]);

      m.setLeader(false);
      expect(m.leader).toBe(false);
      const exp = await scrape(m);
      for (const name of PER_RUN_METRICS) expect(series(exp, name), name).toEqual([]);
      expect(value(exp, 'sentinel_leader')).toBe(0);
      // Unknown until the next follower tick says whether the lock database answers.
      expect(series(exp, 'sentinel_database_up')).toEqual([]);
      // Counters and the histogram: as before.
      expect(value(exp, 'sentinel_runs_total', { status: 'critical' })).toBe(2);
      expect(value(exp, 'sentinel_schema_cache_reloads_total')).toBe(1);
      expect(value(exp, 'sentinel_notifications_total', { notifier: 'oncall', type: 'discord', result: 'sent' })).toBe(
        3,
      );
      expect(value(exp, 'sentinel_run_duration_seconds_count')).toBe(2);
      // This process's own last runs (as leader): facts about it, not about the pipeline.
      expect(value(exp, 'sentinel_last_run_timestamp_seconds')).toBe(Date.parse('2025-01-04T10:20:32.000Z') / 1000);
      expect(value(exp, 'sentinel_last_successful_run_timestamp_seconds')).toBe(
        Date.parse('2025-01-04T10:15:32.123Z') / 1000,
      );
      expect(value(exp, 'sentinel_build_info', { version: '9.9.9', node_version: process.version })).toBe(1);
      // Every metric keeps its HELP and TYPE, samples or not.
      for (const spec of METRICS) expect(exp.type.get(spec.name), spec.name).toBe(spec.type);
    },
  );

  it('reports on each tick whether it reached the lock database in sentinel_database_up', async () => {
    const m = createMetrics();
    m.setLeader(false);
    m.observeStandby({ lockDatabaseReached: true });
    let exp = await scrape(m);
    expect(value(exp, 'sentinel_database_up')).toBe(1);
    expect(value(exp, 'sentinel_leader')).toBe(0);
    m.observeStandby({ lockDatabaseReached: false });
    exp = await scrape(m);
    expect(value(exp, 'sentinel_database_up')).toBe(0);
    for (const name of PER_RUN_METRICS) expect(series(exp, name), name).toEqual([]);
    m.observeStandby({ lockDatabaseReached: true });
    expect(value(await scrape(m), 'sentinel_database_up')).toBe(1);
  });

  it(
    'a tick of a process the election has not demoted yet demotes ' + 'it: the old leader with the database gone',
    async () => {
      const m = createMetrics();
      m.observeRun(firstRun());
      expect(value(await scrape(m), 'sentinel_database_up')).toBe(1);
      m.observeStandby({ lockDatabaseReached: false });
      const exp = await scrape(m);
      expect(m.leader).toBe(false);
      expect(value(exp, 'sentinel_leader')).toBe(0);
      expect(value(exp, 'sentinel_database_up')).toBe(0);
      expect(series(exp, 'sentinel_pipeline_stuck_batches')).toEqual([]);
      expect(series(exp, 'sentinel_alerts_firing')).toEqual([]);
      expect(series(exp, 'sentinel_check_status')).toEqual([]);
    },
  );

  it('exports only the new run once it leads again (no earlier probe outcomes either)', async () => {
    const m = createMetrics();
    m.observeRun(firstRun()); // probe result ok
    m.setLeader(false);
    m.observeStandby({ lockDatabaseReached: true });
    m.setLeader(true);
    expect(m.leader).toBe(true);
    // Until the first run as leader finishes: still nothing of a run.
    let exp = await scrape(m);
    expect(value(exp, 'sentinel_leader')).toBe(1);
    expect(series(exp, 'sentinel_pipeline_stuck_batches')).toEqual([]);
    m.observeRun(secondRun()); // PGRST002
    exp = await scrape(m);
    expect(series(exp, 'sentinel_schema_cache_probe_result')).toEqual([{ result: 'PGRST002' }]);
    expect(value(exp, 'sentinel_pipeline_stuck_batches', { status: 'processing' })).toBe(2);
    expect(value(exp, 'sentinel_check_status', { check: 'error_spike' })).toBe(3);
    expect(value(exp, 'sentinel_database_up')).toBe(1);
    expect(value(exp, 'sentinel_runs_total', { status: 'critical' })).toBe(2);
  });

  it('without replicas setLeader(true) changes nothing of the run', async () => {
    const m = createMetrics();
    m.observeRun(firstRun());
    m.setLeader(true);
    const exp = await scrape(m);
    expect(value(exp, 'sentinel_pipeline_stuck_batches', { status: 'processing' })).toBe(2);
    expect(value(exp, 'sentinel_database_up')).toBe(1);
  });
});

describe('sentinel_check_duration_seconds', () => {
  it('leaves out skipped checks (no 0 s duration for a check that did not run) and keeps their status -1', async () => {
    const m = createMetrics();
    m.observeRun(firstRun());
    expect(value(await scrape(m), 'sentinel_check_duration_seconds', { check: 'schema_cache' })).toBe(2.15);
    m.observeRun(outageRun());
    const exp = await scrape(m);
    expect(series(exp, 'sentinel_check_duration_seconds')).toEqual([
      { check: 'stuck_batches' },
      { check: 'error_spike' },
    ]);
    expect(value(exp, 'sentinel_check_duration_seconds', { check: 'stuck_batches' })).toBe(0.003);
    expect(value(exp, 'sentinel_check_duration_seconds', { check: 'error_spike' })).toBe(0.002);
    expect(value(exp, 'sentinel_check_status', { check: 'schema_cache' })).toBe(-1);
  });

  it('leaves out a check skipped after it started (the runner measured it) too', async () => {
    const m = createMetrics();
    const run = outageRun();
    run.checks = [
      { name: 'stuck_batches', outcome: 'skipped', duration_ms: 4, reason: 'intake schema missing' },
      { name: 'error_spike', outcome: 'ok', duration_ms: 0 },
    ];
    m.observeRun(run);
    const exp = await scrape(m);
    // A check that ran in under a millisecond reports 0 (the runner's resolution); a skipped one nothing.
    expect(series(exp, 'sentinel_check_duration_seconds')).toEqual([{ check: 'error_spike' }]);
    expect(value(exp, 'sentinel_check_duration_seconds', { check: 'error_spike' })).toBe(0);
    expect(value(exp, 'sentinel_check_status', { check: 'stuck_batches' })).toBe(-1);
  });
});

describe('notification failure reasons', () => {
  it('counts failed deliveries by notifier and reason, across runs', async () => {
    const m = createMetrics({ version: '9.9.9' });
    const withReasons = (
      counts: Partial<Record<'rejected' | 'expired' | 'rate_limited' | 'server_error' | 'timeout' | 'network', number>>,
    ): RunResult => ({
      ...firstRun(),
      notifications: [
        {
          notifier: 'oncall',
          type: 'discord',
          sent: 0,
          pending: 1,
          failed: counts.rejected ?? 0,
          errors: [],
          reasons: { rejected: 0, expired: 0, rate_limited: 0, server_error: 0, timeout: 0, network: 0, ...counts },
        },
      ],
    });
    m.observeRun(withReasons({ rate_limited: 2, server_error: 1 }));
    m.observeRun(withReasons({ rate_limited: 1, rejected: 1 }));
    const exp = await scrape(m);
    const failures = (reason: string) =>
      value(exp, 'sentinel_notification_failures_total', { notifier: 'oncall', type: 'discord', reason });
    expect(failures('rate_limited')).toBe(3);
    expect(failures('server_error')).toBe(1);
    expect(failures('rejected')).toBe(1);
    expect(failures('timeout')).toBe(0);
  });
});

describe('sourceSeries: a bounded set of source label values', () => {
  const f = (source: string, total_rows: number, error_rows = 0, skipped_rows = 0) => ({
    source,
    total_rows,
    error_rows,
    skipped_rows,
  });

  it('keeps the sources with the most rows, ties by name, and sums the rest as "other"', () => {
    const series = sourceSeries([f('c', 10, 1), f('b', 10, 2), f('a', 5, 5), f('d', 50), f('e', 1, 1, 1)], 3);
    expect(series).toEqual([f('d', 50), f('b', 10, 2), f('c', 10, 1), f('other', 6, 6, 1)]);
    // Nothing folded: no "other".
    expect(sourceSeries([f('a', 1), f('b', 2)], 3)).toEqual([f('b', 2), f('a', 1)]);
    // 0: only the sum.
    expect(sourceSeries([f('a', 1), f('b', 2)], 0)).toEqual([f('other', 3)]);
  });

  it('pins the sources with settings of their own by label, escaped, at most max_sources', () => {
    const thresholds = {
      seconds: [
        { check: 'stuck_batches', value: 600 },
        { check: 'source_freshness', source: 'b\u202e', value: 60 },
      ],
      ratios: [
        { check: 'error_spike', source: 'c', value: 0.2 },
        { check: 'dedupe_rate', source: 'c', value: 0.3 },
        { check: 'error_spike', source: 'a', value: 0.1 },
      ],
    };
    expect([...configuredSourceLabels(thresholds, 50)]).toEqual(['a', 'b\\u202e', 'c']);
    expect([...configuredSourceLabels(thresholds, 2)]).toEqual(['a', 'b\\u202e']);
    expect([...configuredSourceLabels(undefined, 2)]).toEqual([]);
  });

  it('keeps pinned labels (sources with settings of their own) first, then the busiest', () => {
    const series = sourceSeries([f('a', 1), f('b', 50), f('c', 40), f('d', 2)], 3, new Set(['a', 'd']));
    expect(series).toEqual([f('d', 2), f('a', 1), f('b', 50), f('other', 40)]);
  });

  it('escapes and cuts names, sums names that become one label, and folds a source really named "other"', () => {
    const long = 'x'.repeat(1_000_000);
    const series = sourceSeries([f(`${long}1`, 3), f(`${long}2`, 4), f('other', 100), f('a\x1b[2J\u202e', 1)], 5);
    expect(series).toEqual([f(`${'x'.repeat(127)}…`, 7), f('a\\x1b[2J\\u202e', 1), f('other', 100)]);
  });
});

describe('sentinel_anomaly_score', () => {
  const run = (series: Array<[string, string, number, number, number?]>) => {
    const result = firstRun();
    result.checks = [
      {
        name: 'anomalies',
        outcome: 'alert',
        duration_ms: 5,
        series: series.flatMap(([source, metric, score, sensitivity, level = 0]) => [
          { key: 'score', labels: { source, metric }, value: score },
          { key: 'sensitivity', labels: { source, metric }, value: sensitivity },
          { key: 'level', labels: { source, metric }, value: level },
        ]),
      },
    ];
    return result;
  };
  const values = async (m: ReturnType<typeof createMetrics>, name: string) =>
    (await scrape(m)).samples
      .filter((s) => s.name === name)
      .map((s) => `${s.labels.source}/${s.labels.metric}=${s.value}`)
      .sort();

  it('exports each judged source and metric with its sensitivity, the least unusual folded into other', async () => {
    const m = createMetrics({ maxSources: 2 });
    m.observeRun(
      run([
        ['vendor_a', 'volume', -7, 3, 2],
        ['vendor_b', 'error_rate', 4, 5],
        ['vendor_c', 'volume', 1, 3],
        ['vendor_d', 'volume', -2.5, 3],
        ['evil\u001b[31m', 'volume', 0.5, 3],
        ['vendor_e', 'dedupe_rate', 3.1, 3, 1],
      ]),
    );
    // Kept: the sources with a verdict first (vendor_a critical, vendor_e warning), then the most unusual
    // relative to their sensitivity; the rest share `other`, per metric the most unusual of them
    // (vendor_d's -2.5 for volume) with the worst verdict among them.
    expect(await values(m, 'sentinel_anomaly_score')).toEqual([
      'other/error_rate=4',
      'other/volume=-2.5',
      'vendor_a/volume=-7',
      'vendor_e/dedupe_rate=3.1',
    ]);
    expect(await values(m, 'sentinel_anomaly_sensitivity')).toEqual([
      'other/error_rate=5',
      'other/volume=3',
      'vendor_a/volume=3',
      'vendor_e/dedupe_rate=3',
    ]);
    expect(await values(m, 'sentinel_anomaly_level')).toEqual([
      'other/error_rate=0',
      'other/volume=0',
      'vendor_a/volume=2',
      'vendor_e/dedupe_rate=1',
    ]);
    // The next run replaces the series: nothing stale stays.
    m.observeRun(run([['evil\u001b[31m', 'volume', 0.5, 3]]));
    expect(await values(m, 'sentinel_anomaly_score')).toEqual(['evil\\x1b[31m/volume=0.5']);
    m.observeRun(firstRun());
    expect(await values(m, 'sentinel_anomaly_score')).toEqual(['vendor_a/volume=-1.25']);
    // A replica that lost leadership reports none.
    m.setLeader(false);
    expect(await values(m, 'sentinel_anomaly_score')).toEqual([]);
    expect(await values(m, 'sentinel_anomaly_sensitivity')).toEqual([]);
    expect(await values(m, 'sentinel_anomaly_level')).toEqual([]);
  });
});
