import { describe, expect, it } from 'vitest';
import { METRICS } from '../../src/metrics/names.js';
import * as registry from '../../src/metrics/registry.js';
import { sourceLabel } from '../../src/metrics/registry.js';
import { EMF_MAX_DIMENSION_VALUE, emfDimensionValue, renderEmf } from '../../src/report/emf.js';
import type { Alert, CheckSummary, PipelineSnapshot, RunResult } from '../../src/types.js';
import { overallStatus } from '../../src/types.js';
import { Redactor } from '../../src/util/redact.js';
import { type EmfDocument, emfProblems, parseEmf } from '../helpers/emf-spec.js';
import { hourlyFigures } from '../helpers/run-figures.js';

const figures = hourlyFigures;

const pipeline: PipelineSnapshot = {
  taken_at: '2025-01-04T10:15:32.000Z',
  in_flight: [
    { status: 'uploaded', batch_count: 4, oldest_age_seconds: 60 },
    { status: 'processing', batch_count: 2, oldest_age_seconds: 900 },
  ],
  stuck: { threshold_minutes: 10, by_status: [{ status: 'processing', batch_count: 2 }] },
  hourly: { min_rows: 100, overall: figures(185, 312), sources: [{ source: 'vendor_a', ...figures(185, 312) }] },
  finished_last_hour: { completed: 12, failed: 1 },
  thresholds: {
    seconds: [{ check: 'stuck_batches', value: 600 }],
    ratios: [{ check: 'error_spike', value: 0.15 }],
    min_rows: 100,
  },
};

const CHECKS: CheckSummary[] = [
  { name: 'stuck_batches', outcome: 'ok', duration_ms: 3 },
  { name: 'error_spike', outcome: 'ok', duration_ms: 2 },
  {
    name: 'schema_cache',
    outcome: 'ok',
    duration_ms: 14,
    measurements: { latency_ms: 12.5, up: true, result: 'ok', reloads: 0 },
  },
];

function run(alerts: Alert[], extra: Partial<RunResult> = {}): RunResult {
  const counted = alerts.filter((a) => !a.silenced);
  return {
    timestamp: '2025-01-04T10:15:32.123Z',
    environment: 'prod',
    overall_status: overallStatus(counted),
    alerts,
    checks: CHECKS,
    duration_ms: 31,
    metrics: {
      total_checks: 3,
      alerts_triggered: counted.length,
      critical_alerts: counted.filter((a) => a.level === 'critical').length,
      warning_alerts: counted.filter((a) => a.level === 'warning').length,
      skipped_checks: 0,
    },
    pipeline,
    ...extra,
  };
}

const KNOWN = new Set<string>(METRICS.map((m) => m.name));
const DIMENSIONS = new Set([
  'environment',
  'check',
  'level',
  'source',
  'status',
  'metric',
  'measurement',
  'notifier',
  'result',
  'reason',
  'type',
  'version',
  'node_version',
]);

/** Every line valid per the specification, with Sentinel's namespace and metric names; parsed. */
function valid(lines: string[], result: RunResult): EmfDocument[] {
  expect(lines.length).toBeGreaterThan(0);
  return lines.map((line) => {
    expect(emfProblems(line), line).toEqual([]);
    const doc = parseEmf(line);
    expect(doc.namespace).toBe('Sentinel');
    expect(doc.timestamp).toBe(Date.parse(result.timestamp));
    for (const name of Object.keys(doc.metrics)) expect(KNOWN, name).toContain(name);
    for (const name of Object.keys(doc.dimensions)) expect(DIMENSIONS, name).toContain(name);
    expect(doc.dimensions.environment).toBeDefined();
    return doc;
  });
}

/** The document whose dimension values are exactly `dims`. */
function find(docs: EmfDocument[], dims: Record<string, string>): EmfDocument {
  const matches = docs.filter(
    (d) =>
      Object.keys(d.dimensions).length === Object.keys(dims).length &&
      Object.entries(dims).every(([k, v]) => d.dimensions[k] === v),
  );
  expect(matches, JSON.stringify(dims)).toHaveLength(1);
  return matches[0]!;
}

const value = (doc: EmfDocument, name: string): unknown => doc.metrics[name]?.value;

