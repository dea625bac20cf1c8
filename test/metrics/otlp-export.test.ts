import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { METRICS } from '../../src/metrics/names.js';
import { RUN_DURATION_BUCKETS } from '../../src/metrics/registry.js';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, minutesAgo } from '../helpers/fixtures.js';
import { type OtlpDataPoint, type OtlpReceiver, pointKey, startOtlpReceiver } from '../helpers/otlp-receiver.js';

/**
 * The OTLP round trip (issue 16): the built CLI pushes its metrics through the OpenTelemetry SDK
 * to a loopback receiver that decodes them by the specification (the official proto definitions
 * for protobuf, strict OTLP/JSON), and the tests assert the data points, headers and resource
 * attributes that arrive; then the receiver fails in the ways a collector does.
 */

const db = useTestDatabase();
let stateDir: string;
let receiver: OtlpReceiver | undefined;
const children: ChildProcess[] = [];

beforeAll(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'sentinel-otlp-'));
});
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await receiver?.close();
  receiver = undefined;
});

const SECRET = 'dd-key-0123456789abcdef';
const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  DATABASE_URL: db().url,
  SENTINEL_STATE_DIR: stateDir,
  OTEL_EXPORTER_OTLP_HEADERS: `DD-API-KEY=${SECRET}`,
  ...extra,
});

/** A batch stuck in processing for an hour: the run is critical and has figures to send. */
const stuckBatch = (): Promise<string> =>
  insertBatch(db().pool, { status: 'processing', source: 'vendor_a', updated_at: minutesAgo(60) });

const sentinelPoints = (points: OtlpDataPoint[]): OtlpDataPoint[] =>
  points.filter((p) => p.metric.startsWith('sentinel_'));

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts `sentinel args` and collects its output; `lines(n)` resolves once n JSON lines were printed. */
function start(args: string[], extra: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env(extra)), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const when = (ready: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => (ready() ? resolve() : void waiters.push(check));
      check();
    });
  const ended = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    ended,
    stdout: () => stdout,
    stderr: () => stderr,
    lines: (n: number) => when(() => stdout.split('\n').filter(Boolean).length >= n),
    logged: (pattern: RegExp) => when(() => pattern.test(stderr)),
  };
}

