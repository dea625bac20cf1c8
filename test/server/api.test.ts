import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createDashboardApi } from '../../src/server/api.js';
import type {
  AlertsResponse,
  BatchPerformanceResponse,
  ErrorDistributionResponse,
  PipelineHealthResponse,
  SourcesResponse,
  StatusResponse,
} from '../../src/server/api-types.js';
import {
  CONTENT_SECURITY_POLICY,
  isLoopbackHost,
  isLoopbackHostHeader,
  ListenError,
  startServer,
  tokenMatches,
} from '../../src/server/http.js';
import { type MonitorServer, startMonitorServer } from '../../src/server/index.js';
import type { RunResult } from '../../src/types.js';
import { Redactor } from '../../src/util/redact.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, insertRowErrors } from '../helpers/fixtures.js';
import { requirePart } from '../helpers/parts.js';
import { until } from '../helpers/wait.js';

/** The dashboard's JSON API and access rules, against a real seeded database. */

const getDb = useTestDatabase();
const logger = createLogger({ level: 'error', write: () => {} });

let webRoot: string;
beforeAll(async () => {
  webRoot = await mkdtemp(join(tmpdir(), 'sentinel-web-'));
  await mkdir(join(webRoot, 'assets'));
  await writeFile(
    join(webRoot, 'index.html'),
    '<!doctype html><title>Sentinel</title><script type="module" src="/assets/app-1a2b.js"></script>',
  );
  await writeFile(join(webRoot, 'assets', 'app-1a2b.js'), 'console.log("app");');
  await writeFile(join(webRoot, 'assets', 'app-1a2b.css'), 'body{}');
});
afterAll(async () => {
  await rm(webRoot, { recursive: true, force: true });
});

const servers: MonitorServer[] = [];
afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
});

interface StartOptions {
  databaseUrl?: string;
  now?: () => number;
  cacheTtlMs?: number;
  authToken?: string;
  loopback?: boolean;
  host?: string;
  webRoot?: string;
  redactor?: Redactor;
  metricsWithoutToken?: boolean;
  sourceErrorThresholds?: Record<string, number>;
}

async function serve(o: StartOptions = {}): Promise<MonitorServer> {
  const server = await startMonitorServer({
    listen: { host: o.host ?? '127.0.0.1', port: 0 },
    intervalMs: 60_000,
    logger,
    redactor: o.redactor ?? new Redactor(),
    dashboard: {
      databaseUrl: o.databaseUrl ?? getDb().url,
      environment: 'staging',
      stuckThresholdMinutes: 10,
      errorThresholdPct: 15,
      version: '9.9.9',
      webRoot: o.webRoot ?? webRoot,
      ...(o.now ? { now: o.now } : {}),
      ...(o.cacheTtlMs !== undefined ? { cacheTtlMs: o.cacheTtlMs } : {}),
      ...(o.authToken !== undefined ? { authToken: o.authToken } : {}),
      ...(o.loopback !== undefined ? { loopback: o.loopback } : {}),
      ...(o.metricsWithoutToken ? { metricsWithoutToken: true } : {}),
      ...(o.sourceErrorThresholds ? { sourceErrorThresholds: o.sourceErrorThresholds } : {}),
    },
  });
  servers.push(server);
  return server;
}

async function get(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: string; json: () => unknown }> {
  const res = await fetch(base + path, { headers });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body) };
}

