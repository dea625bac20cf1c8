import { randomBytes } from 'node:crypto';
import { type FileHandle, open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { ensureDirectory } from './dir.js';

/**
 * An exclusive lock between Sentinel processes (a cron run, a `--loop`, `sentinel
 * silence` ...) around a read-modify-write of a state file: a file created with
 * O_EXCL that holds the owner's host name, pid and a token. Shared by the alert state
 * and the small key-value state.
 *
 * The state directory may be shared by processes that cannot see each other's pids:
 * containers on one volume (each one pid 1) or hosts on NFS. So a lock is judged by
 * its pid only when it names this host; a lock of another host (or of an older
 * version, which wrote no host) is stale only by age. The holder refreshes the lock
 * file's mtime while its body runs, so the age limit can be short without a long
 * body losing its lock.
 */

/** Another process held the lock for longer than the caller was willing to wait. */
export class StateLockTimeout extends Error {}

export interface FileLockOptions {
  /** How long to wait for another run to finish with the state. Default 30 s. */
  waitMs?: number;
  /**
   * A lock whose mtime is older than this is taken over, whoever holds it: its holder
   * refreshes it every `staleMs / 3` while alive, so only a process that died, hung or
   * runs on a clock this far off leaves one. Default 10 min.
   */
  staleMs?: number;
}

/**
 * What a lock file holds. `token` tells two locks of the same pid apart; `host` says
 * whose pid it is (older versions wrote neither, or no host).
 */
interface LockContent {
  host?: string;
  pid?: number;
  at?: string;
  token?: string;
}

/**
 * Tokens of the locks this process holds right now. On `globalThis` so that it is one
 * set even if this module were loaded twice: a lock with our pid whose token is not in
 * it was left by an earlier process that had the same pid (containers restart as pid 1).
 */
const HELD_KEY = Symbol.for('sentinel.state.heldFileLocks');
const registry = globalThis as Record<symbol, unknown>;
registry[HELD_KEY] ??= new Set<string>();
const held = registry[HELD_KEY] as Set<string>;

/**
 * Runs `body` holding the lock file `lockFile` (its directory is created 0700 if
 * missing). A lock older than `staleMs`, or one of this host whose process is gone,
 * is taken over; otherwise this waits up to `waitMs` and then throws
 * {@link StateLockTimeout}. While `body` runs, the lock file's mtime is refreshed
 * every `staleMs / 3` (as long as the lock is still ours). The lock is released when
 * `body` settles, unless another process has taken it over as stale in the meantime
 * (then it is that process's lock, and it stays).
 */
export async function withFileLock<T>(
  lockFile: string,
  body: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const waitMs = options.waitMs ?? 30_000;
  const staleMs = options.staleMs ?? 10 * 60_000;
  // Not mkdir's recursive mode, which never returns on some file systems (state/dir.ts).
  await ensureDirectory(dirname(lockFile));
  const token = randomBytes(8).toString('hex');
  const content = JSON.stringify({
    host: hostname(),
    pid: process.pid,
    at: new Date().toISOString(),
    token,
  } satisfies LockContent);
  const deadline = Date.now() + waitMs;
  // Registered before the file exists, so that nobody in this process mistakes it,
  // once written, for a leftover of an earlier process with our pid.
  held.add(token);
  try {
    for (;;) {
      try {
        const handle = await open(lockFile, 'wx', 0o600);
        try {
          await handle.writeFile(content);
        } finally {
          await handle.close();
        }
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (await takeOverIfStale(lockFile, staleMs)) continue;
        if (Date.now() >= deadline)
          throw new StateLockTimeout(
            `another Sentinel run has held ${lockFile} for over ${Math.round(waitMs / 1000)}s`,
          );
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
    const keepAlive = keepFresh(lockFile, content, staleMs);
    try {
      return await body();
    } finally {
      await keepAlive.stop();
      await releaseIfOurs(lockFile, content);
    }
  } finally {
    held.delete(token);
  }
}

/**
 * Sets the lock file's mtime to now every `staleMs / 3` until stopped, so that a body
 * running longer than `staleMs` is not taken for a hung one. Only while the file still
 * holds `content`: the check and the touch go through one file handle, so a lock
 * another process has taken over in the meantime is never touched. The timer does not
 * keep the process alive.
 */
function keepFresh(lockFile: string, content: string, staleMs: number): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const touch = async (): Promise<void> => {
    let handle: FileHandle | undefined;
    try {
      handle = await open(lockFile, 'r');
      if ((await handle.readFile('utf8')) !== content) return;
      const now = new Date();
      await handle.utimes(now, now);
    } catch {
      // Gone or unreadable: nothing of ours to keep fresh (the release will tell).
    } finally {
      await handle?.close().catch(() => {});
    }
  };
  const timer = setInterval(
    () => {
      // A refresh slower than the interval (a slow network file system) is not doubled.
      running ??= touch().finally(() => (running = undefined));
    },
    Math.max(1, Math.floor(staleMs / 3)),
  );
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** The takeover guard is held for a read and a delete; one older than this was left by a crash. */
const GUARD_STALE_MS = 2_000;

/**
 * Removes the lock file if it is stale. Returns true when the caller should try to
 * take the lock again at once (the stale lock is gone, by our hand or another's).
 *
 * Several waiters can find the same stale lock. Had each simply deleted it, a slower
 * one would delete the lock a faster one had just taken, and both would run. So only
 * the holder of a second O_EXCL file (`<lock>.takeover`) may delete a stale lock, and
 * only after reading it again: by then it may be a fresh lock, which stays.
 */
async function takeOverIfStale(lockFile: string, staleMs: number): Promise<boolean> {
  const seen = await readLock(lockFile);
  if (seen === 'gone') return true;
  if (!seen || !isStale(seen, staleMs)) return false;

  const guard = `${lockFile}.takeover`;
  try {
    await (await open(guard, 'wx', 0o600)).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another waiter is taking it over right now: wait for that. A guard left behind
    // by a process that died in that instant is cleared after a while.
    const info = await stat(guard).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > GUARD_STALE_MS) await rm(guard, { force: true });
    return false;
  }
  try {
    const again = await readLock(lockFile);
    if (again === 'gone') return true;
    if (!again || !isStale(again, staleMs)) return false;
    await rm(lockFile, { force: true });
    return true;
  } finally {
    await rm(guard, { force: true });
  }
}

/** The lock file's text and age; 'gone' if it vanished; undefined if it cannot be read. */
async function readLock(lockFile: string): Promise<{ text: string; mtimeMs: number } | 'gone' | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(lockFile, 'utf8'), stat(lockFile)]);
    return { text, mtimeMs: info.mtimeMs };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : undefined;
  }
}

/**
 * Older than `staleMs` (by mtime, which a live holder keeps refreshing); or of this
 * host and either of a process that is gone or of an earlier process with our pid. A
 * pid says nothing about another host's lock (another container's pid 1, another NFS
 * client's process), nor about a lock that names no host: those go by age only.
 */
function isStale(lock: { text: string; mtimeMs: number }, staleMs: number): boolean {
  if (Date.now() - lock.mtimeMs > staleMs) return true;
  let content: LockContent;
  try {
    content = JSON.parse(lock.text) as LockContent;
  } catch {
    // Being written right now (empty or half-written): not stale.
    return false;
  }
  if (content.host !== hostname()) return false;
  const pid = content.pid;
  if (!pid) return false;
  if (pid === process.pid) return typeof content.token === 'string' && !held.has(content.token);
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function releaseIfOurs(lockFile: string, content: string): Promise<void> {
  const current = await readFile(lockFile, 'utf8').catch(() => undefined);
  if (current === content) await rm(lockFile, { force: true });
}
