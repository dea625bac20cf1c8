import { gzipSync } from 'node:zlib';
import { DiagLogLevel, diag, ValueType } from '@opentelemetry/api';
import { OTLPMetricExporter as HttpJsonExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as HttpProtoExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type OtlpReceiver, pointKey, startOtlpReceiver } from '../helpers/otlp-receiver.js';

// The receiver's own test: the real OpenTelemetry SDK exports to it in both OTLP/HTTP
// encodings, and what it decodes must be what was recorded.

type Protocol = 'protobuf' | 'json';

let receiver: OtlpReceiver;
const providers: MeterProvider[] = [];
beforeEach(async () => {
  receiver = await startOtlpReceiver();
});
afterEach(async () => {
  // Shutting a provider down exports once more: do it while the receiver still listens.
  await Promise.all(providers.splice(0).map((p) => p.shutdown()));
  await receiver.close();
});

function sdk(protocol: Protocol, options: { delta?: boolean; gzip?: boolean } = {}) {
  const config = {
    url: `${receiver.url}/v1/metrics`,
    headers: { 'x-test': 'yes' },
    ...(options.delta ? { temporalityPreference: AggregationTemporality.DELTA } : {}),
  };
  // The SDK reads OTEL_EXPORTER_OTLP_COMPRESSION when the exporter is built, as Sentinel's users will set it.
  const saved = process.env.OTEL_EXPORTER_OTLP_COMPRESSION;
  if (options.gzip) process.env.OTEL_EXPORTER_OTLP_COMPRESSION = 'gzip';
  let exporter: HttpProtoExporter | HttpJsonExporter;
  try {
    exporter = protocol === 'protobuf' ? new HttpProtoExporter(config) : new HttpJsonExporter(config);
  } finally {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_COMPRESSION;
    else process.env.OTEL_EXPORTER_OTLP_COMPRESSION = saved;
  }
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'sentinel-test', 'service.instance.id': 'i-1', shards: 3 }),
    readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })],
  });
  providers.push(provider);
  const meter = provider.getMeter('sentinel.test', '1.2.3');
  return {
    provider,
    requests: meter.createCounter('sentinel_requests', { description: 'Requests made', unit: '{request}' }),
    rows: meter.createCounter('sentinel_rows', { valueType: ValueType.INT }),
    backlog: meter.createGauge('sentinel_backlog', { unit: 's' }),
    latency: meter.createHistogram('sentinel_latency', {
      unit: 's',
      advice: { explicitBucketBoundaries: [0.1, 1, 10] },
    }),
  };
}

/** A minimal valid OTLP/JSON request with one gauge point. */
function jsonRequest(point: Record<string, unknown> = { timeUnixNano: '1700000000000000000', asDouble: 1.5 }) {
  return {
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'hand-made' } }] },
        scopeMetrics: [{ scope: { name: 'by-hand' }, metrics: [{ name: 'g', gauge: { dataPoints: [point] } }] }],
      },
    ],
  };
}