describe('sentinel --otlp-endpoint (one run)', () => {
  it('pushes what /metrics serves over OTLP/protobuf, with headers and resource attributes', async () => {
    receiver = await startOtlpReceiver();
    await stuckBatch();
    const r = await runCli(
      ['--json', '--otlp-endpoint', receiver.url],
      env({ OTEL_RESOURCE_ATTRIBUTES: 'team=data,region=eu-west-1', OTEL_SERVICE_NAME: 'sentinel-eu' }),
    );
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).overall_status).toBe('critical');
    expect(receiver.invalid).toEqual([]);
    expect(receiver.exports).toHaveLength(1);
    const sent = receiver.exports[0]!;
    expect(sent.protocol).toBe('protobuf');
    expect(sent.path).toBe('/v1/metrics');
    expect(sent.headers['content-type']).toBe('application/x-protobuf');
    expect(sent.headers['dd-api-key']).toBe(SECRET);
    expect(sent.resource).toMatchObject({
      'service.name': 'sentinel-eu',
      'service.version': expect.stringMatching(/^\d+\.\d+\.\d+/),
      'service.instance.id': expect.stringMatching(/^[0-9a-f-]{36}$/),
      'deployment.environment.name': 'dev',
      team: 'data',
      region: 'eu-west-1',
      'telemetry.sdk.name': 'opentelemetry',
    });
    expect(sent.scopes).toEqual([{ name: '@dragonfly-sre/sentinel', version: expect.any(String) }]);

    const latest = receiver.latest();
    expect(
      latest.get(pointKey({ metric: 'sentinel_pipeline_stuck_batches', attributes: { status: 'processing' } })),
    ).toMatchObject({ type: 'gauge', value: 1, unit: '' });
    expect(
      latest.get(pointKey({ metric: 'sentinel_check_status', attributes: { check: 'stuck_batches' } })),
    ).toMatchObject({ type: 'gauge', value: 2 });
    expect(latest.get(pointKey({ metric: 'sentinel_runs_total', attributes: { status: 'critical' } }))).toMatchObject({
      type: 'sum',
      monotonic: true,
      temporality: 'cumulative',
      value: 1,
    });
    expect(latest.get(pointKey({ metric: 'sentinel_database_up', attributes: {} }))).toMatchObject({ value: 1 });
    const duration = latest.get(pointKey({ metric: 'sentinel_run_duration_seconds', attributes: {} }));
    expect(duration).toMatchObject({ type: 'histogram', temporality: 'cumulative', count: 1, unit: 's' });
    expect(duration?.explicitBounds).toEqual(RUN_DURATION_BUCKETS);
    expect(duration?.bucketCounts?.reduce((a, b) => a + b, 0)).toBe(1);

    // Same names and bounded labels as /metrics: every sentinel_ series is one of names.ts with its labels.
    const specs = new Map<string, readonly string[]>(METRICS.map((m) => [m.name, m.labels]));
    for (const p of sentinelPoints(sent.points)) {
      expect(specs.has(p.metric), p.metric).toBe(true);
      for (const label of Object.keys(p.attributes)) expect(specs.get(p.metric), pointKey(p)).toContain(label);
    }
    // Process metrics come along as on /metrics.
    expect(sent.points.some((p) => p.metric === 'process_resident_memory_bytes' && p.unit === 'By')).toBe(true);
    // The key never shows in what Sentinel prints.
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it('speaks OTLP/JSON when asked, from the standard variables alone', async () => {
    receiver = await startOtlpReceiver();
    const r = await runCli(
      [],
      env({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }),
    );
    expect(r.code).toBe(0);
    expect(receiver.invalid).toEqual([]);
    expect(receiver.exports.map((e) => [e.protocol, e.headers['content-type']])).toEqual([
      ['json', 'application/json'],
    ]);
    expect(
      receiver.latest().get(pointKey({ metric: 'sentinel_runs_total', attributes: { status: 'healthy' } })),
    ).toMatchObject({ value: 1, temporality: 'cumulative' });
  });

  it('gives cron’s runs on one host one identity, and a loop one of its own', async () => {
    receiver = await startOtlpReceiver();
    for (let i = 0; i < 2; i++) expect((await runCli(['--otlp-endpoint', receiver.url], env())).code).toBe(0);
    const p = start(['--loop', '--interval', '60', '--json', '--otlp-endpoint', receiver.url], {});
    await receiver.received(3);
    p.child.kill('SIGTERM');
    expect(await p.ended).toBe(0);
    const ids = receiver.exports.map((e) => e.resource['service.instance.id']);
    expect(ids[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).not.toBe(ids[0]);
  });

  it('refuses settings it cannot honour in one line, exit 3, before any check runs', async () => {
    const grpc = await runCli(
      [],
      env({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
    );
    expect(grpc.code).toBe(3);
    expect(grpc.stderr.trim()).toBe(
      'sentinel: config error: OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported; ' +
        "use http/protobuf (the collector's port 4318) or http/json",
    );
    const headers = await runCli(
      ['--otlp-endpoint', 'http://127.0.0.1:4318'],
      env({ OTEL_EXPORTER_OTLP_HEADERS: `Authorization Bearer ${SECRET}` }),
    );
    expect(headers.code).toBe(3);
    expect(headers.stderr).toMatch(/OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value/);
    expect(headers.stderr).not.toContain(SECRET);
    expect(headers.stderr).not.toMatch(/\n\s+at /);
    // With a bad configuration file too: every problem at once.
    const config = join(stateDir, 'bad.yaml');
    writeFileSync(config, 'checks:\n  stuck_batches:\n    threshold_minutes: soon\n');
    const both = await runCli(
      ['-c', config],
      env({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TIMEOUT: '5s' }),
    );
    expect(both.code).toBe(3);
    expect(both.stderr).toMatch(/checks\.stuck_batches\.threshold_minutes/);
    expect(both.stderr).toMatch(/OTEL_EXPORTER_OTLP_TIMEOUT: expected whole milliseconds/);
  });
});

describe('sentinel --otlp-endpoint when the receiver fails', () => {
  it('a receiver that is gone: one warning, the exit code of the run, no stack trace', async () => {
    const port = await closedPort();
    await stuckBatch();
    const r = await runCli(['--otlp-endpoint', `http://127.0.0.1:${port}`], env({ OTEL_EXPORTER_OTLP_TIMEOUT: '300' }));
    expect(r.code).toBe(2);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('OTLP export'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      new RegExp(`WARNING .*OTLP export to http://127\\.0\\.0\\.1:${port}/v1/metrics failed: .*ECONNREFUSED`),
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a receiver that never answers: the export gives up after the timeout and the run ends', async () => {
    receiver = await startOtlpReceiver();
    receiver.server.fallback({ status: 200, hang: true });
    const r = await runCli(['--otlp-endpoint', receiver.url], env({ OTEL_EXPORTER_OTLP_TIMEOUT: '400' }));
    expect(r.code).toBe(0);
    expect(receiver.server.requests.length).toBeGreaterThanOrEqual(1);
    expect(r.stderr).toMatch(/OTLP export to http:\/\/127\.0\.0\.1:\d+\/v1\/metrics failed: .*timed out/i);
    expect(receiver.exports).toEqual([]);
  });

  it('a refusal is said with the status and the receiver’s words, escaped and with secrets masked', async () => {
    receiver = await startOtlpReceiver();
    receiver.server.fallback({
      status: 400,
      headers: { 'content-type': 'text/plain' },
      // Raw control characters and a line break, as a hostile or broken receiver may send.
      body: `bad key ${SECRET}\u001b[31m\nforged line`,
    });
    const r = await runCli(['--otlp-endpoint', receiver.url, '--otlp-protocol', 'http/json'], env());
    expect(r.code).toBe(0);
    const warning = r.stderr.split('\n').find((l) => l.includes('OTLP export'));
    expect(warning).toMatch(/failed: HTTP 400 Bad Request: .*bad key \*\*\*/);
    expect(r.stderr).not.toContain(SECRET);
    expect(r.stderr).not.toContain('\u001b[31m');
    expect(r.stderr.split('\n').some((l) => l.startsWith('forged line'))).toBe(false);
  });

  it('a receiver trickling its answer for ever: the export gives up at its deadline; the run exits', async () => {
    // A byte every 100 ms keeps the socket's idle timeout from ever firing: only a deadline ends it.
    const timers = new Set<NodeJS.Timeout>();
    const trickler = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        const t = setInterval(() => res.write('\u0000'), 100);
        timers.add(t);
        res.on('close', () => clearInterval(t));
      });
    });
    await new Promise<void>((resolve) => trickler.listen(0, '127.0.0.1', resolve));
    const { port } = trickler.address() as { port: number };
    try {
      await stuckBatch();
      const r = await runCli(
        ['--json', '--otlp-endpoint', `http://127.0.0.1:${port}`],
        env({ OTEL_EXPORTER_OTLP_TIMEOUT: '300' }),
        { timeoutMs: 60_000 },
      );
      expect(r.signal).toBeNull();
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout).overall_status).toBe('critical');
      expect(r.stderr).toMatch(/OTLP export to .* failed: no complete answer within 1\.3s/);
    } finally {
      for (const t of timers) clearInterval(t);
      trickler.closeAllConnections();
      await new Promise<void>((resolve) => trickler.close(() => resolve()));
    }
  });

  it('a partial success (data points the receiver rejected) is said, with the receiver’s reason', async () => {
    receiver = await startOtlpReceiver({ partialSuccess: { rejectedDataPoints: 2, errorMessage: 'too many series' } });
    const r = await runCli(['--otlp-endpoint', receiver.url], env());
    expect(r.code).toBe(0);
    expect(receiver.exports).toHaveLength(1);
    expect(r.stderr).toMatch(
      /WARNING .*OpenTelemetry SDK: Received Partial Success response: .*"rejectedDataPoints":2/,
    );
    expect(r.stderr).toMatch(/too many series/);
  });

  it('retries a 503 with Retry-After within the timeout and then delivers', async () => {
    receiver = await startOtlpReceiver();
    receiver.server.queue({ status: 503, headers: { 'retry-after': '0', connection: 'close' } });
    const r = await runCli(['--otlp-endpoint', receiver.url], env());
    expect(r.code).toBe(0);
    expect(receiver.server.requests).toHaveLength(2);
    expect(receiver.exports).toHaveLength(1);
    expect(r.stderr).not.toMatch(/OTLP export/);
  });
});

