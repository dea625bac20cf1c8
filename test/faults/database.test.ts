import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CHECK_LIST } from '../../src/checks/index.js';
import { freePort } from '../../src/postgrest/server.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import {
  type RunningSentinel,
  reportsOf,
  spawnSentinel,
  startPasswordRejecter,
  startTcpProxy,
  type TcpProxy,
  terminateBackends,
  throughProxy,
} from '../helpers/faults.js';
import { insertBatch, insertRowErrors, minutesAgo } from '../helpers/fixtures.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { until } from '../helpers/wait.js';

/** The checks a database failure leaves not run (every check but schema_cache). */
const DB_CHECKS = CHECK_LIST.filter((c) => c.needsDatabase).length;

/**
 * The monitored database failing under Sentinel, for real: sessions terminated
 * over and over (a failover, a pooler restart), the server refusing, blackholed
 * or rejecting the password, a table locked. What the user sees: the process
 * stands, one critical `database` alert names the cause, one incident per
 * notifier, one login and one lock timeout per run.
 */

interface Report {
  overall_status: string;
  alerts: Array<{ check: string; level: string; message: string; subject?: string; details: Record<string, unknown> }>;
  checks: Array<{ name: string; outcome: string; reason?: string }>;
  duration_ms: number;
}

let db: TestDb;
let admin: pg.Pool;
let stateRoot: string;
const running: RunningSentinel[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  admin = db.pool;
  stateRoot = mkdtempSync(join(tmpdir(), 'sentinel-faults-db-'));
});
afterEach(async () => {
  for (const r of running.splice(0)) r.kill();
  for (const close of closers.splice(0)) await close();
  await admin.query('truncate intake.simplicity_batches, intake.row_errors cascade');
});
afterAll(async () => {
  await db?.drop();
  rmSync(stateRoot, { recursive: true, force: true });
});

let stateCount = 0;
function stateDir(): string {
  return join(stateRoot, `s${++stateCount}`);
}

function configFile(body: string): string {
  const path = join(stateRoot, `config-${++stateCount}.yaml`);
  writeFileSync(path, body);
  return path;
}

const reports = (r: RunningSentinel): Report[] => reportsOf<Report>(r);

async function withProxy(): Promise<TcpProxy> {
  const u = new URL(db.url);
  const proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
  closers.push(() => proxy.close());
  return proxy;
}

async function sink(): Promise<TestHttpServer> {
  const server = await startHttpServer();
  server.fallback({ status: 200, body: {} });
  closers.push(() => server.close());
  return server;
}

