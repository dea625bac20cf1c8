import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { createTestDatabase, useTestDatabase } from '../helpers/db.js';
import { insertBatch, minutesAgo } from '../helpers/fixtures.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { waitFor } from '../helpers/processes.js';

/**
 * Replicas as operators run them: several real `sentinel serve` processes (the built
 * CLI) against one real database, each with its own state directory, notifying one
 * local webhook. One leader, one page per incident, failover after kill -9 and after
 * the leader's lock connection is cut, and a graceful handover on SIGTERM.
 */

const db = useTestDatabase();
let dir: string;
let hook: TestHttpServer;
const INTERVAL_S = 1;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sentinel-replicas-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  hook = await startHttpServer();
  await db().pool.query('delete from sentinel.alert_state');
});

interface Replica {
  name: string;
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running: () => boolean;
  runs: () => Array<{ role?: string; overall_status: string; timestamp: string }>;
}

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await hook.close();
});

async function config(extra = ''): Promise<string> {
  const path = join(dir, `replicas-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(
    path,
    `replicas: { enabled: true }\nnotifiers:\n  - { name: hook, type: webhook, url: "${hook.url}/hook" }\n${extra}`,
  );
  return path;
}

async function startReplica(name: string, configPath: string): Promise<Replica> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--listen', '127.0.0.1:0', '--interval', String(INTERVAL_S), '--json', '--config', configPath],
    {
      env: cliEnv({
        DATABASE_URL: db().url,
        SENTINEL_STATE_DIR: join(dir, `state-${name}-${Math.random().toString(36).slice(2)}`),
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let stdout = '';
  let stderr = '';
  let done = false;
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  await waitFor(() => /Listening on http:\/\/\S+/.test(stderr) || done, 15_000, `${name} listening: ${stderr}`);
  const url = /Listening on (http:\/\/\S+)/.exec(stderr)?.[1];
  if (!url) throw new Error(`${name} is not listening: ${stderr}`);
  return {
    name,
    child,
    url,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    running: () => !done,
    runs: () =>
      stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { role?: string; overall_status: string; timestamp: string }),
  };
}

async function startReplicas(n: number, extraConfig = ''): Promise<Replica[]> {
  const path = await config(extraConfig);
  return Promise.all(Array.from({ length: n }, (_, i) => startReplica(`r${i + 1}`, path)));
}

/** `sentinel_leader` of one replica (0 or 1). */
async function leaderGauge(r: Replica): Promise<number> {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  const m = /^sentinel_leader (\S+)$/m.exec(text);
  if (!m) throw new Error(`no sentinel_leader in ${r.name}'s metrics`);
  return Number(m[1]);
}

async function gauges(replicas: Replica[]): Promise<number[]> {
  return Promise.all(replicas.map(leaderGauge));
}

/** Waits until exactly one of `replicas` reports itself leader and has finished a run; returns it. */
async function waitForOneLeader(replicas: Replica[], timeoutMs = 15_000): Promise<Replica> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const g = await gauges(replicas);
    const leaders = replicas.filter((_, i) => g[i] === 1);
    if (leaders.length === 1 && leaders[0]!.runs().length > 0) return leaders[0]!;
    if (Date.now() > deadline) throw new Error(`no single leader after ${timeoutMs}ms: gauges ${JSON.stringify(g)}`);
    await nextOutput(replicas, 1000);
  }
}

/** Firing events the webhook received (across all requests). */
function firings(): Array<{ check: string }> {
  return hook.requests
    .flatMap((r) => (JSON.parse(r.body) as { events: Array<{ kind: string; check: string }> }).events)
    .filter((e) => e.kind === 'firing');
}

async function stuckBatch(): Promise<void> {
  await insertBatch(db().pool, {
    source: 'vendor_a',
    status: 'processing',
    created_at: minutesAgo(30),
    updated_at: minutesAgo(25),
  });
}

/**
 * Resolves at the next output of any of `replicas` (a report, a log line: something
 * happened), or after `limitMs` at the latest, so that a quiet spell is looked at too.
 */
