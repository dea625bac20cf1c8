import type { HrTime } from '@opentelemetry/api';
import type { DataPoint, MetricData, Histogram as OtelHistogram } from '@opentelemetry/sdk-metrics';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { type PromMetricJson, toMetricData, unitOf } from '../../src/metrics/otlp.js';

const at = (seconds: number): HrTime => [seconds, 0];

/** A registry with one metric of each kind Sentinel's has. */
function registry() {
  const r = new Registry();
  const runs = new Counter({ name: 'x_runs_total', help: 'runs', labelNames: ['status'], registers: [r] });
  const up = new Gauge({ name: 'x_up', help: 'up', registers: [r] });
  const duration = new Histogram({ name: 'x_duration_seconds', help: 'd', buckets: [0.1, 1], registers: [r] });
  return { r, runs, up, duration, json: async () => (await r.getMetricsAsJSON()) as unknown as PromMetricJson[] };
}

const find = (data: MetricData[], name: string): MetricData | undefined => data.find((m) => m.descriptor.name === name);
const points = (data: MetricData[], name: string): Array<DataPoint<number>> =>
  (find(data, name)?.dataPoints ?? []) as Array<DataPoint<number>>;
const histogram = (data: MetricData[], name: string): DataPoint<OtelHistogram> | undefined =>
  (find(data, name)?.dataPoints as Array<DataPoint<OtelHistogram>> | undefined)?.[0];

describe('the registry as OpenTelemetry metric data', () => {
  it('keeps names, descriptions and labels, and gives each a unit from its suffix', async () => {
    const m = registry();
    m.runs.inc({ status: 'healthy' }, 3);
    m.up.set(1);
    m.duration.observe(0.05);
    m.duration.observe(0.5);
    m.duration.observe(7);
    const { data } = toMetricData(await m.json(), {
      temporality: 'cumulative',
      start: at(100),
      now: at(160),
      sent: new Map(),
    });
    expect(find(data, 'x_runs_total')).toMatchObject({
      descriptor: { name: 'x_runs_total', description: 'runs', unit: '' },
      isMonotonic: true,
      aggregationTemporality: 1,
    });
    expect(points(data, 'x_runs_total')).toEqual([
      { startTime: at(100), endTime: at(160), attributes: { status: 'healthy' }, value: 3 },
    ]);
    expect(points(data, 'x_up')).toEqual([{ startTime: at(100), endTime: at(160), attributes: {}, value: 1 }]);
    // Prometheus counts up to each bound; OTLP per bucket, the last one above every bound.
    expect(histogram(data, 'x_duration_seconds')?.value).toEqual({
      buckets: { boundaries: [0.1, 1], counts: [1, 1, 1] },
      sum: 7.55,
      count: 3,
    });
    expect(find(data, 'x_duration_seconds')?.descriptor.unit).toBe('s');
    expect([unitOf('a_bytes'), unitOf('a_ratio'), unitOf('a_seconds_total'), unitOf('a_batches')]).toEqual([
      'By',
      '1',
      's',
      '',
    ]);
  });

  it('delta: the increase since the last accepted export, and all of it after a failed one', async () => {
    const m = registry();
    m.runs.inc({ status: 'healthy' }, 2);
    m.duration.observe(0.05);
    const first = toMetricData(await m.json(), { temporality: 'delta', start: at(100), now: at(160), sent: new Map() });
    expect(points(first.data, 'x_runs_total')[0]).toMatchObject({ startTime: at(100), value: 2 });
    expect(find(first.data, 'x_runs_total')?.aggregationTemporality).toBe(0);

    // Accepted: the next export starts where this one ended.
    m.runs.inc({ status: 'healthy' }, 5);
    m.duration.observe(0.5);
    const second = toMetricData(await m.json(), {
      temporality: 'delta',
      start: at(100),
      now: at(220),
      sent: first.next,
    });
    expect(points(second.data, 'x_runs_total')[0]).toMatchObject({ startTime: at(160), endTime: at(220), value: 5 });
    expect(histogram(second.data, 'x_duration_seconds')).toMatchObject({
      startTime: at(160),
      value: { buckets: { boundaries: [0.1, 1], counts: [0, 1, 0] }, sum: 0.5, count: 1 },
    });

    // The second was refused (not committed): the third carries both increases from the first's end.
    m.runs.inc({ status: 'healthy' }, 1);
    const third = toMetricData(await m.json(), {
      temporality: 'delta',
      start: at(100),
      now: at(280),
      sent: first.next,
    });
    expect(points(third.data, 'x_runs_total')[0]).toMatchObject({ startTime: at(160), value: 6 });
    expect(histogram(third.data, 'x_duration_seconds')?.value.count).toBe(1);
  });

  it('starts a counter again from its value when it went down (a new registry), never negative', async () => {
    const m = registry();
    m.runs.inc({ status: 'healthy' }, 10);
    const before = toMetricData(await m.json(), { temporality: 'delta', start: at(0), now: at(60), sent: new Map() });
    const fresh = registry();
    fresh.runs.inc({ status: 'healthy' }, 4);
    const after = toMetricData(await fresh.json(), {
      temporality: 'delta',
      start: at(70),
      now: at(120),
      sent: before.next,
    });
    expect(points(after.data, 'x_runs_total')[0]).toMatchObject({ startTime: at(70), value: 4 });
  });

  it('leaves out gauges with no value and values that are not numbers', async () => {
    const m = registry();
    m.up.set(Number.NaN);
    const { data } = toMetricData(await m.json(), {
      temporality: 'cumulative',
      start: at(0),
      now: at(1),
      sent: new Map(),
    });
    expect(find(data, 'x_up')).toBeUndefined();
    // A counter with no label set yet has no data point either.
    expect(find(data, 'x_runs_total')).toBeUndefined();
  });
});