describe('sessions terminated again and again (failover, pooler restart)', () => {
  for (const mode of ['--loop', 'serve'] as const) {
    it(`${mode} keeps running while every Sentinel backend is terminated every few ms, ` +
      'and the next runs recover', async () => {
      const args =
        mode === 'serve'
          ? ['serve', '--listen', `127.0.0.1:${await freePort()}`, '--interval', '1', '--json']
          : ['--loop', '--interval', '1', '--json'];
      const s = spawnSentinel(args, { DATABASE_URL: db.url, SENTINEL_STATE_DIR: stateDir() });
      running.push(s);
      await s.waitForStdoutLines(1);
      // Terminate for as long as it takes three more runs to report: every run of
      // the storm meets dead sessions (at connect, mid-check, in the snapshot, in the rollup refresh).
      const before = reports(s).length;
      let terminated = 0;
      while (reports(s).length < before + 3 && s.child.exitCode === null) {
        terminated += await terminateBackends(admin, db.name);
        await new Promise((r) => setImmediate(r));
      }
      expect(s.stderr()).not.toMatch(/Unhandled 'error' event|node:events/);
      expect(s.child.exitCode).toBeNull();
      expect(terminated).toBeGreaterThan(0);
      // The storm is over: a run reports the pipeline healthy again.
      const stormEnd = reports(s).length;
      await s.waitForStdoutLines(stormEnd + 2);
      const after = reports(s).slice(stormEnd + 1);
      expect(after.map((r) => r.overall_status)).toContain('healthy');
      expect(s.child.exitCode).toBeNull();
      expect(s.stderr()).not.toMatch(/Unhandled 'error' event|node:events|at .*\.js:\d+/);
      // Any run that met the storm said so as one finding about the database, never one per check.
      for (const r of reports(s))
        expect(r.alerts.filter((a) => a.message.startsWith('Check failed:') && /terminat/.test(a.message))).toEqual([]);
      s.child.kill('SIGTERM');
      expect(await s.ended).toEqual({ code: 0, signal: null });
    }, 120_000);
  }

  it('survives the backend of sentinel.refresh_error_rollup() being terminated mid-refresh', async () => {
    // Work for the rollup, and a row lock that holds the refresh in the middle of its transaction.
    const batch = await insertBatch(admin, { status: 'completed' });
    await insertRowErrors(admin, batch, [{ error_code: 'E_FAULT', error_message: 'x' }]);
    const holder = new pg.Client({ connectionString: db.url, application_name: 'sentinel-tests-holder' });
    holder.on('error', () => {});
    await holder.connect();
    closers.push(() => holder.end().catch(() => {}));
    await holder.query('begin');
    await holder.query('select * from sentinel.error_rollup_state for update');

    const s = spawnSentinel(['--loop', '--interval', '1', '--json'], {
      DATABASE_URL: db.url,
      SENTINEL_STATE_DIR: stateDir(),
    });
    running.push(s);
    // The refresh is waiting for the row lock: terminate exactly that backend.
    const pid = await until(async () => {
      if (s.child.exitCode !== null) throw new Error('sentinel exited before its refresh waited for the lock');
      const { rows } = await admin.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = $1 and query like '%refresh_error_rollup%' and ` +
          `wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
        [db.name],
      );
      return rows[0]?.pid;
    }, 'the rollup refresh to wait for the row lock');
    await admin.query('select pg_terminate_backend($1)', [pid]);
    await s.waitForLog(
      /Error rollup refresh failed: terminating connection due to administrator command; the next run tries again/,
    );
    await holder.query('rollback');
    // The loop goes on, and a later refresh completes: it stamps the rollup state.
    const rolledBackAt = (await admin.query<{ t: Date }>('select now() as t')).rows[0]!.t;
    for (;;) {
      const { rows } = await admin.query<{ refreshed_at: Date | null }>(
        'select refreshed_at from sentinel.error_rollup_state',
      );
      if (rows[0]?.refreshed_at && rows[0].refreshed_at > rolledBackAt) break;
      await s.waitForStdoutLines(reports(s).length + 1);
    }
    expect(s.child.exitCode).toBeNull();
    s.child.kill('SIGTERM');
    expect((await s.ended).code).toBe(0);
  }, 120_000);
});

