/**
 * Oversize and malformed settings (issue 12, items 2 and 9): every number and
 * duration has a maximum checked at load; host-less REST URLs, keys with
 * whitespace or control characters, oversize config files and a state directory
 * that cannot be made are refused at once. What the user sees: one line naming the
 * setting and its range, exit 3, no secret.
 */

import { spawn } from 'node:child_process';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, prepareStateDir } from '../../src/config/load.js';
import { LIMITS } from '../../src/util/limits.js';
import { CLI, type CliResult, cliEnv, runCli } from '../helpers/cli.js';
import { problemsOf } from '../helpers/config-errors.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { insertBatch, minutesAgo } from '../helpers/fixtures.js';
import { startHttpServer } from '../helpers/http-server.js';
import { waitFor } from '../helpers/processes.js';

let db: TestDb;
let dir: string;
let stateDir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'sentinel-limits-'));
  stateDir = join(dir, 'state');
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db.url,
  SENTINEL_STATE_DIR: stateDir,
  ...extra,
});
/** Guards only: a run that hangs (the old behaviour of several cases) is killed and fails the test. */
const GUARD = { timeoutMs: 20_000 };

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** Exit 3 and exactly one line on stderr, which is returned. */
function oneLineExit3(r: CliResult): string {
  expect({ code: r.code, signal: r.signal }).toEqual({ code: 3, signal: null });
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('every number and duration in the config file has a maximum', () => {
  // [setting path, largest accepted value, a value past it, the message]
  const table: Array<[string, unknown, unknown, string]> = [
    ['checks.stuck_batches.threshold_minutes', 527040, 527041, 'must be at most 527040 (366 days)'],
    ['checks.stuck_batches.timeout_seconds', 3600, 3601, 'must be at most 3600 (1 hour)'],
    ['checks.error_spike.min_rows', 1_000_000_000, 1_000_000_001, 'must be at most 1000000000'],
    ['checks.error_spike.timeout_seconds', 3600, 86_400, 'must be at most 3600 (1 hour)'],
    ['checks.schema_cache.cooldown_minutes', 1440, 1441, 'must be at most 1440 (1 day)'],
    ['checks.schema_cache.reprobe_attempts', 20, 21, 'must be at most 20'],
    ['checks.schema_cache.reprobe_interval_seconds', 300, 301, 'must be at most 300 (5 minutes)'],
    ['checks.schema_cache.request_timeout_seconds', 120, 121, 'must be at most 120 (2 minutes)'],
    ['checks.schema_cache.timeout_seconds', 3600, 3601, 'must be at most 3600 (1 hour)'],
    ['checks.dedupe_rate.timeout_seconds', 3600, 3601, 'must be at most 3600 (1 hour)'],
    ['checks.processing_time.p95_minutes', 527040, 600000, 'must be at most 527040 (366 days)'],
    ['checks.processing_time.timeout_seconds', 3600, 3601, 'must be at most 3600 (1 hour)'],
    ['checks.queue_backlog.threshold_minutes', 527040, 527041, 'must be at most 527040 (366 days)'],
    ['checks.queue_backlog.timeout_seconds', 3600, 3601, 'must be at most 3600 (1 hour)'],
    ['checks.source_freshness.timeout_seconds', 3600, 2147484, 'must be at most 3600 (1 hour)'],
    ['statement_timeout_ms', 3_600_000, 2_147_483_647, 'must be at most 3600000 (1 hour)'],
    ['connect_timeout_seconds', 120, 121, 'must be at most 120 (2 minutes)'],
    ['alerting.repeat_interval', '366d', '367d', 'must be at most 366d'],
    ['alerting.delivery_timeout', '1h', '25d', 'must be at most 1h'],
    ['alerting.delivery_timeout', 3600, 3601, 'must be at most 1h'],
    ['alerting.max_outbox_age', '30d', '31d', 'must be at most 30d'],
    ['alerting.resolve_after_runs', 1000, 1001, 'must be at most 1000'],
    ['history.retention_days', 366, 367, 'must be at most 366'],
    ['replicas.takeover_poll_seconds', 3600, 3601, 'must be at most 3600 (1 hour)'],
    ['sources.vendor_a.expected_every', '366d', '367d', 'must be at most 366d'],
    ['sources.vendor_a.expected_every', '8784h', '99999999999999999999d', 'must be at most 366d'],
    ['checks.stuck_batches.threshold_minutes', 10, '.inf', 'expected a number'],
  ];

  /** `a.b.c: v` as nested YAML flow mappings. */
  const yamlOf = (path: string, value: unknown): string => {
    const keys = path.split('.');
    const scalar = typeof value === 'string' && value !== '.inf' ? JSON.stringify(value) : String(value);
    return `${keys.reduceRight((inner, key) => `{ ${key}: ${inner} }`, scalar).slice(2, -2)}\n`;
  };

  it.each(table)('%s: %j is accepted, %j is refused with one line naming it', async (path, max, over, message) => {
    const ok = await loadConfig({
      flags: { config: await file('ok.yaml', yamlOf(path, max)) },
      env: { DATABASE_URL: db.url },
    });
    expect(ok).toBeDefined();
    const problems = await problemsOf(
      loadConfig({ flags: { config: await file('over.yaml', yamlOf(path, over)) }, env: { DATABASE_URL: db.url } }),
    );
    expect(problems).toEqual([`${path}: ${message}`]);
  });

  it('every timer limit fits Node timers (2^31-1 ms) with room for what is added to it', () => {
    // Node's documentation of setTimeout: a delay above 2147483647 ms is set to 1 ms.
    const NODE_MAX_TIMER_MS = 2_147_483_647;
    for (const ms of [
      LIMITS.checkTimeoutSeconds * 1000,
      LIMITS.requestTimeoutSeconds * 1000,
      LIMITS.statementTimeoutMs + 2000,
      86_400 * 1000,
    ]) {
      expect(ms).toBeLessThan(NODE_MAX_TIMER_MS);
    }
  });

  const notifier = (extra: string) => `notifiers:\n  - { name: n, ${extra} }\n`;
  const routingKey = 'a'.repeat(32);
  it.each([
    [
      'timeout_seconds',
      `type: pagerduty, routing_key: ${routingKey}, timeout_seconds: 121`,
      'notifiers.0.timeout_seconds: must be at most 120 (2 minutes)',
    ],
    [
      'resolve_timeout_minutes',
      'type: alertmanager, url: "http://am.example:9093", resolve_timeout_minutes: 10081',
      'notifiers.0.resolve_timeout_minutes: must be at most 10080 (7 days)',
    ],
    [
      'to (Twilio)',
      `type: twilio, account_sid: AC${'0'.repeat(32)}, auth_token: t, from: "+15550000000", ` +
        `to: [${Array.from({ length: 101 }, (_, i) => `"+1555${String(1_000_000 + i)}"`).join(', ')}]`,
      'notifiers.0.to: at most 100 numbers (one request each, within alerting.delivery_timeout)',
    ],
    [
      'to (SendGrid)',
      `type: sendgrid, api_key: k, from: s@example.com, ` +
        `to: [${Array.from({ length: 1001 }, (_, i) => `u${i}@example.com`).join(', ')}]`,
      'notifiers.0.to: at most 1000 addresses (SendGrid accepts no more in one request)',
    ],
  ])('notifier %s has a maximum', async (_name, fields, message) => {
    const problems = await problemsOf(
      loadConfig({ flags: { config: await file('n.yaml', notifier(fields)) }, env: { DATABASE_URL: db.url } }),
    );
    expect(problems).toEqual([message]);
  });
});

describe('oversize values from the command line and the config file are refused before anything runs', () => {
  it(
    'sentinel --loop --interval 2147484 (a timer past 2^31-1 ms that fired ~95 times a second) is exit 3 naming ' +
      '--interval and 1..86400',
    async () => {
      const line = oneLineExit3(await runCli(['--loop', '--interval', '2147484', '--json'], env(), GUARD));
      expect(line).toBe(
        "sentinel: option '--interval <seconds>' argument '2147484' is invalid. " +
          'expected a whole number of seconds from 1 to 86400 (1 day) (see sentinel --help)',
      );
    },
  );

  it('the flags with a maximum name it in one line, exit 3', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['serve', '--interval', '86401'],
        new RegExp(
          "^sentinel: option '--interval <seconds>' argument '86401' is invalid\\. expected a who" +
            'le number of seconds from 1 to 86400 \\(1 day\\)',
        ),
      ],
      [
        ['migrate', '--lock-timeout', '3601'],
        new RegExp(
          "^sentinel: option '--lock-timeout <seconds>' argument '3601' is invalid\\. expected a " +
            'number of seconds from 0 \\(wait forever\\) to 3600 \\(1 hour\\)',
        ),
      ],
      [
        ['batches', 'audit', '--limit', '1001'],
        /^sentinel: option '--limit <n>' argument '1001' is invalid\. expected a whole number from 1 to 1000/,
      ],
      [
        ['--loop', '--metrics-port', '65536'],
        new RegExp(
          "^sentinel: option '--metrics-port <port>' argument '65536' is invalid\\. the port must" +
            ' be a number from 1 to 65535',
        ),
      ],
      [
        ['slo', '--days', '366'],
        /^sentinel: option '--days <n>' argument '366' is invalid\. expected a whole number of days from 1 to 365/,
      ],
      [
        ['silence', 'add', '--check', 'stuck_batches', '--duration', '367d', '--reason', 'x'],
        /^sentinel: config error: --duration: must be at most 366d$/,
      ],
      [
        ['batches', 'fail-stuck', '--older-than', '367d', '--reason', 'x'],
        /^sentinel: config error: --older-than: must be at most 366d$/,
      ],
    ];
    for (const [args, expected] of cases) {
      expect(oneLineExit3(await runCli(args, env(), GUARD)), args.join(' ')).toMatch(expected);
    }
  });

  it(
    'alerting.delivery_timeout: 25d (an overflowing timer that aborted every delivery at once) is exit 3 naming ' +
      'it and its maximum',
    async () => {
      const config = await file('delivery-25d.yaml', 'alerting: { delivery_timeout: 25d }\n');
      const line = oneLineExit3(await runCli(['--json', '--config', config], env(), GUARD));
      expect(line).toBe('sentinel: config error: alerting.delivery_timeout: must be at most 1h');
    },
  );

  it('alerting.delivery_timeout at its maximum (1h) still delivers', async () => {
    const hook = await startHttpServer();
    try {
      await db.pool.query('truncate intake.simplicity_batches cascade');
      await insertBatch(db.pool, {
        source: 'vendor_a',
        status: 'processing',
        created_at: minutesAgo(30),
        updated_at: minutesAgo(25),
      });
      const config = await file(
        'delivery-1h.yaml',
        `alerting: { delivery_timeout: 1h }\nnotifiers:\n  - { name: hook, type: webhook, url: "${hook.url}/hook" }\n`,
      );
      const r = await runCli(['--json', '--config', config], env({ SENTINEL_STATE_DIR: join(dir, 'state-1h') }), GUARD);
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout).notifications).toEqual([
        expect.objectContaining({ notifier: 'hook', sent: 1, failed: 0 }),
      ]);
      expect(hook.requests).toHaveLength(1);
    } finally {
      await hook.close();
      await db.pool.query('truncate intake.simplicity_batches cascade');
    }
  });

  it('--interval 86400 (the maximum) runs once and waits: no second run before SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, '--loop', '--interval', '86400', '--json'], {
      env: cliEnv(env()),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await waitFor(() => stdout.includes('\n'), 20_000, 'the first run');
    // The loop is asleep once it has printed: the old overflow would already have started the next run.
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('every 86400s');
  });
});