describe('sentinel --loop --otlp-temporality delta', () => {
  it('sends each run’s increase, carries what a refused export missed, and flushes at SIGTERM', async () => {
    receiver = await startOtlpReceiver();
    // The first two exports are refused: their increase must arrive with a later one.
    receiver.server.queue(
      { status: 400, body: '{"code":3,"message":"not now"}', headers: { connection: 'close' } },
      { status: 400, body: '{"code":3,"message":"not now"}', headers: { connection: 'close' } },
    );
    await stuckBatch();
    const p = start(
      ['--loop', '--interval', '1', '--json', '--otlp-endpoint', receiver.url, '--otlp-temporality', 'delta'],
      { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    );
    await p.logged(/OTLP export to .* failed: HTTP 400/);
    await p.logged(/OTLP export to .* works again \(after 2 failed exports\)/);
    await p.lines(4);
    p.child.kill('SIGTERM');
    expect(await p.ended).toBe(0);
    const runs = p.stdout().split('\n').filter(Boolean).length;
    expect(receiver.invalid).toEqual([]);
    // Every run counted exactly once across the accepted exports: the refused ones' increase was carried.
    const critical = receiver.exports
      .flatMap((e) => e.points)
      .filter((pt) => pt.metric === 'sentinel_runs_total' && pt.attributes.status === 'critical');
    for (const pt of critical) expect(pt.temporality).toBe('delta');
    expect(critical.reduce((sum, pt) => sum + (pt.value ?? 0), 0)).toBe(runs);
    const histogramCount = receiver.exports
      .flatMap((e) => e.points)
      .filter((pt) => pt.metric === 'sentinel_run_duration_seconds')
      .reduce((sum, pt) => sum + (pt.count ?? 0), 0);
    expect(histogramCount).toBe(runs);
    // Consecutive delta points join up: each starts where the one before it ended.
    for (let i = 1; i < critical.length; i++)
      expect(critical[i]!.startTimeUnixNano).toBe(critical[i - 1]!.timeUnixNano);
    // Said once while it lasted, not once per export.
    expect(p.stderr().match(/OTLP export to .* failed: HTTP 400/g)).toHaveLength(1);
    expect(p.stderr()).not.toContain(SECRET);
  });
});

describe('sentinel serve --otlp-endpoint', () => {
  it('pushes the figures /metrics serves, from the same registry', async () => {
    receiver = await startOtlpReceiver();
    await stuckBatch();
    const p = start(
      ['serve', '--listen', '127.0.0.1:0', '--interval', '60', '--json', '--otlp-endpoint', receiver.url],
      {},
    );
    await p.logged(
      /Exporting metrics over OTLP \(http\/protobuf, cumulative\) to http:\/\/127\.0\.0\.1:\d+\/v1\/metrics/,
    );
    await p.lines(1);
    await receiver.received(1);
    const url = /Listening on (http:\/\/\S+)/.exec(p.stderr())?.[1];
    const text = await (await fetch(`${url}/metrics`)).text();
    p.child.kill('SIGTERM');
    expect(await p.ended).toBe(0);
    // The per-run gauges of the export after the run equal the scrape's (nothing ran in between).
    const scraped = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^(sentinel_(?:check_status|pipeline_stuck_batches|database_up))(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) continue;
      const attributes = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((a) => [a[1], a[2]]));
      scraped.set(pointKey({ metric: m[1]!, attributes }), Number(m[3]));
    }
    expect(scraped.size).toBeGreaterThan(10);
    const pushed = receiver.exports[0]!.points;
    for (const [key, value] of scraped) expect(pushed.find((pt) => pointKey(pt) === key)?.value, key).toBe(value);
  });
});