describe('the database unreachable is one root cause', () => {
  it(
    'refused: one connection attempt, one critical database alert naming the checks not run, one incident per ' +
      'notifier',
    async () => {
      const proxy = await withProxy();
      await proxy.close(); // nothing listens on its port any more: connection refused
      const hook = await sink();
      const config = configFile(
        `notifiers:\n  - { name: hook, type: webhook, url: "${hook.url}/hook", secret: "0123456789abcdef0123" }\n`,
      );
      const url = throughProxy(db.url, proxy);
      const r = await runCli(['--json', '-c', config], { DATABASE_URL: url, SENTINEL_STATE_DIR: stateDir() });
      expect(r.code).toBe(2);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.alerts).toHaveLength(1);
      expect(report.alerts[0]).toMatchObject({ check: 'database', level: 'critical', subject: 'unreachable' });
      expect(report.alerts[0]!.message).toMatch(
        new RegExp(
          `^Database unreachable: connection refused \\(127\\.0\\.0\\.1:\\d+\\) \\(${DB_CHECKS} checks not run\\)$`,
        ),
      );
      expect(report.alerts[0]!.details.not_run).toEqual([
        'stuck_batches',
        'error_spike',
        'dedupe_rate',
        'processing_time',
        'queue_backlog',
        'source_freshness',
        'row_error_codes',
        'anomalies',
      ]);
      expect(
        report.checks
          .filter((c) => c.name !== 'schema_cache')
          .every((c) => c.outcome === 'skipped' && c.reason === 'not run: the database is unreachable'),
      ).toBe(true);
      // One incident: the webhook got one request carrying one event.
      expect(hook.requests).toHaveLength(1);
      const payload = JSON.parse(hook.requests[0]!.body) as { events: Array<{ check: string; kind: string }> };
      expect(payload.events.map((e) => [e.check, e.kind])).toEqual([['database', 'firing']]);
    },
  );

  it('wrong password: one failed login per run, not one per check (poolers ban on that)', async () => {
    const rejecter = await startPasswordRejecter();
    closers.push(() => rejecter.close());
    const url = `postgres://sentinel:not-the-password@127.0.0.1:${rejecter.port}/postgres`;
    const r = await runCli(['--json'], { DATABASE_URL: url, SENTINEL_STATE_DIR: stateDir() });
    expect(r.code).toBe(2);
    expect(rejecter.logins()).toBe(1);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.alerts.map((a) => a.message)).toEqual([
      `Database unreachable: password authentication failed for user "sentinel" (${DB_CHECKS} checks not run)`,
    ]);
    expect(r.stdout + r.stderr).not.toContain('not-the-password');
  });

  it('blackholed: the run ends after one connect timeout with one database alert', async () => {
    const proxy = await withProxy();
    proxy.blackhole();
    const config = configFile('connect_timeout_seconds: 1\n');
    const started = performance.now();
    const r = await runCli(
      ['--json', '-c', config],
      { DATABASE_URL: throughProxy(db.url, proxy), SENTINEL_STATE_DIR: stateDir() },
      { timeoutMs: 60_000 },
    );
    const wallMs = Math.round(performance.now() - started);
    expect(r.code).toBe(2);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.alerts.map((a) => a.message)).toEqual([
      `Database unreachable: timed out connecting to the database (${DB_CHECKS} checks not run)`,
    ]);
    // One connection attempt for the whole run.
    expect(proxy.accepted()).toBe(1);
    console.log(
      `blackholed database, connect_timeout_seconds 1: run duration_ms ${report.duration_ms}, process wall ` +
        `${wallMs} ms`,
    );
  });

  it('serve: /api/* answers 503 "database unreachable" with the age of the last good data while the database is ' +
    'gone', async () => {
    const proxy = await withProxy();
    const port = await freePort();
    const config = configFile('connect_timeout_seconds: 1\n');
    const s = spawnSentinel(['serve', '--listen', `127.0.0.1:${port}`, '--interval', '1', '--json', '-c', config], {
      DATABASE_URL: throughProxy(db.url, proxy),
      SENTINEL_STATE_DIR: stateDir(),
    });
    running.push(s);
    await s.waitForStdoutLines(1);
    const api = `http://127.0.0.1:${port}/api/pipeline-health`;
    expect((await fetch(api)).status).toBe(200);
    proxy.blackhole();
    proxy.cutAll();
    // Wait for a run that found the database gone.
    while (!reports(s).some((r) => r.alerts.some((a) => a.check === 'database')))
      await s.waitForStdoutLines(reports(s).length + 1);
    const started = performance.now();
    const res = await fetch(api);
    const ms = Math.round(performance.now() - started);
    expect(res.status).toBe(503);
    const body = (await res.json()) as {
      error: string;
      last_good_at: string | null;
      last_good_age_seconds: number | null;
    };
    expect(body.error).toMatch(/^database unreachable: /);
    expect(body.last_good_at).not.toBeNull();
    expect(body.last_good_age_seconds).toBeGreaterThanOrEqual(0);
    console.log(`/api/pipeline-health with the database blackholed answered 503 in ${ms} ms`);
    s.child.kill('SIGTERM');
    expect((await s.ended).code).toBe(0);
  }, 120_000);
});

