import type { Logger } from '../log.js';
import type { RunResult } from '../types.js';
import { sleep } from '../run.js';

export interface ReplicaLoopOptions {
  intervalMs: number;
  /** How often a follower tries to take over. */
  pollMs: number;
  election: { check(): Promise<boolean> };
  runOnce: (signal: AbortSignal) => Promise<RunResult>;
  onResult: (result: RunResult) => void;
  /** A follower's tick: nothing ran. */
  onStandby?: () => void;
  logger: Logger;
  stop: AbortSignal;
  now?: () => number;
}

/**
 * The loop of a replica (`replicas.enabled`): before every run the election is
 * asked (the leader verifies its lock, a follower tries to take it). The leader
 * runs every `intervalMs`, start to start, like the plain loop; a follower runs
 * nothing and asks again every `pollMs`, so it takes over within one poll of the
 * leader's lock being released. A stop signal ends the loop after the run in
 * progress, or at once while standing by.
 */
export async function runReplicaLoop(options: ReplicaLoopOptions): Promise<number> {
  const now = options.now ?? Date.now;
  const never = new AbortController().signal;
  let runs = 0;
  while (!options.stop.aborted) {
    const leader = await options.election.check();
    if (options.stop.aborted) break;
    if (!leader) {
      options.onStandby?.();
      await sleep(options.pollMs, options.stop);
      continue;
    }
    const started = now();
    const result = await options.runOnce(never);
    runs += 1;
    options.onResult(result);
    if (options.stop.aborted) break;
    const wait = started + options.intervalMs - now();
    if (wait <= 0) {
      options.logger.warn(`Run took ${Math.round((now() - started) / 1000)}s, longer than the ${Math.round(options.intervalMs / 1000)}s interval; starting the next run now`);
      continue;
    }
    await sleep(wait, options.stop);
  }
  return runs;
}
