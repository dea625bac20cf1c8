import { Agent, request as httpRequest } from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ListenError, type RunningServer, startServer } from '../../src/server/http.js';
import { formatHostPort, parseListen } from '../../src/server/listen.js';
import { databaseUnreachable, Readiness, type ReadinessVerdict } from '../../src/server/readiness.js';
import type { RunResult } from '../../src/types.js';
import { haveIpv6Loopback, requirePart } from '../helpers/parts.js';
import { within } from '../helpers/wait.js';

/** The HTTP server and its parts on their own: no database, no CLI. */

function run(checks: RunResult['checks'], alerts: RunResult['alerts'] = []): RunResult {
  return {
    timestamp: new Date().toISOString(),
    environment: 'dev',
    overall_status: alerts.length ? 'critical' : 'healthy',
    alerts,
    checks,
    duration_ms: 1,
    metrics: {
      total_checks: checks.length,
      alerts_triggered: alerts.length,
      critical_alerts: alerts.length,
      warning_alerts: 0,
      skipped_checks: 0,
    },
  };
}
const failed = (check: string, reason = 'connection refused (127.0.0.1:1)') => ({
  check,
  level: 'critical' as const,
  message: `Check failed: ${reason}`,
  details: {},
  failed: true,
});

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:9464', { host: '127.0.0.1', port: 9464 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['[::1]:9464', { host: '::1', port: 9464 }],
    ['[::]:65535', { host: '::', port: 65535 }],
    ['monitor-1.internal.example:9464', { host: 'monitor-1.internal.example', port: 9464 }],
  ])('accepts %s', (value, expected) => {
    expect(parseListen(value)).toEqual(expected);
  });

  it.each([
    ['9464', /expected HOST:PORT/],
    [':9464', /host is missing/],
    ['127.0.0.1:', /port must be a number from 1 to 65535/],
    ['127.0.0.1:65536', /port must be a number from 1 to 65535/],
    ['127.0.0.1:-1', /port must be a number/],
    ['127.0.0.1:9x', /port must be a number/],
    ['::1:9464', /IPv6 address in brackets/],
    ['[localhost]:9464', /not an IPv6 address/],
    ['bad_host!:9464', /not a host name or IPv4 address/],
  ])('rejects %s', (value, pattern) => {
    expect(() => parseListen(value)).toThrow(pattern);
  });

  it('formats IPv6 with brackets', () => {
    expect(formatHostPort('::1', 9464)).toBe('[::1]:9464');
    expect(formatHostPort('127.0.0.1', 9464)).toBe('127.0.0.1:9464');
  });
});