function nextOutput(replicas: Replica[], limitMs: number): Promise<void> {
  return new Promise((resolve) => {
    const streams = replicas.filter((r) => r.running()).flatMap((r) => [r.child.stdout!, r.child.stderr!]);
    const done = (): void => {
      clearTimeout(timer);
      for (const s of streams) s.off('data', done);
      resolve();
    };
    const timer = setTimeout(done, limitMs);
    for (const s of streams) s.once('data', done);
  });
}

/**
 * Waits until `condition` holds, sampling the leader gauges of the running replicas at
 * every output of theirs meanwhile: never more than one leader at a time.
 */
async function neverTwoLeadersUntil(replicas: Replica[], condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const g = await gauges(replicas.filter((r) => r.running()));
    expect(g.filter((v) => v === 1).length).toBeLessThanOrEqual(1);
    if (condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await nextOutput(replicas, 1000);
  }
}

describe('replicas: several sentinel serve processes on one database', () => {
  it.each([2, 3])(
    '%i processes: exactly one leader, one firing notification over several intervals',
    async (n) => {
      await stuckBatch();
      const replicas = await startReplicas(n);
      const leader = await waitForOneLeader(replicas);

      await neverTwoLeadersUntil(replicas, () => leader.runs().length >= 4, 'four runs of the leader');
      expect(await gauges(replicas)).toEqual(replicas.map((r) => (r === leader ? 1 : 0)));
      expect(firings()).toEqual([expect.objectContaining({ check: 'stuck_batches' })]);
      expect(hook.requests).toHaveLength(1);
      // The leader's report says so; followers run nothing and print nothing, but stay ready.
      expect(leader.runs().every((r) => r.role === 'leader' && r.overall_status === 'critical')).toBe(true);
      for (const r of replicas.filter((x) => x !== leader)) {
        expect(r.stdout()).toBe('');
        expect(r.stderr()).toContain('Standing by as follower');
        expect(r.stderr()).not.toContain('Running stuck_batches check');
        const ready = await fetch(`${r.url}/readyz`);
        // Other fields (such as the role) may accompany `ready`.
        expect([ready.status, await ready.json()]).toEqual([200, expect.objectContaining({ ready: true })]);
      }
      expect(leader.stderr()).toContain('Became leader');
      // Shared in PostgreSQL, not in the state directories.
      const { rows } = await db().pool.query<{ state: { alerts: Record<string, { check: string }> } }>(
        'select state from sentinel.alert_state',
      );
      expect(Object.values(rows[0]!.state.alerts).map((a) => a.check)).toEqual(['stuck_batches']);
    },
    60_000,
  );

  it('kill -9 of the leader: exactly one follower takes over (the time it took is logged), ' +
    'and does not page again', async () => {
    await stuckBatch();
    const replicas = await startReplicas(3);
    const leader = await waitForOneLeader(replicas);
    await waitFor(() => firings().length === 1, 10_000, 'the firing notification');

    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    const survivors = replicas.filter((r) => r !== leader);
    const before = survivors.map((r) => r.runs().length);
    let next: Replica | undefined;
    await waitFor(
      () => {
        next = survivors.find((r, i) => r.stderr().includes('Became leader') && r.runs().length > before[i]!);
        return next !== undefined;
      },
      15_000,
      'a follower to take over and run',
    );
    console.log(
      `[replicas] failover after kill -9 of the leader: ${Date.now() - killedAt} ms to the new leader's first ` +
        `finished run (interval ${INTERVAL_S}s, poll ${INTERVAL_S}s)`,
    );
    // The time is reported above, not bounded (the wait's 15 s limit is the "does not hang").
    // What happened: exactly one session, the new leader's, holds the lock.
    const holders = await db().pool.query(
      `select 1 from pg_stat_activity a join pg_locks l on l.pid = a.pid
        where a.application_name = 'sentinel-leader' and a.datname = current_database()
          and l.locktype = 'advisory' and l.granted`,
    );
    expect(holders.rowCount).toBe(1);

    const runsAfter = next!.runs().length;
    await waitFor(() => next!.runs().length >= runsAfter + 3, 15_000, 'three more runs of the new leader');
    expect(await gauges(survivors)).toEqual(survivors.map((r) => (r === next ? 1 : 0)));
    // The incident is known from the shared state: no second page.
    expect(firings()).toHaveLength(1);
    expect(next!.runs().at(-1)).toMatchObject({ role: 'leader', overall_status: 'critical' });
  }, 60_000);

  it("pg_terminate_backend of the leader's sentinel-leader backend: it steps " +
    'down, exactly one leader afterwards, no double page', async () => {
    await stuckBatch();
    const replicas = await startReplicas(3);
    const leader = await waitForOneLeader(replicas);
    await waitFor(() => firings().length === 1, 10_000, 'the firing notification');

    const { rows } = await db().pool.query<{ pid: number }>(
      `select a.pid from pg_stat_activity a join pg_locks l on l.pid = a.pid
        where a.application_name = 'sentinel-leader' and a.datname = current_database()
          and l.locktype = 'advisory' and l.granted`,
    );
    expect(rows).toHaveLength(1);
    const terminatedAt = Date.now();
    await db().pool.query('select pg_terminate_backend($1)', [rows[0]!.pid]);

    await waitFor(
      () => /Lost leadership: the lock connection (failed|ended)/.test(leader.stderr()),
      5000,
      'the leader to step down',
    );
    const stepDownMs = Date.now() - terminatedAt;
    const after = await waitForOneLeader(replicas, 10_000);
    console.log(
      `[replicas] after pg_terminate_backend: old leader stepped down in ${stepDownMs} ms; ` +
        `${after === leader ? 'it won the lock again' : `${after.name} took over`} ` +
        `after ${Date.now() - terminatedAt} ms`,
    );
    const runsAfter = after.runs().length;
    await neverTwoLeadersUntil(replicas, () => after.runs().length >= runsAfter + 3, 'three more runs of the leader');
    expect((await gauges(replicas)).filter((g) => g === 1)).toHaveLength(1);
    expect(firings()).toHaveLength(1);
    // Every replica is still alive and serving.
    for (const r of replicas) expect(r.running()).toBe(true);
    // Still exactly one session holds the lock.
    const holders = await db().pool.query(
      `select 1 from pg_stat_activity a join pg_locks l on l.pid = a.pid
        where a.application_name = 'sentinel-leader' and a.datname = current_database()
          and l.locktype = 'advisory' and l.granted`,
    );
    expect(holders.rowCount).toBe(1);
  }, 60_000);

  it('SIGTERM during a run on the leader: it finishes the run, exits 0, and a follower takes over', async () => {
    await stuckBatch();
    const replicas = await startReplicas(2);
    const leader = await waitForOneLeader(replicas);
    const follower = replicas.find((r) => r !== leader)!;
    await waitFor(() => firings().length === 1, 10_000, 'the firing notification');

    const locker = await db().pool.connect();
    let released = false;
    try {
      const started = (leader.stderr().match(/Running stuck_batches check/g) ?? []).length;
      await locker.query('begin');
      await locker.query('lock table intake.simplicity_batches in access exclusive mode');
      // The next run blocks on the table: SIGTERM arrives while it is in progress.
      await waitFor(
        () => (leader.stderr().match(/Running stuck_batches check/g) ?? []).length > started,
        10_000,
        'a run to start',
      );
      const runsBefore = leader.runs().length;
      leader.child.kill('SIGTERM');
      await waitFor(
        () => leader.stderr().includes('Received SIGTERM: finishing the current run, then exiting'),
        5000,
        'the signal to be handled',
      );
      expect(leader.running()).toBe(true);
      await locker.query('rollback');
      released = true;
      expect(await leader.exited).toEqual({ code: 0, signal: null });
      // The run in progress was finished and reported.
      expect(leader.runs().length).toBe(runsBefore + 1);
      const stoppedAt = Date.now();
      await waitFor(
        () => follower.stderr().includes('Became leader') && follower.runs().length > 0,
        10_000,
        'the follower to take over',
      );
      console.log(
        `[replicas] handover after SIGTERM: ${Date.now() - stoppedAt} ms from the leader's exit to the new ` +
          `leader's first run`,
      );
      expect(await leaderGauge(follower)).toBe(1);
      await waitFor(() => follower.runs().length >= 2, 10_000, 'a second run of the new leader');
      expect(firings()).toHaveLength(1);
    } finally {
      if (!released) await locker.query('rollback');
      locker.release();
    }
  }, 60_000);
});

