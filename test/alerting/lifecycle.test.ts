import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ageNotifications } from '../helpers/alert-state.js';
import { CLI, type CliResult, cliEnv, runCli } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, minutesAgo } from '../helpers/fixtures.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';

/**
 * The alert lifecycle through real runs: every `sentinel` invocation is a new
 * process (as under cron), on a real database, notifying a webhook served locally.
 */

const TOKEN = 'tok-9f8e7d6c5b4a';
const HMAC_SECRET = 'hmac-secret-1234567890';

const database = useTestDatabase();
let server: TestHttpServer;
let dir: string;
const outputs: CliResult[] = [];

beforeEach(async () => {
  server = await startHttpServer();
  dir = await mkdtemp(join(tmpdir(), 'sentinel-lifecycle-'));
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function config(alerting = 'repeat_interval: 4h'): Promise<string> {
  const path = join(dir, 'sentinel.yaml');
  await writeFile(
    path,
    `alerting: { ${alerting}, resolve_after_runs: 2 }
notifiers:
  - { name: hook, type: webhook, url: "${server.url}/hook?token=${TOKEN}", secret: "${HMAC_SECRET}" }
`,
  );
  return path;
}

async function sentinel(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const r = await runCli(args, {
    DATABASE_URL: database().url,
    SENTINEL_STATE_DIR: join(dir, 'state'),
    SENTINEL_CONFIG: join(dir, 'sentinel.yaml'),
    ...extraEnv,
  });
  outputs.push(r);
  return r;
}

const events = (): Array<{ kind: string; check: string; message: string; id: string }> =>
  server.requests.flatMap(
    (r) =>
      (JSON.parse(r.body) as { events: Array<{ kind: string; check: string; message: string; id: string }> }).events,
  );

async function stuckBatch(): Promise<string> {
  return insertBatch(database().pool, {
    source: 'vendor_a',
    status: 'processing',
    created_at: minutesAgo(40),
    updated_at: minutesAgo(30),
  });
}

describe('alert lifecycle across one-shot runs', () => {
  it('one incident over many cron runs sends one notification, and one when it resolves', async () => {
    await config();
    const id = await stuckBatch();
    for (let i = 0; i < 4; i++) expect((await sentinel(['--json'])).code).toBe(2);
    expect(events().map((e) => `${e.kind} ${e.check}`)).toEqual(['firing stuck_batches']);

    await database().pool.query(`update intake.simplicity_batches set status = 'failed' where id = $1`, [id]);
    expect((await sentinel(['--json'])).code).toBe(0);
    expect(events()).toHaveLength(1);
    expect((await sentinel(['--json'])).code).toBe(0);
    expect(events().map((e) => e.kind)).toEqual(['firing', 'resolved']);
  });

  it('repeats after repeat_interval unless acknowledged', async () => {
    await config('repeat_interval: 1s');
    await stuckBatch();
    const first = JSON.parse((await sentinel(['--json'])).stdout);
    const alertId = first.alerts[0].id as string;
    expect(alertId).toMatch(/^[0-9a-f]{8}$/);
    await ageNotifications(join(dir, 'state'), 1100); // repeat_interval has passed
    await sentinel(['--json']);
    expect(events().map((e) => e.kind)).toEqual(['firing', 'repeat']);

    const acked = await sentinel(['ack', alertId]);
    expect(acked.code).toBe(0);
    expect(acked.stdout).toContain(`Acknowledged ${alertId}`);
    await ageNotifications(join(dir, 'state'), 1100);
    const after = JSON.parse((await sentinel(['--json'])).stdout);
    expect(after.alerts[0]).toMatchObject({ id: alertId, acknowledged: true });
    expect(events().map((e) => e.kind)).toEqual(['firing', 'repeat']);
  });

  it('a silence keeps the alert in the report, out of notifications and out of the exit code', async () => {
    await config();
    await stuckBatch();
    const added = await sentinel([
      'silence',
      'add',
      '--check',
      'stuck_batches',
      '--duration',
      '2h',
      '--reason',
      'planned migration',
    ]);
    expect(added.code).toBe(0);
    const silenceId = /(s-[0-9a-f]{8})/.exec(added.stdout)![1]!;
    const run = await sentinel(['--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.overall_status).toBe('healthy');
    expect(report.alerts[0]).toMatchObject({ check: 'stuck_batches', silenced: true });
    expect(server.requests).toHaveLength(0);

    const listed = await sentinel(['silence', 'list']);
    expect(listed.stdout).toContain(silenceId);
    expect(listed.stdout).toContain('planned migration');
    expect((await sentinel(['silence', 'expire', silenceId])).code).toBe(0);
    expect((await sentinel(['--json'])).code).toBe(2);
    expect(events().map((e) => `${e.kind} ${e.check}`)).toEqual(['firing stuck_batches']);
  });

  it('rejects bad silence and ack input with one line and exit 3', async () => {
    await config();
    const bad = await sentinel(['silence', 'add', '--check', 'nope', '--duration', 'soon', '--reason', 'x']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('--check: "nope" is not a check');
    expect(bad.stderr).toContain('--duration: "soon" is not a duration');
    const ack = await sentinel(['ack', 'abcd1234']);
    expect(ack.code).toBe(3);
    expect(ack.stderr.trim()).toBe(
      'sentinel: config error: ack: no firing alert with id abcd1234 (see sentinel alerts)',
    );
  });

  it('a run killed between recording and sending delivers on the next run', async () => {
    await config();
    await stuckBatch();
    server.fallback({ status: 200, hang: true });
    const child = spawn(process.execPath, [CLI, '--json'], {
      env: cliEnv({
        DATABASE_URL: database().url,
        SENTINEL_STATE_DIR: join(dir, 'state'),
        SENTINEL_CONFIG: join(dir, 'sentinel.yaml'),
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (server.requests.length > 0) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    const exited = new Promise((r) => child.on('close', r));
    child.kill('SIGKILL');
    await exited;
    const lost = JSON.parse(server.requests[0]!.body) as { id: string };

    server.fallback({ status: 204 });
    const next = await sentinel(['--json']);
    expect(JSON.parse(next.stdout).notifications).toEqual([
      expect.objectContaining({ notifier: 'hook', sent: 1, pending: 0 }),
    ]);
    const redelivered = JSON.parse(server.requests[1]!.body) as { id: string; events: Array<{ kind: string }> };
    expect(redelivered.id).toBe(lost.id);
    expect(redelivered.events.map((e) => e.kind)).toEqual(['firing']);
    expect(server.requests).toHaveLength(2);
  });

  it('two overlapping runs notify once', async () => {
    await config();
    await stuckBatch();
    await Promise.all([sentinel(['--json']), sentinel(['--json'])]);
    expect(events().map((e) => e.kind)).toEqual(['firing']);
  });

  it('alerts of a run that could not reach the database are still delivered', async () => {
    await config();
    const r = await sentinel(['--json'], { DATABASE_URL: 'postgres://sentinel:db-pass-42x@127.0.0.1:1/app' });
    expect(r.code).toBe(2);
    // One incident for the one root cause (not one "Check failed:" per check).
    expect(events().map((e) => e.message)).toEqual([
      expect.stringMatching(/^Database unreachable: connection refused/),
    ]);
    expect(r.stdout + r.stderr).not.toContain('db-pass-42x');
  });

  it('notify test reports success per notifier and the provider error otherwise', async () => {
    await config();
    const ok = await sentinel(['notify', 'test']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('✅ hook (webhook): delivered');
    expect(events()[0]).toMatchObject({ kind: 'test' });
    server.fallback({ status: 410, body: `gone: ${server.url}/hook?token=${TOKEN}` });
    const failed = await sentinel(['notify', 'test', '--notifier', 'hook']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/❌ hook \(webhook\): .*HTTP 410/);
  });

  it('pings the heartbeat after each run, and /fail when alerting cannot work', async () => {
    const path = await config();
    const { appendFile, mkdir, writeFile: write } = await import('node:fs/promises');
    await appendFile(path, `heartbeat_url: "${server.url}/hb/uuid-1234"\n`);
    expect((await sentinel(['--json'])).code).toBe(0);
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /hb/uuid-1234']);
    await mkdir(join(dir, 'state'), { recursive: true });
    await write(join(dir, 'state', 'alerting.json'), '{broken');
    await stuckBatch();
    const r = await sentinel(['--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).alerting_error).toMatch(/not valid JSON/);
    expect(server.requests.map((req) => `${req.method} ${req.url}`)).toEqual([
      'POST /hb/uuid-1234',
      'POST /hb/uuid-1234/fail',
    ]);
    const human = await sentinel([]);
    expect(human.stdout).toContain('Alerting failed, nobody was notified by this run');
  });

  it('never prints the webhook token or the signing secret', () => {
    const all = outputs.map((o) => o.stdout + o.stderr).join('\n');
    expect(outputs.length).toBeGreaterThan(10);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(HMAC_SECRET);
  });
});
