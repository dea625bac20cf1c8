import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/postgrest/server.js';
import { type CliResult, runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';

/**
 * `--format nagios` says why it failed once: plugin runners (Icinga 2) show stdout and
 * stderr in the same plugin output, so the reason goes to stdout only. Each case runs
 * the built CLI and counts the reason across both streams.
 */

let db: TestDb;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'sentinel-nagios-once-'));
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db.url,
  SENTINEL_STATE_DIR: join(dir, 'state'),
  ...extra,
});

/** How often `text` occurs in stdout and stderr together. */
const occurrences = (r: CliResult, text: string): number => `${r.stdout}\n${r.stderr}`.split(text).length - 1;

/** The built CLI with a module loaded first (`node --import`): how a test injects an internal fault. */
async function runWithFault(source: string, args: string[]): Promise<CliResult> {
  const preload = join(dir, `fault-${Math.random().toString(36).slice(2)}.mjs`);
  await writeFile(preload, source);
  return runCli(args, env(), { nodeArgs: ['--import', preload] });
}

describe('--format nagios prints the reason once, on stdout', () => {
  it('bad arguments: UNKNOWN, exit 3, nothing on stderr', async () => {
    const r = await runCli(['--format', 'nagios', '--bogus'], env());
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("SENTINEL UNKNOWN - unknown option '--bogus' (see sentinel --help)\n");
    expect(r.stderr).toBe('');
    expect(occurrences(r, "unknown option '--bogus'")).toBe(1);

    const loop = await runCli(['--format', 'nagios', '--loop'], env());
    expect(loop.code).toBe(3);
    expect(loop.stderr).toBe('');
    expect(occurrences(loop, 'cannot be used with --loop')).toBe(1);
  });

  it('a bad config file: the first problem on the UNKNOWN line, the others as long output, each once', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'checks:\n  error_spike: { threshold_pct: 500, min_rows: -1 }\n');
    const r = await runCli(['--format', 'nagios', '-c', path], env());
    expect(r.code).toBe(3);
    expect(r.stdout).toBe(
      'SENTINEL UNKNOWN - config error: checks.error_spike.threshold_pct: must be at most 100 (+1 more)\n' +
        'config error: checks.error_spike.min_rows: must be at least 1\n',
    );
    expect(r.stderr).toBe('');
    expect(occurrences(r, 'threshold_pct: must be at most 100')).toBe(1);
    expect(occurrences(r, 'min_rows: must be at least 1')).toBe(1);
  });

  it('no database configured: UNKNOWN once', async () => {
    const r = await runCli(['--format', 'nagios'], env({ DATABASE_URL: undefined }));
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^SENTINEL UNKNOWN - config error: no database configured for environment "dev"/);
    expect(r.stderr).toBe('');
    expect(occurrences(r, 'no database configured')).toBe(1);
  });

  it('an unreachable database: CRITICAL with the cause once, no log line repeating it', async () => {
    const port = await freePort();
    const r = await runCli(['--format', 'nagios'], env({ DATABASE_URL: `postgres://u:pw@127.0.0.1:${port}/x` }));
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^SENTINEL CRITICAL - Database unreachable: connection refused /);
    expect(r.stderr).toBe('');
    expect(occurrences(r, `connection refused (127.0.0.1:${port})`)).toBe(1);
    // An explicit --log-level still logs, as asked.
    const logged = await runCli(
      ['--format', 'nagios', '--log-level', 'error'],
      env({ DATABASE_URL: `postgres://u:pw@127.0.0.1:${port}/x` }),
    );
    expect(logged.stderr).toMatch(/\| ERROR +\| sentinel \| Database unreachable/);
  });

  it('an internal error in the run (the report cannot be written): UNKNOWN once, exit 3', async () => {
    // The first write of the plugin line fails, as a write to a broken stdout would.
    const r = await runWithFault(
      `let failed = false;
       const write = process.stdout.write.bind(process.stdout);
       process.stdout.write = (chunk, ...rest) => {
         if (!failed && String(chunk).startsWith('SENTINEL ')) {
           failed = true;
           throw new Error('injected report failure');
         }
         return write(chunk, ...rest);
       };`,
      ['--format', 'nagios'],
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('SENTINEL UNKNOWN - injected report failure\n');
    expect(r.stderr).toBe('');
    expect(occurrences(r, 'injected report failure')).toBe(1);
  });

  it('an internal error nobody handled (the crash handler): UNKNOWN once, exit 3, no stack', async () => {
    // Thrown from a timer once Sentinel's crash handlers are installed (src/cli.ts installs them first).
    const r = await runWithFault(
      `const on = process.on.bind(process);
       process.on = (event, listener) => {
         const result = on(event, listener);
         if (event === 'unhandledRejection') setImmediate(() => { throw new Error('injected crash'); });
         return result;
       };`,
      ['--format', 'nagios'],
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('SENTINEL UNKNOWN - internal error: injected crash (SENTINEL_DEBUG=1 shows where)\n');
    expect(r.stderr).toBe('');
    expect(occurrences(r, 'injected crash')).toBe(1);
  });
});

describe('without --format nagios, failures stay on stderr', () => {
  it('bad arguments and an internal error: one line on stderr, stdout empty', async () => {
    const r = await runCli(['--bogus'], env());
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("sentinel: unknown option '--bogus' (see sentinel --help)\n");

    const crash = await runWithFault(
      `const on = process.on.bind(process);
       process.on = (event, listener) => {
         const result = on(event, listener);
         if (event === 'unhandledRejection') setImmediate(() => { throw new Error('injected crash'); });
         return result;
       };`,
      ['--json'],
    );
    expect(crash.code).toBe(3);
    expect(crash.stdout).toBe('');
    expect(crash.stderr).toBe('sentinel: internal error: injected crash (SENTINEL_DEBUG=1 shows where)\n');
  });
});
