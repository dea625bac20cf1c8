/**
 * `supabase db push` applies `supabase/migrations/*.sql` in name order, each file as
 * plain SQL, and nothing else: no `sentinel migrate`, no ledger. Everything Sentinel
 * needs must therefore be in those files. Reproduced here with plain `psql` against an
 * empty database holding only the engine's tables (which production already has),
 * then every command runs against it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { requirePart } from '../helpers/parts.js';
import { waitFor } from '../helpers/processes.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MIGRATIONS = join(ROOT, 'supabase', 'migrations');
const havePsql = spawnSync('psql', ['--version']).status === 0;

/** `psql -f` as `supabase db push` runs a migration: stop at the first error, one transaction. */
function psql(url: string, file: string): void {
  const r = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-d', url, '-f', file], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`psql -f ${file} failed (${r.status}): ${r.stderr}`);
}

describe.runIf(requirePart('psql', havePsql, 'apt-get install postgresql-client'))(
  'supabase/migrations applied with plain psql, as `supabase db push` does',
  () => {
    let db: TestDb;
    let stateDir: string;
    let env: Record<string, string>;

    beforeAll(async () => {
      db = await createTestDatabase({ template: 'empty' });
      psql(db.url, join(ROOT, 'sql', 'intake.sql'));
      const files = readdirSync(MIGRATIONS)
        .filter((f) => f.endsWith('.sql'))
        .sort();
      for (const f of files) psql(db.url, join(MIGRATIONS, f));
      stateDir = mkdtempSync(join(tmpdir(), 'sentinel-push-'));
      env = { DATABASE_URL: db.url, SENTINEL_STATE_DIR: stateDir };
    });
    afterAll(async () => {
      await db?.drop();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    });

    it('every migration file follows one naming scheme: <14-digit timestamp>_<name>.sql', () => {
      const names = readdirSync(MIGRATIONS);
      expect(names.length).toBeGreaterThan(0);
      expect(names.filter((n) => !/^\d{14}_[a-z0-9_]+\.sql$/.test(n))).toEqual([]);
    });

    it('creates Sentinel’s own tables too', async () => {
      const { rows } = await db.pool.query<{ name: string }>(
        `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'sentinel' and c.relkind = 'r' order by 1`,
      );
      const names = rows.map((r) => r.name);
      for (const table of ['alert_state', 'batch_audit', 'run_history']) expect(names).toContain(table);
    });

    it('a health check runs on it and is healthy', async () => {
      const r = await runCli(['--json'], env);
      expect(r.stderr).not.toMatch(/does not exist|migrate/);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).overall_status).toBe('healthy');
    });

    it('the batch commands run on it, the audit trail included', async () => {
      const stuck = await runCli(['batches', 'stuck'], env);
      expect(stuck.code).toBe(0);
      const audit = await runCli(['batches', 'audit'], env);
      expect(audit.stderr).not.toMatch(/does not exist/);
      expect(audit.code).toBe(0);
    });

    it('sentinel slo and the alert commands run on it', async () => {
      const slo = await runCli(['slo'], env);
      expect(slo.stderr).not.toMatch(/does not exist/);
      expect(slo.code).toBe(0);
      const alerts = await runCli(['alerts'], env);
      expect(alerts.code).toBe(0);
    });

    it('sentinel serve answers /healthz after a run', async () => {
      const child = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', '--interval', '60', '--json'], {
        env: cliEnv(env),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      let stdout = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        await waitFor(() => /Listening on http:\/\/\S+/.test(stderr) && stdout.includes('\n'), 30_000, 'a run');
        const url = /Listening on (http:\/\/\S+)/.exec(stderr)![1]!;
        const r = await fetch(`${url}/healthz`);
        expect(r.status).toBe(200);
        expect(JSON.parse(stdout.split('\n')[0]!).overall_status).toBe('healthy');
      } finally {
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      }
    });

    it('sentinel migrate afterwards records the files without breaking anything', async () => {
      const r = await runCli(['migrate'], env);
      expect(r.code).toBe(0);
      const { rows } = await db.pool.query<{ name: string }>('select name from sentinel.schema_migrations order by 1');
      const files = readdirSync(MIGRATIONS).map((f) => f.replace(/\.sql$/, ''));
      expect(rows.map((row) => row.name)).toEqual(files.sort());
      const check = await runCli(['--json'], env);
      expect(check.code).toBe(0);
    });
  },
);
