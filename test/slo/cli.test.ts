import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/history/record.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { insertBatch } from '../helpers/fixtures.js';

let db: TestDb;
let stateDir: string;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  await db.pool.query('truncate intake.simplicity_batches cascade');
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
  stateDir = await mkdtemp(join(tmpdir(), 'sentinel-slo-state-'));
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db.url,
  SENTINEL_STATE_DIR: stateDir,
  ...extra,
});
const minutesAgo = (m: number): Date => new Date(Date.now() - m * 60_000);

/** A healthy hour: 1000 rows, 2 % errors, 20 % duplicates, processed in 2 minutes. */
async function healthyBatch(): Promise<void> {
  await insertBatch(db.pool, {
    created_at: minutesAgo(30),
    started_at: minutesAgo(30),
    completed_at: minutesAgo(28),
    total_rows: 1000,
    error_rows: 20,
    skipped_rows: 200,
    inserted_rows: 780,
  });
}

describe('run history', () => {
  it('sentinel --json records every run in <state_dir>/history-<environment>.jsonl', async () => {
    expect((await runCli(['--json'], env())).code).toBe(0);
    expect((await runCli(['--json', '--env', 'prod'], env())).code).toBe(0);
    expect((await runCli(['--json'], env())).code).toBe(0);
    const lines = (await readFile(join(stateDir, 'history-dev.jsonl'), 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const record = JSON.parse(lines[0]!) as RunRecord;
    expect(record).toMatchObject({
      environment: 'dev',
      overall_status: 'healthy',
      schema_cache: { probed: false, ok: null },
    });
    expect(record.checks.find((c) => c.name === 'stuck_batches')).toMatchObject({ outcome: 'ok', level: null });
    expect(Math.abs(Date.parse(record.timestamp) - Date.now())).toBeLessThan(60_000);
    expect((await readFile(join(stateDir, 'history-prod.jsonl'), 'utf8')).trimEnd().split('\n')).toHaveLength(1);
  });

  it('a run whose history cannot be written still reports, with a warning', async () => {
    // The history file's place is taken by a directory: the append fails.
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(stateDir, 'history-dev.jsonl'));
    const r = await runCli(['--json'], env());
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).overall_status).toBe('healthy');
    expect(r.stderr).toMatch(/\| WARNING +\| sentinel \| Could not record this run in the history: /);
  });
});

describe('sentinel slo', () => {
  it('prints one JSON object, exit 0 when every SLO with data is met', async () => {
    await healthyBatch();
    await runCli(['--json'], env());
    const r = await runCli(['slo', '--json', '--days', '7'], env());
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ days: 7, environment: 'dev', all_met: true });
    const by = Object.fromEntries(report.slos.map((s: { name: string }) => [s.name, s]));
    expect(by.processing_time).toMatchObject({
      value: 100,
      met: true,
      error_budget_remaining_pct: 100,
      burn_rate: 0,
      detail: { p95_minutes: 2 },
    });
    expect(by.error_rate).toMatchObject({ value: 100, met: true, detail: { overall_error_rate_pct: 2 } });
    expect(by.dedupe_rate).toMatchObject({ value: 20, met: true });
    // The run recorded above did not probe PostgREST (none configured).
    expect(by.schema_cache).toMatchObject({ value: null, met: null, detail: { runs: 1, probes: 0 } });
    expect(Date.parse(report.to) - Date.parse(report.from)).toBe(7 * 86_400_000);
  });

  it('prints the table and exits 1 when an SLO is missed', async () => {
    await insertBatch(db.pool, {
      created_at: minutesAgo(30),
      started_at: minutesAgo(30),
      completed_at: minutesAgo(20),
    });
    const r = await runCli(['slo'], env());
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^SLO report for dev: last 30 days \(/);
    expect(r.stdout).toMatch(/\nprocessing_time +0\.00% within 5m, p95 10m \(1 batches\) .* NO /);
    expect(r.stdout).toContain('Missed: processing_time');
    expect(r.stdout).toContain('Formulas:');
  });

  it('an empty window exits 0 with no data', async () => {
    const r = await runCli(['slo', '--days', '1'], env());
    expect(r.code).toBe(0);
    // Every row, schema_cache's too (no probes recorded: PostgREST not configured).
    for (const name of ['processing_time', 'error_rate', 'schema_cache', 'dedupe_rate'])
      expect(r.stdout).toMatch(new RegExp(`\\n${name} +no data `));
    expect(r.stdout).toContain('Every SLO with data is met.');
  });

  it.each([['0'], ['366'], ['1.5'], ['abc']])('--days %s is a usage error (exit 3, one line)', async (days) => {
    const r = await runCli(['slo', '--days', days], env());
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--days <n>.*whole number of days from 1 to 365/);
    expect(r.stdout).toBe('');
  });

  it('a bad history.retention_days is a config error naming it', async () => {
    const file = join(stateDir, 'sentinel.yaml');
    await writeFile(file, 'history: { retention_days: 0 }\n');
    const r = await runCli(['slo', '--config', file], env());
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('sentinel: config error: history.retention_days:');
  });

  it('an unreachable database: exit 3, one line, no password', async () => {
    const r = await runCli(['slo'], env({ DATABASE_URL: 'postgres://sentinel:topsecretpw@127.0.0.1:1/app' }));
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^sentinel: cannot compute the SLOs: connection refused/);
    expect(r.stdout + r.stderr).not.toContain('topsecretpw');
  });
});