describe('URLs without a host, keys with whitespace or control characters, oversize files', () => {
  const supabaseHint = 'expected an http:// or https:// URL with a host, e.g. https://<project>.supabase.co';
  const postgrestHint = 'expected an http:// or https:// URL with a host, e.g. http://localhost:3000';
  it.each([
    [{ SUPABASE_URL: 'https://' }, `SUPABASE_URL: ${supabaseHint}`],
    [{ SUPABASE_URL: 'http:///x' }, `SUPABASE_URL: ${supabaseHint}`],
    [{ SUPABASE_URL: 'https://:443/' }, `SUPABASE_URL: ${supabaseHint}`],
    [{ POSTGREST_URL: 'http:///x' }, `POSTGREST_URL: ${postgrestHint}`],
    [{ POSTGREST_URL: 'https://user:pw@/x' }, `POSTGREST_URL: ${postgrestHint}`],
  ])('%j is refused at load', async (vars, message) => {
    expect(await problemsOf(loadConfig({ env: { DATABASE_URL: db.url, ...vars } }))).toEqual([message]);
  });

  it('--postgrest-url and the file settings are checked the same way', async () => {
    expect(
      await problemsOf(loadConfig({ flags: { postgrestUrl: 'http:///x' }, env: { DATABASE_URL: db.url } })),
    ).toEqual([`--postgrest-url: ${postgrestHint}`]);
    const supa = await file('supa.yaml', 'environments:\n  dev: { supabase_url: "https:///x" }\n');
    expect(await problemsOf(loadConfig({ flags: { config: supa }, env: { DATABASE_URL: db.url } }))).toEqual([
      `environments.dev.supabase_url: ${supabaseHint}`,
    ]);
    const rest = await file('rest.yaml', 'environments:\n  dev: { postgrest_url: "https://" }\n');
    expect(await problemsOf(loadConfig({ flags: { config: rest }, env: { DATABASE_URL: db.url } }))).toEqual([
      `environments.dev.postgrest_url: ${postgrestHint}`,
    ]);
    // Hosts in every form still load.
    for (const url of ['https://abc.supabase.co', 'http://[::1]:3000', 'http://user@localhost:3000/']) {
      expect((await loadConfig({ env: { DATABASE_URL: db.url, POSTGREST_URL: url } })).env.restUrl).toBe(
        url.replace(/\/$/, ''),
      );
    }
  });

  it('SUPABASE_URL without a host is exit 3 with one line (CLI)', async () => {
    const line = oneLineExit3(await runCli(['--json'], env({ SUPABASE_URL: 'http:///x' }), GUARD));
    expect(line).toBe(`sentinel: config error: SUPABASE_URL: ${supabaseHint}`);
  });

  const KEY = 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2VjcmV0LXNpZ25hdHVyZS0xMjM0NTY';
  it.each([
    [`${KEY}\r`, 'a line break', KEY.length + 1],
    [`${KEY.slice(0, 20)} ${KEY.slice(20)}`, 'a space', 21],
    [`${KEY}\x1b[2J`, 'a control or invisible character', KEY.length + 1],
    [`\ufeff${KEY}`, 'a control or invisible character', 1],
  ])(
    'SUPABASE_SERVICE_ROLE_KEY with whitespace or a control character: exit 3, the line names it and never ' +
      'prints the key (%#)',
    async (key, what, at) => {
      const r = await runCli(
        ['--json'],
        env({ SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_SERVICE_ROLE_KEY: key }),
        GUARD,
      );
      const line = oneLineExit3(r);
      expect(line).toBe(
        `sentinel: config error: SUPABASE_SERVICE_ROLE_KEY: contains ${what} (character ${at} of ${key.length}): ` +
          `a key has no whitespace or control characters; copy it again without them`,
      );
      expect(r.stdout + r.stderr).not.toContain(KEY.slice(20, 40));
    },
  );

  it('service_role_key in the file is named by its path', async () => {
    const path = await file('key.yaml', `environments:\n  dev: { service_role_key: "${KEY}\\t" }\n`);
    const problems = await problemsOf(loadConfig({ flags: { config: path }, env: { DATABASE_URL: db.url } }));
    expect(problems).toEqual([
      `environments.dev.service_role_key: contains a tab (character ${KEY.length + 1} of ${KEY.length + 1}): a ` +
        `key has no whitespace or control characters; copy it again without them`,
    ]);
    expect(problems.join('\n')).not.toContain(KEY);
  });

  it('a config file over 4 MiB is refused from its size, before it is read (a 1 GiB sparse file), exit 3', async () => {
    const path = join(dir, 'huge.yaml');
    const handle = await open(path, 'w');
    await handle.truncate(1024 ** 3);
    await handle.close();
    const line = oneLineExit3(await runCli(['--json', '--config', path], env(), GUARD));
    expect(line).toBe(
      `sentinel: config error: --config: config file ${path} is larger than the limit of 4 MiB (1073741824 bytes)`,
    );
    await rm(path);
  });

  it(
    '4 MiB is accepted, one byte more is not; a file without a size ' + '(a device) is read no further than the limit',
    async () => {
      const limit = 4 * 1024 * 1024;
      const body = 'statement_timeout_ms: 5000\n';
      const exact = await file('exact.yaml', `${body + '#'.repeat(limit - body.length - 1)}\n`);
      expect((await loadConfig({ flags: { config: exact }, env: { DATABASE_URL: db.url } })).statement_timeout_ms).toBe(
        5000,
      );
      const over = await file('over.yaml', `${body + '#'.repeat(limit - body.length)}\n`);
      expect(
        await problemsOf(loadConfig({ flags: { config: over }, env: { SENTINEL_CONFIG: over, DATABASE_URL: db.url } })),
      ).toEqual([`--config: config file ${over} is larger than the limit of 4 MiB (${limit + 1} bytes)`]);
      expect(await problemsOf(loadConfig({ env: { SENTINEL_CONFIG: '/dev/zero', DATABASE_URL: db.url } }))).toEqual([
        'SENTINEL_CONFIG: config file /dev/zero is larger than the limit of 4 MiB',
      ]);
    },
  );

  it('a duplicate key is still an error naming its line (found in one pass)', async () => {
    const path = await file('dup.yaml', 'sources:\n  a: {}\n  b: {}\n  a: {}\n');
    expect(await problemsOf(loadConfig({ flags: { config: path }, env: { DATABASE_URL: db.url } }))).toEqual([
      `${path}: invalid YAML at line 4, column 3 (duplicate key)`,
    ]);
  });
});