describe('readiness', () => {
  const checks = (outcomes: Record<string, 'ok' | 'alert' | 'failed' | 'skipped'>): RunResult['checks'] =>
    Object.entries(outcomes).map(([name, outcome]) => ({ name, outcome, duration_ms: 1 }));

  it('calls the database unreachable only when every database check that ran failed', () => {
    const down = run(checks({ stuck_batches: 'failed', error_spike: 'failed', schema_cache: 'skipped' }), [
      failed('stuck_batches'),
      failed('error_spike'),
    ]);
    expect(databaseUnreachable(down)).toBe('connection refused (127.0.0.1:1)');
    const oneBroken = run(checks({ stuck_batches: 'failed', error_spike: 'ok', schema_cache: 'skipped' }), [
      failed('stuck_batches', 'syntax error'),
    ]);
    expect(databaseUnreachable(oneBroken)).toBeUndefined();
    // PostgREST failing says nothing about the database.
    const restDown = run(checks({ stuck_batches: 'ok', error_spike: 'ok', schema_cache: 'failed' }), [
      failed('schema_cache'),
    ]);
    expect(databaseUnreachable(restDown)).toBeUndefined();
    const oneDisabled = run(checks({ stuck_batches: 'skipped', error_spike: 'failed' }), [failed('error_spike')]);
    expect(databaseUnreachable(oneDisabled)).toBe('connection refused (127.0.0.1:1)');
    expect(databaseUnreachable(run(checks({ stuck_batches: 'skipped', error_spike: 'skipped' })))).toBeUndefined();
    // The pipeline snapshot read after the checks is proof the database answered.
    const timedOut = { ...down, pipeline: {} as NonNullable<RunResult['pipeline']> };
    expect(databaseUnreachable(timedOut)).toBeUndefined();
  });

  it('is ready after a run within two intervals that reached the database', () => {
    let now = 1_000_000;
    const r = new Readiness(
      60_000,
      () => now,
      (t) => t.replace('hunter2', '***'),
    );
    expect(r.verdict()).toEqual({ ready: false, reason: 'no run has finished yet' });
    r.record(run(checks({ stuck_batches: 'ok', error_spike: 'alert' })));
    expect(r.verdict()).toEqual({ ready: true });
    now += 120_000;
    expect(r.verdict().ready).toBe(true);
    now += 1000;
    expect(r.verdict()).toEqual({
      ready: false,
      reason: 'the last run finished 121s ago, more than two intervals (120s)',
    });
    r.record(
      run(checks({ stuck_batches: 'failed', error_spike: 'failed' }), [
        failed('stuck_batches', 'password hunter2 rejected'),
        failed('error_spike'),
      ]),
    );
    expect(r.verdict()).toEqual({
      ready: false,
      reason: 'the database was unreachable in the last run: password *** rejected',
    });
  });

  it('says its role with replicas: a leader by its runs, a follower by its lock attempts', () => {
    let now = 1_000_000;
    let role: 'leader' | 'follower' = 'follower';
    const r = new Readiness(
      60_000,
      () => now,
      (t) => t.replace('hunter2', '***'),
      () => role,
    );
    expect(r.verdict()).toEqual({ ready: false, role: 'follower', reason: 'no run has finished yet' });

    // A follower that reaches the lock database is a ready standby.
    r.standby();
    expect(r.verdict()).toEqual({ ready: true, role: 'follower' });
    // One that cannot says so, in its own words: it ran nothing, so no "last run".
    r.standby('connect ECONNREFUSED 10.0.0.5:5432 (password hunter2)');
    expect(r.verdict()).toEqual({
      ready: false,
      role: 'follower',
      reason: 'lock database unreachable: connect ECONNREFUSED 10.0.0.5:5432 (password ***)',
    });
    now += 121_000;
    expect(r.verdict()).toEqual({
      ready: false,
      role: 'follower',
      reason: 'the last attempt to take the leader lock was 121s ago, more than two intervals (120s)',
    });

    role = 'leader';
    r.record(run(checks({ stuck_batches: 'ok', error_spike: 'ok' })));
    expect(r.verdict()).toEqual({ ready: true, role: 'leader' });
    r.record(
      run(checks({ stuck_batches: 'failed', error_spike: 'failed' }), [failed('stuck_batches'), failed('error_spike')]),
    );
    expect(r.verdict()).toEqual({
      ready: false,
      role: 'leader',
      reason: 'the database was unreachable in the last run: connection refused (127.0.0.1:1)',
    });
    now += 121_000;
    expect(r.verdict()).toEqual({
      ready: false,
      role: 'leader',
      reason: 'the last run finished 121s ago, more than two intervals (120s)',
    });
  });

  it('keeps reasons to one short line', () => {
    const r = new Readiness(
      60_000,
      () => 0,
      (t) => t,
      () => 'follower',
    );
    r.standby('x'.repeat(1000));
    const v = r.verdict();
    expect(v.ready).toBe(false);
    expect(v.reason).toHaveLength(300);
    expect(v.reason!.startsWith('lock database unreachable: xxx')).toBe(true);
  });
});

