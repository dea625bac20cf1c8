import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { type Logger, silentLogger } from '../log.js';
import { displayUrl, Redactor, secretsOfUrl } from '../util/redact.js';
import { connectionConfig } from './connect.js';

/** What happened to one migration file. */
export interface MigrationResult {
  /** `intake_reference` for the reference intake schema, else the file name without `.sql`. */
  name: string;
  /**
   * `applied`: first run on this database. `unchanged`: already applied with the same
   * content, skipped. `reapplied`: applied before with different content, or after an
   * earlier file that was (re)applied, and run again (every migration is idempotent,
   * so that brings the database up to date).
   */
  status: 'applied' | 'unchanged' | 'reapplied';
}

/** A migration could not run. The message is one line meant for the user; the pg error is the `cause`. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

export interface MigrateOptions {
  /** Also apply the reference `intake` schema (demos and tests; production has the engine's own). */
  withIntake?: boolean;
  logger?: Logger;
  /**
   * How long each migration file may wait for a table lock (`set local lock_timeout`),
   * in milliseconds; default 5000, 0 waits forever. `create index` (not concurrent)
   * needs a lock that an open write transaction on the table holds, and while it
   * waits every other writer queues behind it: better to give up and say so than to
   * stall ingestion.
   */
  lockTimeoutMs?: number;
  /**
   * `all` (default): the intake schema (with `withIntake`), then every file of
   * `supabase/migrations/` (the ops views, Sentinel's own tables). `state`: only the
   * migration of Sentinel's own tables (`…_sentinel_state.sql`), for a separate
   * `replicas.state_database_url`, which holds no pipeline.
   */
  scope?: 'all' | 'state';
}

// Resolved from this module so that it works from src/db (tests) and dist/db (the
// installed package) alike: both sit two levels below the package root.
const INTAKE_FILE = new URL('../../sql/intake.sql', import.meta.url);
const MIGRATIONS_DIR = new URL('../../supabase/migrations/', import.meta.url);
/** Sentinel's own tables: the last migration, and the only one a separate state database gets. */
export const STATE_MIGRATION = '20261205000000_sentinel_state';

/**
 * What earlier releases recorded in the ledger for a migration of today: its former
 * name (before every file followed Supabase's `<14-digit timestamp>_<name>.sql`, and
 * before Sentinel's tables moved from `sql/` into `supabase/migrations/`), and the
 * checksums of released contents that differ from today's in comments only. A
 * database migrated by an earlier release thus has its rows renamed and its
 * checksums brought up to date without running anything again: re-running
 * `create index` would queue behind the engine's writers for nothing.
 * test/db/migrate-rename.test.ts keeps the released files and checks both claims.
 */
export const RELEASED_MIGRATIONS: Readonly<Record<string, { formerName?: string; commentOnlyChecksums: string[] }>> = {
  intake_reference: {
    commentOnlyChecksums: ['7094c1ff9994f7017a7096f2a69ec8bad86c880c3010f9cf5372958c2770edc0'],
  },
  '20250104000000_ops_views': {
    formerName: '20250104_ops_views',
    commentOnlyChecksums: ['a68497b47e9bc0096961d36e508d2d53afb300d6e4eb511457330a8afd40a7d1'],
  },
  '20261128000000_ops_views_at_scale': {
    commentOnlyChecksums: ['e498413bbce235a64479d94c4820859939b19513add2c0fb9e5b13f545e56f58'],
  },
  [STATE_MIGRATION]: {
    formerName: 'sentinel_state',
    commentOnlyChecksums: ['384e3af2c24042830517b1ffcd45f48933d83389705fa72ac43e4152da3d05dc'],
  },
};

/** Serializes concurrent `migrate` runs against one database (advisory locks are per database). */
const MIGRATION_LOCK_KEY = '7366746140117261390'; // arbitrary, but fixed forever
const CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
/** SQLSTATE lock_not_available: what `lock_timeout` raises. */
const LOCK_NOT_AVAILABLE = '55P03';

interface MigrationFile {
  name: string;
  /** How the file is named in messages: relative to the package root. */
  label: string;
  url: URL;
}

/**
 * Applies the reference intake schema (with `withIntake`) and then every
 * `supabase/migrations/*.sql` in name order, recording each in
 * `sentinel.schema_migrations` by name and sha256 checksum. Rows that an earlier
 * release wrote under a former name are adopted (see {@link RELEASED_MIGRATIONS}).
 *
 * Each file runs in its own transaction that first takes a fixed advisory lock, so
 * two `migrate` runs at once (two cron hosts, parallel CI jobs) queue up instead of
 * racing, and the second one sees the first one's ledger rows.
 *
 * @throws MigrationError naming the file and the database's message; never the password.
 */
