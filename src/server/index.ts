import type { Logger } from '../log.js';
import { createMetrics, observeResult, observeSafely, type SentinelMetrics } from '../metrics/registry.js';
import type { RunResult } from '../types.js';
import type { Redactor } from '../util/redact.js';
import { createDashboardApi, type DashboardApiOptions } from './api.js';
import { type RunningServer, startServer } from './http.js';
import type { ListenAddress } from './listen.js';
import { Readiness } from './readiness.js';

export { ListenError } from './http.js';

/** The HTTP server of `sentinel serve` / `--loop --metrics-port`, with what it serves. */
export interface MonitorServer {
  url: string;
  metrics: SentinelMetrics;
  /**
   * Feeds one finished run to `/metrics` and `/readyz`; `durationMs` is how long
   * the whole run took (checks, alerting, heartbeat), for the duration histogram.
   * A run that ends with `role: 'follower'` (leadership lost during it: neither
   * recorded nor notified) counts as a follower tick: its figures are not exported.
   */
  observe(result: RunResult, durationMs?: number): void;
  /**
   * Replicas: a follower's tick (it ran nothing). `/metrics` drops every per-run
   * figure and reports `sentinel_database_up` for the lock database (0 when
   * `unreachable` is given, the election's problem, else 1); `/readyz` stays ready
   * while the lock database answers and says "lock database unreachable: …" when not.
   */
  standby(unreachable?: string): void;
  /** Stops accepting connections now; resolves once the server is closed. Idempotent. */
  close(): Promise<void>;
}

export interface MonitorServerOptions {
  listen: ListenAddress;
  intervalMs: number;
  logger: Logger;
  redactor: Redactor;
  /** Initial `sentinel_leader`; default true (no replicas). */
  leader?: boolean;
  /** `metrics.max_sources`: sources with series of their own on /metrics (default 50). */
  maxSources?: number;
  /** The registry to serve (the loop shares it with the OTLP export); default a new one. */
  metrics?: SentinelMetrics;
  /**
   * `replicas.enabled`: `/readyz` then says `"role": "leader" | "follower"`.
   * Default: true when `leader` starts false (only the election starts a process
   * as a follower).
   */
  replicas?: boolean;
  /**
   * `sentinel serve`: also the dashboard (`/`, `/assets/*`, `/api/*`). Its token is
   * required when `listen` is not loopback (a ListenError otherwise).
   */
  dashboard?: DashboardApiOptions & {
    authToken?: string;
    /** `--metrics-without-token`: `/metrics` stays open although a token is set. */
    metricsWithoutToken?: boolean;
    /** Default: the package's `dist/web`. */
    webRoot?: string;
    /** Tests: override the loopback detection of `listen.host`. */
    loopback?: boolean;
  };
}

/** Binds the address (a ListenError when it cannot) and starts serving. Logs `Listening on <url>`. */
export async function startMonitorServer(options: MonitorServerOptions): Promise<MonitorServer> {
  const { logger, redactor } = options;
  // Build info: the package's version.
  const metrics =
    options.metrics ?? createMetrics(options.maxSources !== undefined ? { maxSources: options.maxSources } : {});
  // One process, no replicas configured: it runs every check and sends every notification.
  // With replicas, the loop sets it from the leader election.
  metrics.setLeader(options.leader ?? true);
  const replicas = options.replicas ?? options.leader === false;
  // The role is what `sentinel_leader` says: the election sets both at once.
  const role = replicas ? () => (metrics.leader ? ('leader' as const) : ('follower' as const)) : undefined;
  const readiness = new Readiness(options.intervalMs, Date.now, (text) => redactor.redact(text), role);
  const dashboard = options.dashboard;
  // What /api/status and /api/alerts show: the last run a leader (or single process) made.
  let lastRun: RunResult | undefined;
  const api = dashboard ? createDashboardApi({ redact: (t) => redactor.redact(t), ...dashboard }) : undefined;
  const runs = {
    last: () => lastRun,
    role: () => (replicas ? (metrics.leader ? ('leader' as const) : ('follower' as const)) : ('single' as const)),
  };
  let server: RunningServer;
  try {
    server = await startServer({
      host: options.listen.host,
      port: options.listen.port,
      metrics,
      readiness: () => readiness.verdict(),
      logger,
      ...(api && dashboard
        ? {
            api: { handle: (path: string, query: URLSearchParams) => api.handle(path, query, runs) },
            ...(dashboard.authToken !== undefined ? { authToken: dashboard.authToken } : {}),
            ...(dashboard.metricsWithoutToken ? { metricsWithoutToken: true } : {}),
            ...(dashboard.webRoot !== undefined ? { webRoot: dashboard.webRoot } : {}),
            ...(dashboard.loopback !== undefined ? { loopback: dashboard.loopback } : {}),
          }
        : {}),
    });
  } catch (err) {
    await api?.close();
    throw err;
  }
  logger.info(`Listening on ${server.url} (${api ? 'dashboard at /, /api/*, ' : ''}/metrics, /healthz, /readyz)`);

  const safely = (update: () => void): void => observeSafely(update, logger, (t) => redactor.redact(t));

  return {
    url: server.url,
    metrics,
    observe(result, durationMs) {
      if (result.role === 'follower') {
        // Lost the lock during the run: the new leader reports what it sees. The lock
        // database answered when the run started; the next tick says whether it still does.
        readiness.standby();
      } else {
        readiness.record(result);
        lastRun = result;
      }
      safely(() => observeResult(metrics, result, durationMs));
    },
    standby(unreachable) {
      readiness.standby(unreachable);
      safely(() => metrics.observeStandby({ lockDatabaseReached: unreachable === undefined }));
    },
    close: async () => {
      await server.close();
      await api?.close();
    },
  };
}