describe('the EMF validator (written from the specification) rejects what the specification forbids', () => {
  const good = {
    _aws: {
      Timestamp: 1574109732004,
      CloudWatchMetrics: [
        { Namespace: 'ns', Dimensions: [['functionVersion']], Metrics: [{ Name: 'time', Unit: 'Milliseconds' }] },
      ],
    },
    functionVersion: '$LATEST',
    time: 100,
  };
  const bad = (mutate: (doc: typeof good & Record<string, unknown>) => void): string[] => {
    const doc = structuredClone(good) as typeof good & Record<string, unknown>;
    mutate(doc);
    return emfProblems(JSON.stringify(doc));
  };

  it("accepts the specification's example", () => {
    expect(emfProblems(JSON.stringify(good))).toEqual([]);
  });

  it('rejects missing targets, wrong types, units, limits and extra data', () => {
    expect(bad((d) => delete (d as Record<string, unknown>).time)).toContain('metric time: not a root member');
    expect(bad((d) => delete (d as Record<string, unknown>).functionVersion)).toContain(
      'dimension functionVersion: not a root member',
    );
    expect(bad((d) => Object.assign(d, { time: '100' })).join()).toMatch(/not a number/);
    expect(bad((d) => Object.assign(d, { functionVersion: 1 })).join()).toMatch(/not a string/);
    expect(bad((d) => Object.assign(d, { functionVersion: 'caf\u00e9' })).join()).toMatch(/ASCII/);
    expect(bad((d) => Object.assign(d, { functionVersion: ' ' })).join()).toMatch(/blank/);
    expect(bad((d) => Object.assign(d, { functionVersion: 'x'.repeat(1025) })).join()).toMatch(/length 1025/);
    expect(bad((d) => Object.assign(d._aws.CloudWatchMetrics[0]!.Metrics[0]!, { Unit: 'Hours' })).join()).toMatch(
      /unit "Hours" not allowed/,
    );
    expect(bad((d) => Object.assign(d._aws, { Timestamp: '2025-01-01' })).join()).toMatch(/Timestamp/);
    expect(bad((d) => Object.assign(d, { time: Array.from({ length: 101 }, () => 1) })).join()).toMatch(/101 values/);
    expect(
      bad((d) => {
        const keys = Array.from({ length: 31 }, (_, i) => `d${i}`);
        d._aws.CloudWatchMetrics[0]!.Dimensions = [keys];
        for (const k of keys) (d as Record<string, unknown>)[k] = 'v';
      }).join(),
    ).toMatch(/31 keys/);
    expect(
      bad((d) => {
        d._aws.CloudWatchMetrics[0]!.Metrics = Array.from({ length: 101 }, (_, i) => ({
          Name: `m${i}`,
          Unit: 'Count',
        }));
        for (let i = 0; i < 101; i++) (d as Record<string, unknown>)[`m${i}`] = i;
      }).join(),
    ).toMatch(/101 definitions/);
    expect(emfProblems(`${JSON.stringify(good)} trailing`).length).toBeGreaterThan(0);
    expect(emfProblems(JSON.stringify({ ...good, big: 'x'.repeat(1024 * 1024) })).join()).toMatch(/bytes/);
  });
});

