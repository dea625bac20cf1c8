import { type Environment, readEnvironment } from '../config/env.js';
import type { ConfigFlags } from '../config/load.js';
import type { OtlpFlags } from '../config/otlp.js';
import type { LogLevel } from '../log.js';
import { createRuntime, type Runtime, runContinuously } from '../runtime.js';
import { isLoopbackHost } from '../server/http.js';
import { DEFAULT_LISTEN, formatHostPort, type ListenAddress } from '../server/listen.js';
import { reportPrinter } from './check.js';

export interface ServeFlags extends ConfigFlags, OtlpFlags {
  listen?: ListenAddress;
  interval?: number;
  json?: boolean;
  logLevel?: LogLevel;
  /** Bearer token of the dashboard API (else SENTINEL_DASHBOARD_TOKEN); required off loopback. */
  authToken?: string;
  /** `/metrics` without the token (a scraper that cannot send one). */
  metricsWithoutToken?: boolean;
}

/** The shortest bearer token `sentinel serve` accepts (after trimming). */
export const MIN_TOKEN_LENGTH = 16;

/**
 * `sentinel serve`: the loop plus the HTTP server (`/metrics`, `/healthz`,
 * `/readyz`, the dashboard at `/` and its JSON API at `/api/*`; off loopback a
 * bearer token guards `/api/*` and `/metrics`, see src/server/routes.ts). Logs go
 * to stderr; stdout carries each run's JSON line with --json and nothing otherwise.
 * Returns the exit code (0 after a graceful stop).
 *
 * With `replicas.enabled` any number of processes may serve one database: the
 * leader (src/replicas/leader.ts) runs the checks and notifies, its JSON lines
 * carrying `"role": "leader"`; followers run nothing and print nothing on stdout,
 * try to take over every `takeover_poll_seconds`, report `sentinel_leader 0`, and
 * stay ready on `/readyz` while the lock database answers (a follower is a healthy
 * standby, not a broken replica).
 */
export async function serveCommand(flags: ServeFlags, environment: Environment = readEnvironment()): Promise<number> {
  const listen = flags.listen ?? DEFAULT_LISTEN;
  // An empty SENTINEL_DASHBOARD_TOKEN counts as unset; anything else is trimmed and must be long enough.
  const source = flags.authToken !== undefined ? '--auth-token' : 'SENTINEL_DASHBOARD_TOKEN';
  const raw = flags.authToken ?? environment.dashboardToken;
  const token = raw?.trim();
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    process.stderr.write(
      `sentinel: ${source}: use at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 24)\n`,
    );
    return 3;
  }
  // Off loopback the dashboard API and /metrics need a bearer token: refuse to
  // start without one rather than expose the pipeline's internals.
  if (!isLoopbackHost(listen.host) && token === undefined) {
    process.stderr.write(
      `sentinel: --listen ${formatHostPort(listen.host, listen.port)} is not a loopback address: ` +
        `set SENTINEL_DASHBOARD_TOKEN (or --auth-token) to the bearer token the dashboard and scrapers must send\n`,
    );
    return 3;
  }
  const configure = async (): Promise<Runtime> => {
    const s = await createRuntime(flags, { otlp: flags });
    if (token !== undefined) s.redactor.add([token]);
    return s;
  };
  const s = await configure();
  return runContinuously(s, {
    reload: configure,
    intervalSeconds: flags.interval ?? 300,
    listen,
    dashboard:
      token !== undefined
        ? { authToken: token, ...(flags.metricsWithoutToken ? { metricsWithoutToken: true } : {}) }
        : {},
    print: flags.json ? reportPrinter(s.redactor, { json: true }) : undefined,
  });
}