describe('10,000 sources', () => {
  it('load and a one-shot run completes with every check run (time printed, not asserted)', async () => {
    // Default timeouts: the old one statement per source took 16 s here, past source_freshness's 10 s.
    const lines = ['sources:'];
    for (let i = 0; i < 10_000; i++)
      lines.push(
        `  src_${String(i).padStart(5, '0')}: { expected_every: 1h, error_spike_threshold_pct: 20, ` +
          `dedupe_threshold_pct: 60 }`,
      );
    const config = await file('10k.yaml', `${lines.join('\n')}\n`);
    await db.pool.query('truncate intake.simplicity_batches cascade');
    // Half the feeds on time, half silent.
    await db.pool.query(
      `insert into intake.simplicity_batches (source, status, total_rows, error_rows, created_at, updated_at)
       select 'src_' || lpad(i::text, 5, '0'), 'completed', 100, 1,
              now() - interval '10 minutes', now() - interval '10 minutes'
         from generate_series(0, 9999, 2) as i`,
    );
    const loadStarted = performance.now();
    const loaded = await loadConfig({ flags: { config }, env: { DATABASE_URL: db.url } });
    const loadMs = performance.now() - loadStarted;
    expect(Object.keys(loaded.sources)).toHaveLength(10_000);

    const started = performance.now();
    const r = await runCli(['--json', '--config', config], env({ SENTINEL_STATE_DIR: join(dir, 'state-10k') }), {
      timeoutMs: 120_000,
    });
    if (r.code !== 1) console.log(r.stderr.slice(-3000));
    const runMs = performance.now() - started;
    console.log(
      `10,000 sources: loadConfig ${Math.round(loadMs)} ms; one-shot run (CLI process) ${Math.round(runMs)} ms`,
    );
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as {
      checks: Array<{ name: string; outcome: string; duration_ms: number }>;
      alerts: Array<{ check: string }>;
    };
    console.log(
      `10,000 sources: source_freshness ${report.checks.find((c) => c.name === 'source_freshness')?.duration_ms} ` +
        `ms inside the run`,
    );
    expect(report.checks.filter((c) => c.outcome === 'failed')).toEqual([]);
    expect(report.alerts.filter((a) => a.check === 'source_freshness')).toHaveLength(5_000);
    await db.pool.query('truncate intake.simplicity_batches cascade');
  }, 180_000);
});

