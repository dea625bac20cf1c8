import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CHECK_LIST } from '../../src/checks/index.js';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { answers, startFakePostgrest } from '../helpers/fake-postgrest.js';
import { insertBatch } from '../helpers/fixtures.js';
import { startHttpServer } from '../helpers/http-server.js';
import { waitFor } from '../helpers/processes.js';
import { until, within } from '../helpers/wait.js';

/** The checks a database failure leaves not run (every check but schema_cache). */
const DB_CHECKS = CHECK_LIST.filter((c) => c.needsDatabase).length;

const LOG_LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| (INFO |WARNING|ERROR|DEBUG) {0,4} +\| sentinel \| .+$/;

let db: TestDb;
let stateDir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  stateDir = await mkdtemp(join(tmpdir(), 'sentinel-cli-state-'));
});
afterAll(async () => {
  await db?.drop();
  await rm(stateDir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('truncate intake.simplicity_batches cascade');
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db.url,
  SENTINEL_STATE_DIR: stateDir,
  ...extra,
});
const minutesAgo = (m: number): Date => new Date(Date.now() - m * 60_000);

async function stuckBatch(): Promise<void> {
  await insertBatch(db.pool, {
    source: 'vendor_a',
    status: 'processing',
    created_at: minutesAgo(30),
    updated_at: minutesAgo(25),
  });
}
async function errorSpike(): Promise<void> {
  // In both the current and the previous hour so the test does not depend on the minute it runs in.
  for (const m of [0.5, 61]) {
    await insertBatch(db.pool, {
      source: 'vendor_a',
      status: 'completed',
      total_rows: 1000,
      error_rows: 400,
      created_at: minutesAgo(m),
      updated_at: minutesAgo(m),
    });
  }
}

describe('sentinel (one run)', () => {
  it('exits 0 with pure JSON on stdout and guide-shaped logs on stderr when healthy', async () => {
    const r = await runCli(['--json'], env());
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]!);
    expect(report).toMatchObject({
      environment: 'dev',
      overall_status: 'healthy',
      alerts: [],
      // Skipped: schema_cache (no PostgREST), source_freshness (no expected_every), anomalies (no history).
      metrics: { total_checks: 6, alerts_triggered: 0, critical_alerts: 0, warning_alerts: 0, skipped_checks: 3 },
    });
    expect(report.checks.map((c: { name: string; outcome: string }) => [c.name, c.outcome])).toEqual([
      ['stuck_batches', 'ok'],
      ['error_spike', 'ok'],
      ['schema_cache', 'skipped'],
      ['dedupe_rate', 'ok'],
      ['processing_time', 'ok'],
      ['queue_backlog', 'ok'],
      ['source_freshness', 'skipped'],
      ['row_error_codes', 'ok'],
      ['anomalies', 'skipped'],
    ]);
    expect(report.checks.find((c: { name: string }) => c.name === 'source_freshness')).toMatchObject({
      reason: 'no source has expected_every',
    });
    expect(report.checks.find((c: { name: string }) => c.name === 'anomalies').reason).toMatch(/history/);
    const logLines = r.stderr.trimEnd().split('\n');
    expect(logLines.every((l) => LOG_LINE.test(l))).toBe(true);
    expect(logLines.some((l) => l.endsWith('| INFO     | sentinel | Running stuck_batches check...'))).toBe(true);
  });

  it('exits 2 on a stuck batch and 1 on an error spike alone', async () => {
    await errorSpike();
    const degraded = await runCli(['--json'], env());
    expect(degraded.code).toBe(1);
    expect(JSON.parse(degraded.stdout).overall_status).toBe('degraded');
    await stuckBatch();
    const critical = await runCli(['--json'], env());
    expect(critical.code).toBe(2);
    const report = JSON.parse(critical.stdout);
    expect(report.overall_status).toBe('critical');
    expect(report.alerts.map((a: { message: string }) => a.message)).toEqual([
      expect.stringMatching(/^1 batch stuck > 10m: processing\(1\)$/),
      'Error rate 40.0% > 15.0% threshold',
    ]);
  });

  it('prints the human banner on stdout, nothing else', async () => {
    await stuckBatch();
    const r = await runCli([], env({ SUPABASE_MODE: 'prod' }));
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('🔴 HEALTH CHECK COMPLETE - Status: CRITICAL');
    expect(r.stdout).toContain('Environment: prod');
    expect(r.stdout).not.toMatch(/\| INFO/);
    expect(r.stdout).not.toContain('\u001b[');
  });

  it('indents the JSON with --pretty', async () => {
    const r = await runCli(['--pretty'], env());
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').length).toBeGreaterThan(10);
    expect(JSON.parse(r.stdout).overall_status).toBe('healthy');
  });

  it(
    'exits 2 with one "Database unreachable" alert and no ' + 'password anywhere when the database is unreachable',
    async () => {
      const r = await runCli(['--json'], env({ DATABASE_URL: 'postgres://sentinel:topsecretpw@127.0.0.1:1/app' }));
      expect(r.code).toBe(2);
      const report = JSON.parse(r.stdout);
      expect(report.alerts).toHaveLength(1);
      expect(report.alerts[0].message).toMatch(/^Database unreachable: connection refused/);
      expect(r.stdout + r.stderr).not.toContain('topsecretpw');
    },
  );
});

