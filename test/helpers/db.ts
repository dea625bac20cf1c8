/**
 * A fresh database per test file (or per test), cloned from the template that
 * test/global-setup.ts migrated once for the whole run.
 *
 * ```ts
 * let db: TestDb;
 * beforeAll(async () => { db = await createTestDatabase(); });
 * afterAll(async () => { await db?.drop(); });
 * ```
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, inject } from 'vitest';
import { databaseUrl, ident, withAdmin } from './pg.js';

export { ident };

export interface TestDb {
  /** Database name (unique to this run). */
  name: string;
  /** Superuser URL of this database. */
  url: string;
  /** A writable pool on it, for fixtures and assertions. Ended by `drop()`. */
  pool: pg.Pool;
  /** Ends the pool and drops the database, even if something is still connected. Idempotent. */
  drop(): Promise<void>;
}

export interface CreateTestDatabaseOptions {
  /**
   * `migrated` (default): intake schema + ops views + migration ledger, as
   * `sentinel migrate --with-intake` leaves a database. `empty`: a blank database
   * (cloned from template0), for migration tests.
   */
  template?: 'migrated' | 'empty';
}

/** The cluster's maintenance database URL (superuser). */
export function adminUrl(): string {
  return inject('sentinelAdminUrl');
}

/** The URL of another database on the test cluster, same credentials. */
export function urlFor(dbName: string): string {
  return databaseUrl(adminUrl(), dbName);
}

export async function createTestDatabase(opts: CreateTestDatabaseOptions = {}): Promise<TestDb> {
  const template = (opts.template ?? 'migrated') === 'migrated' ? inject('sentinelTemplateDb') : 'template0';
  // The run id prefix lets the global teardown drop whatever a crashed file left behind.
  const name = `sentinel_test_${inject('sentinelRunId')}_${randomBytes(4).toString('hex')}`;

  await withAdmin(adminUrl(), async (admin) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`create database ${ident(name)} template ${ident(template)}`);
        return;
      } catch (err) {
        // 55006 object_in_use: "source database ... is being accessed by other users".
        // Another file's clone or a lingering backend; it goes away quickly.
        if ((err as { code?: string }).code !== '55006' || attempt >= 8) throw err;
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  });

  const url = urlFor(name);
  const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'sentinel-tests' });
  pool.on('error', () => {
    /* a backend killed by drop() ... with (force); nothing to do */
  });

  let dropped: Promise<void> | undefined;
  return {
    name,
    url,
    pool,
    drop() {
      dropped ??= (async () => {
        await pool.end().catch(() => {});
        await withAdmin(adminUrl(), (admin) => admin.query(`drop database if exists ${ident(name)} with (force)`));
      })();
      return dropped;
    },
  };
}

/**
 * Registers hooks for a test file: one migrated database for the whole file,
 * dropped afterwards, with the intake tables emptied before each test. Returns a
 * getter because the database exists only once `beforeAll` has run.
 */
export function useTestDatabase(): () => TestDb {
  let db: TestDb | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  beforeEach(async () => {
    await db!.pool.query('truncate intake.simplicity_batches, intake.row_errors cascade');
  });
  return () => db!;
}
