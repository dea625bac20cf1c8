import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationError, migrate } from '../../src/db/migrate.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { recordingLogger } from '../helpers/logger.js';
import { until, within } from '../helpers/wait.js';

const INTAKE_SQL = readFileSync(new URL('../../sql/intake.sql', import.meta.url), 'utf8');
const VIEWS_SQL = readFileSync(
  new URL('../../supabase/migrations/20250104000000_ops_views.sql', import.meta.url),
  'utf8',
);
const SCALE_SQL = readFileSync(
  new URL('../../supabase/migrations/20261128000000_ops_views_at_scale.sql', import.meta.url),
  'utf8',
);
const STATE_SQL = readFileSync(
  new URL('../../supabase/migrations/20261205000000_sentinel_state.sql', import.meta.url),
  'utf8',
);
const HOURLY_SQL = readFileSync(
  new URL('../../supabase/migrations/20261206000000_hourly_source_stats.sql', import.meta.url),
  'utf8',
);
const TIMINGS_SQL = readFileSync(
  new URL('../../supabase/migrations/20261207000000_hourly_source_timings.sql', import.meta.url),
  'utf8',
);
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const VIEWS = 'ops.v_batch_performance, ops.v_error_distribution, ops.v_pipeline_health';

const databases: TestDb[] = [];
async function freshDb(template: 'migrated' | 'empty'): Promise<TestDb> {
  const db = await createTestDatabase({ template });
  databases.push(db);
  return db;
}
afterAll(async () => {
  await Promise.all(databases.map((db) => db.drop()));
});

async function ledger(db: TestDb): Promise<{ name: string; checksum: string; applied_at: Date }[]> {
  const { rows } = await db.pool.query<{ name: string; checksum: string; applied_at: Date }>(
    'select name, checksum, applied_at from sentinel.schema_migrations order by name',
  );
  return rows;
}

async function relationExists(db: TestDb, name: string): Promise<boolean> {
  const { rows } = await db.pool.query<{ found: boolean }>('select to_regclass($1) is not null as found', [name]);
  return rows[0]?.found === true;
}

/** A session LISTENing on `channel` of the database, collecting the payloads it receives. */
async function listen(
  db: TestDb,
  channel: string,
): Promise<{ payloads: string[]; settle: () => Promise<void>; close: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: db.url, application_name: 'sentinel-tests' });
  client.on('error', () => {});
  await client.connect();
  const payloads: string[] = [];
  client.on('notification', (n) => {
    if (n.channel === channel) payloads.push(n.payload ?? '');
  });
  await client.query(`listen ${channel}`);
  let markers = 0;
  /**
   * Waits until every notification committed so far has arrived: PostgreSQL delivers them
   * in commit order, so once a NOTIFY of ours sent now is here, the earlier ones are too.
   */
  const settle = async (): Promise<void> => {
    const marker = `test-marker-${++markers}`;
    await db.pool.query('select pg_notify($1, $2)', [channel, marker]);
    await until(() => payloads.includes(marker), `our NOTIFY ${marker} to arrive`);
    payloads.splice(payloads.indexOf(marker), 1);
  };
  return { payloads, settle, close: () => client.end().catch(() => {}) };
}