describe('a locked table is diagnosed, not misreported', () => {
  it('names the relation, pid, mode and statement, and costs one lock timeout per run', async () => {
    await insertBatch(admin, { status: 'processing', updated_at: minutesAgo(30) });
    const holder = new pg.Client({ connectionString: db.url, application_name: 'migration-job' });
    holder.on('error', () => {});
    await holder.connect();
    closers.push(() => holder.end().catch(() => {}));
    const { rows } = await holder.query<{ pid: number }>('select pg_backend_pid() as pid');
    await holder.query('begin');
    await holder.query('lock table intake.simplicity_batches in access exclusive mode');
    const config = configFile('statement_timeout_ms: 1000\n');
    const r = await runCli(
      ['--json', '-c', config],
      { DATABASE_URL: db.url, SENTINEL_STATE_DIR: stateDir() },
      { timeoutMs: 60_000 },
    );
    await holder.query('rollback');
    expect(r.code).toBe(2);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.alerts).toHaveLength(1);
    const alert = report.alerts[0]!;
    expect(alert).toMatchObject({ check: 'database', subject: 'locked', level: 'critical' });
    expect(alert.message).toMatch(
      new RegExp(
        `^Database locked: intake\\.simplicity_batches is locked by pid ${rows[0]!.pid} \\(AccessExclusiveLock, ` +
          `user \\w+, application migration-job, idle in transaction for \\d+s, last statement "lock table ` +
          `intake\\.simplicity_batches in access exclusive mode"\\) \\(${DB_CHECKS} checks not run\\)$`,
      ),
    );
    expect(alert.details.lock_holders).toEqual([
      expect.objectContaining({
        pid: rows[0]!.pid,
        mode: 'AccessExclusiveLock',
        granted: true,
        relation: 'intake.simplicity_batches',
      }),
    ]);
    // One check waited for the lock; the others were not sent to wait behind it.
    expect(report.checks.filter((c) => c.outcome === 'failed').map((c) => c.name)).toEqual(['stuck_batches']);
    // Every database check but the one that waited.
    expect(report.checks.filter((c) => c.reason === 'not run: the database is locked')).toHaveLength(DB_CHECKS - 1);
    console.log(`locked table, statement_timeout_ms 1000: run duration_ms ${report.duration_ms}`);
  });

  it('a lock request queued behind a long transaction: names the queued pid and whom it waits for', async () => {
    const reader = new pg.Client({ connectionString: db.url, application_name: 'long-report' });
    const alter = new pg.Client({ connectionString: db.url, application_name: 'migration-job' });
    for (const c of [reader, alter]) {
      c.on('error', () => {});
      await c.connect();
      closers.push(() => c.end().catch(() => {}));
    }
    const readerPid = (await reader.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const alterPid = (await alter.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    await reader.query('begin');
    await reader.query('select count(*) from intake.simplicity_batches');
    const altering = alter
      .query('alter table intake.simplicity_batches add column if not exists fault_test int')
      .catch(() => undefined);
    // Wait until the ALTER is queued for its lock.
    await until(
      async () =>
        (await admin.query(`select 1 from pg_locks where pid = $1 and not granted`, [alterPid])).rows.length > 0,
      'the ALTER to queue for its lock',
    );
    const config = configFile('statement_timeout_ms: 1000\n');
    const r = await runCli(
      ['--json', '-c', config],
      { DATABASE_URL: db.url, SENTINEL_STATE_DIR: stateDir() },
      { timeoutMs: 60_000 },
    );
    await admin.query('select pg_terminate_backend($1)', [alterPid]);
    await altering;
    await reader.query('rollback');
    const report = JSON.parse(r.stdout) as Report;
    expect(report.alerts).toHaveLength(1);
    expect(report.alerts[0]!.message).toMatch(
      new RegExp(
        `^Database locked: intake\\.simplicity_batches has pid ${alterPid} queued for AccessExclusiveLock, itself ` +
          `waiting for pid ${readerPid}: every reader waits behind it`,
      ),
    );
  });
});
