import type { Logger } from '../log.js';
import type { RunResult } from '../types.js';
import type { Redactor } from '../util/redact.js';
import { createMetrics, type SentinelMetrics } from '../metrics/registry.js';
import { startServer, type RunningServer } from './http.js';
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
   */
  observe(result: RunResult, durationMs?: number): void;
  /**
   * Replicas: a follower's tick (it ran nothing). Keeps `/readyz` ready while the
   * lock database answers; `unreachable` is why it did not.
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
}

/** Binds the address (a ListenError when it cannot) and starts serving. Logs `Listening on <url>`. */
export async function startMonitorServer(options: MonitorServerOptions): Promise<MonitorServer> {
  const { logger, redactor } = options;
  const metrics = createMetrics(); // build info: the package's version
  // One process, no replicas configured: it runs every check and sends every notification.
  // With replicas, the loop sets it from the leader election.
  metrics.setLeader(options.leader ?? true);
  const readiness = new Readiness(options.intervalMs, Date.now, (text) => redactor.redact(text));
  const server: RunningServer = await startServer({
    host: options.listen.host,
    port: options.listen.port,
    metrics,
    readiness: () => readiness.verdict(),
    logger,
  });
  logger.info(`Listening on ${server.url} (/metrics, /healthz, /readyz)`);
  return {
    url: server.url,
    metrics,
    observe(result, durationMs) {
      readiness.record(result);
      try {
        metrics.observeRun(result, durationMs !== undefined ? { durationMs } : {});
      } catch (err) {
        // A metrics bug must not stop monitoring: the run was reported and alerted on.
        logger.warn(`Could not update metrics: ${redactor.redact(err instanceof Error ? err.message : String(err))}`);
      }
    },
    standby(unreachable) {
      readiness.standby(unreachable);
    },
    close: () => server.close(),
  };
}
