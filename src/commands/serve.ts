import type { ConfigFlags } from '../config/load.js';
import type { LogLevel } from '../log.js';
import { DEFAULT_LISTEN, type ListenAddress } from '../server/listen.js';
import { reportPrinter, runContinuously, setup } from './check.js';

export interface ServeFlags extends ConfigFlags {
  listen?: ListenAddress;
  interval?: number;
  json?: boolean;
  logLevel?: LogLevel;
}

/**
 * `sentinel serve`: the loop plus the HTTP server (`/metrics`, `/healthz`,
 * `/readyz`). Logs go to stderr; stdout carries each run's JSON line with --json
 * and nothing otherwise. Returns the exit code (0 after a graceful stop).
 *
 * With `replicas.enabled` any number of processes may serve one database: the
 * leader (src/replicas/leader.ts) runs the checks and notifies, its JSON lines
 * carrying `"role": "leader"`; followers run nothing and print nothing on stdout,
 * try to take over every `takeover_poll_seconds`, report `sentinel_leader 0`, and
 * stay ready on `/readyz` while the lock database answers (a follower is a healthy
 * standby, not a broken replica).
 */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  const s = await setup(flags);
  return runContinuously(s, {
    intervalSeconds: flags.interval ?? 300,
    listen: flags.listen ?? DEFAULT_LISTEN,
    print: flags.json ? reportPrinter(s.redactor, { json: true }) : undefined,
  });
}