describe('sentinel: usage and configuration errors exit 3 with one line', () => {
  it.each([
    [['--bogus'], /unknown option '--bogus'/],
    [['--interval', 'abc', '--loop'], /--interval <seconds>.*whole number of seconds/],
    [['--interval', '0', '--loop'], /whole number of seconds from 1 to 86400/],
    [['migrate', '--lock-timeout', 'soon'], /--lock-timeout <seconds>.*from 0 \(wait forever\) to 3600/],
  ])('%j', async (args, pattern) => {
    const r = await runCli(args, env());
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stdout).toBe('');
  });

  it('names every bad setting of the config file, without a stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sentinel-cli-cfg-'));
    const path = join(dir, 'bad.yaml');
    await writeFile(
      path,
      'checks:\n  error_spike: { threshold_pct: "high" }\n  stuck_batches: { threshold_minutes: -1 }\n',
    );
    const r = await runCli(['--config', path], env());
    await rm(dir, { recursive: true, force: true });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('sentinel: config error: checks.error_spike.threshold_pct: expected a number');
    expect(r.stderr).toContain(
      'sentinel: config error: checks.stuck_batches.threshold_minutes: must be greater than 0',
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses to run without a database', async () => {
    const r = await runCli([], env({ DATABASE_URL: undefined }));
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe(
      'sentinel: config error: no database configured for environment "dev": set DATABASE_URL or ' +
        'environments.dev.database_url in the config file',
    );
  });

  it('prints the version and exits 0', async () => {
    const r = await runCli(['--version'], {});
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('sentinel --loop', () => {
  it('prints one JSON line per run and exits 0 after the current run on SIGTERM', async () => {
    await stuckBatch();
    const child = spawn(process.execPath, [CLI, '--loop', '--interval', '1', '--json'], {
      env: cliEnv(env()),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const twoRuns = new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.split('\n').filter(Boolean).length >= 2) resolve();
      });
    });
    await twoRuns;
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await exited;
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(JSON.parse(line).overall_status).toBe('critical');
    expect(stderr).toMatch(/Received SIGTERM: finishing the current run, then exiting/);
    expect(stderr).toMatch(/Loop stopped after \d+ runs?/);
  });

  it('keeps running through a database outage, reporting each run', async () => {
    const child = spawn(process.execPath, [CLI, '--loop', '--interval', '1', '--json'], {
      env: cliEnv(env({ DATABASE_URL: 'postgres://sentinel:pw-loop-secret@127.0.0.1:1/app' })),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.split('\n').filter(Boolean).length >= 2) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const line of stdout.trimEnd().split('\n'))
      expect(JSON.parse(line).alerts[0].message).toMatch(/^Database unreachable:/);
  });
});

describe('sentinel migrate', () => {
  it('creates the intake schema and the ops views on an empty database, then checks run', async () => {
    const empty = await createTestDatabase({ template: 'empty' });
    try {
      const first = await runCli(['migrate', '--with-intake'], {
        DATABASE_URL: empty.url,
        SENTINEL_STATE_DIR: stateDir,
      });
      expect(first.code).toBe(0);
      expect(first.stderr).toMatch(/20250104000000_ops_views: applied/);
      const again = await runCli(['migrate'], { DATABASE_URL: empty.url, SENTINEL_STATE_DIR: stateDir });
      expect(again.code).toBe(0);
      expect(again.stderr).toMatch(/20250104000000_ops_views: unchanged/);
      const check = await runCli(['--json'], { DATABASE_URL: empty.url, SENTINEL_STATE_DIR: stateDir });
      expect(check.code).toBe(0);
    } finally {
      await empty.drop();
    }
  });

  it('fails with exit 3 and a clear message when the intake schema is missing', async () => {
    const empty = await createTestDatabase({ template: 'empty' });
    try {
      const r = await runCli(['migrate'], { DATABASE_URL: empty.url, SENTINEL_STATE_DIR: stateDir });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/sentinel: migration failed: .*intake\.simplicity_batches/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await empty.drop();
    }
  });
});

