import type { Logger } from './log.js';
import type { RunResult } from './types.js';
import { sleep } from './util/sleep.js';

export interface LoopOptions {
  intervalMs: number;
  runOnce: (signal: AbortSignal) => Promise<RunResult>;
  onResult: (result: RunResult) => void;
  logger: Logger;
  /** Aborted by SIGINT/SIGTERM: the current run finishes, then the loop returns. */
  stop: AbortSignal;
  now?: () => number;
  /**
   * Replicas: asked before every run. The leader (true) runs on schedule; a
   * follower runs nothing and asks again after `pollMs`, so it takes over within
   * one poll of the leader's lock being released.
   */
  election?: { check(): Promise<boolean> };
  pollMs?: number;
  /** A follower's tick: nothing ran. */
  onStandby?: () => void;
  /**
   * When the first run is due (by `now`): after a configuration reload the loop
   * resumes its schedule instead of running at once. Default: at once.
   */
  firstRunAt?: number;
  /** Called with the start of each run (by `now`), so a caller can resume the schedule. */
  onRunStart?: (startedAt: number) => void;
}

/**
 * Runs checks every `intervalMs`, measured start to start, so a slow run does not
 * push the schedule back (with replicas, only while this process leads). A run that takes longer than the interval is
 * followed
 * by the next one at once (with a warning) rather than overlapping it. Database
 * outages do not end the loop: each run reports what it saw.
 */
export async function runLoop(options: LoopOptions): Promise<number> {
  const now = options.now ?? Date.now;
  let runs = 0;
  // The checks themselves are not aborted by a stop signal: the run in progress
  // finishes and is reported, which is what "exit after the current run" means.
  const never = new AbortController().signal;
  const firstWait = options.firstRunAt !== undefined ? options.firstRunAt - now() : 0;
  if (firstWait > 0) await sleep(firstWait, options.stop);
  while (!options.stop.aborted) {
    if (options.election) {
      const leader = await options.election.check();
      if (options.stop.aborted) break;
      if (!leader) {
        options.onStandby?.();
        await sleep(options.pollMs ?? options.intervalMs, options.stop);
        continue;
      }
    }
    const started = now();
    options.onRunStart?.(started);
    const result = await options.runOnce(never);
    runs += 1;
    options.onResult(result);
    if (options.stop.aborted) break;
    const wait = started + options.intervalMs - now();
    if (wait <= 0) {
      options.logger.warn(
        `Run took ${Math.round((now() - started) / 1000)}s, ` +
          `longer than the ${Math.round(options.intervalMs / 1000)}s ` +
          `interval; starting the next run now`,
      );
      continue;
    }
    await sleep(wait, options.stop);
  }
  return runs;
}

export interface StopSignals {
  /** Aborted by the first SIGINT or SIGTERM. */
  signal: AbortSignal;
  /** Removes the handlers (the default behaviour of the signals returns). */
  dispose(): void;
}

/**
 * SIGINT/SIGTERM for the long-running modes (`--loop`, `serve`): the first asks to
 * stop after the current run (whatever listens on `signal` stops too, such as the
 * HTTP server); a second exits at once, 130 for SIGINT and 143 for SIGTERM, as a
 * shell would report a process killed by it.
 */
export function stopOnSignals(
  logger: Logger,
  proc: Pick<NodeJS.Process, 'on' | 'off' | 'exit'> = process,
): StopSignals {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      logger.warn(`Received ${signal} again: exiting now`);
      proc.exit(signal === 'SIGTERM' ? 143 : 130);
      return;
    }
    logger.info(`Received ${signal}: finishing the current run, then exiting`);
    stop.abort();
  };
  proc.on('SIGINT', onSignal);
  proc.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    dispose() {
      proc.off('SIGINT', onSignal);
      proc.off('SIGTERM', onSignal);
    },
  };
}
