import { spawnSync } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlertStore, StateLockTimeout as AlertStoreLockTimeout } from '../../src/alerting/store.js';
import { StateLockTimeout, withFileLock } from '../../src/state/lock.js';
import { FileStateStore } from '../../src/state/store.js';
import { gate } from '../helpers/wait.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sentinel-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  if (!child.pid) throw new Error('could not start a child process');
  return child.pid;
}

/** A lock file as another Sentinel process on this host (unless `host` says otherwise) would have left it. */
async function leaveLock(file: string, content: Record<string, unknown>, ageMs = 0): Promise<void> {
  await writeFile(file, JSON.stringify({ host: hostname(), at: new Date().toISOString(), ...content }));
  if (ageMs) {
    const then = new Date(Date.now() - ageMs);
    await utimes(file, then, then);
  }
}

/** Lets `turns` rounds of the event loop go by (file I/O of others included), without a timer. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Resolves after the lock file's mtime has been set `times` times (utimes, as the lock's refresh does). */
function touched(file: string, times: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const watcher = watch(file, () => {
      seen++;
      if (seen < times) return;
      watcher.close();
      resolve();
    });
    watcher.on('error', reject);
  });
}

describe('FileStateStore', () => {
  it('keeps every key of 20 concurrent sets from separate instances on one directory', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `schema_cache.last_reload:env${i}`);

    await Promise.all(keys.map((key, i) => new FileStateStore(dir).set(key, `value ${i}`)));

    const reader = new FileStateStore(dir);
    for (const [i, key] of keys.entries()) expect(await reader.get(key), key).toBe(`value ${i}`);
    // Released: no lock file and no temp files left behind.
    expect((await readdir(dir)).sort()).toEqual(['state.json']);
  });

  it('takes over a lock left by a process that died', async () => {
    await leaveLock(join(dir, 'state.lock'), { pid: deadPid() });

    // No waiting allowed: only a takeover lets it in (a live lock would throw StateLockTimeout).
    await new FileStateStore(dir, { lock: { waitMs: 0 } }).set('k', 'v');

    expect(await new FileStateStore(dir).get('k')).toBe('v');
    expect(existsSync(join(dir, 'state.lock'))).toBe(false);
  });

  it('takes over a lock left by an earlier process that had the same pid (a container restarted as pid 1)', async () => {
    await leaveLock(join(dir, 'state.lock'), { pid: process.pid, token: 'of-an-earlier-life' });

    await new FileStateStore(dir, { lock: { waitMs: 2000 } }).set('k', 'v');

    expect(await new FileStateStore(dir).get('k')).toBe('v');
  });

  it('takes over a lock older than staleMs even though its process is alive', async () => {
    await leaveLock(join(dir, 'state.lock'), { pid: process.ppid }, 2 * 60_000);

    await new FileStateStore(dir).set('k', 'v');

    expect(await new FileStateStore(dir).get('k')).toBe('v');
  });

  it('waits for a live process holding the lock and gives up with StateLockTimeout, leaving its lock and the state alone', async () => {
    const store = new FileStateStore(dir, { lock: { waitMs: 300 } });
    await store.set('k', 'before');
    const lock = join(dir, 'state.lock');
    await leaveLock(lock, { pid: process.ppid }); // alive: the process that started this test worker
    const started = performance.now();

    const error = await store.set('k', 'after').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StateLockTimeout);
    expect((error as Error).message).toContain(lock);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(await store.get('k')).toBe('before');
    expect(existsSync(lock)).toBe(true);
  });
});

