import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/postgrest/server.js';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { type EmfDocument, emfProblems, parseEmf } from '../helpers/emf-spec.js';
import { insertBatch } from '../helpers/fixtures.js';

/** `sentinel --format emf` as a Lambda or ECS task runs it: the built CLI against the real test database. */

let db: TestDb;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'sentinel-emf-'));
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('truncate intake.simplicity_batches cascade');
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db.url,
  SENTINEL_STATE_DIR: join(dir, 'state'),
  ...extra,
});
const minutesAgo = (m: number): Date => new Date(Date.now() - m * 60_000);
const EXIT = { healthy: 0, degraded: 1, critical: 2 } as Record<string, number>;

/** Every stdout line a valid EMF document; parsed. */
function documents(stdout: string): EmfDocument[] {
  expect(stdout.endsWith('\n')).toBe(true);
  const lines = stdout.trimEnd().split('\n');
  return lines.map((line) => {
    expect(emfProblems(line), line).toEqual([]);
    return parseEmf(line);
  });
}

const runDoc = (docs: EmfDocument[]): EmfDocument => {
  const found = docs.filter((d) => Object.keys(d.dimensions).length === 1 && d.dimensions.environment !== undefined);
  expect(found).toHaveLength(1);
  return found[0]!;
};

describe('sentinel --format emf', () => {
  it('a stuck batch from a hostile source: valid lines, exit 2, the alert and the source as dimensions', async () => {
    const hostile = `evil\u202e\u001b[2J${'x'.repeat(1024)}`;
    await insertBatch(db.pool, {
      source: hostile,
      status: 'processing',
      created_at: minutesAgo(30),
      updated_at: minutesAgo(25),
    });
    const r = await runCli(['--format', 'emf'], env());
    const docs = documents(r.stdout);
    const main = runDoc(docs);
    expect(r.code).toBe(2);
    expect(main.root.overall_status).toBe('critical');
    expect(main.dimensions.environment).toBe('dev');
    expect(main.metrics.sentinel_database_up?.value).toBe(1);
    expect(main.namespace).toBe('Sentinel');
    const firing = docs.find(
      (d) => d.dimensions.check === 'stuck_batches' && d.dimensions.level === 'critical' && !d.dimensions.source,
    );
    expect(firing?.metrics.sentinel_alerts_firing?.value).toBe(1);
    const status = docs.find((d) => d.dimensions.check === 'stuck_batches' && d.dimensions.level === undefined);
    expect(status?.metrics.sentinel_check_status?.value).toBe(2);
    const processing = docs.find((d) => d.dimensions.status === 'processing');
    expect(processing?.metrics.sentinel_pipeline_stuck_batches?.value).toBe(1);
    expect(r.stdout).not.toMatch(/[\u001b\u202e]/);
    // The source's /metrics label (escaped, cut at 128 characters), in ASCII.
    const source = docs.find((d) => d.dimensions.source?.startsWith('evil\\u202e\\x1b[2Jxxx'));
    expect(source?.dimensions.source).toMatch(/^evil\\u202e\\x1b\[2Jx+\\u2026$/);
    expect(source?.metrics.sentinel_pipeline_bucket_rows).toBeDefined();
  });

  it('healthy: exit code of the run, every line valid', async () => {
    await insertBatch(db.pool, { source: 'vendor_a', status: 'completed', total_rows: 100, inserted_rows: 100 });
    const r = await runCli(['--format', 'emf'], env());
    const main = runDoc(documents(r.stdout));
    expect(r.code).toBe(EXIT[String(main.root.overall_status)]);
  });

  it('an unreachable database: database_up 0, exit 2, the password never printed', async () => {
    const port = await freePort();
    const password = 'Sup3rSecretPassw0rd';
    const r = await runCli(['--format', 'emf'], env({ DATABASE_URL: `postgres://u:${password}@127.0.0.1:${port}/x` }));
    expect(r.code).toBe(2);
    const main = runDoc(documents(r.stdout));
    expect(main.metrics.sentinel_database_up?.value).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toContain(password);
  });

  it('with --json or --pretty: a usage error, exit 3, one line', async () => {
    for (const flag of ['--json', '--pretty']) {
      const r = await runCli(['--format', 'emf', flag], env());
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`${flag} cannot be used with --format emf`);
    }
  });

  it('with --loop: a run document per run', async () => {
    const child = spawn(process.execPath, [CLI, '--format', 'emf', '--loop', '--interval', '1'], {
      env: cliEnv(env()),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const runs = (): number => stdout.split('\n').filter((l) => l.includes('"overall_status"')).length;
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (runs() >= 2 && stdout.endsWith('\n')) resolve();
      });
      child.on('close', () => resolve());
    });
    child.kill('SIGTERM');
    const code = await exited;
    expect(runs()).toBeGreaterThanOrEqual(2);
    const docs = documents(stdout);
    expect(docs.filter((d) => Object.keys(d.dimensions).length === 1)).toHaveLength(runs());
    expect(code).toBe(0);
  });
});
