import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CLI, type CliResult, cliEnv, runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { insertBatch, minutesAgo } from '../helpers/fixtures.js';
import { until } from '../helpers/wait.js';

let db: TestDb;
let stateDir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  stateDir = await mkdtemp(join(tmpdir(), 'sentinel-batches-state-'));
});
afterAll(async () => {
  await db?.drop();
  await rm(stateDir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('truncate intake.simplicity_batches cascade');
  await db.pool.query('truncate sentinel.batch_audit');
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db.url,
  SENTINEL_STATE_DIR: stateDir,
  SUDO_USER: 'alice',
  ...extra,
});
const batches = (args: string[], extra?: Record<string, string | undefined>) =>
  runCli(['batches', ...args], env(extra));

async function table(): Promise<Array<Record<string, unknown>>> {
  const { rows } = await db.pool.query(
    'select id::text, status, rejection_reason, completed_at, updated_at from intake.simplicity_batches order by id',
  );
  return rows;
}
async function statusOf(id: string): Promise<string> {
  const { rows } = await db.pool.query<{ status: string }>(
    'select status from intake.simplicity_batches where id = $1',
    [id],
  );
  return rows[0]!.status;
}
async function auditRows(): Promise<Array<{ reason: string; batch_ids: string[]; os_user: string; db_role: string }>> {
  const { rows } = await db.pool.query(
    'select reason, batch_ids::text[] as batch_ids, os_user, db_role from sentinel.batch_audit order by id',
  );
  return rows;
}
/** A usage or database error: exit 3, one line on stderr, no stack trace, nothing on stdout. */
function expectOneLineError(r: CliResult, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(3);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('sentinel batches stuck', () => {
  it('lists the batches stuck past the stuck_batches threshold, exit 0', async () => {
    const stuck = await insertBatch(db.pool, { source: 'vendor_b', status: 'validating', updated_at: minutesAgo(25) });
    await insertBatch(db.pool, { status: 'processing', updated_at: minutesAgo(8) });
    await insertBatch(db.pool, { status: 'uploaded', updated_at: minutesAgo(60) });
    const human = await batches(['stuck']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^1 batch stuck > 10m /);
    expect(human.stdout).toMatch(new RegExp(`${stuck}\\s+vendor_b\\s+validating\\s+25m\\d*s?\\n`));
    expect(human.stdout).toContain('sentinel batches fail-stuck --older-than 10m');

    const json = await batches(['stuck', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      { id: stuck, source: 'vendor_b', status: 'validating', age_minutes: expect.closeTo(25, 0) },
    ]);
  });

  it('says so when nothing is stuck', async () => {
    const r = await batches(['stuck']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('No batches stuck > 10m.\n');
  });
});

describe('sentinel batches fail-stuck', () => {
  it('without --yes lists exactly what would change and changes nothing', async () => {
    const a = await insertBatch(db.pool, { source: 'vendor_a', status: 'processing', updated_at: minutesAgo(45) });
    const b = await insertBatch(db.pool, { source: 'vendor_b', status: 'inserting', updated_at: minutesAgo(35) });
    await insertBatch(db.pool, { status: 'processing', updated_at: minutesAgo(20) });
    const before = await table();
    const r = await batches(['fail-stuck', '--older-than', '30m', '--reason', 'worker pod OOM-killed']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Dry run: 2 batches stuck > 30m would be set to failed, reason "worker pod OOM-killed":/);
    expect(r.stdout.indexOf(a)).toBeLessThan(r.stdout.indexOf(b));
    expect(r.stdout).toContain('Nothing was changed. Add --yes to apply');
    expect(await table()).toEqual(before);
    expect(await auditRows()).toEqual([]);

    const json = await batches([
      'fail-stuck',
      '--older-than',
      '30m',
      '--reason',
      'x',
      '--source',
      'vendor_b',
      '--json',
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      dry_run: true,
      older_than_minutes: 30,
      source: 'vendor_b',
      batches: [{ id: b, status: 'inserting' }],
    });
  });

  it('with --yes fails exactly the stuck ones, audited, and `batches audit` shows who and why', async () => {
    const stuck = await insertBatch(db.pool, { source: 'vendor_a', status: 'processing', updated_at: minutesAgo(45) });
    const otherSource = await insertBatch(db.pool, {
      source: 'vendor_b',
      status: 'processing',
      updated_at: minutesAgo(45),
    });
    const fresh = await insertBatch(db.pool, { source: 'vendor_a', status: 'validating', updated_at: minutesAgo(10) });
    const done = await insertBatch(db.pool, { source: 'vendor_a', status: 'completed', updated_at: minutesAgo(90) });
    const r = await batches([
      'fail-stuck',
      '--older-than',
      '30m',
      '--source',
      'vendor_a',
      '--reason',
      'worker crashed',
      '--yes',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^Failed 1 batch stuck > 30m from vendor_a, reason "worker crashed" \(audit record \d+, role postgres\):/,
    );
    expect(r.stdout).toMatch(new RegExp(`${stuck}\\s+vendor_a\\s+processing → failed`));
    expect(await statusOf(stuck)).toBe('failed');
    expect(await statusOf(otherSource)).toBe('processing');
    expect(await statusOf(fresh)).toBe('validating');
    expect(await statusOf(done)).toBe('completed');
    expect(await auditRows()).toEqual([
      { reason: 'worker crashed', batch_ids: [stuck], os_user: 'alice', db_role: 'postgres' },
    ]);

    const audit = await batches(['audit']);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(
      /^#\d+ {2}\S+Z {2}alice \/ postgres {2}\[dev\] {2}1 batch stuck > 30m from vendor_a: "worker crashed"\n {4}/,
    );
    expect(audit.stdout).toContain(stuck);
    const json = JSON.parse((await batches(['audit', '--json', '--limit', '1'])).stdout);
    expect(json).toEqual([
      expect.objectContaining({
        os_user: 'alice',
        db_role: 'postgres',
        reason: 'worker crashed',
        environment: 'dev',
        source: 'vendor_a',
        batch_ids: [stuck],
      }),
    ]);
  });

  it('leaves alone a batch that completed between the dry run and --yes', async () => {
    const finishing = await insertBatch(db.pool, { status: 'inserting', updated_at: minutesAgo(40) });
    const stuck = await insertBatch(db.pool, { status: 'processing', updated_at: minutesAgo(40) });
    const dry = await batches(['fail-stuck', '--older-than', '30m', '--reason', 'stuck', '--json']);
    expect(
      JSON.parse(dry.stdout)
        .batches.map((b: { id: string }) => b.id)
        .sort(),
    ).toEqual([finishing, stuck].sort());
    await db.pool.query(
      `update intake.simplicity_batches set status = 'completed', completed_at = now() where id = $1`,
      [finishing],
    );
    const r = await batches(['fail-stuck', '--older-than', '30m', '--reason', 'stuck', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      dry_run: false,
      batches: [{ id: stuck, status_before: 'processing' }],
    });
    expect(await statusOf(finishing)).toBe('completed');
    expect((await auditRows()).map((a) => a.batch_ids)).toEqual([[stuck]]);
  });

  it('with nothing stuck says so and writes no audit record', async () => {
    await insertBatch(db.pool, { status: 'processing', updated_at: minutesAgo(5) });
    const r = await batches(['fail-stuck', '--older-than', '30m', '--reason', 'stuck', '--yes']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('No batches stuck > 30m: nothing failed, no audit record written.\n');
    expect(await auditRows()).toEqual([]);
  });

  it('two processes at once fail each batch once: disjoint audit records covering every stuck batch', async () => {
    const stuck: string[] = [];
    for (let i = 0; i < 10; i++)
      stuck.push(
        await insertBatch(db.pool, { source: `vendor_${i % 3}`, status: 'processing', updated_at: minutesAgo(40 + i) }),
      );
    // Hold every stuck batch until both processes wait for it, so that their transactions overlap.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select id from intake.simplicity_batches for update');
      const run = (reason: string) =>
        new Promise<CliResult>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [CLI, 'batches', 'fail-stuck', '--older-than', '30m', '--reason', reason, '--yes', '--json'],
            { env: cliEnv(env()) },
          );
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          child.on('error', reject);
          child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
        });
      const runs = Promise.all([run('first'), run('second')]);
      await until(async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'sentinel' and wait_event_type = 'Lock'`,
        );
        return rows[0]!.n === 2;
      }, 'the two fail-stuck runs to wait together');
      await holder.query('commit');
      const results = await runs;
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      const failed = results.flatMap((r) => JSON.parse(r.stdout).batches.map((b: { id: string }) => b.id));
      expect(failed.sort()).toEqual([...stuck].sort());
    } finally {
      await holder.end();
    }
    const records = await auditRows();
    const ids = records.flatMap((r) => r.batch_ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual([...stuck].sort());
    const { rows } = await db.pool.query<{ id: string; rejection_reason: string }>(
      'select id::text, rejection_reason from intake.simplicity_batches',
    );
    for (const row of rows)
      expect(records.find((r) => r.batch_ids.includes(row.id))!.reason).toBe(row.rejection_reason);
  });

  it('a role without UPDATE gets one line naming the privilege, exit 3, and nothing changes; nor without INSERT on the audit', async () => {
    const role = `sentinel_noupdate_${process.pid}`;
    const password = 'pw-not-to-be-printed-7f3a';
    const stuck = await insertBatch(db.pool, { status: 'processing', updated_at: minutesAgo(45) });
    await db.pool.query(`create role ${role} login password '${password}'`);
    try {
      await db.pool.query(`grant usage on schema intake, sentinel to ${role}`);
      await db.pool.query(`grant select on intake.simplicity_batches to ${role}`);
      await db.pool.query(`grant select, insert on sentinel.batch_audit to ${role}`);
      const url = new URL(db.url);
      url.username = role;
      url.password = password;
      const as = { DATABASE_URL: url.toString() };

      const dry = await batches(['fail-stuck', '--older-than', '30m', '--reason', 'stuck'], as);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toContain(stuck);

      const r = await batches(['fail-stuck', '--older-than', '30m', '--reason', 'stuck', '--yes'], as);
      expectOneLineError(
        r,
        new RegExp(
          `^sentinel: role "${role}" may not UPDATE intake\\.simplicity_batches \\(permission denied for table simplicity_batches\\); grant it UPDATE or run as a role that has it`,
        ),
      );
      expect(await statusOf(stuck)).toBe('processing');

      await db.pool.query(`grant update on intake.simplicity_batches to ${role}`);
      await db.pool.query(`revoke insert on sentinel.batch_audit from ${role}`);
      const noAudit = await batches(['fail-stuck', '--older-than', '30m', '--reason', 'stuck', '--yes'], as);
      expectOneLineError(
        noAudit,
        new RegExp(`^sentinel: role "${role}" may not INSERT into sentinel\\.batch_audit .*Nothing was changed`),
      );
      expect(await statusOf(stuck)).toBe('processing');
      for (const out of [dry, r, noAudit]) expect(out.stdout + out.stderr).not.toContain(password);
      expect(await auditRows()).toEqual([]);
    } finally {
      await db.pool.query(`drop owned by ${role}`);
      await db.pool.query(`drop role ${role}`);
    }
  });

  it('rejects a bad --older-than, a missing or empty --reason and a bad --limit with one line, exit 3', async () => {
    const stuck = await insertBatch(db.pool, { status: 'processing', updated_at: minutesAgo(45) });
    const cases: Array<[string[], RegExp]> = [
      [
        ['fail-stuck', '--older-than', 'soon', '--reason', 'x', '--yes'],
        /^sentinel: config error: --older-than: "soon" is not a duration/,
      ],
      [
        ['fail-stuck', '--older-than', '30s', '--reason', 'x', '--yes'],
        /^sentinel: config error: --older-than: 30s is under 1m/,
      ],
      [['fail-stuck', '--older-than', '30m', '--yes'], /^sentinel: required option '--reason <text>' not specified/],
      [['fail-stuck', '--reason', 'x', '--yes'], /^sentinel: required option '--older-than <duration>' not specified/],
      [['fail-stuck', '--older-than', '30m', '--reason', '   ', '--yes'], /^sentinel: config error: --reason: say why/],
      [
        ['fail-stuck', '--older-than', '30m', '--reason', 'x'.repeat(501), '--yes'],
        /^sentinel: config error: --reason: 501 characters, at most 500/,
      ],
      [['audit', '--limit', '0'], /^sentinel: option '--limit <n>' argument '0' is invalid/],
    ];
    for (const [args, pattern] of cases) expectOneLineError(await batches(args), pattern);
    expect(await statusOf(stuck)).toBe('processing');
  });

  it('without a database configured says so, exit 3', async () => {
    expectOneLineError(
      await runCli(['batches', 'stuck'], { SENTINEL_STATE_DIR: stateDir }),
      /^sentinel: config error: .*database/i,
    );
  });
});
