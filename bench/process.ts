/**
 * Sentinel as a process: how long it takes to start (`--version`, and a whole
 * check run as cron starts it), and whether a long-running loop grows in memory.
 *
 * Loop memory, of `sentinel --loop --json` as users run it: no node flags, no
 * NODE_OPTIONS, the V8 settings the bin gives itself (src/util/v8-flags.ts). The CLI's
 * shortest interval is 1 s (`--interval` takes a whole number ≥ 1) and nothing
 * shortens it, so 1000 runs through `sentinel --loop` would take 17 minutes (and at
 * that pace V8 sees another allocation rate). Instead a child node process (this
 * file, started with `--loop-rss-child` and nothing else on node's command line)
 * starts as dist/cli.js does (the same `applyV8Defaults` first) and drives the same
 * code path in-process: the built `runContinuously` of dist/runtime.js (runLoop +
 * withRunner: checks, snapshot, alerting with its state file, the JSON report printer)
 * with an interval below any run's duration, so the runs follow one another at once.
 * test/cli/v8-flags.test.ts checks that dist/cli.js itself applies those settings.
 * Memory is sampled after a forced GC so that garbage not yet collected does not count
 * as growth; the child exposes `gc` at runtime (`--expose-gc` set from inside, which
 * sizes nothing), not with a node flag.
 */
import { fork } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  DEFAULT_DATABASE_URL,
  isMain,
  lastLines,
  median,
  quantile,
  REPO_ROOT,
  round,
  runCli,
  runMain,
  sentinelEnv,
  tempDir,
  toMb,
} from './lib-proc.js';

export interface ProcessFigures {
  /** `node dist/cli.js --version`: spawn to exit, milliseconds. */
  versionColdStartMs: { median: number; p95: number; reps: number };
  /** `node dist/cli.js --json` against the database (one full check run, as cron starts it): spawn to exit. */
  checkRunColdStartMs: { median: number; p95: number; reps: number };
  /**
   * Resident memory of `sentinel --loop` as users run it (no node flags, the bin's own
   * V8 settings) after run 10 and after the last run (`runs`), after a GC.
   */
  loopRss: LoopRss;
  /** The same loop without the bin's V8 settings: node's own defaults, for comparison. */
  loopRssNodeDefaults: LoopRss;
}

/** One memory sample of the loop child, taken after a forced GC. */
export interface LoopMemorySample {
  run: number;
  rssMb: number;
  heapUsedMb: number;
  externalMb: number;
}

/** What the loop child reports: samples after run 1, 10, every 100 runs and the last. */
export interface LoopMemory {
  runs: number;
  intervalMs: number;
  elapsedMs: number;
  samples: LoopMemorySample[];
  /** overall_status of each run, counted (a database problem would show here). */
  statuses: Record<string, number>;
  /** The V8 flags the child set as the bin does (none with `nodeDefaults`). */
  v8Flags: string[];
}

/** The child's interval: any run takes longer, so runs follow each other at once. */
const CHILD_INTERVAL_MS = 1;
const CHILD_FLAG = '--loop-rss-child';
/** After CHILD_FLAG and the run count: leave out the bin's V8 settings (node's defaults). */
const NODE_DEFAULTS_FLAG = '--node-defaults';

export interface LoopRss {
  runs: number;
  intervalMs: number;
  rssAt10Mb: number;
  rssAtEndMb: number;
  /** rssAtEndMb − rssAt10Mb. */
  growthMb: number;
  /** Wall time of all runs ÷ runs: what more frequent scavenges would cost shows here. */
  msPerRun: number;
  /** Heap in use after a forced GC, at run 10 and at the end: a leak shows here first. */
  heapAt10Mb: number;
  heapAtEndMb: number;
}

export async function measureProcess(opts: {
  databaseUrl: string;
  reps?: number;
  loopRuns?: number;
}): Promise<ProcessFigures> {
  const reps = opts.reps ?? 20;
  const state = await tempDir('sentinel-bench-process');
  try {
    const env = sentinelEnv(opts.databaseUrl, state.path);

    // One unmeasured start each first: the figures are cold processes, not a cold disk cache.
    await runCli(['--version'], env);
    const version: number[] = [];
    for (let i = 0; i < reps; i++) version.push((await runCli(['--version'], env)).ms);

    // Exit 0/1/2 are the pipeline's health, all fine here; 3 means Sentinel could not run.
    await runCli(['--json'], env, [0, 1, 2]);
    const check: number[] = [];
    for (let i = 0; i < reps; i++) check.push((await runCli(['--json'], env, [0, 1, 2])).ms);

    const runs = opts.loopRuns ?? 1000;
    const loopRss = summarise(await measureLoopMemory({ databaseUrl: opts.databaseUrl, runs }));
    const loopRssNodeDefaults = summarise(
      await measureLoopMemory({ databaseUrl: opts.databaseUrl, runs, nodeDefaults: true }),
    );
    return { versionColdStartMs: spread(version), checkRunColdStartMs: spread(check), loopRss, loopRssNodeDefaults };
  } finally {
    await state.remove();
  }
}

