import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { silentLogger, type Logger } from '../log.js';
import { displayUrl, Redactor, secretsOfUrl } from '../util/redact.js';

/** What happened to one migration file. */
export interface MigrationResult {
  /** `intake_reference` for the reference intake schema, else the file name without `.sql`. */
  name: string;
  /**
   * `applied`: first run on this database. `unchanged`: already applied with the same
   * content, skipped. `reapplied`: applied before with different content and run again
   * (every migration is idempotent, so that brings the database up to date).
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
}

// Resolved from this module so that it works from src/db (tests) and dist/db (the
// installed package) alike: both sit two levels below the package root.
const INTAKE_FILE = new URL('../../sql/intake.sql', import.meta.url);
const MIGRATIONS_DIR = new URL('../../supabase/migrations/', import.meta.url);

/** Serializes concurrent `migrate` runs against one database (advisory locks are per database). */
const MIGRATION_LOCK_KEY = '7366746140117261390'; // arbitrary, but fixed forever
const CONNECT_TIMEOUT_MS = 10_000;

interface MigrationFile {
  name: string;
  /** How the file is named in messages: relative to the package root. */
  label: string;
  url: URL;
}

/**
 * Applies the reference intake schema (with `withIntake`) and then every
 * `supabase/migrations/*.sql` in name order, recording each in
 * `sentinel.schema_migrations` by name and sha256 checksum.
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
  const files = await migrationFiles(opts.withIntake ?? false);

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
      throw new MigrationError(`cannot create the migration ledger sentinel.schema_migrations: ${describe(err, redactor)}`, {
        cause: err,
      });
    });

    const results: MigrationResult[] = [];
    for (const file of files) {
      const sql = await readFile(file.url, 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      try {
        const status = await inTransaction(client, async () => {
          await lock(client);
          const previous = await client.query<{ checksum: string }>(
            'select checksum from sentinel.schema_migrations where name = $1',
            [file.name],
          );
          const known = previous.rows[0]?.checksum;
          if (known === checksum) return 'unchanged' as const;
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
      } catch (err) {
        throw new MigrationError(`migration ${file.label} failed: ${describe(err, redactor)}`, { cause: err });
      }
    }
    return results;
  } finally {
    await client.end().catch(() => {});
  }
}

async function migrationFiles(withIntake: boolean): Promise<MigrationFile[]> {
  const files: MigrationFile[] = [];
  if (withIntake) files.push({ name: 'intake_reference', label: 'sql/intake.sql', url: INTAKE_FILE });
  const names = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql'));
  // Code-unit order, not locale order: timestamps prefixes must sort the same everywhere.
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const f of names) {
    files.push({ name: f.slice(0, -'.sql'.length), label: `supabase/migrations/${f}`, url: new URL(f, MIGRATIONS_DIR) });
  }
  return files;
}

async function connect(databaseUrl: string, redactor: Redactor): Promise<pg.Client> {
  const where = displayUrl(databaseUrl);
  let client: pg.Client;
  try {
    client = new pg.Client({
      connectionString: databaseUrl,
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
