import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, minutesAgo } from '../helpers/fixtures.js';
import { startHttpServer } from '../helpers/http-server.js';
import { haveIpv6Loopback, requirePart } from '../helpers/parts.js';
import { waitFor } from '../helpers/processes.js';
import { until as poll, within } from '../helpers/wait.js';

/**
 * `sentinel serve` and `sentinel --loop --metrics-port` as a user runs them: the
 * built CLI against a real database, scraped over real HTTP.
 */

const db = useTestDatabase();
let stateDir: string;
beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'sentinel-serve-state-'));
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db().url,
  SENTINEL_STATE_DIR: stateDir,
  ...extra,
});

async function stuckBatch(): Promise<void> {
  await insertBatch(db().pool, {
    source: 'vendor_a',
    status: 'processing',
    created_at: minutesAgo(30),
    updated_at: minutesAgo(25),
  });
}
async function errorSpike(): Promise<void> {
  // In both the current and the previous hour: the judged bucket has 40% errors whatever the minute.
  for (const m of [0.5, 61]) {
    await insertBatch(db().pool, {
      source: 'vendor_a',
      status: 'completed',
      total_rows: 1000,
      error_rows: 400,
      created_at: minutesAgo(m),
      updated_at: minutesAgo(m),
    });
  }
}

interface Served {
  child: ChildProcess;
  /** The URL from `Listening on …`. */
  url: () => Promise<string>;
  stdout: () => string;
  stderr: () => string;
  /** JSON reports printed so far (--json). */
  runs: () => Array<{ overall_status: string }>;
  waitRuns: (n: number, timeoutMs?: number) => Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running: () => boolean;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function start(args: string[], extraEnv: Record<string, string | undefined> = {}): Served {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: cliEnv(env(extraEnv)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  const runs = () =>
    stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { overall_status: string });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    runs,
    exited,
    running: () => !done,
    async url() {
      await waitFor(() => /Listening on http:\/\/\S+/.test(stderr) || done, 15_000, `"Listening on" in: ${stderr}`);
      const m = /Listening on (http:\/\/\S+)/.exec(stderr);
      if (!m) throw new Error(`not listening: ${stderr}`);
      return m[1]!;
    },
    waitRuns: (n, timeoutMs = 20_000) =>
      waitFor(() => runs().length >= n || done, timeoutMs, `${n} runs; stderr: ${stderr}`),
  };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, as far as these tests need it. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The one sample of `name` whose labels are exactly `labels`; throws when there is none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const found = samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === wanted);
  if (found.length !== 1) {
    const have = samples.filter((s) => s.name === name).map((s) => JSON.stringify(s.labels));
    throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples (have: ${have.join(', ') || 'none'})`);
  }
  return found[0]!.value;
}

async function scrape(url: string): Promise<Sample[]> {
  const r = await fetch(`${url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
  return parseMetrics(await r.text());
}

async function stop(
  s: Served,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  s.child.kill(signal);
  return s.exited;
}

describe('sentinel serve', () => {
  it('exposes the values of the last run on /metrics, healthz and readyz', async () => {
    await stuckBatch();
    await errorSpike();
    const s = start(['serve', '--listen', '127.0.0.1:0', '--interval', '1', '--json']);
    const url = await s.url();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await s.waitRuns(1);
    expect(s.runs()[0]!.overall_status).toBe('critical');

    const m = await scrape(url);
    expect(value(m, 'sentinel_pipeline_stuck_batches', { status: 'processing' })).toBe(1);
    expect(value(m, 'sentinel_pipeline_batches_in_flight', { status: 'processing' })).toBe(1);
    const oldest = value(m, 'sentinel_pipeline_oldest_batch_age_seconds', { status: 'processing' });
    expect(oldest).toBeGreaterThanOrEqual(25 * 60 - 5);
    expect(oldest).toBeLessThan(27 * 60);
    expect(value(m, 'sentinel_pipeline_error_ratio')).toBeCloseTo(0.4, 5);
    expect(value(m, 'sentinel_pipeline_error_ratio', { source: 'vendor_a' })).toBeCloseTo(0.4, 5);
    expect(value(m, 'sentinel_pipeline_bucket_rows')).toBe(1000);
    expect(value(m, 'sentinel_alerts_firing', { check: 'stuck_batches', level: 'critical' })).toBe(1);
    expect(value(m, 'sentinel_alerts_firing', { check: 'error_spike', level: 'warning' })).toBe(1);
    expect(value(m, 'sentinel_check_status', { check: 'stuck_batches' })).toBe(2);
    expect(value(m, 'sentinel_check_status', { check: 'error_spike' })).toBe(1);
    expect(value(m, 'sentinel_check_status', { check: 'schema_cache' })).toBe(-1);
    expect(value(m, 'sentinel_runs_total', { status: 'critical' })).toBeGreaterThanOrEqual(1);
    expect(value(m, 'sentinel_database_up')).toBe(1);
    expect(value(m, 'sentinel_leader')).toBe(1);
    const lastRun = value(m, 'sentinel_last_run_timestamp_seconds');
    expect(Math.abs(lastRun - Date.now() / 1000)).toBeLessThan(30);
    expect(m.some((x) => x.name === 'sentinel_build_info' && x.labels.version === '0.1.0' && x.value === 1)).toBe(true);
    // prom-client's process metrics come along.
    expect(m.some((x) => x.name === 'process_cpu_user_seconds_total')).toBe(true);
    // Every metric of the contract is really exported by the running process; the
    // dashboards and rules tests hold those files to the same contract.
    const text = await (await fetch(`${url}/metrics`)).text();
    const { METRICS } = await import('../../src/metrics/names.js');
    expect(
      METRICS.filter((spec) => !text.includes(`# TYPE ${spec.name} ${spec.type}`)).map((spec) => spec.name),
    ).toEqual([]);

    const health = await fetch(`${url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const ready = await fetch(`${url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { ready: true }]);

    expect(await stop(s)).toEqual({ code: 0, signal: null });
  });

  it('answers 20 sequential scrapes, none hanging (their speed: bench/api-load.ts)', async () => {
    await stuckBatch();
    const s = start(['serve', '--listen', '127.0.0.1:0', '--interval', '1', '--json']);
    const url = await s.url();
    await s.waitRuns(1);
    // Speed is measured by bench/api-load.ts; here: every scrape answers, none hangs.
    for (let i = 0; i < 20; i++) {
      const r = await within(fetch(`${url}/metrics`), 10_000, `scrape ${i + 1}`);
      await r.text();
      expect(r.status).toBe(200);
    }
    expect(await stop(s, 'SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('is not ready while the database is unreachable, and says why without secrets', async () => {
    const s = start(['serve', '--listen', '127.0.0.1:0', '--interval', '1', '--json'], {
      DATABASE_URL: 'postgres://sentinel:ready-secret-9@127.0.0.1:1/app',
    });
    const url = await s.url();
    await s.waitRuns(1);
    const r = await fetch(`${url}/readyz`);
    expect(r.status).toBe(503);
    const body = await r.text();
    expect(body.endsWith('\n')).toBe(true);
    expect(body.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(body)).toEqual({
      ready: false,
      reason: expect.stringMatching(/^the database was unreachable in the last run: connection refused/),
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const m = await scrape(url);
    expect(value(m, 'sentinel_database_up')).toBe(0);
    expect(value(m, 'sentinel_check_status', { check: 'stuck_batches' })).toBe(3);
    const all = body + (await (await fetch(`${url}/metrics`)).text()) + s.stdout() + s.stderr();
    expect(all).not.toContain('ready-secret-9');
    expect(await stop(s)).toEqual({ code: 0, signal: null });
  });

  it('turns not ready when no run has finished for two intervals', async () => {
    const s = start(['serve', '--listen', '127.0.0.1:0', '--interval', '1', '--json']);
    const url = await s.url();
    await s.waitRuns(1);
    // The next runs block on the lock (statement_timeout is 5 s): nothing finishes for a while.
    const locker = await db().pool.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table intake.simplicity_batches in access exclusive mode');
      let last: { status: number; body: string } = { status: 0, body: '' };
      await poll(
        async () => {
          const r = await fetch(`${url}/readyz`);
          last = { status: r.status, body: await r.text() };
          return r.status === 503;
        },
        'readyz to turn 503',
        { intervalMs: 100 },
      );
      expect(last.status).toBe(503);
      expect(JSON.parse(last.body).reason).toMatch(/^the last run finished \d+s ago, more than two intervals \(2s\)$/);
      // The scrape still answers while the run is stuck on the database: before that run ends.
      const runsBefore = s.runs().length;
      expect((await fetch(`${url}/metrics`)).status).toBe(200);
      expect(s.runs()).toHaveLength(runsBefore);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    const before = s.runs().length;
    await s.waitRuns(before + 1);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await stop(s)).toEqual({ code: 0, signal: null });
  });

  it('on SIGTERM during a run: stops accepting at once, finishes the run and its delivery, exits 0', async () => {
    await stuckBatch();
    // The webhook answers slowly: the exit waits for the delivery, not only the checks.
    const hook = await startHttpServer();
    hook.fallback({ status: 200, body: {}, delayMs: 500 });
    const config = join(stateDir, 'sigterm.yaml');
    await writeFile(config, `notifiers:\n  - { name: hook, type: webhook, url: "${hook.url}/hook" }\n`);
    const locker = await db().pool.connect();
    let released = false;
    try {
      await locker.query('begin');
      await locker.query('lock table intake.simplicity_batches in access exclusive mode');
      const s = start(['serve', '--listen', '127.0.0.1:0', '--interval', '60', '--json', '--config', config], {
        SENTINEL_STATE_DIR: join(stateDir, 'sigterm'),
      });
      const url = await s.url();
      await waitFor(() => s.stderr().includes('Running stuck_batches check...'), 15_000, 'the first run to start');
      // Blocked on the database, the process still serves, and is not ready yet.
      expect((await fetch(`${url}/metrics`)).status).toBe(200);
      const notYet = await fetch(`${url}/readyz`);
      expect([notYet.status, await notYet.json()]).toEqual([503, { ready: false, reason: 'no run has finished yet' }]);

      s.child.kill('SIGTERM');
      await waitFor(
        () => s.stderr().includes('Received SIGTERM: finishing the current run, then exiting'),
        5000,
        'the signal to be handled',
      );
      // New connections are refused while the run is still going.
      await poll(
        () =>
          fetch(`${url}/healthz`).then(
            () => false,
            () => true,
          ),
        'new connections to be refused',
        { intervalMs: 50 },
      );
      expect(s.running()).toBe(true);
      expect(s.stdout()).toBe('');

      expect(hook.requests).toHaveLength(0);

      await locker.query('rollback');
      released = true;
      expect(await s.exited).toEqual({ code: 0, signal: null });
      const runs = s.runs() as Array<{
        overall_status: string;
        notifications?: Array<{ notifier: string; sent: number }>;
      }>;
      expect(runs).toHaveLength(1);
      expect(runs[0]!.overall_status).toBe('critical');
      expect(runs[0]!.notifications).toEqual([expect.objectContaining({ notifier: 'hook', sent: 1 })]);
      expect(hook.requests).toHaveLength(1);
      expect(hook.requests[0]!.body).toContain('stuck_batches');
      expect(s.stderr()).toMatch(/Loop stopped after 1 run\n/);
    } finally {
      if (!released) await locker.query('rollback');
      locker.release();
      await hook.close();
    }
  });

  it('exits at once on a second signal (143 for SIGTERM), mid-run', async () => {
    const locker = await db().pool.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table intake.simplicity_batches in access exclusive mode');
      const s = start(['serve', '--listen', '127.0.0.1:0', '--interval', '60', '--json']);
      await s.url();
      await waitFor(() => s.stderr().includes('Running stuck_batches check...'), 15_000, 'the first run to start');
      s.child.kill('SIGTERM');
      await waitFor(() => s.stderr().includes('Received SIGTERM'), 5000, 'the first signal to be handled');
      s.child.kill('SIGTERM');
      expect(await s.exited).toEqual({ code: 143, signal: null });
      expect(s.stderr()).toContain('Received SIGTERM again: exiting now');
      expect(s.stdout()).toBe('');
    } finally {
      await locker.query('rollback');
      locker.release();
    }
  });

  it('prints nothing on stdout without --json, logs on stderr', async () => {
    const s = start(['serve', '--listen', '127.0.0.1:0', '--interval', '1']);
    const url = await s.url();
    await waitFor(() => (s.stderr().match(/Running stuck_batches check/g) ?? []).length >= 2, 15_000, 'a second run');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await stop(s)).toEqual({ code: 0, signal: null });
    expect(s.stdout()).toBe('');
  });

  it.runIf(requirePart('IPv6 loopback (::1)', haveIpv6Loopback(), 'enable IPv6 on the loopback interface'))(
    'serves on IPv6 loopback with --listen [::1]:0',
    async () => {
      const s = start(['serve', '--listen', '[::1]:0', '--interval', '60']);
      const url = await s.url();
      expect(url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect(await stop(s)).toEqual({ code: 0, signal: null });
    },
  );
});

describe('sentinel serve with replicas: what a leader and a follower export and answer', () => {
  const replicasConfig = async (): Promise<string> => {
    const path = join(stateDir, `replicas-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(path, 'replicas: { enabled: true, takeover_poll_seconds: 1 }\n');
    return path;
  };
  const ownState = () => ({ SENTINEL_STATE_DIR: join(stateDir, `replica-${Math.random().toString(36).slice(2)}`) });
  const has = (samples: Sample[], name: string): boolean => samples.some((x) => x.name === name);
  const perRun = [
    'sentinel_pipeline_stuck_batches',
    'sentinel_pipeline_batches_in_flight',
    'sentinel_check_status',
    'sentinel_check_duration_seconds',
    'sentinel_alerts_firing',
    'sentinel_alerts_silenced',
    'sentinel_notifications_pending',
  ];
  async function readyz(url: string): Promise<[number, Record<string, unknown>]> {
    const r = await fetch(`${url}/readyz`);
    return [r.status, (await r.json()) as Record<string, unknown>];
  }
  /** Polls an async condition (scrapes) every 50 ms. */
  async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    await poll(condition, what, { timeoutMs, intervalMs: 50 });
  }
  const gauge = async (url: string, name: string): Promise<number | undefined> =>
    (await scrape(url)).find((x) => x.name === name && Object.keys(x.labels).length === 0)?.value;

  it(
    'lock database unreachable: a follower, ' + 'sentinel_database_up 0, no run figures, and /readyz says why',
    async () => {
      const s = start(
        ['serve', '--listen', '127.0.0.1:0', '--interval', '1', '--json', '--config', await replicasConfig()],
        {
          DATABASE_URL: 'postgres://sentinel:lock-secret-7@127.0.0.1:1/app',
          ...ownState(),
        },
      );
      const url = await s.url();
      await waitFor(() => s.stderr().includes('cannot reach the lock database'), 15_000, 'the election to fail');
      let ready: [number, Record<string, unknown>] = [0, {}];
      await until(
        async () => {
          ready = await readyz(url);
          return ready[1].reason !== 'no run has finished yet';
        },
        10_000,
        'a follower tick',
      );
      expect(ready[0]).toBe(503);
      expect(ready[1]).toEqual({
        ready: false,
        role: 'follower',
        reason: expect.stringMatching(/^lock database unreachable: .*ECONNREFUSED/),
      });
      const m = await scrape(url);
      expect(value(m, 'sentinel_leader')).toBe(0);
      expect(value(m, 'sentinel_database_up')).toBe(0);
      for (const name of [...perRun, 'sentinel_last_run_timestamp_seconds']) expect(has(m, name), name).toBe(false);
      expect(value(m, 'sentinel_runs_total', { status: 'critical' })).toBe(0);
      expect(s.stdout()).toBe('');
      const all = JSON.stringify(ready) + (await (await fetch(`${url}/metrics`)).text()) + s.stderr();
      expect(all).not.toContain('lock-secret-7');
      expect(await stop(s)).toEqual({ code: 0, signal: null });
    },
  );

  it('the leader exports its runs and says so; a follower exports none, reaches the lock database, and takes ' +
    'over cleanly', async () => {
    await db().pool.query('delete from sentinel.alert_state');
    await stuckBatch();
    const config = await replicasConfig();
    const a = start(['serve', '--listen', '127.0.0.1:0', '--interval', '1', '--json', '--config', config], ownState());
    const aUrl = await a.url();
    await a.waitRuns(1);
    const b = start(['serve', '--listen', '127.0.0.1:0', '--interval', '1', '--json', '--config', config], ownState());
    const bUrl = await b.url();
    await waitFor(() => b.stderr().includes('Standing by as follower'), 15_000, 'the second replica to stand by');
    await until(async () => (await readyz(bUrl))[0] === 200, 10_000, 'the follower to be ready');

    expect(await readyz(aUrl)).toEqual([200, { ready: true, role: 'leader' }]);
    expect(await readyz(bUrl)).toEqual([200, { ready: true, role: 'follower' }]);
    const leader = await scrape(aUrl);
    expect(value(leader, 'sentinel_leader')).toBe(1);
    expect(value(leader, 'sentinel_pipeline_stuck_batches', { status: 'processing' })).toBe(1);
    expect(value(leader, 'sentinel_check_status', { check: 'stuck_batches' })).toBe(2);
    expect(value(leader, 'sentinel_check_status', { check: 'schema_cache' })).toBe(-1);
    // Skipped (no PostgREST URL): a status, but no duration.
    expect(leader.some((x) => x.name === 'sentinel_check_duration_seconds' && x.labels.check === 'schema_cache')).toBe(
      false,
    );
    expect(value(leader, 'sentinel_check_duration_seconds', { check: 'stuck_batches' })).toBeGreaterThanOrEqual(0);
    expect(value(leader, 'sentinel_database_up')).toBe(1);
    const follower = await scrape(bUrl);
    expect(value(follower, 'sentinel_leader')).toBe(0);
    expect(value(follower, 'sentinel_database_up')).toBe(1); // it reached the lock database (the monitored one)
    for (const name of perRun) expect(has(follower, name), name).toBe(false);
    expect(has(follower, 'sentinel_build_info')).toBe(true);

    // The leader's lock session is cut: it steps down, the follower takes over.
    const { rows } = await db().pool.query<{ pid: number }>(
      `select a.pid from pg_stat_activity a join pg_locks l on l.pid = a.pid
        where a.application_name = 'sentinel-leader' and a.datname = current_database()
          and l.locktype = 'advisory' and l.granted`,
    );
    expect(rows).toHaveLength(1);
    await db().pool.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
    await until(
      async () =>
        (await gauge(aUrl, 'sentinel_leader')) === 0 &&
        (await gauge(bUrl, 'sentinel_leader')) === 1 &&
        b.runs().length > 0,
      15_000,
      'the hand-over',
    );
    // Its first tick as a follower says whether it reaches the lock database.
    await until(
      async () => (await gauge(aUrl, 'sentinel_database_up')) !== undefined,
      10_000,
      'the old leader to tick as a follower',
    );

    // The old leader no longer claims what it saw while it led.
    const old = await scrape(aUrl);
    for (const name of perRun) expect(has(old, name), name).toBe(false);
    expect(value(old, 'sentinel_database_up')).toBe(1);
    expect(value(old, 'sentinel_runs_total', { status: 'critical' })).toBeGreaterThanOrEqual(1);
    expect(has(old, 'sentinel_last_run_timestamp_seconds')).toBe(true);
    expect(await readyz(aUrl)).toEqual([200, { ready: true, role: 'follower' }]);
    const now = await scrape(bUrl);
    expect(value(now, 'sentinel_pipeline_stuck_batches', { status: 'processing' })).toBe(1);
    expect(await readyz(bUrl)).toEqual([200, { ready: true, role: 'leader' }]);

    expect(await stop(a)).toEqual({ code: 0, signal: null });
    expect(await stop(b)).toEqual({ code: 0, signal: null });
  }, 60_000);
});

describe('sentinel serve: usage errors exit 3 with one line', () => {
  let blocker: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    blocker = undefined;
  });

  it.each([
    ['9464', /expected HOST:PORT/],
    [':9464', /host is missing/],
    ['127.0.0.1:70000', /port must be a number from 1 to 65535/],
    ['127.0.0.1:http', /port must be a number from 1 to 65535/],
    ['::1:9464', /IPv6 address in brackets, e\.g\. \[::1\]:9464/],
    ['[not-v6]:9464', /is not an IPv6 address/],
  ])('--listen %s', async (listen, pattern) => {
    const r = await runCli(['serve', '--listen', listen], env());
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^sentinel: option '--listen <host:port>' argument '.*' is invalid/);
    expect(r.stderr).toMatch(pattern);
    expect(r.stdout).toBe('');
  });

  it('exits 3 with one line when the port is in use, before any run', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    const r = await runCli(['serve', '--listen', `127.0.0.1:${port}`, '--json'], env());
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(`sentinel: cannot listen on 127.0.0.1:${port}: address already in use\n`);
    expect(r.stdout).toBe('');
  });

  it.each([
    ['a whitespace-only', '   \t  '],
    ['a short', 'short-token'],
    ['a padded short', '   0123456789abcde   '],
  ])('refuses %s SENTINEL_DASHBOARD_TOKEN before any run', async (_what, token) => {
    const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--json'], env({ SENTINEL_DASHBOARD_TOKEN: token }));
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      'sentinel: SENTINEL_DASHBOARD_TOKEN: use at least 16 characters (e.g. openssl rand -hex 24)\n',
    );
    expect(r.stdout).toBe('');
  });

  it('refuses an empty or short --auth-token naming the flag', async () => {
    for (const token of ['', '  ', '0123456789abcde']) {
      const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--auth-token', token], env());
      expect(r.code, JSON.stringify(token)).toBe(3);
      expect(r.stderr).toBe('sentinel: --auth-token: use at least 16 characters (e.g. openssl rand -hex 24)\n');
    }
  });

  it('trims the token: a padded 16-character token is the token', async () => {
    const token = '0123456789abcdef';
    const s = start(['serve', '--listen', '127.0.0.1:0'], { SENTINEL_DASHBOARD_TOKEN: `  ${token}\n` });
    const url = await s.url();
    expect((await fetch(`${url}/api/status`)).status).toBe(401);
    expect((await fetch(`${url}/api/status`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(await stop(s)).toEqual({ code: 0, signal: null });
  }, 30_000);

  it('rejects --interval 0 and unknown options', async () => {
    const bad = await runCli(['serve', '--interval', '0'], env());
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/whole number of seconds from 1 to 86400/);
    const pretty = await runCli(['serve', '--pretty'], env());
    expect(pretty.code).toBe(3);
    expect(pretty.stderr).toMatch(/unknown option '--pretty'/);
  });
});

describe('sentinel --loop --metrics-port', () => {
  it('serves /metrics, /healthz and /readyz next to the loop on 127.0.0.1', async () => {
    await stuckBatch();
    const s = start(['--loop', '--interval', '1', '--json', '--metrics-port', '0']);
    const url = await s.url();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await s.waitRuns(2);
    const m = await scrape(url);
    expect(value(m, 'sentinel_pipeline_stuck_batches', { status: 'processing' })).toBe(1);
    expect(value(m, 'sentinel_runs_total', { status: 'critical' })).toBeGreaterThanOrEqual(2);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await stop(s, 'SIGINT')).toEqual({ code: 0, signal: null });
  });

  it.each([
    [['--metrics-port', '9464'], '--metrics-port needs --loop'],
    [['--loop', '--metrics-port', 'abc'], "option '--metrics-port <port>' argument 'abc' is invalid"],
    [['--loop', '--metrics-port', '65536'], 'port must be a number from 1 to 65535'],
  ])('rejects %j with exit 3', async (args, message) => {
    const r = await runCli(args, env());
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });
});