describe('withFileLock', () => {
  it('lets only one of many waiters in at a time, also when they all find the same stale lock', async () => {
    const lock = join(dir, 'x.lock');
    await leaveLock(lock, { pid: deadPid() });
    let inside = 0;
    let most = 0;
    let done = 0;

    // Staggered, so that some find the stale lock while others are taking it over.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        turns(i % 4).then(() =>
          withFileLock(lock, async () => {
            inside++;
            most = Math.max(most, inside);
            await readFile(lock); // a little I/O inside, for the others to try meanwhile
            inside--;
            done++;
          }),
        ),
      ),
    );

    expect(done).toBe(10);
    expect(most).toBe(1);
    expect(await readdir(dir)).toEqual([]); // neither the lock nor the takeover guard is left
  });

  it('clears a takeover guard left by a process that died while taking over a stale lock', async () => {
    const lock = join(dir, 'x.lock');
    await leaveLock(lock, { pid: deadPid() });
    await leaveLock(`${lock}.takeover`, {}, 10_000);

    await expect(withFileLock(lock, async () => 'ran', { waitMs: 3000 })).resolves.toBe('ran');
    expect(await readdir(dir)).toEqual([]);
  });

  it('does not remove a lock another process took over while the body ran', async () => {
    const lock = join(dir, 'x.lock');
    const theirs = JSON.stringify({ pid: process.ppid, at: new Date().toISOString(), token: 'theirs' });

    await withFileLock(lock, async () => {
      await writeFile(lock, theirs); // what a takeover of our (presumed stale) lock leaves
    });

    expect(await readFile(lock, 'utf8')).toBe(theirs);
  });

  it('records this host, our pid and a token in the lock file', async () => {
    const lock = join(dir, 'x.lock');
    const seen = await withFileLock(
      lock,
      async () => JSON.parse(await readFile(lock, 'utf8')) as Record<string, unknown>,
    );
    expect(seen).toMatchObject({
      host: hostname(),
      pid: process.pid,
      token: expect.any(String),
      at: expect.any(String),
    });
  });

  // Containers sharing a volume are each pid 1; NFS clients see none of each other's
  // pids: a pid in another host's lock says nothing, so only its age counts.
  it("does not take another host's live lock that has our pid (another container's pid 1)", async () => {
    const lock = join(dir, 'x.lock');
    await leaveLock(lock, { host: 'other-host', pid: process.pid, token: 'theirs' });

    const error = await withFileLock(lock, async () => 'ran', { waitMs: 300 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StateLockTimeout);
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ host: 'other-host', token: 'theirs' });
  });

  it("does not take another host's live lock whose pid does not exist here", async () => {
    const lock = join(dir, 'x.lock');
    await leaveLock(lock, { host: 'other-host', pid: deadPid(), token: 'theirs' });

    const error = await withFileLock(lock, async () => 'ran', { waitMs: 300 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StateLockTimeout);
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ host: 'other-host', token: 'theirs' });
  });

  it('judges a lock that names no host (an older version) by its age only', async () => {
    const lock = join(dir, 'x.lock');
    await writeFile(lock, JSON.stringify({ pid: deadPid(), at: new Date().toISOString() }));

    await expect(withFileLock(lock, async () => 'ran', { waitMs: 300 })).rejects.toBeInstanceOf(StateLockTimeout);
    const then = new Date(Date.now() - 2000);
    await utimes(lock, then, then);
    await expect(withFileLock(lock, async () => 'ran', { waitMs: 300, staleMs: 1000 })).resolves.toBe('ran');
  });

  it("takes over another host's lock older than staleMs", async () => {
    const lock = join(dir, 'x.lock');
    await leaveLock(lock, { host: 'other-host', pid: process.pid, token: 'theirs' }, 2000);

    // No waiting allowed: only the takeover lets it in.
    await expect(withFileLock(lock, async () => 'ran', { waitMs: 0, staleMs: 1000 })).resolves.toBe('ran');

    expect(existsSync(lock)).toBe(false);
  });

  it('keeps the lock of a body running longer than staleMs: its mtime is refreshed while it runs', async () => {
    const lock = join(dir, 'x.lock');
    // Generous margins (refresh every 0.5 s against a 1.5 s limit) so a loaded CI
    // machine stalling for a moment cannot make the lock look stale.
    const options = { staleMs: 1500 };
    const order: string[] = [];
    const firstIn = gate();
    const impatientDone = gate();
    const first = withFileLock(
      lock,
      async () => {
        order.push('first in');
        firstIn.open();
        // Held until the impatient waiter has given up: longer than staleMs.
        await impatientDone.promise;
        order.push('first out');
      },
      { ...options, waitMs: 0 },
    );
    await firstIn.promise;

    // A waiter that gives up (after 2.5 s, past staleMs) before the first is done times out:
    // the lock was not stale, its holder kept it fresh.
    const impatient = await withFileLock(lock, async () => order.push('impatient in'), {
      ...options,
      waitMs: 2500,
    }).catch((e: unknown) => e);
    impatientDone.open();
    expect(impatient).toBeInstanceOf(StateLockTimeout);
    // One that waits long enough gets in after the first is out.
    await withFileLock(lock, async () => order.push('patient in'), { ...options, waitMs: 8000 });
    await first;

    expect(order).toEqual(['first in', 'first out', 'patient in']);
    expect(existsSync(lock)).toBe(false);
  });

  it('stops refreshing a lock that another process has taken over', async () => {
    const lock = join(dir, 'x.lock');
    const theirs = JSON.stringify({ host: 'other-host', pid: 1, at: new Date().toISOString(), token: 'theirs' });
    const then = new Date(Date.now() - 60_000);

    await withFileLock(
      lock,
      async () => {
        await writeFile(lock, theirs); // a takeover of our (presumed stale) lock
        await utimes(lock, then, then);
        // Several refresh periods: a lock taken after ours, with the same period, is refreshed
        // three times; our refresh timer, started earlier, has fired at least as often.
        const control = join(dir, 'control.lock');
        await withFileLock(control, () => touched(control, 3), { staleMs: 150 });
      },
      { staleMs: 150 },
    );

    expect(await readFile(lock, 'utf8')).toBe(theirs);
    expect(Math.abs((await stat(lock)).mtimeMs - then.getTime())).toBeLessThan(1000);
  });

  it('releases the lock when the body throws', async () => {
    const lock = join(dir, 'sub', 'x.lock');
    await expect(withFileLock(lock, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(existsSync(lock)).toBe(false);
    await expect(withFileLock(lock, async () => 'again', { waitMs: 100 })).resolves.toBe('again');
  });
});

describe('AlertStore on the shared lock', () => {
  it('still exports StateLockTimeout (the same class) and throws it when the lock is held', async () => {
    expect(AlertStoreLockTimeout).toBe(StateLockTimeout);
    const store = new AlertStore(dir);
    await leaveLock(join(dir, 'alerting.lock'), { pid: process.ppid });

    const error = await store.withLock(async () => 'ran', { waitMs: 200 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AlertStoreLockTimeout);
  });

  it('takes over a stale alerting lock and runs the body', async () => {
    const store = new AlertStore(dir);
    await leaveLock(join(dir, 'alerting.lock'), { pid: deadPid() });

    expect(await store.withLock(async () => 'ran', { waitMs: 1000 })).toBe('ran');
    expect(existsSync(join(dir, 'alerting.lock'))).toBe(false);
  });
});
