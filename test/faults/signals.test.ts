import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/postgrest/server.js';
import { CLI, cliEnv } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { type RunningSentinel, reportsOf, spawnSentinel } from '../helpers/faults.js';

/**
 * Signals as a daemon takes them: SIGHUP reloads the configuration file (a valid
 * one from the next run, an invalid one is one line and the old one stays),
 * SIGUSR1 opens no inspector, and an internal error is one line and exit 3 (70 in
 * a loop), never Node's stack trace and exit 1.
 */

interface Report {
  overall_status: string;
  checks: Array<{ name: string; outcome: string; reason?: string }>;
}

let db: TestDb;
let dir: string;
const running: RunningSentinel[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'sentinel-faults-signals-'));
});
afterEach(() => {
  for (const r of running.splice(0)) r.kill();
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const reports = (r: RunningSentinel): Report[] => reportsOf<Report>(r);

const outcomeOf = (r: Report, check: string): string | undefined => r.checks.find((c) => c.name === check)?.outcome;

describe('SIGHUP reloads the configuration file', () => {
  for (const mode of ['--loop', 'serve'] as const) {
    it(`${mode}: a valid file takes effect from the next run; an invalid one is one line and the old ` +
      `configuration stays`, async () => {
      const config = join(dir, `hup-${mode.replace(/-/g, '')}.yaml`);
      writeFileSync(config, 'checks: {}\n');
      const args = mode === 'serve' ? ['serve', '--listen', `127.0.0.1:${await freePort()}`] : ['--loop'];
      const s = spawnSentinel([...args, '--interval', '1', '--json', '-c', config], {
        DATABASE_URL: db.url,
        SENTINEL_STATE_DIR: join(dir, `state-${mode}`),
      });
      running.push(s);
      await s.waitForStdoutLines(1);
      expect(outcomeOf(reports(s)[0]!, 'dedupe_rate')).toBe('ok');

      writeFileSync(config, 'checks:\n  dedupe_rate: { enabled: false }\n');
      s.child.kill('SIGHUP');
      await s.waitForLog(/\| INFO +\| sentinel \| Configuration reloaded: it takes effect from the next run$/);
      const reloadedAt = reports(s).length;
      await s.waitForStdoutLines(reloadedAt + 1);
      expect(outcomeOf(reports(s)[reloadedAt]!, 'dedupe_rate')).toBe('skipped');

      writeFileSync(config, 'checks:\n  dedupe_rate: { enabled: true, threshold_pct: 500 }\n  nope: {}\n');
      s.child.kill('SIGHUP');
      const line = await s.waitForLog(/Configuration not reloaded/);
      expect(line).toMatch(
        new RegExp(
          '\\| ERROR +\\| sentinel \\| Configuration not reloaded: 2 configuration problems: checks' +
            '\\.dedupe_rate\\.threshold_pct: must be at most 100; checks\\.nope: unknown setting; the c' +
            'urrent configuration stays$',
        ),
      );
      const rejectedAt = reports(s).length;
      await s.waitForStdoutLines(rejectedAt + 1);
      // Still the configuration of the last good reload.
      expect(outcomeOf(reports(s)[rejectedAt]!, 'dedupe_rate')).toBe('skipped');
      expect(s.child.exitCode).toBeNull();
      s.child.kill('SIGTERM');
      expect(await s.ended).toEqual({ code: 0, signal: null });
    }, 90_000);
  }
});

describe('SIGUSR1 does nothing', () => {
  it('opens no inspector and the loop goes on', async () => {
    const s = spawnSentinel(['--loop', '--interval', '1', '--json'], {
      DATABASE_URL: db.url,
      SENTINEL_STATE_DIR: join(dir, 'usr1'),
    });
    running.push(s);
    await s.waitForStdoutLines(1);
    s.child.kill('SIGUSR1');
    const after = reports(s).length;
    await s.waitForStdoutLines(after + 2);
    expect(s.stderr()).not.toMatch(/Debugger listening|inspector/i);
    expect(s.child.exitCode).toBeNull();
    s.child.kill('SIGINT');
    expect(await s.ended).toEqual({ code: 0, signal: null });
  }, 60_000);
});

describe('an internal error is one line, exit 3 (70 in a loop), no stack', () => {
  function runToFullDisk(args: string[], debug = false): Promise<{ code: number | null; stderr: string }> {
    // stdout on /dev/full: every report write fails with ENOSPC.
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, [CLI, ...args], {
      env: cliEnv({
        DATABASE_URL: db.url,
        SENTINEL_STATE_DIR: join(dir, 'full'),
        ...(debug ? { SENTINEL_DEBUG: '1' } : {}),
      }),
      stdio: ['ignore', full, 'pipe'],
    });
    closeSync(full);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  }

  it('a one-shot run whose report cannot be written exits 3 with one line', async () => {
    const r = await runToFullDisk(['--json', '--log-level', 'error']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      'sentinel: internal error: ENOSPC: no space left on device, write (SENTINEL_DEBUG=1 shows where)\n',
    );
  });

  it('--loop exits 70 (so systemd restarts it), one line; SENTINEL_DEBUG=1 adds the stack', async () => {
    const r = await runToFullDisk(['--loop', '--interval', '60', '--json', '--log-level', 'error']);
    expect(r.code).toBe(70);
    expect(r.stderr).toBe(
      'sentinel: internal error: ENOSPC: no space left on device, write (SENTINEL_DEBUG=1 shows where)\n',
    );
    const debug = await runToFullDisk(['--json', '--log-level', 'error'], true);
    expect(debug.code).toBe(3);
    expect(debug.stderr).toMatch(
      /^sentinel: internal error: ENOSPC: no space left on device, write\nError: ENOSPC[^\n]*\n\s+at /,
    );
  }, 60_000);

  it('/dev/full is there (the test needs it)', () => {
    // Linux has it; without it these tests would pass for the wrong reason.
    expect(() => closeSync(openSync('/dev/full', 'w'))).not.toThrow();
  });
});