describe('renderEmf', () => {
  it('a healthy run: the run, per status, per check and per source documents, all valid', () => {
    const result = run([]);
    const docs = valid(renderEmf(result, registry), result);

    const main = find(docs, { environment: 'prod' });
    expect(main.root.overall_status).toBe('healthy');
    expect(value(main, 'sentinel_database_up')).toBe(1);
    expect(main.metrics.sentinel_run_duration_seconds).toEqual({ value: 0.031, unit: 'Seconds' });
    expect(value(main, 'sentinel_schema_cache_up')).toBe(1);
    expect(value(main, 'sentinel_schema_cache_probe_duration_seconds')).toBe(0.0125);
    expect(value(main, 'sentinel_pipeline_error_ratio')).toBe(0.185);
    expect(value(main, 'sentinel_pipeline_dedupe_ratio')).toBe(0.312);
    expect(main.metrics.sentinel_pipeline_bucket_rows).toEqual({ value: 1000, unit: 'Count' });
    expect(value(main, 'sentinel_check_min_rows')).toBe(100);

    const processing = find(docs, { environment: 'prod', status: 'processing' });
    expect(value(processing, 'sentinel_pipeline_batches_in_flight')).toBe(2);
    expect(value(processing, 'sentinel_pipeline_oldest_batch_age_seconds')).toBe(900);
    expect(value(processing, 'sentinel_pipeline_stuck_batches')).toBe(2);
    // Zeros for the fixed statuses, as /metrics has them.
    expect(value(find(docs, { environment: 'prod', status: 'inserting' }), 'sentinel_pipeline_batches_in_flight')).toBe(
      0,
    );
    expect(
      value(find(docs, { environment: 'prod', status: 'failed' }), 'sentinel_pipeline_batches_finished_last_hour'),
    ).toBe(1);

    const stuck = find(docs, { environment: 'prod', check: 'stuck_batches' });
    expect(value(stuck, 'sentinel_check_status')).toBe(0);
    expect(stuck.metrics.sentinel_check_duration_seconds).toEqual({ value: 0.003, unit: 'Seconds' });
    expect(value(stuck, 'sentinel_check_threshold_seconds')).toBe(600);
    expect(value(find(docs, { environment: 'prod', check: 'error_spike' }), 'sentinel_check_threshold_ratio')).toBe(
      0.15,
    );
    for (const check of ['stuck_batches', 'error_spike', 'schema_cache'])
      for (const level of ['warning', 'critical'])
        expect(value(find(docs, { environment: 'prod', check, level }), 'sentinel_alerts_firing')).toBe(0);

    const vendor = find(docs, { environment: 'prod', source: 'vendor_a' });
    expect(value(vendor, 'sentinel_pipeline_error_ratio')).toBe(0.185);
    expect(value(vendor, 'sentinel_pipeline_bucket_rows')).toBe(1000);
  });

  it('a critical run with alerts: check status and alerts firing by check and level', () => {
    const alerts: Alert[] = [
      { check: 'stuck_batches', level: 'critical', message: '2 batches stuck', details: {} },
      { check: 'error_spike', level: 'warning', message: 'error rate 18.5%', details: {}, subject: 'vendor_a' },
      { check: 'error_spike', level: 'warning', message: 'silenced', details: {}, silenced: true },
    ];
    const result = run(alerts, {
      checks: [
        { name: 'stuck_batches', outcome: 'alert', duration_ms: 3 },
        { name: 'error_spike', outcome: 'alert', duration_ms: 2 },
      ],
    });
    const docs = valid(renderEmf(result, registry), result);
    expect(find(docs, { environment: 'prod' }).root.overall_status).toBe('critical');
    expect(value(find(docs, { environment: 'prod', check: 'stuck_batches' }), 'sentinel_check_status')).toBe(2);
    expect(value(find(docs, { environment: 'prod', check: 'error_spike' }), 'sentinel_check_status')).toBe(1);
    expect(value(find(docs, { environment: 'prod', check: 'error_spike' }), 'sentinel_alerts_silenced')).toBe(1);
    const firing = (check: string, level: string) =>
      value(find(docs, { environment: 'prod', check, level }), 'sentinel_alerts_firing');
    expect(firing('stuck_batches', 'critical')).toBe(1);
    expect(firing('stuck_batches', 'warning')).toBe(0);
    expect(firing('error_spike', 'warning')).toBe(1);
    expect(firing('error_spike', 'critical')).toBe(0);
  });

  it('the database unreachable: database_up 0, checks failed to run, no pipeline documents', () => {
    const alerts: Alert[] = [
      {
        check: 'database',
        level: 'critical',
        message: 'Cannot reach the database',
        details: { error: 'connect ECONNREFUSED 127.0.0.1:1' },
        subject: 'unreachable',
      },
    ];
    const result = run(alerts, {
      checks: [
        { name: 'stuck_batches', outcome: 'skipped', duration_ms: 0, reason: 'not run: database unreachable' },
        { name: 'error_spike', outcome: 'skipped', duration_ms: 0, reason: 'not run: database unreachable' },
      ],
      pipeline: undefined,
    });
    const docs = valid(renderEmf(result, registry), result);
    const main = find(docs, { environment: 'prod' });
    expect(value(main, 'sentinel_database_up')).toBe(0);
    expect(value(main, 'sentinel_pipeline_bucket_rows')).toBeUndefined();
    // No pipeline documents: no batch status (the run's own status is `sentinel_runs_total` only), no source.
    expect(
      docs.some(
        (d) =>
          (d.dimensions.status !== undefined && d.metrics.sentinel_runs_total === undefined) ||
          d.dimensions.source !== undefined,
      ),
    ).toBe(false);
    expect(value(find(docs, { environment: 'prod', status: 'critical' }), 'sentinel_runs_total')).toBe(1);
    const stuck = find(docs, { environment: 'prod', check: 'stuck_batches' });
    expect(value(stuck, 'sentinel_check_status')).toBe(3);
    expect(value(stuck, 'sentinel_check_duration_seconds')).toBeUndefined();
    expect(
      value(find(docs, { environment: 'prod', check: 'database', level: 'critical' }), 'sentinel_alerts_firing'),
    ).toBe(1);
  });

  it('many sources: at most max_sources documents plus other, rows summed, anomaly series bounded the same way', () => {
    const sources = Array.from({ length: 500 }, (_, i) => ({ source: `src_${i}`, ...figures(i % 7, 0, 100 + i) }));
    const series = sources.flatMap(({ source }, i) => [
      { key: 'score', labels: { source, metric: 'rows' }, value: i / 100 },
      { key: 'sensitivity', labels: { source, metric: 'rows' }, value: 3 },
      { key: 'level', labels: { source, metric: 'rows' }, value: 0 },
    ]);
    const result = run([], {
      pipeline: { ...pipeline, hourly: { ...pipeline.hourly, sources } },
      checks: [...CHECKS, { name: 'anomalies', outcome: 'ok', duration_ms: 40, series }],
    });
    const lines = renderEmf(result, registry, { maxSources: 10 });
    const docs = valid(lines, result);
    const perSource = docs.filter((d) => d.dimensions.source !== undefined && d.dimensions.metric === undefined);
    expect(perSource).toHaveLength(11);
    // The ten busiest, and `other` with the rest of the rows.
    const kept = sources.slice(-10);
    for (const s of kept)
      expect(value(find(docs, { environment: 'prod', source: s.source }), 'sentinel_pipeline_bucket_rows')).toBe(
        s.total_rows,
      );
    const folded = sources.slice(0, -10).reduce((sum, s) => sum + s.total_rows, 0);
    expect(value(find(docs, { environment: 'prod', source: 'other' }), 'sentinel_pipeline_bucket_rows')).toBe(folded);
    const anomalies = docs.filter((d) => d.dimensions.metric !== undefined);
    expect(anomalies).toHaveLength(11);
    // `other` carries the most unusual folded source's score.
    expect(value(find(docs, { environment: 'prod', source: 'other', metric: 'rows' }), 'sentinel_anomaly_score')).toBe(
      4.89,
    );
    expect(
      value(find(docs, { environment: 'prod', source: 'src_499', metric: 'rows' }), 'sentinel_anomaly_score'),
    ).toBe(4.99);
    // Bounded output: whatever the number of sources, lines and bytes stay small.
    expect(lines.length).toBeLessThan(60);
    expect(Math.max(...lines.map((l) => Buffer.byteLength(l)))).toBeLessThan(4096);
  });

  it('hostile names: controls, bidi and non-ASCII escaped, 1 KB names cut, blank names quoted, secrets masked', () => {
    const secret = 'hunter2-secret-value';
    const hostile = [
      'evil\n{"_aws":1}\r\u001b[2J',
      'bidi\u202eregdab',
      `long_${'x'.repeat(1024)}`,
      'caf\u00e9 \u{1f600}',
      ' ',
      '',
      `leak ${secret}`,
      '_aws',
    ];
    const sources = hostile.map((source) => ({ source, ...figures(1, 1) }));
    const result = run([], {
      environment: `prod\u0007${secret}`,
      pipeline: { ...pipeline, hourly: { ...pipeline.hourly, sources } },
    });
    const redactor = new Redactor([secret]);
    const lines = renderEmf(result, registry, { redact: (t) => redactor.redact(t) });
    const docs = valid(lines, result);
    for (const line of lines) {
      expect(line).not.toContain(secret);
      expect(line).not.toMatch(/[\u0000-\u001f\u007f-\uffff]/);
      expect(line).not.toContain('\n');
    }
    const values = docs.filter((d) => d.dimensions.source !== undefined).map((d) => d.dimensions.source!);
    expect(values).toHaveLength(hostile.length);
    for (const v of values) expect(v.length).toBeLessThanOrEqual(EMF_MAX_DIMENSION_VALUE);
    expect(values).toContain('evil\\n{"_aws":1}\\r\\x1b[2J');
    expect(values).toContain('bidi\\u202eregdab');
    expect(values).toContain('caf\\u00e9 \\ud83d\\ude00');
    expect(values).toContain('" "');
    expect(values).toContain('""');
    expect(values).toContain('leak ***');
    expect(values).toContain('_aws');
    expect(values.find((v) => v.startsWith('long_'))).toMatch(/\\u2026$/);
    expect(docs[0]!.dimensions.environment).toBe('prod\\u0007***');
    // The `_aws` source is a dimension value, never the metadata member.
    for (const d of docs) expect(typeof d.root._aws).toBe('object');
  });

  it("declared measurements, a configured source's own threshold, notifications and the run count", () => {
    const result = run([], {
      checks: [
        ...CHECKS,
        { name: 'processing_time', outcome: 'ok', duration_ms: 4, measurements: { p95_seconds: 92.5, batches: 14 } },
      ],
      pipeline: {
        ...pipeline,
        thresholds: {
          ...pipeline.thresholds!,
          ratios: [...pipeline.thresholds!.ratios, { check: 'error_spike', source: 'vendor_a', value: 0.25 }],
        },
      },
      notifications: [
        {
          notifier: 'oncall',
          type: 'pagerduty',
          sent: 2,
          pending: 1,
          failed: 1,
          errors: ['HTTP 429', 'HTTP 400'],
          reasons: { rejected: 1, rate_limited: 1, server_error: 0, timeout: 0, network: 0, expired: 0 },
        },
      ],
    });
    const docs = valid(renderEmf(result, registry), result);
    const p95 = find(docs, { environment: 'prod', check: 'processing_time', measurement: 'p95_seconds' });
    expect(value(p95, 'sentinel_check_measurement')).toBe(92.5);
    const own = find(docs, { environment: 'prod', check: 'error_spike', source: 'vendor_a' });
    expect(value(own, 'sentinel_check_threshold_ratio')).toBe(0.25);
    expect(value(find(docs, { environment: 'prod', notifier: 'oncall' }), 'sentinel_notifications_pending')).toBe(1);
    const byResult = (r: string) =>
      value(
        find(docs, { environment: 'prod', notifier: 'oncall', type: 'pagerduty', result: r }),
        'sentinel_notifications_total',
      );
    expect([byResult('sent'), byResult('failed'), byResult('retrying')]).toEqual([2, 1, 1]);
    const limited = find(docs, { environment: 'prod', notifier: 'oncall', type: 'pagerduty', reason: 'rate_limited' });
    expect(value(limited, 'sentinel_notification_failures_total')).toBe(1);
    expect(value(find(docs, { environment: 'prod', status: 'healthy' }), 'sentinel_runs_total')).toBe(1);
    expect(value(find(docs, { environment: 'prod' }), 'sentinel_schema_cache_reloads_total')).toBe(0);
  });

  it('emfDimensionValue: printable ASCII kept, the rest escaped, cut with "..." within the limit', () => {
    expect(emfDimensionValue('vendor_a')).toBe('vendor_a');
    expect(emfDimensionValue('a\u00ffb')).toBe('a\\u00ffb');
    expect(emfDimensionValue('x'.repeat(2000))).toBe(`${'x'.repeat(EMF_MAX_DIMENSION_VALUE - 3)}...`);
    expect(emfDimensionValue('\u00e9'.repeat(100)).length).toBeLessThanOrEqual(EMF_MAX_DIMENSION_VALUE);
    expect(emfDimensionValue('\t')).toBe('\\u0009');
    expect(emfDimensionValue(' '.repeat(5000))).toHaveLength(EMF_MAX_DIMENSION_VALUE);
    expect(emfDimensionValue('x'.repeat(EMF_MAX_DIMENSION_VALUE))).toBe('x'.repeat(EMF_MAX_DIMENSION_VALUE));
    expect(emfDimensionValue(`${'x'.repeat(EMF_MAX_DIMENSION_VALUE - 1)}\u00e9`)).toBe(
      `${'x'.repeat(EMF_MAX_DIMENSION_VALUE - 3)}...`,
    );
    // A /metrics source label (128 characters) fits whole, escaped: distinct labels stay distinct.
    const a = emfDimensionValue(sourceLabel(`${'\u00e9'.repeat(127)}a`));
    const b = emfDimensionValue(sourceLabel(`${'\u00e9'.repeat(127)}b`));
    expect(a).not.toBe(b);
    expect(a.length).toBeLessThanOrEqual(EMF_MAX_DIMENSION_VALUE);
  });

  it('a namespace of its own', () => {
    const result = run([]);
    for (const line of renderEmf(result, registry, { namespace: 'Dragonfly/Sentinel' })) {
      expect(emfProblems(line)).toEqual([]);
      expect(parseEmf(line).namespace).toBe('Dragonfly/Sentinel');
    }
  });
});