/** A raw request: fetch would normalise `/assets/../..`. */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A request with a chosen `Host` header (as curl -H 'Host: …' sends it; fetch would not). */
function getWithHost(
  base: string,
  path: string,
  host: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: 'GET', headers: { ...headers, Host: host } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The raw bytes and headers of a response (no automatic decompression, unlike fetch). */
function getBytes(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The database's current hour (UTC), so fixtures never straddle an hour boundary with the server. */
async function dbHour(): Promise<Date> {
  const { rows } = await getDb().pool.query<{ h: Date }>(`select date_trunc('hour', now(), 'UTC') as h`);
  return rows[0]!.h;
}
const plus = (d: Date, minutes: number): Date => new Date(d.getTime() + minutes * 60_000);

function runResult(overrides: Partial<RunResult> = {}): RunResult {
  return {
    timestamp: '2025-01-04T10:00:00.000Z',
    environment: 'staging',
    overall_status: 'critical',
    alerts: [
      {
        check: 'stuck_batches',
        level: 'critical',
        message: '2 batches stuck > 10m: processing(2)',
        details: { threshold_minutes: 10 },
        remediation: 'Look at the workers',
        id: 'a1b2c3',
      },
      {
        check: 'error_spike',
        level: 'warning',
        message: 'vendor <script>alert(1)</script> errors',
        details: {},
        silenced: true,
      },
    ],
    checks: [
      { name: 'stuck_batches', outcome: 'alert', duration_ms: 3 },
      { name: 'error_spike', outcome: 'alert', duration_ms: 4 },
    ],
    duration_ms: 9,
    metrics: { total_checks: 2, alerts_triggered: 2, critical_alerts: 1, warning_alerts: 1, skipped_checks: 0 },
    ...overrides,
  };
}

describe('/api/status and /api/alerts (the last run, no query)', () => {
  it('say unknown before the first run, then describe the last run', async () => {
    let clock = Date.parse('2025-01-04T10:00:00.000Z');
    const server = await serve({ now: () => clock, databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
    const before = await get(server.url, '/api/status');
    expect(before.status).toBe(200);
    expect(before.json()).toEqual({
      environment: 'staging',
      overall_status: 'unknown',
      last_run_at: null,
      last_run_age_seconds: null,
      role: 'single',
      database_reachable: null,
      version: '9.9.9',
      metrics: null,
    } satisfies StatusResponse);
    expect((await get(server.url, '/api/alerts')).json()).toEqual({ alerts: [] });

    server.observe(runResult());
    clock += 90_500;
    expect((await get(server.url, '/api/status')).json()).toEqual({
      environment: 'staging',
      overall_status: 'critical',
      last_run_at: '2025-01-04T10:00:00.000Z',
      last_run_age_seconds: 91,
      role: 'single',
      database_reachable: true,
      version: '9.9.9',
      metrics: { total_checks: 2, alerts_triggered: 2, critical_alerts: 1, warning_alerts: 1, skipped_checks: 0 },
    } satisfies StatusResponse);
    const alerts = await get(server.url, '/api/alerts');
    expect(alerts.json()).toEqual({ alerts: runResult().alerts } satisfies AlertsResponse);
    // Untrusted text is data: JSON-escaped, never markup.
    expect(alerts.body).not.toContain('<script>');
    expect(alerts.body).toContain('\\u003cscript\\u003ealert(1)\\u003c/script\\u003e');
  });

  it('reports an unreachable database in the last run', async () => {
    const server = await serve({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
    const failed = (check: string) => ({
      check,
      level: 'critical' as const,
      message: 'Check failed: connection refused',
      details: {},
      failed: true,
    });
    server.observe(
      runResult({
        alerts: [failed('stuck_batches'), failed('error_spike')],
        checks: [
          { name: 'stuck_batches', outcome: 'failed', duration_ms: 1 },
          { name: 'error_spike', outcome: 'failed', duration_ms: 1 },
        ],
      }),
    );
    expect(((await get(server.url, '/api/status')).json() as StatusResponse).database_reachable).toBe(false);
  });
});

describe("/api/sources (the last run's snapshot, no query)", () => {
  const bucket = '2025-01-04T10:00:00.000Z';
  const figures = (total: number, errors: number, judged = true) => ({
    hour_bucket: bucket,
    judged,
    total_rows: total,
    error_rows: errors,
    skipped_rows: 0,
    error_rate_pct: total > 0 ? Math.round((10_000 * errors) / total) / 100 : null,
    dedupe_rate_pct: total > 0 ? 0 : null,
  });
  const hostile = `<img src=x onerror=alert(1)>\u202e${'n'.repeat(400)}`;
  const pipeline = (sources: Array<{ source: string; total: number; errors: number; judged?: boolean }>) => ({
    taken_at: '2025-01-04T10:20:00.000Z',
    in_flight: [],
    stuck: { threshold_minutes: 10, by_status: [] },
    hourly: {
      min_rows: 100,
      overall: figures(1300, 250),
      sources: sources.map((s) => ({ source: s.source, ...figures(s.total, s.errors, s.judged) })),
    },
    finished_last_hour: { completed: 0, failed: 0 },
  });

  it('answers empty before the first run and for a run without a snapshot', async () => {
    const server = await serve({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
    const empty: SourcesResponse = {
      taken_at: null,
      limit: 20,
      threshold_pct: 15,
      min_rows: null,
      overall: null,
      sources: [],
      others: { sources: 0, total_rows: 0, error_rows: 0 },
    };
    expect((await get(server.url, '/api/sources')).json()).toEqual(empty);
    server.observe(runResult());
    expect((await get(server.url, '/api/sources')).json()).toEqual(empty);
  });

  it('lists sources by rows with their threshold, overall membership and the alerts that name them', async () => {
    const server = await serve({
      databaseUrl: 'postgres://nobody@127.0.0.1:1/none',
      sourceErrorThresholds: { vendor_x: 25 },
    });
    server.observe(
      runResult({
        alerts: [
          {
            check: 'error_spike',
            level: 'warning',
            message: 'Error rate 19.2% > 15.0% threshold',
            details: {
              top_sources: [
                { source: 'vendor_a', error_rate_pct: 40, error_rows: 160, total_rows: 400 },
                { source: hostile, error_rate_pct: 30, error_rows: 90, total_rows: 300 },
              ],
            },
          },
          {
            check: 'error_spike',
            level: 'warning',
            message: 'Error rate 40.0% > 25.0% threshold for source vendor_x',
            subject: 'vendor_x',
            details: { source: 'vendor_x' },
          },
          {
            check: 'stuck_batches',
            level: 'critical',
            message: '1 batch stuck > 10m: validating(1)',
            details: { oldest_batches: [{ id: 'b-1', source: 'tiny', status: 'validating', age_minutes: 35 }] },
          },
        ],
        pipeline: pipeline([
          { source: 'vendor_b', total: 500, errors: 10 },
          { source: 'vendor_a', total: 400, errors: 160 },
          { source: hostile, total: 300, errors: 90 },
          { source: 'vendor_x', total: 200, errors: 80 },
          { source: 'tiny', total: 5, errors: 0, judged: false },
          { source: 'small', total: 6, errors: 0, judged: false },
        ]),
      }),
    );
    const res = await get(server.url, '/api/sources?limit=4');
    expect(res.status).toBe(200);
    const body = res.json() as SourcesResponse;
    expect(body.taken_at).toBe('2025-01-04T10:20:00.000Z');
    expect(body.limit).toBe(4);
    expect(body.min_rows).toBe(100);
    expect(body.overall?.error_rate_pct).toBeCloseTo(19.23, 2);
    // Four by rows, plus the small source a stuck batch names; the other small one is summed.
    expect(body.sources.map((s) => s.source.slice(0, 12))).toEqual([
      'vendor_b',
      'vendor_a',
      hostile.slice(0, 12),
      'vendor_x',
      'tiny',
    ]);
    expect(body.others).toEqual({ sources: 1, total_rows: 6, error_rows: 0 });
    const by = (name: string) => body.sources.find((s) => s.source === name)!;
    expect(by('vendor_b')).toMatchObject({
      threshold_pct: 15,
      own_threshold: false,
      in_overall: true,
      over_threshold: false,
      alert_checks: [],
    });
    expect(by('vendor_a')).toMatchObject({ over_threshold: true, error_rate_pct: 40, alert_checks: ['error_spike'] });
    expect(by('vendor_x')).toMatchObject({
      threshold_pct: 25,
      own_threshold: true,
      in_overall: false,
      over_threshold: true,
      alert_checks: ['error_spike'],
    });
    expect(by('tiny')).toMatchObject({ judged: false, over_threshold: false, alert_checks: ['stuck_batches'] });
    // A hostile name is data: cut to 256 characters, JSON-escaped, still matched to its alert.
    const named = body.sources[2]!;
    expect(named.source).toHaveLength(256);
    expect(named.source.endsWith('…')).toBe(true);
    expect(named.alert_checks).toEqual(['error_spike']);
    expect(res.body).not.toContain('<img');
  });

  it('matches alert details that carry the name escaped and cut as checks print it', async () => {
    const server = await serve({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
    const name = `bad\nname ${'z'.repeat(300)}`;
    server.observe(
      runResult({
        alerts: [
          {
            check: 'queue_backlog',
            level: 'warning',
            message: '1 batch waiting',
            // As util/text.ts oneLine prints it in a sentence: escaped, cut at 100.
            details: { oldest_batches: [{ id: 'q-1', source: `bad\\nname ${'z'.repeat(89)}…`, age_minutes: 45 }] },
          },
        ],
        pipeline: pipeline([
          { source: 'big', total: 900, errors: 0 },
          { source: name, total: 1, errors: 0, judged: false },
        ]),
      }),
    );
    const body = (await get(server.url, '/api/sources?limit=1')).json() as SourcesResponse;
    expect(body.sources.map((s) => s.alert_checks)).toEqual([[], ['queue_backlog']]);
  });

  it('rejects a bad limit', async () => {
    const server = await serve({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
    for (const q of ['?limit=0', '?limit=101', '?limit=x', '?limit=1&limit=2', '?hours=3']) {
      expect((await get(server.url, `/api/sources${q}`)).status, q).toBe(400);
    }
  });
});

describe('/api/batch-performance', () => {
  it('returns the hourly rows of the last N hours, newest first, numbers as numbers', async () => {
    const db = getDb();
    const h = await dbHour();
    const a = plus(h, -120);
    const b = plus(h, -60);
    await insertBatch(db.pool, {
      status: 'completed',
      total_rows: 100,
      inserted_rows: 90,
      skipped_rows: 5,
      error_rows: 5,
      parse_ms: 10,
      db_ms: 20,
      created_at: plus(a, 10),
    });
    await insertBatch(db.pool, {
      status: 'failed',
      total_rows: 50,
      inserted_rows: 0,
      skipped_rows: 0,
      error_rows: 50,
      parse_ms: 30,
      db_ms: null,
      created_at: plus(a, 20),
    });
    await insertBatch(db.pool, {
      status: 'completed',
      total_rows: 0,
      inserted_rows: 0,
      skipped_rows: 0,
      error_rows: 0,
      parse_ms: null,
      db_ms: null,
      created_at: plus(b, 5),
    });
    await insertBatch(db.pool, {
      status: 'completed',
      total_rows: 10,
      inserted_rows: 10,
      skipped_rows: 0,
      error_rows: 0,
      parse_ms: 1,
      db_ms: 2,
      created_at: plus(h, -48 * 60 + 1),
    });
    const server = await serve();

    const rowA = {
      hour_bucket: a.toISOString(),
      total_batches: 2,
      completed_batches: 1,
      failed_batches: 1,
      avg_parse_ms: 20,
      avg_db_ms: 20,
      avg_total_ms: 30,
      total_rows: 150,
      inserted_rows: 90,
      skipped_rows: 5,
      error_rows: 55,
      dedupe_rate_pct: 3.33,
      error_rate_pct: 36.67,
    };
    const rowB = {
      hour_bucket: b.toISOString(),
      total_batches: 1,
      completed_batches: 1,
      failed_batches: 0,
      avg_parse_ms: null,
      avg_db_ms: null,
      avg_total_ms: null,
      total_rows: 0,
      inserted_rows: 0,
      skipped_rows: 0,
      error_rows: 0,
      dedupe_rate_pct: null,
      error_rate_pct: null,
    };
    const day = await get(server.url, '/api/batch-performance?hours=24');
    expect(day.status).toBe(200);
    expect(day.json()).toEqual({
      hours: 24,
      error_threshold_pct: 15,
      rows: [rowB, rowA],
    } satisfies BatchPerformanceResponse);
    // Default: 24 hours.
    expect((await get(server.url, '/api/batch-performance')).json()).toEqual({
      hours: 24,
      error_threshold_pct: 15,
      rows: [rowB, rowA],
    });
    const old = plus(h, -48 * 60);
    expect(
      ((await get(server.url, '/api/batch-performance?hours=72')).json() as BatchPerformanceResponse).rows.map(
        (r) => r.hour_bucket,
      ),
    ).toEqual([b.toISOString(), a.toISOString(), old.toISOString()]);
    // hours=2: buckets starting at or after now() - 2h; the bucket of h-2h started before that.
    expect(
      ((await get(server.url, '/api/batch-performance?hours=2')).json() as BatchPerformanceResponse).rows.map(
        (r) => r.hour_bucket,
      ),
    ).toEqual([b.toISOString()]);
  });
});

describe('/api/error-distribution', () => {
  it('returns the most frequent codes first, limited, with the latest sample message JSON-escaped', async () => {
    const db = getDb();
    const b1 = await insertBatch(db.pool, { status: 'failed' });
    const b2 = await insertBatch(db.pool, { status: 'completed' });
    await insertRowErrors(db.pool, b1, [
      { error_code: 'E_DATE', error_message: 'bad date', created_at: '2025-01-04T10:00:00Z' },
      { error_code: 'E_DATE', error_message: '<script>alert("x")</script>', created_at: '2025-01-04T10:05:00Z' },
    ]);
    await insertRowErrors(db.pool, b2, [
      { error_code: 'E_DATE', error_message: null, created_at: '2025-01-04T10:06:00Z' },
      { error_code: 'E_NUM', error_message: 'not a number', created_at: '2025-01-04T09:00:00Z' },
    ]);
    const server = await serve();
    const all = await get(server.url, '/api/error-distribution');
    expect(all.json()).toEqual({
      limit: 10,
      rows: [
        {
          error_code: 'E_DATE',
          occurrence_count: 3,
          affected_batches: 2,
          sample_message: '<script>alert("x")</script>',
          last_seen_at: '2025-01-04T10:06:00.000Z',
        },
        {
          error_code: 'E_NUM',
          occurrence_count: 1,
          affected_batches: 1,
          sample_message: 'not a number',
          last_seen_at: '2025-01-04T09:00:00.000Z',
        },
      ],
    } satisfies ErrorDistributionResponse);
    expect(all.body).not.toContain('<script>');
    expect(all.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(
      ((await get(server.url, '/api/error-distribution?limit=1')).json() as ErrorDistributionResponse).rows.map(
        (r) => r.error_code,
      ),
    ).toEqual(['E_DATE']);
  });
});

describe('/api/pipeline-health', () => {
  it('lists in-flight statuses in pipeline order and marks stuck processing statuses', async () => {
    const db = getDb();
    const { rows } = await db.pool.query<{ now: Date }>('select now() as now');
    const now = rows[0]!.now;
    const at = (minutes: number) => plus(now, -minutes);
    await insertBatch(db.pool, { status: 'validating', updated_at: at(2) });
    await insertBatch(db.pool, { status: 'processing', updated_at: at(30) });
    await insertBatch(db.pool, { status: 'processing', updated_at: at(12) });
    await insertBatch(db.pool, { status: 'uploaded', updated_at: at(60) });
    await insertBatch(db.pool, { status: 'completed', updated_at: at(90) });
    const server = await serve();
    const body = (await get(server.url, '/api/pipeline-health')).json() as PipelineHealthResponse;
    expect(body.threshold_minutes).toBe(10);
    expect(body.rows.map(({ oldest_age_minutes, ...rest }) => rest)).toEqual([
      // uploaded is not a processing status: never stuck, however old.
      {
        status: 'uploaded',
        batch_count: 1,
        oldest_batch_at: at(60).toISOString(),
        newest_batch_at: at(60).toISOString(),
        stuck: false,
      },
      {
        status: 'processing',
        batch_count: 2,
        oldest_batch_at: at(30).toISOString(),
        newest_batch_at: at(12).toISOString(),
        stuck: true,
      },
      {
        status: 'validating',
        batch_count: 1,
        oldest_batch_at: at(2).toISOString(),
        newest_batch_at: at(2).toISOString(),
        stuck: false,
      },
    ]);
    // Ages on the database clock at query time (1 decimal): a few seconds after the fixture.
    const ages = body.rows.map((r) => r.oldest_age_minutes);
    expect(ages[0]).toBeGreaterThanOrEqual(60);
    expect(ages[0]).toBeLessThan(60.5);
    expect(ages[1]).toBeGreaterThanOrEqual(30);
    expect(ages[1]).toBeLessThan(30.5);
    expect(ages[2]).toBeGreaterThanOrEqual(2);
    expect(ages[2]).toBeLessThan(2.5);
  });
});

describe('query parameters', () => {
  it.each([
    ['/api/batch-performance?hours=0', 'hours: expected a whole number from 1 to 720'],
    ['/api/batch-performance?hours=721', 'hours: expected a whole number from 1 to 720'],
    ['/api/batch-performance?hours=-1', 'hours: expected a whole number from 1 to 720'],
    ['/api/batch-performance?hours=1.5', 'hours: expected a whole number from 1 to 720'],
    ['/api/batch-performance?hours=abc', 'hours: expected a whole number from 1 to 720'],
    ['/api/batch-performance?hours=', 'hours: expected a whole number from 1 to 720'],
    ['/api/batch-performance?hours=%2024', 'hours: expected a whole number from 1 to 720'],
    ['/api/batch-performance?hours=1e2', 'hours: expected a whole number from 1 to 720'],
    ['/api/batch-performance?hours=24&hours=48', 'hours: given more than once'],
    ['/api/error-distribution?limit=0', 'limit: expected a whole number from 1 to 100'],
    ['/api/error-distribution?limit=101', 'limit: expected a whole number from 1 to 100'],
    ['/api/error-distribution?limit=ten', 'limit: expected a whole number from 1 to 100'],
    ['/api/batch-performance?hour=24', 'unknown query parameter "hour" (accepted: hours)'],
    ['/api/error-distribution?limit=5&hours=1&x=2', 'unknown query parameters "hours", "x" (accepted: limit)'],
    ['/api/pipeline-health?limit=5', 'unknown query parameter "limit" (this endpoint takes none)'],
    ['/api/status?verbose=1', 'unknown query parameter "verbose" (this endpoint takes none)'],
    ['/api/alerts?x=<b>', 'unknown query parameter "x" (this endpoint takes none)'],
  ])('%s is a 400', async (path, error) => {
    const server = await serve({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
    const res = await get(server.url, path);
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error });
  });

  it('accepts the bounds', async () => {
    const server = await serve();
    for (const path of [
      '/api/batch-performance?hours=1',
      '/api/batch-performance?hours=720',
      '/api/error-distribution?limit=1',
      '/api/error-distribution?limit=100',
    ]) {
      expect((await get(server.url, path)).status, path).toBe(200);
    }
  });
});

describe('cache', () => {
  it('answers from the cache within the TTL, and from the database after it', async () => {
    const db = getDb();
    let clock = 1_000_000;
    const server = await serve({ now: () => clock, cacheTtlMs: 5000 });
    const b = await insertBatch(db.pool, { status: 'failed' });
    await insertRowErrors(db.pool, b, [
      { error_code: 'E_ONE', error_message: 'one', created_at: '2025-01-04T10:00:00Z' },
    ]);
    const codes = async (path = '/api/error-distribution') =>
      ((await get(server.url, path)).json() as ErrorDistributionResponse).rows.map(
        (r) => `${r.error_code}:${r.occurrence_count}`,
      );
    expect(await codes()).toEqual(['E_ONE:1']);

    await insertRowErrors(db.pool, b, [
      { error_code: 'E_TWO', error_message: 'two', created_at: '2025-01-04T10:01:00Z' },
    ]);
    clock += 4999;
    expect(await codes()).toEqual(['E_ONE:1']); // cached: the database was not asked
    // Another parameter set is its own cache entry.
    expect(await codes('/api/error-distribution?limit=5')).toEqual(['E_ONE:1', 'E_TWO:1']);
    clock += 1;
    expect(await codes()).toEqual(['E_ONE:1', 'E_TWO:1']);
  });

  it('shares one query between concurrent requests', async () => {
    const api = createDashboardApi({
      databaseUrl: getDb().url,
      environment: 'x',
      stuckThresholdMinutes: 10,
      errorThresholdPct: 15,
    });
    try {
      // None yet: a closed session of an earlier test leaves pg_stat_activity a moment after its client.
      await until(async () => {
        const { rows } = await getDb().pool.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where application_name = 'sentinel-dashboard' and ` +
            `datname = current_database()`,
        );
        return rows[0]!.n === 0;
      }, 'the dashboard sessions of earlier tests to end');
      const runs = { last: () => undefined, role: () => 'single' as const };
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => api.handle('/api/pipeline-health', new URLSearchParams(), runs)),
      );
      expect(answers.every((a) => a.status === 200)).toBe(true);
      expect(new Set(answers).size).toBe(1); // the very same answer object: one query
      const sessions = await getDb().pool.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where application_name = 'sentinel-dashboard' and ` +
          `datname = current_database()`,
      );
      expect(sessions.rows[0]!.n).toBe(1);
    } finally {
      await api.close();
    }
  });
});

describe('database unreachable', () => {
  it('answers 503 with a one-line, redacted reason', async () => {
    const redactor = new Redactor(['hunter2secret']);
    const server = await serve({ databaseUrl: 'postgres://sentinel:hunter2secret@127.0.0.1:1/nowhere', redactor });
    for (const path of ['/api/batch-performance', '/api/error-distribution', '/api/pipeline-health']) {
      const res = await get(server.url, path);
      expect(res.status, path).toBe(503);
      const { error } = res.json() as { error: string };
      expect(error).toMatch(/^database unreachable: connection refused \(127\.0\.0\.1:1\)/);
      expect(error).not.toContain('hunter2secret');
      expect(error).not.toContain('\n');
    }
    // status still answers: it reads the last run, not the database.
    expect((await get(server.url, '/api/status')).status).toBe(200);
  });
});

describe('security headers, methods and static files', () => {
  it('sets the security headers on every response', async () => {
    const server = await serve();
    for (const path of [
      '/',
      '/assets/app-1a2b.js',
      '/api/status',
      '/api/batch-performance?hours=0',
      '/metrics',
      '/healthz',
      '/readyz',
      '/nope',
    ]) {
      const res = await get(server.url, path);
      expect(res.headers.get('content-security-policy'), path).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
    }
    expect(CONTENT_SECURITY_POLICY).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
  });

  it('is read-only: other methods get 405', async () => {
    const server = await serve();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${server.url}/api/status`, { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
    }
  });

  it('serves the page and hashed assets with their types and cache rules', async () => {
    const server = await serve();
    const index = await get(server.url, '/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.body).toContain('<title>Sentinel</title>');
    const js = await get(server.url, '/assets/app-1a2b.js');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await get(server.url, '/assets/app-1a2b.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await get(server.url, '/assets/missing.js')).status).toBe(404);
    expect((await fetch(`${server.url}/`, { method: 'HEAD' })).status).toBe(200);
  });

  it.each([
    '/assets/../../package.json',
    '/assets/..%2f..%2fpackage.json',
    '/assets/%2e%2e/%2e%2e/package.json',
    '/assets/..\\..\\package.json',
    '/assets/',
    '/assets//etc/passwd',
    '/assets/%00',
  ])('refuses %s', async (path) => {
    const server = await serve();
    const res = await rawGet(server.url, path);
    expect([400, 404]).toContain(res.status);
    expect(res.body).not.toContain('"name"');
    expect(res.body).not.toContain('root:');
  });

  it(
    'serves <file>.gz with Content-Encoding: gzip when the client ' + 'accepts gzip, else the file, always with Vary',
    async () => {
      const js = Buffer.from('console.log("a precompressed asset");'.repeat(50));
      await writeFile(join(webRoot, 'assets', 'big-9f8e.js'), js);
      await writeFile(join(webRoot, 'assets', 'big-9f8e.js.gz'), gzipSync(js, { level: 9 }));
      const server = await serve();
      for (const accept of ['gzip', 'gzip, deflate, br', 'br;q=1.0, gzip;q=0.8', 'x-gzip']) {
        const gz = await getBytes(server.url, '/assets/big-9f8e.js', { 'Accept-Encoding': accept });
        expect(gz.status, accept).toBe(200);
        expect(gz.headers['content-encoding'], accept).toBe('gzip');
        expect(gz.headers.vary).toBe('Accept-Encoding');
        expect(gz.headers['content-type']).toBe('text/javascript; charset=utf-8');
        expect(gz.headers['cache-control']).toBe('public, max-age=31536000, immutable');
        expect(gz.headers['content-length']).toBe(String(gz.body.length));
        expect(gz.body.length).toBeLessThan(js.length);
        expect(gunzipSync(gz.body).equals(js)).toBe(true);
      }
      for (const headers of [
        {} as Record<string, string>,
        { 'Accept-Encoding': 'br' },
        { 'Accept-Encoding': 'gzip;q=0' },
        { 'Accept-Encoding': 'identity' },
      ]) {
        const plain = await getBytes(server.url, '/assets/big-9f8e.js', headers);
        expect(plain.status).toBe(200);
        expect(plain.headers['content-encoding'], JSON.stringify(headers)).toBeUndefined();
        expect(plain.headers.vary).toBe('Accept-Encoding');
        expect(plain.headers['content-length']).toBe(String(js.length));
        expect(plain.body.equals(js)).toBe(true);
      }
      // No .gz next to the file: the file itself, even to a gzip client.
      const css = await getBytes(server.url, '/assets/app-1a2b.css', { 'Accept-Encoding': 'gzip' });
      expect(css.headers['content-encoding']).toBeUndefined();
      expect(css.headers.vary).toBe('Accept-Encoding');
      expect(css.body.toString()).toBe('body{}');
      // fetch decompresses transparently.
      expect(await (await fetch(`${server.url}/assets/big-9f8e.js`)).text()).toBe(js.toString());
    },
  );

  it('says how to build the page when dist/web is missing', async () => {
    const server = await serve({ webRoot: join(webRoot, 'does-not-exist') });
    const res = await get(server.url, '/');
    expect(res.status).toBe(404);
    expect((res.json() as { error: string }).error).toMatch(/not built .*run npm run build/);
  });
});

describe('token gate', () => {
  const token = 's3cret-dashboard-token';
  const nonLoopback = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.0.0.2', '::1', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '192.0.2.2', '10.0.0.1', 'monitor.example'].some(isLoopbackHost)).toBe(false);
  });

  it('compares tokens in constant time (hash, then timingSafeEqual)', () => {
    expect(tokenMatches(token, token)).toBe(true);
    expect(tokenMatches(`${token}x`, token)).toBe(false);
    expect(tokenMatches('', token)).toBe(false);
  });

  it('refuses to listen off loopback without a token', async () => {
    await expect(
      startServer({
        host: '0.0.0.0',
        port: 0,
        metrics: { contentType: 'text/plain', render: async () => '' },
        readiness: () => ({ ready: true }),
        api: { handle: async () => ({ status: 200, body: {} }) },
      }),
    ).rejects.toThrow(ListenError);
  });

  async function checkGate(base: string): Promise<void> {
    // Open: probes and the page (it holds no data and asks for the token).
    for (const path of ['/healthz', '/readyz', '/', '/assets/app-1a2b.js']) {
      expect([200, 503], path).toContain((await get(base, path)).status);
    }
    for (const path of ['/api/status', '/api/pipeline-health', '/metrics']) {
      const missing = await get(base, path);
      expect(missing.status, path).toBe(401);
      expect(missing.headers.get('www-authenticate'), path).toMatch(/^Bearer/);
      expect(missing.json()).toEqual({ error: 'a bearer token is required (Authorization: Bearer <token>)' });
      const wrong = await get(base, path, { Authorization: 'Bearer nope' });
      expect(wrong.status, path).toBe(401);
      expect(wrong.json()).toEqual({ error: 'the bearer token is not valid' });
      expect(wrong.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      const basic = await get(base, path, { Authorization: `Basic ${Buffer.from(`a:${token}`).toString('base64')}` });
      expect(basic.status, path).toBe(401);
      expect((await get(base, path, { Authorization: `Bearer ${token}` })).status, path).toBe(200);
    }
  }

  it.runIf(requirePart('a non-loopback IPv4 address', !!nonLoopback, 'a network interface other than lo'))(
    'guards /api/* and /metrics on a non-loopback address',
    async () => {
      const server = await serve({ host: nonLoopback!, authToken: token });
      expect(server.url).toContain(nonLoopback!);
      await checkGate(server.url);
    },
  );

  it('guards /api/* and /metrics when told the address is not loopback', async () => {
    const server = await serve({ loopback: false, authToken: token });
    await checkGate(server.url);
  });

  it('on loopback without a token, /api/* is open', async () => {
    const server = await serve();
    expect((await get(server.url, '/api/status')).status).toBe(200);
    expect((await get(server.url, '/metrics')).status).toBe(200);
  });

  it('does not list the endpoints in a 404 to a request without the token', async () => {
    const gated = await serve({ authToken: token });
    for (const path of ['/nope', '/api/nope']) {
      const anonymous = await get(gated.url, path);
      expect([401, 404], path).toContain(anonymous.status);
      expect(anonymous.body, path).not.toContain('endpoints');
      expect(anonymous.body, path).not.toContain('/api/status');
      const wrong = await get(gated.url, path, { Authorization: 'Bearer nope' });
      expect(wrong.body, path).not.toContain('endpoints');
    }
    expect((await get(gated.url, '/nope')).json()).toEqual({ error: 'not found' });
    const withToken = await get(gated.url, '/nope', { Authorization: `Bearer ${token}` });
    expect(withToken.status).toBe(404);
    expect((withToken.json() as { endpoints: string[] }).endpoints).toContain('/api/status');
    const apiWithToken = await get(gated.url, '/api/nope', { Authorization: `Bearer ${token}` });
    expect(apiWithToken.status).toBe(404);
    expect((apiWithToken.json() as { endpoints: string[] }).endpoints).toContain('/api/status');
    // Off loopback too.
    const off = await serve({ loopback: false, authToken: token });
    expect((await get(off.url, '/nope')).json()).toEqual({ error: 'not found' });
    // Nothing gated (loopback, no token): the list helps whoever mistyped.
    const open = await serve();
    expect((await get(open.url, '/nope')).json()).toMatchObject({
      error: 'not found',
      endpoints: expect.arrayContaining(['/api/status']),
    });
  });

  it('on loopback with a token, /api/* and /metrics need it; --metrics-without-token keeps /metrics open', async () => {
    const server = await serve({ authToken: token });
    expect((await get(server.url, '/api/status')).status).toBe(401);
    expect((await get(server.url, '/api/status', { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get(server.url, '/metrics')).status).toBe(401);
    expect((await get(server.url, '/metrics', { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get(server.url, '/healthz')).status).toBe(200);
    const open = await serve({ authToken: token, metricsWithoutToken: true });
    expect((await get(open.url, '/metrics')).status).toBe(200);
    expect((await get(open.url, '/api/status')).status).toBe(401);
  });
});

describe('DNS rebinding: on loopback without a token, only loopback Host headers', () => {
  it('knows loopback Host headers', () => {
    for (const h of [
      'localhost',
      'localhost:9464',
      'LOCALHOST:1',
      'dash.localhost:9464',
      '127.0.0.1',
      '127.0.0.1:9464',
      '127.1.2.3:80',
      '[::1]',
      '[::1]:9464',
    ]) {
      expect(isLoopbackHostHeader(h), h).toBe(true);
    }
    for (const h of [
      undefined,
      '',
      'attacker.example',
      'attacker.example:9464',
      'localhost.attacker.example',
      '127.0.0.1.attacker.example',
      '127.0.0.1.nip.io:9464',
      '0.0.0.0:9464',
      '10.0.0.1',
      '[::ffff:7f00:1]:9464',
      '[::2]',
      'localhost:abc',
      'localhost:9464:1',
      '::1',
    ]) {
      expect(isLoopbackHostHeader(h), String(h)).toBe(false);
    }
  });

  it('answers 421 to a foreign Host on every path, 200 to localhost, 127.0.0.1 and [::1]', async () => {
    const server = await serve();
    const port = new URL(server.url).port;
    for (const path of [
      '/api/status',
      '/api/pipeline-health',
      '/metrics',
      '/',
      '/assets/app-1a2b.js',
      '/healthz',
      '/readyz',
      '/nope',
    ]) {
      const foreign = await getWithHost(server.url, path, `attacker.example:${port}`);
      expect(foreign.status, path).toBe(421);
      expect(JSON.parse(foreign.body), path).toEqual({ error: expect.stringMatching(/Host header refused/) });
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'localhost']) {
      expect((await getWithHost(server.url, '/api/status', host)).status, host).toBe(200);
    }
    expect((await getWithHost(server.url, '/healthz', `127.0.0.1:${port}`)).status).toBe(200);
  });

  it('with a token, the token is the protection: a foreign Host with the token is answered', async () => {
    const token = 's3cret-dashboard-token';
    const server = await serve({ authToken: token });
    const port = new URL(server.url).port;
    expect((await getWithHost(server.url, '/api/status', `attacker.example:${port}`)).status).toBe(401);
    expect(
      (await getWithHost(server.url, '/api/status', `monitor.example:${port}`, { Authorization: `Bearer ${token}` }))
        .status,
    ).toBe(200);
  });
});