describe('review regressions', () => {
  it('applies options given before a subcommand to it', async () => {
    const empty = await createTestDatabase({ template: 'empty' });
    try {
      const r = await runCli(['--database-url', empty.url, 'migrate', '--with-intake'], {
        DATABASE_URL: db.url,
        SENTINEL_STATE_DIR: stateDir,
      });
      expect(r.code).toBe(0);
      const { rows } = await empty.pool.query(`select name from sentinel.schema_migrations order by name`);
      expect(rows.map((row) => row.name)).toEqual([
        '20250104000000_ops_views',
        '20261128000000_ops_views_at_scale',
        '20261205000000_sentinel_state',
        '20261206000000_hourly_source_stats',
        '20261207000000_hourly_source_timings',
        'intake_reference',
      ]);
      expect(r.stderr).toContain(`Migrating postgres://`);
    } finally {
      await empty.drop();
    }
  });

  it('names an unknown command', async () => {
    const r = await runCli(['frobnicate'], env());
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe("sentinel: unknown command 'frobnicate' (see sentinel --help)");
  });

  it.each([
    [['--loop', '--pretty'], '--pretty cannot be used with --loop'],
    [['--interval', '5'], '--interval needs --loop'],
  ])('rejects %j', async (args, message) => {
    const r = await runCli(args, env());
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(message);
  });

  it('says when the config path is missing or a directory', async () => {
    const missing = await runCli(['--config', join(stateDir, 'nope.yaml')], env());
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('nope.yaml: file not found');
    const dir = await runCli(['--config', stateDir], env());
    expect(dir.code).toBe(3);
    expect(dir.stderr).toContain('it is a directory');
    expect(dir.stderr).not.toMatch(/no database configured/);
  });

  it('exits quietly when the reader of stdout goes away', async () => {
    const child = spawn(process.execPath, [CLI, '--loop', '--interval', '1', '--json'], {
      env: cliEnv(env()),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.once('data', () => child.stdout.destroy());
      child.on('close', (c) => resolve(c));
    });
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
  });

  it('finishes a run against a server that accepts connections and never answers', async () => {
    const net = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const blackhole = net.createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    const port = (blackhole.address() as import('node:net').AddressInfo).port;
    const dir = await mkdtemp(join(tmpdir(), 'sentinel-cli-bh-'));
    await writeFile(join(dir, 'c.yaml'), 'connect_timeout_seconds: 0.5\n');
    try {
      // runCli kills a run that hangs (then code is null, not 2).
      const r = await runCli(
        ['--json', '--config', join(dir, 'c.yaml')],
        env({ DATABASE_URL: `postgres://u:bh-secret-77@127.0.0.1:${port}/db` }),
      );
      expect(r.code).toBe(2);
      expect(sockets).toHaveLength(1); // one connection attempt for the whole run, then its timeout
      expect(JSON.parse(r.stdout).alerts[0].message).toBe(
        `Database unreachable: timed out connecting to the database (${DB_CHECKS} checks not run)`,
      );
      expect(r.stdout + r.stderr).not.toContain('bh-secret-77');
    } finally {
      for (const s of sockets) s.destroy();
      blackhole.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('does not print the password of a host it cannot resolve', async () => {
    const r = await runCli(
      ['--json'],
      env({ DATABASE_URL: 'postgres://u:dns-secret-55@no-such-host.invalid:5432/db' }),
    );
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).alerts[0].message).toMatch(/^Database unreachable: host not found/);
    expect(r.stdout + r.stderr).not.toContain('dns-secret-55');
  });

  it('on SIGTERM during a run, finishes and reports that run, then exits 0', async () => {
    const locker = await db.pool.connect();
    await locker.query('begin');
    await locker.query('lock table intake.simplicity_batches in access exclusive mode');
    const child = spawn(process.execPath, [CLI, '--loop', '--interval', '60', '--json'], {
      env: cliEnv(env()),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('Running stuck_batches check...')) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.kill('SIGTERM');
    await waitFor(
      () => stderr.includes('Received SIGTERM: finishing the current run, then exiting'),
      15_000,
      'the signal to be handled',
    );
    expect(stdout).toBe(''); // still inside the run, blocked by the lock
    await locker.query('rollback');
    locker.release();
    expect(await exited).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).overall_status).toBe('healthy');
  });

  it('reconnects by itself after its connections are killed', async () => {
    const child = spawn(process.execPath, [CLI, '--loop', '--interval', '1', '--json'], {
      env: cliEnv(env()),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const lines = (): string[] => stdout.split('\n').filter(Boolean);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    /** Resolves once `n` reports were printed: checked at every chunk of output. */
    const reports = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (lines().length < n) return;
          child.stdout.off('data', check);
          child.off('close', ended);
          resolve();
        };
        const ended = (): void => reject(new Error(`exited after ${lines().length} of ${n} reports`));
        child.stdout.on('data', check);
        child.once('close', ended);
        check();
      });
    await reports(1);
    const killed = await db.pool.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'sentinel'`,
      [db.name],
    );
    expect(killed.rowCount).toBeGreaterThan(0);
    await reports(4);
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(JSON.parse(lines()[3]!).overall_status).toBe('healthy');
  });
});

describe('graceful shutdown flushes the outbox', () => {
  it('a notification that failed during the run is delivered after SIGTERM arrives while the loop sleeps, then ' +
    'exit 0', async () => {
    const hook = await startHttpServer();
    const dir = await mkdtemp(join(tmpdir(), 'sentinel-cli-flush-'));
    try {
      // The provider is down during the run...
      hook.fallback({ status: 503, body: 'down' });
      const config = join(dir, 'c.yaml');
      // delivery_timeout bounds the run's whole delivery pass: 2 s was exceeded on a loaded
      // CI machine (the attempt was aborted, a timeout, not the 503 this test is about).
      await writeFile(
        config,
        `alerting: { delivery_timeout: 15s }\nnotifiers:\n  - { name: hook, type: webhook, url: "${hook.url}/hook" }\n`,
      );
      await stuckBatch();
      const child = spawn(process.execPath, [CLI, '--loop', '--interval', '300', '--json', '--config', config], {
        env: cliEnv(env({ SENTINEL_STATE_DIR: join(dir, 'state') })),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await waitFor(() => stdout.includes('\n'), 15_000, 'the first run');
      const first = JSON.parse(stdout.split('\n')[0]!);
      expect(first.notifications).toEqual([
        expect.objectContaining({
          notifier: 'hook',
          sent: 0,
          pending: 1,
          reasons: expect.objectContaining({ server_error: 1 }),
        }),
      ]);
      const failedTries = hook.requests.length;
      expect(failedTries).toBeGreaterThanOrEqual(1);

      // ...and back while the loop sleeps (the entry is in its 15 s backoff): SIGTERM now.
      hook.fallback({ status: 200 });
      child.kill('SIGTERM');
      // Not after the 300 s interval: the signal ends the loop's sleep (a hang fails here).
      expect(await within(exited, 20_000, 'the exit after SIGTERM')).toBe(0);
      expect(hook.requests.length).toBe(failedTries + 1);
      const delivered = JSON.parse(hook.requests.at(-1)!.body) as { events: Array<{ kind: string; check: string }> };
      expect(delivered.events).toEqual([expect.objectContaining({ kind: 'firing', check: 'stuck_batches' })]);
      expect(stderr).toContain('Delivering what is left in the outbox before exiting');
      expect(stderr).toContain('Final delivery for hook: 1 sent, 0 failed, 0 still pending');
      // One run only: no extra report line for the flush.
      expect(stdout.trimEnd().split('\n')).toHaveLength(1);
      const state = JSON.parse(await readFile(join(dir, 'state', 'alerting.json'), 'utf8')) as { outbox: unknown[] };
      expect(state.outbox).toEqual([]);
    } finally {
      await hook.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('sentinel (one run) with replicas.enabled', () => {
  const LOCK_KEY = 90417;
  // Advisory locks are per database, pg_locks shows the whole server: other runs of this
  // suite on the same server hold the same key in their own databases.
  const THIS_DB = '(select oid from pg_database where datname = current_database())';

  it('acts only while holding the leader lock: while another process leads it checks and reports, but sends no ' +
    'NOTIFY and no notification', async () => {
    const hook = await startHttpServer();
    const postgrest = await startFakePostgrest();
    const listener = new pg.Client({ connectionString: db.url });
    const otherLeader = new pg.Client({ connectionString: db.url, application_name: 'sentinel-leader' });
    const dir = await mkdtemp(join(tmpdir(), 'sentinel-cli-oneshot-'));
    try {
      await db.pool.query('delete from sentinel.alert_state');
      await listener.connect();
      await postgrest.listenForReload(listener);
      // PostgREST's cache is stale until a NOTIFY pgrst reaches the database.
      postgrest.brokenUntilReload(answers.pgrst205());
      const config = join(dir, 'c.yaml');
      await writeFile(
        config,
        [
          `replicas: { enabled: true, lock_key: ${LOCK_KEY} }`,
          'checks: { schema_cache: { reprobe_attempts: 1, reprobe_interval_seconds: 0.1 } }',
          'notifiers:',
          `  - { name: hook, type: webhook, url: "${hook.url}/hook" }`,
          '',
        ].join('\n'),
      );
      await stuckBatch();
      const runEnv = env({ SENTINEL_STATE_DIR: join(dir, 'state'), POSTGREST_URL: postgrest.url });

      // Another process (a `sentinel serve` leader) holds the lock.
      await otherLeader.connect();
      await otherLeader.query('select pg_advisory_lock($1::bigint)', [LOCK_KEY]);
      const standby = await runCli(['--json', '--config', config], runEnv);
      // The normal exit code and report of what it saw...
      expect(standby.code).toBe(2);
      const report = JSON.parse(standby.stdout);
      expect(report).toMatchObject({ overall_status: 'critical', role: 'follower' });
      expect(report.alerts.map((a: { check: string }) => a.check)).toEqual(
        expect.arrayContaining(['stuck_batches', 'schema_cache']),
      );
      expect(report.notifications).toBeUndefined();
      expect(
        JSON.stringify(report.alerts.find((a: { check: string }) => a.check === 'schema_cache').details),
      ).toContain('another Sentinel process holds the leader lock');
      expect(standby.stderr).toContain(
        'Another Sentinel process holds the leader lock (replicas): this run checks and reports only; the leader ' +
          'records and notifies what it sees',
      );
      // ...but no NOTIFY, no notification, nothing recorded in the shared state. A NOTIFY of
      // ours, sent after the run ended, arrives after any the run sent (commit order).
      await db.pool.query(`select pg_notify('pgrst', 'test-marker')`);
      await until(() => postgrest.notifications.includes('test-marker'), 'our own NOTIFY to arrive');
      expect(postgrest.notifications.splice(0)).toEqual(['test-marker']);
      expect(hook.requests).toEqual([]);
      const { rows } = await db.pool.query<{ state: { alerts: object; outbox: unknown[] } }>(
        'select state from sentinel.alert_state',
      );
      expect(rows.every((r) => Object.keys(r.state.alerts).length === 0 && r.state.outbox.length === 0)).toBe(true);
      // It took no lock of its own and left nothing behind.
      const holders = await db.pool.query(
        `select pid from pg_locks where locktype = 'advisory' and granted and objid = $1 and database = ${THIS_DB}`,
        [LOCK_KEY],
      );
      expect(holders.rowCount).toBe(1);

      // The leader goes away: the next one-shot run takes the lock for its duration and acts.
      await otherLeader.query('select pg_advisory_unlock($1::bigint)', [LOCK_KEY]);
      const leading = await runCli(['--json', '--config', config], runEnv);
      expect(leading.code).toBe(2);
      expect(JSON.parse(leading.stdout)).toMatchObject({
        overall_status: 'critical',
        role: 'leader',
        notifications: [expect.objectContaining({ notifier: 'hook', sent: 1 })],
      });
      expect(postgrest.notifications).toEqual(['reload schema']);
      const sent = hook.requests.flatMap(
        (r) => (JSON.parse(r.body) as { events: Array<{ kind: string; check: string }> }).events,
      );
      expect(sent.filter((e) => e.check === 'stuck_batches').map((e) => e.kind)).toEqual(['firing']);
      // The lock was released when the run ended.
      const after = await db.pool.query(
        `select pid from pg_locks where locktype = 'advisory' and granted and objid = $1 and database = ${THIS_DB}`,
        [LOCK_KEY],
      );
      expect(after.rowCount).toBe(0);
    } finally {
      await otherLeader.end().catch(() => {});
      await listener.end().catch(() => {});
      await postgrest.close();
      await hook.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