describe('a state directory that cannot be created is one line naming its setting, exit 3, at once', () => {
  it('SENTINEL_STATE_DIR=/proc/1/nope (where recursive mkdir never returned)', async () => {
    const line = oneLineExit3(await runCli(['--json'], env({ SENTINEL_STATE_DIR: '/proc/1/nope' }), GUARD));
    expect(line).toMatch(/^sentinel: config error: SENTINEL_STATE_DIR: cannot create \/proc\/1\/nope: .+$/);
    // serve says so before it listens (no "Listening on" line).
    expect(
      oneLineExit3(
        await runCli(['serve', '--listen', '127.0.0.1:0'], env({ SENTINEL_STATE_DIR: '/proc/1/nope' }), GUARD),
      ),
    ).toBe(line);
  });

  it('a path under a regular file, for a run and for sentinel silence add', async () => {
    const plain = await file('plain-file', 'x');
    const line = oneLineExit3(await runCli(['--json'], env({ SENTINEL_STATE_DIR: join(plain, 'state') }), GUARD));
    expect(line).toBe(
      `sentinel: config error: SENTINEL_STATE_DIR: cannot create ${join(plain, 'state')}: ${plain} is not a directory`,
    );
    const silence = oneLineExit3(
      await runCli(
        ['silence', 'add', '--check', 'stuck_batches', '--duration', '1h', '--reason', 'x'],
        env({ SENTINEL_STATE_DIR: join(plain, 'a', 'b') }),
        GUARD,
      ),
    );
    expect(silence).toBe(
      `sentinel: config error: SENTINEL_STATE_DIR: cannot create ${join(plain, 'a', 'b')}: ${plain} is not a directory`,
    );
  });

  it(
    'alerting.state_dir is named when it comes from the file; a ' + 'writable one is created 0700 with its parents',
    async () => {
      const plain = await file('plain-file-2', 'x');
      const config = await file('state-dir.yaml', `alerting: { state_dir: ${JSON.stringify(join(plain, 'x'))} }\n`);
      const loaded = await loadConfig({ flags: { config }, env: { DATABASE_URL: db.url } });
      expect(await problemsOf(prepareStateDir(loaded))).toEqual([
        `alerting.state_dir: cannot create ${join(plain, 'x')}: ${plain} is not a directory`,
      ]);

      const fresh = join(dir, 'new', 'deeper', 'state');
      await prepareStateDir({ stateDir: fresh, stateDirSetting: 'SENTINEL_STATE_DIR' });
      expect((await stat(fresh)).mode & 0o777).toBe(0o700);
      // Twice is fine (an existing directory).
      await prepareStateDir({ stateDir: fresh, stateDirSetting: 'SENTINEL_STATE_DIR' });
    },
  );

  it('an existing state directory that is a file is named as such', async () => {
    const plain = await file('plain-file-3', 'x');
    expect(await problemsOf(prepareStateDir({ stateDir: plain, stateDirSetting: 'SENTINEL_STATE_DIR' }))).toEqual([
      `SENTINEL_STATE_DIR: ${plain} is not a directory`,
    ]);
  });
});