async function post(body: string | Uint8Array, headers: Record<string, string>, path = '/v1/metrics') {
  const init = { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) };
  const res = await fetch(`${receiver.url}${path}`, init);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe.each<Protocol>(['protobuf', 'json'])('the SDK exporting OTLP/HTTP %s', (protocol) => {
  it('is decoded point by point, with its headers, resource and scope', async () => {
    const m = sdk(protocol);
    m.requests.add(3, { check: 'freshness', ok: true });
    m.requests.add(1.5, { check: 'backlog', ok: false });
    m.rows.add(7);
    m.backlog.record(42.5, { source: 'orders' });
    for (const v of [0.05, 0.5, 5, 50]) m.latency.record(v, { check: 'freshness' });
    await m.provider.forceFlush();
    await receiver.received(1);

    expect(receiver.invalid).toEqual([]);
    const [e] = receiver.exports;
    expect(e!.protocol).toBe(protocol);
    expect(e!.path).toBe('/v1/metrics');
    expect(e!.headers['x-test']).toBe('yes');
    expect(e!.headers['content-type']).toBe(protocol === 'protobuf' ? 'application/x-protobuf' : 'application/json');
    expect(e!.resource).toMatchObject({ 'service.name': 'sentinel-test', 'service.instance.id': 'i-1', shards: 3 });
    expect(e!.scopes).toEqual([{ name: 'sentinel.test', version: '1.2.3' }]);

    const latest = receiver.latest();
    expect([...latest.keys()].sort()).toEqual([
      'sentinel_backlog{source="orders"}',
      'sentinel_latency{check="freshness"}',
      'sentinel_requests{check="backlog",ok=false}',
      'sentinel_requests{check="freshness",ok=true}',
      'sentinel_rows',
    ]);
    expect(latest.get('sentinel_requests{check="freshness",ok=true}')).toMatchObject({
      type: 'sum',
      description: 'Requests made',
      unit: '{request}',
      temporality: 'cumulative',
      monotonic: true,
      value: 3,
      attributes: { check: 'freshness', ok: true },
    });
    expect(latest.get('sentinel_requests{check="backlog",ok=false}')?.value).toBe(1.5);
    expect(latest.get('sentinel_rows')).toMatchObject({ type: 'sum', value: 7, attributes: {} });
    const gauge = latest.get('sentinel_backlog{source="orders"}')!;
    expect(gauge).toMatchObject({ type: 'gauge', unit: 's', value: 42.5 });
    expect(gauge.temporality).toBeUndefined();
    expect(gauge.monotonic).toBeUndefined();
    expect(latest.get('sentinel_latency{check="freshness"}')).toMatchObject({
      type: 'histogram',
      temporality: 'cumulative',
      count: 4,
      sum: 55.55,
      min: 0.05,
      max: 50,
      explicitBounds: [0.1, 1, 10],
      bucketCounts: [1, 1, 1, 1],
    });
    for (const p of e!.points) {
      expect(typeof p.timeUnixNano).toBe('bigint');
      // Nanoseconds since the epoch: the SDK's clock, not a count of milliseconds.
      expect(p.timeUnixNano).toBeGreaterThan(1_600_000_000_000_000_000n);
      expect(p.startTimeUnixNano! <= p.timeUnixNano).toBe(true);
    }
  });

  it('keeps cumulative sums cumulative and delta sums delta across exports', async () => {
    const cumulative = sdk(protocol);
    const delta = sdk(protocol, { delta: true });
    for (const m of [cumulative, delta]) {
      m.requests.add(3);
      m.latency.record(0.5);
      await m.provider.forceFlush();
      m.requests.add(2);
      m.latency.record(5);
      await m.provider.forceFlush();
    }
    await receiver.received(4);
    expect(receiver.invalid).toEqual([]);
    const sums = receiver.exports.map((e) => e.points.find((p) => p.metric === 'sentinel_requests'));
    expect(sums.map((p) => [p?.temporality, p?.value])).toEqual([
      ['cumulative', 3],
      ['cumulative', 5],
      ['delta', 3],
      ['delta', 2],
    ]);
    const histograms = receiver.exports.map((e) => e.points.find((p) => p.metric === 'sentinel_latency'));
    expect(histograms.map((p) => [p?.temporality, p?.count, p?.bucketCounts])).toEqual([
      ['cumulative', 1, [0, 1, 0, 0]],
      ['cumulative', 2, [0, 1, 1, 0]],
      ['delta', 1, [0, 1, 0, 0]],
      ['delta', 1, [0, 0, 1, 0]],
    ]);
    // A delta point starts where the previous one ended; a cumulative one where the series started.
    const [c1, c2, d1, d2] = sums;
    expect(c2!.startTimeUnixNano).toBe(c1!.startTimeUnixNano);
    expect(d2!.startTimeUnixNano).toBe(d1!.timeUnixNano);
  });

  it('is decoded when gzipped', async () => {
    const m = sdk(protocol, { gzip: true });
    m.requests.add(4);
    await m.provider.forceFlush();
    await receiver.received(1);
    expect(receiver.invalid).toEqual([]);
    expect(receiver.exports[0]!.headers['content-encoding']).toBe('gzip');
    expect(receiver.latest().get('sentinel_requests')?.value).toBe(4);
  });

  it('does not count an export answered 503, and counts its retry', async () => {
    receiver.server.queue({ status: 503, headers: { 'retry-after': '0' } });
    const m = sdk(protocol);
    m.requests.add(1);
    await m.provider.forceFlush();
    await receiver.received(1);
    expect(receiver.server.requests).toHaveLength(2);
    expect(receiver.exports).toHaveLength(1);
    expect(receiver.invalid).toEqual([]);
  });
});