describe('startServer', () => {
  let server: RunningServer | undefined;
  let blocker: Server | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    blocker = undefined;
  });

  const TEXT = '# HELP sentinel_up Test.\n# TYPE sentinel_up gauge\nsentinel_up 1\n';
  let verdict: ReadinessVerdict = { ready: true };
  let renders = 0;
  const metrics = {
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    render: async () => {
      renders += 1;
      return TEXT;
    },
  };
  const start = async (over: Partial<Parameters<typeof startServer>[0]> = {}): Promise<RunningServer> =>
    (server = await startServer({ host: '127.0.0.1', port: 0, metrics, readiness: () => verdict, ...over }));

  it('serves the metrics text, health and readiness, with nosniff and no-store everywhere', async () => {
    const { url } = await start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const m = await fetch(`${url}/metrics`);
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toBe(metrics.contentType);
    expect(await m.text()).toBe(TEXT);

    const h = await fetch(`${url}/healthz`);
    expect([h.status, await h.text()]).toEqual([200, 'ok\n']);

    verdict = { ready: true };
    const ready = await fetch(`${url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { ready: true }]);
    verdict = { ready: false, reason: 'no run has finished yet' };
    const notReady = await fetch(`${url}/readyz`);
    expect(notReady.status).toBe(503);
    const body = await notReady.text();
    expect(body.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(body)).toEqual({ ready: false, reason: 'no run has finished yet' });

    // With replicas the role comes along, ready or not; JSON either way.
    verdict = { ready: true, role: 'leader' };
    const leader = await fetch(`${url}/readyz`);
    expect(leader.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect([leader.status, await leader.text()]).toEqual([200, '{"ready":true,"role":"leader"}\n']);
    verdict = { ready: false, role: 'follower', reason: 'lock database unreachable: connection refused' };
    const follower = await fetch(`${url}/readyz`);
    expect([follower.status, await follower.json()]).toEqual([
      503,
      { ready: false, role: 'follower', reason: 'lock database unreachable: connection refused' },
    ]);
    verdict = { ready: true };
    const plain = await fetch(`${url}/readyz`);
    expect(plain.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await plain.text()).toBe('{"ready":true}\n');

    for (const path of ['/metrics', '/healthz', '/readyz', '/nope']) {
      const r = await fetch(`${url}${path}`);
      await r.arrayBuffer();
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('answers HEAD like GET without a body, 404 in JSON for other paths, 405 for other methods', async () => {
    const { url } = await start();
    verdict = { ready: true };
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      const get = await fetch(`${url}${path}`);
      const getBody = await get.text();
      const head = await fetch(`${url}${path}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(getBody)));
      expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
      expect(await head.text()).toBe('');
    }
    const missing = await fetch(`${url}/admin?x=1`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await missing.json()).toEqual({ error: 'not found', endpoints: ['/metrics', '/healthz', '/readyz'] });
    // A query string does not change the endpoint.
    expect((await fetch(`${url}/healthz?probe=1`)).status).toBe(200);

    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await fetch(`${url}/metrics`, { method, body: method === 'DELETE' ? undefined : 'x' });
      expect(r.status).toBe(405);
      expect(r.headers.get('allow')).toBe('GET, HEAD');
      expect(await r.json()).toEqual({ error: 'method not allowed', allow: ['GET', 'HEAD'] });
    }
  });

  it('answers 500 without details when rendering fails, and keeps serving', async () => {
    let fail = true;
    const { url } = await start({
      metrics: {
        contentType: 'text/plain',
        render: async () => {
          if (fail) throw new Error('collector exploded: postgres://u:secret@h/db');
          return 'ok 1\n';
        },
      },
    });
    const r = await fetch(`${url}/metrics`);
    expect(r.status).toBe(500);
    expect(await r.text()).toBe('{"error":"internal error"}\n');
    fail = false;
    expect(await (await fetch(`${url}/metrics`)).text()).toBe('ok 1\n');
  });

  it('reports an address in use as a one-line ListenError', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    const err = await startServer({ host: '127.0.0.1', port, metrics, readiness: () => verdict }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ListenError);
    expect((err as Error).message).toBe(`cannot listen on 127.0.0.1:${port}: address already in use`);
  });

  it.runIf(requirePart('IPv6 loopback (::1)', haveIpv6Loopback(), 'enable IPv6 on the loopback interface'))(
    'listens on IPv6 loopback with a bracketed URL',
    async () => {
      const { url } = await start({ host: '::1' });
      expect(url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    },
  );

  it('close() stops accepting and closes idle keep-alive connections at once', async () => {
    const s = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) =>
      new Promise<{ status: number; socketClosed: Promise<void> }>((resolve, reject) => {
        const req = httpRequest(`${s.url}${path}`, { agent }, (res) => {
          res.resume();
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              socketClosed: new Promise((r) => req.socket!.once('close', () => r())),
            }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const first = await get('/healthz');
    expect(first.status).toBe(200);
    const before = renders;
    // An idle keep-alive socket does not hold the close: with the 2 s grace timer frozen,
    // close() can only finish by closing that socket itself (or after Node's 5 s keep-alive
    // timeout, which the limit below rules out).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await within(s.close(), 4000, 'close() with an idle keep-alive connection open');
    } finally {
      vi.useRealTimers();
    }
    await first.socketClosed;
    await expect(fetch(`${s.url}/metrics`)).rejects.toThrow();
    expect(renders).toBe(before);
    agent.destroy();
    // Idempotent.
    await s.close();
  });
});
