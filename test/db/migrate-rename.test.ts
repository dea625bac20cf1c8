/**
 * Databases migrated by an earlier release: their ledger names the migrations as that
 * release did (`20250104_ops_views`, `sentinel_state` from `sql/`), with the checksums
 * of the files it shipped. test/db/fixtures/released-migrations/ keeps those files
 * byte for byte, so these tests apply exactly what an earlier `sentinel migrate` did.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, RELEASED_MIGRATIONS, STATE_MIGRATION } from '../../src/db/migrate.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { recordingLogger } from '../helpers/logger.js';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const released = (file: string): string =>
  readFileSync(new URL(`./fixtures/released-migrations/${file}`, import.meta.url), 'utf8');
const current = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The released files in the order that release applied them, with the ledger names it wrote. */
const RELEASE = [
  { formerName: 'intake_reference', name: 'intake_reference', sql: released('intake_reference.sql') },
  { formerName: '20250104_ops_views', name: '20250104000000_ops_views', sql: released('20250104_ops_views.sql') },
  {
    formerName: '20261128000000_ops_views_at_scale',
    name: '20261128000000_ops_views_at_scale',
    sql: released('20261128000000_ops_views_at_scale.sql'),
  },
  { formerName: 'sentinel_state', name: STATE_MIGRATION, sql: released('sentinel_state.sql') },
];
/** Files added since that release: a database it migrated gets them applied, nothing else. */
const ADDED = ['20261206000000_hourly_source_stats', '20261207000000_hourly_source_timings'];
const CURRENT: Record<string, string> = {
  intake_reference: current('sql/intake.sql'),
  '20250104000000_ops_views': current('supabase/migrations/20250104000000_ops_views.sql'),
  '20261128000000_ops_views_at_scale': current('supabase/migrations/20261128000000_ops_views_at_scale.sql'),
  [STATE_MIGRATION]: current(`supabase/migrations/${STATE_MIGRATION}.sql`),
};

/** The SQL without its whole-line comments and blank lines: what the server runs. */
const statements = (sql: string): string =>
  sql
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('--'))
    .join('\n');

const databases: TestDb[] = [];
afterAll(async () => {
  await Promise.all(databases.map((db) => db.drop()));
});

/** An empty database migrated as the earlier release left it: the files run, the ledger written by its rules. */
async function migratedByRelease(files = RELEASE): Promise<TestDb> {
  const db = await createTestDatabase({ template: 'empty' });
  databases.push(db);
  await db.pool.query(`create schema if not exists sentinel;
    create table if not exists sentinel.schema_migrations (
      name text primary key, checksum text not null, applied_at timestamptz not null default now())`);
  for (const f of files) {
    await db.pool.query(f.sql);
    await db.pool.query('insert into sentinel.schema_migrations (name, checksum) values ($1, $2)', [
      f.formerName,
      sha256(f.sql),
    ]);
  }
  return db;
}

async function ledger(db: TestDb): Promise<[string, string][]> {
  const { rows } = await db.pool.query<{ name: string; checksum: string }>(
    'select name, checksum from sentinel.schema_migrations order by name',
  );
  return rows.map((r) => [r.name, r.checksum]);
}

describe('migrations renamed since an earlier release', () => {
  it('lists every released file with its former name, and each differs from today only in comments', () => {
    for (const f of RELEASE) {
      const entry = RELEASED_MIGRATIONS[f.name];
      expect(entry, f.name).toBeDefined();
      expect(entry?.formerName ?? f.name).toBe(f.formerName);
      expect(entry?.commentOnlyChecksums).toContain(sha256(f.sql));
      // The claim that lets migrate skip them: the server would run the same statements.
      expect(statements(CURRENT[f.name]!)).toBe(statements(f.sql));
      expect(sha256(CURRENT[f.name]!)).not.toBe(sha256(f.sql));
    }
  });

  it(
    'adopts a database migrated by the earlier release: rows ' + 'renamed, checksums updated, nothing run again',
    async () => {
      const db = await migratedByRelease();
      // Every views migration ends with a NOTIFY: one arriving means a file ran again.
      const listener = new pg.Client({ connectionString: db.url, application_name: 'sentinel-tests' });
      listener.on('error', () => {});
      await listener.connect();
      const notified: string[] = [];
      listener.on('notification', (n) => notified.push(n.payload ?? ''));
      await listener.query('listen pgrst');
      const logger = recordingLogger();

      const results = await migrate(db.url, { withIntake: true, logger });

      expect(results).toEqual([
        ...RELEASE.map((f) => ({ name: f.name, status: 'unchanged' })),
        ...ADDED.map((name) => ({ name, status: 'applied' })),
      ]);
      expect(await ledger(db)).toEqual(
        [
          ...RELEASE.map((f) => [f.name, sha256(CURRENT[f.name]!)] as [string, string]),
          ...ADDED.map((name) => [name, sha256(current(`supabase/migrations/${name}.sql`))] as [string, string]),
        ].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      );
      expect(logger.lines.filter((l) => !l.startsWith('debug'))).toEqual(
        ADDED.map((name) => `info Applying ${name}...`),
      );
      // A round trip on the listener delivers whatever was committed before it.
      await listener.query('select 1');
      expect(notified).toEqual([]);
      await listener.end();

      expect(await migrate(db.url, { withIntake: true })).toEqual(
        [...RELEASE.map((f) => f.name), ...ADDED].map((name) => ({ name, status: 'unchanged' })),
      );
    },
  );

  it(
    'renames a row whose released content is older still, and ' + 'applies that file again under its new name',
    async () => {
      const db = await migratedByRelease();
      await db.pool.query(
        `update sentinel.schema_migrations set checksum = 'a release before that' where name = '20250104_ops_views'`,
      );
      await db.pool.query('drop view ops.v_pipeline_health');

      const results = await migrate(db.url);

      expect(results).toEqual([
        { name: '20250104000000_ops_views', status: 'reapplied' },
        { name: '20261128000000_ops_views_at_scale', status: 'reapplied' },
        { name: STATE_MIGRATION, status: 'reapplied' },
        ...ADDED.map((name) => ({ name, status: 'applied' })),
      ]);
      const { rows } = await db.pool.query<{ found: boolean }>(
        `select to_regclass('ops.v_pipeline_health') is not null as found`,
      );
      expect(rows[0]?.found).toBe(true);
      expect((await ledger(db)).map(([name]) => name)).toEqual([
        '20250104000000_ops_views',
        '20261128000000_ops_views_at_scale',
        STATE_MIGRATION,
        ...ADDED,
        'intake_reference',
      ]);
    },
  );

  it('drops a former-name row written again by an older Sentinel after the new name was recorded', async () => {
    const db = await migratedByRelease();
    await migrate(db.url);
    const state = RELEASE[3]!;
    await db.pool.query('insert into sentinel.schema_migrations (name, checksum) values ($1, $2)', [
      state.formerName,
      sha256(state.sql),
    ]);

    expect((await migrate(db.url)).map((r) => r.status)).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
      'unchanged',
      'unchanged',
    ]);

    expect((await ledger(db)).map(([name]) => name)).not.toContain('sentinel_state');
  });

  it("adopts a replicas' state database migrated by the earlier release (scope 'state')", async () => {
    const db = await migratedByRelease([RELEASE[3]!]);

    expect(await migrate(db.url, { scope: 'state' })).toEqual([{ name: STATE_MIGRATION, status: 'unchanged' }]);

    expect(await ledger(db)).toEqual([[STATE_MIGRATION, sha256(CURRENT[STATE_MIGRATION]!)]]);
  });
});