function summarise(loop: LoopMemory): LoopRss {
  const at10 = loop.samples.find((s) => s.run === 10) ?? loop.samples[0]!;
  const atEnd = loop.samples[loop.samples.length - 1]!;
  return {
    runs: loop.runs,
    intervalMs: loop.intervalMs,
    rssAt10Mb: round(at10.rssMb),
    rssAtEndMb: round(atEnd.rssMb),
    growthMb: round(atEnd.rssMb - at10.rssMb),
    msPerRun: round(loop.elapsedMs / loop.runs, 2),
    heapAt10Mb: round(at10.heapUsedMb),
    heapAtEndMb: round(atEnd.heapUsedMb),
  };
}

function spread(ms: number[]): { median: number; p95: number; reps: number } {
  return { median: round(median(ms)), p95: round(quantile(ms, 0.95)), reps: ms.length };
}

/**
 * Runs `runs` loop iterations back to back in a child process and returns its
 * memory samples (rss, heapUsed, external after a GC). Also exported for a closer
 * look than ProcessFigures gives (heap versus resident memory, the curve).
 * The child gets no node flags and no NODE_OPTIONS (fork would pass on this
 * process's own), unless `nodeFlags` says otherwise; `nodeDefaults` leaves out
 * the bin's V8 settings.
 */
export async function measureLoopMemory(opts: {
  databaseUrl: string;
  runs: number;
  nodeFlags?: string[];
  nodeDefaults?: boolean;
}): Promise<LoopMemory> {
  const state = await tempDir('sentinel-bench-loop');
  try {
    const env = sentinelEnv(opts.databaseUrl, state.path);
    delete env.NODE_OPTIONS;
    const args = [CHILD_FLAG, String(opts.runs), ...(opts.nodeDefaults ? [NODE_DEFAULTS_FLAG] : [])];
    const child = fork(new URL(import.meta.url), args, {
      cwd: REPO_ROOT,
      env,
      execArgv: opts.nodeFlags ?? [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let result: LoopMemory | undefined;
    child.on('message', (m) => (result = m as LoopMemory));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    if (code !== 0 || !result) throw new Error(`loop memory child exited with ${code}: ${lastLines(stderr)}`);
    return result;
  } finally {
    await state.remove();
  }
}

/** The child's side: DATABASE_URL and SENTINEL_STATE_DIR come from the environment. */
async function loopChild(runs: number, nodeDefaults: boolean): Promise<void> {
  type V8FlagsModule = typeof import('../src/util/v8-flags.js');
  type CheckModule = typeof import('../src/commands/check.js');
  type RuntimeModule = typeof import('../src/runtime.js');
  // First, as dist/cli.js does before its own imports, for the command line `sentinel --loop --json`.
  const flags = (await import(new URL('../../dist/util/v8-flags.js', import.meta.url).href)) as V8FlagsModule;
  const argv = [process.execPath, 'sentinel', '--loop', '--json'];
  const v8Flags = nodeDefaults
    ? []
    : [...(await flags.applyV8Defaults({ argv, execArgv: process.execArgv, env: process.env }))];
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const check = (await import(new URL('../../dist/commands/check.js', import.meta.url).href)) as CheckModule;
  const runtime = (await import(new URL('../../dist/runtime.js', import.meta.url).href)) as RuntimeModule;
  // Only errors on stderr: every run warns that it took longer than the interval, by design here.
  const s = await runtime.createRuntime({ logLevel: 'error' });
  const print = check.reportPrinter(s.redactor, { json: true });
  const samples: LoopMemorySample[] = [];
  const statuses: Record<string, number> = {};
  let count = 0;
  const started = performance.now();
  const sample = (): void => {
    gc();
    const m = process.memoryUsage();
    samples.push({
      run: count,
      rssMb: round(toMb(m.rss), 2),
      heapUsedMb: round(toMb(m.heapUsed), 2),
      externalMb: round(toMb(m.external), 2),
    });
  };
  const code = await runtime.runContinuously(s, {
    intervalSeconds: CHILD_INTERVAL_MS / 1000,
    print: (result) => {
      print(result); // stdout is /dev/null: the JSON line is rendered and written as in --loop --json
      count += 1;
      statuses[result.overall_status] = (statuses[result.overall_status] ?? 0) + 1;
      if (count === 1 || count === 10 || count % 100 === 0 || count === runs) sample();
      // Synchronous: the loop sees the stop right after this run, exactly as after a real SIGTERM.
      if (count === runs) process.emit('SIGTERM', 'SIGTERM');
    },
  });
  if (code !== 0) throw new Error(`the loop ended with ${code}`);
  const elapsedMs = Math.round(performance.now() - started);
  const report: LoopMemory = { runs: count, intervalMs: CHILD_INTERVAL_MS, elapsedMs, samples, statuses, v8Flags };
  await new Promise<void>((resolve, reject) =>
    process.send!(report, (err: Error | null) => (err ? reject(err) : resolve())),
  );
  process.disconnect();
}

if (isMain(import.meta.url)) {
  if (process.argv[2] === CHILD_FLAG) {
    loopChild(Number(process.argv[3]), process.argv[4] === NODE_DEFAULTS_FLAG).catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
  } else {
    const databaseUrl = process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL;
    const loopRuns = process.env.BENCH_LOOP_RUNS ? Number(process.env.BENCH_LOOP_RUNS) : undefined;
    runMain(async () => {
      const figures = await measureProcess({
        databaseUrl,
        ...(process.env.BENCH_REPS ? { reps: Number(process.env.BENCH_REPS) } : {}),
        ...(loopRuns !== undefined ? { loopRuns } : {}),
      });
      return figures;
    });
  }
}