export async function migrate(databaseUrl: string, opts: MigrateOptions = {}): Promise<MigrationResult[]> {
  const logger = opts.logger ?? silentLogger;
  const redactor = new Redactor(secretsOfUrl(databaseUrl));
  const files = await migrationFiles(opts.withIntake ?? false, opts.scope ?? 'all');
  const lockTimeoutMs = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs < 0) {
    throw new MigrationError(
      `lockTimeoutMs must be a whole number of milliseconds (0: wait forever), not ${String(opts.lockTimeoutMs)}`,
    );
  }

  const client = await connect(databaseUrl, redactor);
  try {
    await inTransaction(client, async () => {
      // The lock comes before the DDL: `create ... if not exists` is not safe against
      // a concurrent identical create (it can fail with a unique violation on the
      // catalog), so two first-ever runs must not overlap here either.
      await lock(client);
      await client.query('create schema if not exists sentinel');
      await client.query(`
        create table if not exists sentinel.schema_migrations (
          name text primary key,
          checksum text not null,
          applied_at timestamptz not null default now()
        )`);
    }).catch((err: unknown) => {
      throw new MigrationError(
        `cannot create the migration ledger sentinel.schema_migrations: ${describe(err, redactor)}`,
        {
          cause: err,
        },
      );
    });

    const results: MigrationResult[] = [];
    // Once a changed file is applied again, every later one is applied again too: a
    // later file may redefine what an earlier one creates (20261128…_at_scale replaces
    // views of 20250104…), and all of them are idempotent.
    let cascade = false;
    for (const file of files) {
      const sql = await readFile(file.url, 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      try {
        const status = await inTransaction(client, async () => {
          await lock(client);
          // After the advisory lock, so that a second `migrate` still queues behind a
          // first one for as long as it takes; from here on, lock waits are bounded.
          await client.query(`set local lock_timeout = ${lockTimeoutMs}`);
          const released = RELEASED_MIGRATIONS[file.name];
          if (released?.formerName) await adoptFormerName(client, released.formerName, file.name);
          const previous = await client.query<{ checksum: string }>(
            'select checksum from sentinel.schema_migrations where name = $1',
            [file.name],
          );
          const known = previous.rows[0]?.checksum;
          if (known === checksum && !cascade) return 'unchanged' as const;
          if (known !== undefined && !cascade && released?.commentOnlyChecksums.includes(known)) {
            // The released file differs from this one in comments only: nothing to run.
            await client.query('update sentinel.schema_migrations set checksum = $2 where name = $1', [
              file.name,
              checksum,
            ]);
            logger.debug(`${file.name}: recorded the current checksum (comments changed only)`);
            return 'unchanged' as const;
          }
          logger.info(`Applying ${file.name}...`);
          // No parameters: pg sends it as a simple query, which allows many statements.
          await client.query(sql);
          await client.query(
            `insert into sentinel.schema_migrations (name, checksum) values ($1, $2)
             on conflict (name) do update set checksum = excluded.checksum, applied_at = now()`,
            [file.name, checksum],
          );
          return known === undefined ? ('applied' as const) : ('reapplied' as const);
        });
        results.push({ name: file.name, status });
        if (status === 'reapplied') cascade = true;
      } catch (err) {
        const reason =
          (err as { code?: unknown }).code === LOCK_NOT_AVAILABLE
            ? await describeLockTimeout(client, sql, lockTimeoutMs)
            : describe(err, redactor);
        throw new MigrationError(`migration ${file.label} failed: ${reason}`, { cause: err });
      }
    }
    return results;
  } finally {
    await client.end().catch(() => {});
  }
}

async function migrationFiles(withIntake: boolean, scope: 'all' | 'state'): Promise<MigrationFile[]> {
  const migrationFile = (f: string): MigrationFile => ({
    name: f.slice(0, -'.sql'.length),
    label: `supabase/migrations/${f}`,
    url: new URL(f, MIGRATIONS_DIR),
  });
  if (scope === 'state') return [migrationFile(`${STATE_MIGRATION}.sql`)];
  const files: MigrationFile[] = [];
  // Not under supabase/migrations/: the engine's tables exist in production, and
  // `supabase db push` must not create or change them there.
  if (withIntake) files.push({ name: 'intake_reference', label: 'sql/intake.sql', url: INTAKE_FILE });
  const names = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql'));
  // Code-unit order, not locale order: timestamps prefixes must sort the same everywhere
  // (and as `supabase db push` applies them).
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const f of names) files.push(migrationFile(f));
  return files;
}

/**
 * Renames the ledger row an earlier release wrote under `formerName`, or drops it
 * when `name` is recorded already (an older Sentinel ran `migrate` again since).
 */
async function adoptFormerName(client: pg.Client, formerName: string, name: string): Promise<void> {
  await client.query(
    `delete from sentinel.schema_migrations f
      where f.name = $1 and exists (select 1 from sentinel.schema_migrations n where n.name = $2)`,
    [formerName, name],
  );
  await client.query('update sentinel.schema_migrations set name = $2 where name = $1', [formerName, name]);
}