describe('answers', () => {
  it('success in the encoding of the request, with a partial success when asked', async () => {
    await receiver.close();
    receiver = await startOtlpReceiver({ partialSuccess: { rejectedDataPoints: 2, errorMessage: 'two too old' } });
    const json = await post(JSON.stringify(jsonRequest()), { 'content-type': 'application/json' });
    expect(json).toMatchObject({ status: 200, type: 'application/json' });
    // ProtoJSON writes an int64 as a decimal string.
    expect(JSON.parse(json.body)).toEqual({ partialSuccess: { rejectedDataPoints: '2', errorMessage: 'two too old' } });
    const gz = await post(gzipSync(JSON.stringify(jsonRequest())), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(gz.status).toBe(200);
    expect(receiver.exports.map((e) => e.resource)).toEqual([
      { 'service.name': 'hand-made' },
      { 'service.name': 'hand-made' },
    ]);
    expect(receiver.exports[0]!.points).toEqual([
      {
        metric: 'g',
        description: '',
        unit: '',
        type: 'gauge',
        attributes: {},
        value: 1.5,
        timeUnixNano: 1_700_000_000_000_000_000n,
      },
    ]);
  });

  it('a partial success the SDK reads in either encoding', async () => {
    await receiver.close();
    receiver = await startOtlpReceiver({ partialSuccess: { rejectedDataPoints: 1, errorMessage: 'one too old' } });
    const warnings: string[] = [];
    const log = (...args: unknown[]): void => void warnings.push(args.join(' '));
    diag.setLogger({ error: log, warn: log, info: log, debug: log, verbose: log }, DiagLogLevel.WARN);
    try {
      for (const protocol of ['protobuf', 'json'] as const) {
        const m = sdk(protocol);
        m.requests.add(1);
        await m.provider.forceFlush();
      }
    } finally {
      diag.disable();
    }
    expect(receiver.exports.map((e) => e.protocol)).toEqual(['protobuf', 'json']);
    // The SDK logs what it decoded: the int64 a number from protobuf, the JSON's decimal string as is.
    expect(warnings).toEqual([
      'Received Partial Success response: {"rejectedDataPoints":1,"errorMessage":"one too old"}',
      'Received Partial Success response: {"rejectedDataPoints":"1","errorMessage":"one too old"}',
    ]);
  });

  it('400 and a line in invalid: a misspelt OTLP/JSON field at any depth, an enum by name, a wrong path', async () => {
    const misspelt = jsonRequest({ timeUnixNano: '1700000000000000000', asDoubel: 1.5 });
    const snakeCase = { resource_metrics: [] };
    const sum = jsonRequest();
    const metric = sum.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0] as Record<string, unknown>;
    delete metric.gauge;
    metric.sum = { aggregationTemporality: 'AGGREGATION_TEMPORALITY_DELTA', dataPoints: [] };
    for (const body of [misspelt, snakeCase, sum]) {
      const answer = await post(JSON.stringify(body), { 'content-type': 'application/json' });
      expect(answer).toMatchObject({ status: 400, type: 'application/json' });
      expect(JSON.parse(answer.body)).toMatchObject({ code: 3, message: expect.any(String) });
    }
    const wrongPath = await post(JSON.stringify(jsonRequest()), { 'content-type': 'application/json' }, '/v1/metric');
    expect(wrongPath.status).toBe(400);
    const notProtobuf = await post(new Uint8Array([0xff, 0xff, 0xff]), { 'content-type': 'application/x-protobuf' });
    expect(notProtobuf).toMatchObject({ status: 400, type: 'application/x-protobuf' });

    expect(receiver.exports).toEqual([]);
    expect(receiver.invalid).toHaveLength(5);
    expect(receiver.invalid[0]).toMatch(/unknown field "asDoubel" in NumberDataPoint/);
    expect(receiver.invalid[1]).toMatch(/unknown field "resource_metrics"/);
    expect(receiver.invalid[2]).toMatch(/aggregationTemporality: expected an enum value as an integer/);
    expect(receiver.invalid[3]).toMatch(/path \/v1\/metric, not \/v1\/metrics/);
    expect(receiver.invalid[4]).toMatch(/undecodable protobuf body/);
  });

  it('a scripted 2xx counts as an export, a scripted hang or reset does not', async () => {
    receiver.server.queue({ status: 202, headers: { connection: 'close' }, body: {} }, { status: 200, reset: true });
    const body = JSON.stringify(jsonRequest());
    expect((await post(body, { 'content-type': 'application/json' })).status).toBe(202);
    await expect(post(body, { 'content-type': 'application/json' })).rejects.toThrow();
    expect(receiver.exports).toHaveLength(1);
    expect(receiver.server.requests).toHaveLength(2);
  });
});

describe('pointKey', () => {
  it('sorts attributes and writes values as JSON', () => {
    expect(pointKey({ metric: 'm', attributes: { b: 'x', a: 2, c: true } })).toBe('m{a=2,b="x",c=true}');
    expect(pointKey({ metric: 'm', attributes: {} })).toBe('m');
  });
});
