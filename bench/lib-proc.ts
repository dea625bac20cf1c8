/**
 * Shared helpers of the process-level benchmarks (api-load.ts, process.ts,
 * ingestion.ts): where the built CLI is, a clean environment for it, spawning and
 * timing child processes, and small statistics.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root: this file runs from dist-bench/bench/, two levels below it. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI (`npm run build`). */
export const CLI = join(REPO_ROOT, 'dist', 'cli.js');

/** The superuser URL the modules use when run on their own. */
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Sentinel's environment for a benchmark child: the caller's environment without
 * anything that would point Sentinel elsewhere (a config file, PostgREST, a mode,
 * a dashboard token), plus the database and a state directory of the benchmark's own.
 */
export function sentinelEnv(databaseUrl: string, stateDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of [
    'SENTINEL_CONFIG',
    'SUPABASE_MODE',
    'SUPABASE_URL',
    'POSTGREST_URL',
    'SUPABASE_SERVICE_ROLE_KEY',
    'SENTINEL_DASHBOARD_TOKEN',
    'SENTINEL_DEBUG',
    'XDG_STATE_HOME',
  ]) {
    delete env[key];
  }
  return { ...env, DATABASE_URL: databaseUrl, SENTINEL_STATE_DIR: stateDir, NO_COLOR: '1' };
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<Exited> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * Sends `signal`, waits up to `graceMs` for the exit, then SIGKILLs. Returns how it ended.
 */
export async function stopChild(
  child: ChildProcess,
  graceMs = 15_000,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<Exited & { killed: boolean }> {
  const done = exited(child);
  if (child.exitCode !== null || child.signalCode !== null) return { ...(await done), killed: false };
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  const first = await Promise.race([done, late]);
  clearTimeout(timer);
  if (first !== 'late') return { ...first, killed: false };
  child.kill('SIGKILL');
  return { ...(await done), killed: true };
}

export interface TimedRun extends Exited {
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  stdout: string;
  stderr: string;
}

/** Spawns `node args…`, waits for it to exit and times it from spawn to exit. */
export async function timeNode(args: string[], options: SpawnOptions = {}): Promise<TimedRun> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const end = await exited(child);
  return { ...end, ms: performance.now() - started, stdout, stderr };
}

/** Runs `node dist/cli.js args…` to completion; throws with its stderr unless it exits with one of `okCodes`. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  okCodes: readonly number[] = [0],
): Promise<TimedRun> {
  const run = await timeNode([CLI, ...args], { env, cwd: REPO_ROOT });
  if (run.code === null || !okCodes.includes(run.code)) {
    throw new Error(`sentinel ${args.join(' ')} exited with ${run.code ?? run.signal}: ${lastLines(run.stderr)}`);
  }
  return run;
}

/** The last few lines of a child's output, for error messages. */
export function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/** The q-quantile (0..1) by linear interpolation between closest ranks. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** Rounds to `digits` decimals (figures meant for a report, not for further arithmetic). */
export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const toMb = (bytes: number): number => bytes / (1024 * 1024);

/** Whether this module is the script node was started with (`node dist-bench/bench/x.js`). */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && moduleUrl === pathToFileURL(entry).href;
}

/** The standalone mains: run, print JSON on stdout, exit 1 with the message on failure. */
export function runMain(body: () => Promise<unknown>): void {
  body().then(
    (result) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