describe('replicas: graceful shutdown flushes the outbox from the leader only', () => {
  it('SIGTERM: a follower exits without sending; the leader delivers ' +
    'the entry waiting in backoff before it exits', async () => {
    hook.fallback({ status: 503 });
    await stuckBatch();
    const replicas = await startReplicas(2, 'alerting: { delivery_timeout: 1s }\n');
    const leader = await waitForOneLeader(replicas);
    const follower = replicas.find((r) => r !== leader)!;
    await waitFor(
      () => leader.runs().some((r) => JSON.stringify(r).includes('"pending":1')),
      10_000,
      'a failed delivery kept in the outbox',
    );
    // The provider is back; the entry waits out its 15 s backoff, so no run sends it now.
    hook.fallback({ status: 200 });
    const tries = hook.requests.length;

    follower.child.kill('SIGTERM');
    expect(await follower.exited).toEqual({ code: 0, signal: null });
    expect(follower.stderr()).not.toContain('Delivering what is left in the outbox');
    // The leader's next run (a later event than the follower's exit) does not send it either.
    const runsSoFar = leader.runs().length;
    await waitFor(() => leader.runs().length > runsSoFar, 10_000, "the leader's next run");
    expect(hook.requests.length).toBe(tries);

    leader.child.kill('SIGTERM');
    expect(await leader.exited).toEqual({ code: 0, signal: null });
    expect(leader.stderr()).toContain('Final delivery for hook: 1 sent, 0 failed, 0 still pending');
    expect(hook.requests.length).toBe(tries + 1);
    expect(firings()).toHaveLength(tries + 1); // the failed tries and the delivery, one incident
    const { rows } = await db().pool.query<{ state: { outbox: unknown[] } }>('select state from sentinel.alert_state');
    expect(rows[0]!.state.outbox).toEqual([]);
  }, 60_000);
});