describe('migrate', () => {
  it('applies the reference intake schema and the ops views to an empty database and records both', async () => {
    const db = await freshDb('empty');
    const logger = recordingLogger();

    const results = await migrate(db.url, { withIntake: true, logger });

    expect(results).toEqual([
      { name: 'intake_reference', status: 'applied' },
      { name: '20250104000000_ops_views', status: 'applied' },
      { name: '20261128000000_ops_views_at_scale', status: 'applied' },
      { name: '20261205000000_sentinel_state', status: 'applied' },
      { name: '20261206000000_hourly_source_stats', status: 'applied' },
      { name: '20261207000000_hourly_source_timings', status: 'applied' },
    ]);
    for (const rel of ['intake.simplicity_batches', 'intake.row_errors', ...VIEWS.split(', ')]) {
      expect(await relationExists(db, rel), rel).toBe(true);
    }
    const rows = await ledger(db);
    expect(rows.map((r) => [r.name, r.checksum])).toEqual([
      ['20250104000000_ops_views', sha256(VIEWS_SQL)],
      ['20261128000000_ops_views_at_scale', sha256(SCALE_SQL)],
      ['20261205000000_sentinel_state', sha256(STATE_SQL)],
      ['20261206000000_hourly_source_stats', sha256(HOURLY_SQL)],
      ['20261207000000_hourly_source_timings', sha256(TIMINGS_SQL)],
      ['intake_reference', sha256(INTAKE_SQL)],
    ]);
    expect(logger.lines).toEqual([
      'info Applying intake_reference...',
      'info Applying 20250104000000_ops_views...',
      'info Applying 20261128000000_ops_views_at_scale...',
      'info Applying 20261205000000_sentinel_state...',
      'info Applying 20261206000000_hourly_source_stats...',
      'info Applying 20261207000000_hourly_source_timings...',
    ]);
  });

  it('reports every file unchanged on a second run and does not touch the ledger', async () => {
    const db = await freshDb('empty');
    await migrate(db.url, { withIntake: true });
    const before = await ledger(db);
    const logger = recordingLogger();

    const results = await migrate(db.url, { withIntake: true, logger });

    expect(results).toEqual([
      { name: 'intake_reference', status: 'unchanged' },
      { name: '20250104000000_ops_views', status: 'unchanged' },
      { name: '20261128000000_ops_views_at_scale', status: 'unchanged' },
      { name: '20261205000000_sentinel_state', status: 'unchanged' },
      { name: '20261206000000_hourly_source_stats', status: 'unchanged' },
      { name: '20261207000000_hourly_source_timings', status: 'unchanged' },
    ]);
    expect(await ledger(db)).toEqual(before);
    expect(logger.lines).toEqual([]);
  });

  it('leaves the intake schema alone without withIntake', async () => {
    const db = await freshDb('migrated');

    const results = await migrate(db.url);

    expect(results).toEqual([
      { name: '20250104000000_ops_views', status: 'unchanged' },
      { name: '20261128000000_ops_views_at_scale', status: 'unchanged' },
      { name: '20261205000000_sentinel_state', status: 'unchanged' },
      { name: '20261206000000_hourly_source_stats', status: 'unchanged' },
      { name: '20261207000000_hourly_source_timings', status: 'unchanged' },
    ]);
  });

  it('serializes two runs started at once on an empty database: both succeed, each file is applied once', async () => {
    const db = await freshDb('empty');

    const [a, b] = await Promise.all([migrate(db.url, { withIntake: true }), migrate(db.url, { withIntake: true })]);

    const statusesOf = (name: string): string[] =>
      [a, b].map((run) => run.find((r) => r.name === name)?.status ?? 'missing').sort();
    expect(statusesOf('intake_reference')).toEqual(['applied', 'unchanged']);
    expect(statusesOf('20250104000000_ops_views')).toEqual(['applied', 'unchanged']);
    expect(statusesOf('20261128000000_ops_views_at_scale')).toEqual(['applied', 'unchanged']);
    expect(statusesOf('20261205000000_sentinel_state')).toEqual(['applied', 'unchanged']);
    expect(statusesOf('20261206000000_hourly_source_stats')).toEqual(['applied', 'unchanged']);
    expect(statusesOf('20261207000000_hourly_source_timings')).toEqual(['applied', 'unchanged']);
    expect((await ledger(db)).map((r) => r.name)).toEqual([
      '20250104000000_ops_views',
      '20261128000000_ops_views_at_scale',
      '20261205000000_sentinel_state',
      '20261206000000_hourly_source_stats',
      '20261207000000_hourly_source_timings',
      'intake_reference',
    ]);
  });

  it('re-runs a file whose checksum changed, restoring what it creates, and reports it reapplied', async () => {
    const db = await freshDb('migrated');
    await db.pool.query(
      `update sentinel.schema_migrations set checksum = 'an older version' where name = '20250104000000_ops_views'`,
    );
    await db.pool.query('drop view ops.v_pipeline_health');

    const results = await migrate(db.url);

    expect(results).toEqual([
      { name: '20250104000000_ops_views', status: 'reapplied' },
      // Later files may redefine what an earlier one creates: they are applied again after it.
      { name: '20261128000000_ops_views_at_scale', status: 'reapplied' },
      { name: '20261205000000_sentinel_state', status: 'reapplied' },
      { name: '20261206000000_hourly_source_stats', status: 'reapplied' },
      { name: '20261207000000_hourly_source_timings', status: 'reapplied' },
    ]);
    expect(await relationExists(db, 'ops.v_pipeline_health')).toBe(true);
    const row = (await ledger(db)).find((r) => r.name === '20250104000000_ops_views');
    expect(row?.checksum).toBe(sha256(VIEWS_SQL));
  });

  it('fails the views migration with a MigrationError naming the missing intake column and the fix', async () => {
    const db = await freshDb('empty');
    await db.pool.query(INTAKE_SQL);
    await db.pool.query('alter table intake.simplicity_batches drop column parse_ms');

    const error = await migrate(db.url).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(MigrationError);
    const message = (error as MigrationError).message;
    expect(message).toContain('supabase/migrations/20250104000000_ops_views.sql');
    expect(message).toContain('intake.simplicity_batches.parse_ms');
    expect(message).toContain('sentinel migrate --with-intake');
    expect(message).not.toContain('\n');
    expect((error as MigrationError).cause).toBeInstanceOf(Error);
    // The failed file's transaction rolled back: nothing half-created, nothing recorded.
    expect(await relationExists(db, 'ops.v_batch_performance')).toBe(false);
    const { rows } = await db.pool.query<{ n: string }>(
      `select count(*)::text as n from pg_namespace where nspname = 'ops'`,
    );
    expect(rows[0]?.n).toBe('0');
    expect(await ledger(db)).toEqual([]);
  });

  it('names every missing intake table when the intake schema is absent', async () => {
    const db = await freshDb('empty');

    const error = await migrate(db.url).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toContain(
      'need tables intake.row_errors, intake.simplicity_batches, which are missing',
    );
  });

  it('reports an unreachable server as a MigrationError that hides the password', async () => {
    const url = 'postgres://sentinel:s3cretpw@127.0.0.1:1/monitored';

    const error = await migrate(url).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MigrationError);
    const message = (error as Error).message;
    expect(message).toMatch(
      /^cannot connect to the database at postgres:\/\/sentinel:\*\*\*@127\.0\.0\.1:1\/monitored: \S/,
    );
    expect(message).toContain('ECONNREFUSED');
    expect(message).not.toContain('s3cretpw');
    expect((error as Error).cause).toBeDefined();
  });

  it(
    'tells PostgREST to reload its schema cache once the ops views ' + 'are committed, and not when nothing changed',
    async () => {
      const db = await freshDb('empty');
      const listener = await listen(db, 'pgrst');
      try {
        await migrate(db.url, { withIntake: true });
        await listener.settle();
        // One per migration that changes the views (each must also work alone, under `supabase db push`).
        expect(listener.payloads).toEqual(['reload schema', 'reload schema']);

        await migrate(db.url, { withIntake: true }); // every file unchanged: nothing runs
        await listener.settle();
        expect(listener.payloads).toEqual(['reload schema', 'reload schema']);
      } finally {
        await listener.close();
      }
      expect(VIEWS_SQL.trimEnd().endsWith(`notify pgrst, 'reload schema';`)).toBe(true);
    },
  );

  it(
    'gives up on a table lock held by an open ingestion transaction after lockTimeoutMs, names the table and ' +
      'records nothing',
    async () => {
      const db = await freshDb('empty');
      await db.pool.query(INTAKE_SQL);
      const listener = await listen(db, 'pgrst');
      // An ingestion in progress: an uncommitted insert holds RowExclusiveLock on the
      // table, which `create index` (ShareLock) must wait for.
      const ingestion = await db.pool.connect();
      let error: unknown;
      try {
        await ingestion.query('begin');
        await ingestion.query(
          `insert into intake.simplicity_batches (source, status) values ('vendor_a', 'processing')`,
        );

        // Without a lock timeout the migration would wait for the insert forever; do
        // not let this test hang on it, fail it. That it gave up after lockTimeoutMs, not
        // later, is what the message and the SQLSTATE (55P03, lock_not_available) say.
        error = await within(
          migrate(db.url, { lockTimeoutMs: 300 }).then(
            () => 'migrated while the table was locked',
            (e: unknown) => e,
          ),
          20_000,
          'the migration behind the ingestion lock',
        ).catch((e: unknown) => (e instanceof Error ? e.message : e));
      } finally {
        await ingestion.query('rollback').catch(() => {});
        ingestion.release();
      }

      expect(error).toBeInstanceOf(MigrationError);
      const message = (error as MigrationError).message;
      expect(message).toBe(
        'migration supabase/migrations/20250104000000_ops_views.sql failed: could not lock ' +
          'intake.simplicity_batches within 300ms: ' +
          'another transaction holds it (a long-running ingestion?). Retry when it is idle, or create the ' +
          'sentinel_* indexes CONCURRENTLY by hand first',
      );
      expect((error as MigrationError).cause).toMatchObject({ code: '55P03' });
      // Rolled back: no ledger row, no ops schema, and no reload notification either.
      expect(await ledger(db)).toEqual([]);
      expect(await relationExists(db, 'ops.v_pipeline_health')).toBe(false);
      await listener.settle();
      expect(listener.payloads).toEqual([]);
      await listener.close();

      // Once the ingestion is done, the same migration goes through.
      expect(await migrate(db.url, { lockTimeoutMs: 300 })).toEqual([
        { name: '20250104000000_ops_views', status: 'applied' },
        { name: '20261128000000_ops_views_at_scale', status: 'applied' },
        { name: '20261205000000_sentinel_state', status: 'applied' },
        { name: '20261206000000_hourly_source_stats', status: 'applied' },
        { name: '20261207000000_hourly_source_timings', status: 'applied' },
      ]);
    },
  );

  it('does not count waiting for another migrate run as a lock timeout', async () => {
    const db = await freshDb('empty');

    // Each run waits for the other's file transactions (advisory lock) far longer than 1 ms.
    const [a, b] = await Promise.all([
      migrate(db.url, { withIntake: true, lockTimeoutMs: 1 }),
      migrate(db.url, { withIntake: true, lockTimeoutMs: 1 }),
    ]);

    expect(
      [...a, ...b]
        .filter((r) => r.status === 'applied')
        .map((r) => r.name)
        .sort(),
    ).toEqual([
      '20250104000000_ops_views',
      '20261128000000_ops_views_at_scale',
      '20261205000000_sentinel_state',
      '20261206000000_hourly_source_stats',
      '20261207000000_hourly_source_timings',
      'intake_reference',
    ]);
  });

  it('creates sentinel.alert_state (one row at most, id 1) after the views, also without withIntake', async () => {
    const db = await freshDb('empty');
    await db.pool.query(INTAKE_SQL);

    const results = await migrate(db.url);

    expect(results).toEqual([
      { name: '20250104000000_ops_views', status: 'applied' },
      { name: '20261128000000_ops_views_at_scale', status: 'applied' },
      { name: '20261205000000_sentinel_state', status: 'applied' },
      { name: '20261206000000_hourly_source_stats', status: 'applied' },
      { name: '20261207000000_hourly_source_timings', status: 'applied' },
    ]);
    expect(await relationExists(db, 'sentinel.alert_state')).toBe(true);
    await db.pool.query(`insert into sentinel.alert_state (id, state) values (1, '{}')`);
    await expect(db.pool.query(`insert into sentinel.alert_state (id, state) values (2, '{}')`)).rejects.toMatchObject({
      code: '23514',
    });
    // Idempotent: the file applied again (a changed checksum) keeps the row.
    await db.pool.query(
      `update sentinel.schema_migrations set checksum = 'older' where name = '20261205000000_sentinel_state'`,
    );
    expect((await migrate(db.url)).find((r) => r.name === '20261205000000_sentinel_state')).toEqual({
      name: '20261205000000_sentinel_state',
      status: 'reapplied',
    });
    expect((await db.pool.query('select id from sentinel.alert_state')).rows).toEqual([{ id: 1 }]);
  });

  it("scope 'state' applies only the sentinel_state migration, to a database without any pipeline", async () => {
    const db = await freshDb('empty');

    expect(await migrate(db.url, { scope: 'state' })).toEqual([
      { name: '20261205000000_sentinel_state', status: 'applied' },
    ]);

    expect(await relationExists(db, 'sentinel.alert_state')).toBe(true);
    expect(await relationExists(db, 'ops.v_pipeline_health')).toBe(false);
    expect((await ledger(db)).map((r) => r.name)).toEqual(['20261205000000_sentinel_state']);
    expect(await migrate(db.url, { scope: 'state' })).toEqual([
      { name: '20261205000000_sentinel_state', status: 'unchanged' },
    ]);
  });

  it('rejects a lockTimeoutMs that is not a whole number of milliseconds', async () => {
    const db = await freshDb('migrated');
    await expect(migrate(db.url, { lockTimeoutMs: 1.5 })).rejects.toThrow(/lockTimeoutMs must be a whole number/);
  });

  it(
    'grants the views to service_role and revokes them from ' + 'authenticated and anon where those roles exist',
    async () => {
      const db = await freshDb('migrated');
      const client = await db.pool.connect();
      try {
        // Roles are cluster-wide, so create them (if missing) only inside a transaction
        // that is rolled back: nothing leaks onto a shared server.
        await client.query('begin');
        for (const role of ['service_role', 'authenticated', 'anon']) {
          const { rowCount } = await client.query('select 1 from pg_roles where rolname = $1', [role]);
          if (!rowCount) await client.query(`create role ${role} nologin`);
        }
        // As Supabase's default privileges would, hand the views to everyone first.
        await client.query(`grant usage on schema ops to authenticated, anon`);
        await client.query(`grant select on ${VIEWS} to authenticated, anon`);

        await client.query(VIEWS_SQL);

        const { rows } = await client.query<{ role: string; schema_usage: boolean; selectable: string[] }>(
          `select r.role,
                has_schema_privilege(r.role, 'ops', 'usage') as schema_usage,
                array(select v from unnest(string_to_array($1, ', ')) v
                      where has_table_privilege(r.role, v, 'select') order by v) as selectable
         from unnest(array['service_role', 'authenticated', 'anon']) as r(role)`,
          [VIEWS],
        );
        expect(rows).toEqual([
          { role: 'service_role', schema_usage: true, selectable: VIEWS.split(', ') },
          { role: 'authenticated', schema_usage: false, selectable: [] },
          { role: 'anon', schema_usage: false, selectable: [] },
        ]);
      } finally {
        await client.query('rollback');
        client.release();
      }
    },
  );
});