async function connect(databaseUrl: string, redactor: Redactor): Promise<pg.Client> {
  const where = displayUrl(databaseUrl);
  let client: pg.Client;
  try {
    client = new pg.Client({
      ...connectionConfig(databaseUrl),
      application_name: 'sentinel',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    // A server that goes away between queries emits 'error' on the client; the
    // pending query rejects as well, which is where we report it.
    client.on('error', () => {});
    await client.connect();
  } catch (err) {
    throw new MigrationError(`cannot connect to the database at ${where}: ${describe(err, redactor)}`, { cause: err });
  }
  return client;
}

async function inTransaction<T>(client: pg.Client, body: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    const result = await body();
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

async function lock(client: pg.Client): Promise<void> {
  await client.query(`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
}

/**
 * Why a file's transaction hit lock_timeout, in one line. PostgreSQL's error does not
 * say which lock it was waiting for, and the wait is over by now (the transaction
 * rolled back), so ask which relations named in the file another session still holds
 * in a mode that blocks this migration: any lock on a view (`create or replace view`
 * needs an exclusive one), a write lock or stronger on a table (`create index` waits
 * for writers, not readers). The first such relation in file order is the one the
 * migration got stuck on; if none is held any more, say so without a name.
 */
async function describeLockTimeout(client: pg.Client, sql: string, lockTimeoutMs: number): Promise<string> {
  const within = `within ${formatDuration(lockTimeoutMs)}`;
  let held: { rel: string; relkind: string } | undefined;
  try {
    const names = relationNames(sql);
    const { rows } = await client.query<{ rel: string; relkind: string }>(
      `select format('%s.%s', w.nsp, w.rel) as rel, c.relkind::text as relkind
         from unnest($1::text[], $2::text[]) with ordinality as w(nsp, rel, ord)
         join pg_namespace n on n.nspname = w.nsp
         join pg_class c on c.relnamespace = n.oid and c.relname = w.rel
        where exists (
          select 1 from pg_locks l
           where l.locktype = 'relation' and l.relation = c.oid and l.granted
             and l.database = (select oid from pg_database where datname = current_database())
             and l.pid <> pg_backend_pid()
             and (c.relkind in ('v', 'm') or l.mode not in ('AccessShareLock', 'RowShareLock')))
        order by w.ord
        limit 1`,
      [names.map((n) => n.schema), names.map((n) => n.name)],
    );
    held = rows[0];
  } catch {
    // The connection is gone or pg_locks is not readable: fall back to the generic line.
  }
  if (!held) {
    return (
      `could not take a lock ${within}: another transaction holds a table or view this migration changes (a ` +
      `long-running ingestion?). Retry when it is idle`
    );
  }
  const isTable = held.relkind === 'r' || held.relkind === 'p';
  if (isTable && createsIndexOn(sql, held.rel)) {
    return (
      `could not lock ${held.rel} ${within}: another transaction holds it (a long-running ingestion?). Retry ` +
      `when it is idle, or create the sentinel_* indexes CONCURRENTLY by hand first`
    );
  }
  return (
    `could not lock ${held.rel} ${within}: another transaction holds it ` +
    `(${isTable ? 'a long-running ingestion?' : 'a long-running query?'}). ` +
    `Retry when it is idle`
  );
}

/** Schema-qualified unquoted names in the SQL (`intake.row_errors`), folded to lower case, first occurrence first. */
function relationNames(sql: string): { schema: string; name: string }[] {
  const seen = new Set<string>();
  const out: { schema: string; name: string }[] = [];
  for (const m of sql.matchAll(/\b([a-z_][a-z0-9_$]*)\.([a-z_][a-z0-9_$]*)\b/gi)) {
    const schema = m[1]!.toLowerCase();
    const name = m[2]!.toLowerCase();
    const key = `${schema}.${name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ schema, name });
  }
  return out;
}

function createsIndexOn(sql: string, rel: string): boolean {
  const escaped = rel.replace(/[.$]/g, (c) => `\\${c}`);
  return new RegExp(`create\\s+(?:unique\\s+)?index\\b[^;]*?\\son\\s+(?:only\\s+)?${escaped}\\b`, 'i').test(sql);
}

/** 5000 -> "5s", 2500 -> "2.5s", 300 -> "300ms". */
function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}

/** One line from whatever was thrown: the server's message (and hint), or the network error. */
function describe(err: unknown, redactor: Redactor): string {
  let text: string;
  if (err instanceof AggregateError && !err.message) {
    // Node reports "localhost" resolving to ::1 and 127.0.0.1 as an AggregateError
    // with an empty message; the reasons are inside.
    text = err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ');
  } else if (err instanceof Error) {
    const hint = (err as { hint?: unknown }).hint;
    text = err.message || (err as { code?: unknown }).code?.toString() || err.name;
    if (typeof hint === 'string' && hint) text += ` (hint: ${hint})`;
  } else {
    text = String(err);
  }
  return redactor.redact(text.replace(/\s*\n\s*/g, ' ').trim()) || 'unknown error';
}
