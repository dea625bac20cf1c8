/**
 * HTTP load on `sentinel serve`: requests per second and latency of each dashboard
 * endpoint and /metrics under 50 concurrent connections (autocannon).
 *
 * The server runs as a child process, as in production (`node dist/cli.js serve`),
 * on a free loopback port, against the given database with a state directory of
 * its own. Its interval is the production default (300 s): the first run happens at
 * start, /readyz turns 200 when it has finished, and no other run competes with the
 * load during the measurement.
 *
 * Read the figures with two facts in mind:
 * - Load generator and server share this machine's cores (two here): autocannon's
 *   own CPU use is taken from the server, so these are lower bounds of what the
 *   server alone would sustain.
 * - /api/status, /api/alerts and /metrics answer from the last run, without a query.
 *   The three view endpoints cache each answer for 5 s and share in-flight queries
 *   (src/server/api.ts), so under load they mostly measure the cache; the database
 *   sees about one query per endpoint every 5 s, whatever the load.
 */
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import {
  CLI,
  DEFAULT_DATABASE_URL,
  isMain,
  lastLines,
  REPO_ROOT,
  round,
  runMain,
  sentinelEnv,
  stopChild,
  tempDir,
} from './lib-proc.js';

/** One endpoint under load. */
export interface LoadFigure {
  path: string;
  /** Mean requests per second over the measurement. */
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors and timeouts. */
  errors: number;
  /** Responses outside 2xx. */
  non2xx: number;
  connections: number;
  durationSec: number;
}

export const LOAD_PATHS = [
  '/api/status',
  '/api/alerts',
  '/api/batch-performance?hours=24',
  '/api/error-distribution?limit=10',
  '/api/pipeline-health',
  '/metrics',
] as const;

const READY_TIMEOUT_MS = 60_000;
/** Each endpoint gets a short unmeasured warm-up (connections, JIT, the API's pool and cache). */
const WARMUP_SEC = 1;

export async function measureApiLoad(opts: {
  databaseUrl: string;
  connections?: number;
  durationSec?: number;
}): Promise<LoadFigure[]> {
  const connections = opts.connections ?? 50;
  const durationSec = opts.durationSec ?? 10;
  const state = await tempDir('sentinel-bench-serve');
  // Port 0: the server picks a free port and logs it ("Listening on http://127.0.0.1:PORT").
  const server = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', '--interval', '300'], {
    cwd: REPO_ROOT,
    env: sentinelEnv(opts.databaseUrl, state.path),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  server.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    const base = await waitForReady(server, () => stderr);
    const figures: LoadFigure[] = [];
    for (const path of LOAD_PATHS) {
      await load(`${base}${path}`, connections, WARMUP_SEC);
      const r = await load(`${base}${path}`, connections, durationSec);
      figures.push({
        path,
        requestsPerSec: round(r.requests.average, 0),
        p50Ms: round(r.latency.p50, 2),
        p99Ms: round(r.latency.p99, 2),
        errors: r.errors,
        non2xx: r.non2xx,
        connections,
        durationSec,
      });
    }
    return figures;
  } finally {
    const end = await stopChild(server);
    await state.remove();
    if (end.killed)
      process.stderr.write(`api-load: sentinel serve did not stop within 15 s of SIGTERM and was killed\n`);
  }
}

/** Waits for the logged address, then for /readyz to answer 200; returns the base URL. */
async function waitForReady(server: ReturnType<typeof spawn>, stderr: () => string): Promise<string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let base: string | undefined;
  let last = 'not listening yet';
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(
        `sentinel serve exited with ${server.exitCode ?? server.signalCode} before it was ready: ` +
          `${lastLines(stderr())}`,
      );
    }
    base ??= /Listening on (http:\/\/\S+)/.exec(stderr())?.[1];
    if (base) {
      try {
        const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) });
        last = `/readyz ${res.status} ${(await res.text()).slice(0, 200)}`;
        if (res.status === 200) return base;
      } catch (err) {
        last = `/readyz: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sentinel serve was not ready within ${READY_TIMEOUT_MS / 1000} s (${last}): ${lastLines(stderr())}`);
}

function load(url: string, connections: number, durationSec: number): Promise<autocannon.Result> {
  return autocannon({ url, connections, duration: durationSec });
}

if (isMain(import.meta.url)) {
  runMain(() =>
    measureApiLoad({
      databaseUrl: process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL,
      ...(process.env.BENCH_DURATION_SEC ? { durationSec: Number(process.env.BENCH_DURATION_SEC) } : {}),
    }),
  );
}