describe('sentinel migrate with replicas.state_database_url', () => {
  it('creates sentinel.alert_state in the monitored database and in the state database', async () => {
    const monitored = await createTestDatabase({ template: 'empty' });
    const state = await createTestDatabase({ template: 'empty' });
    try {
      const path = join(dir, 'state-db.yaml');
      await writeFile(path, 'replicas:\n  enabled: true\n  state_database_url: ${STATE_DB}\n');
      const r = await runCli(['migrate', '--with-intake', '--config', path], {
        DATABASE_URL: monitored.url,
        STATE_DB: state.url,
        SENTINEL_STATE_DIR: join(dir, 'migrate-state'),
      });
      expect(r.stderr).toContain('20261205000000_sentinel_state (state database): applied');
      expect(r.code).toBe(0);
      for (const d of [monitored, state]) {
        const { rows } = await d.pool.query<{ found: boolean }>(
          `select to_regclass('sentinel.alert_state') is not null as found`,
        );
        expect(rows[0]!.found).toBe(true);
      }
      // The state database holds Sentinel's table only, no pipeline.
      const { rows } = await state.pool.query<{ name: string }>(
        'select name from sentinel.schema_migrations order by name',
      );
      expect(rows.map((x) => x.name)).toEqual(['20261205000000_sentinel_state']);
    } finally {
      await monitored.drop();
      await state.drop();
    }
  });
});
