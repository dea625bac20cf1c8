import { loadConfig, type ConfigFlags } from '../config/load.js';
import type { SentinelConfig } from '../config/schema.js';
import { createLogger, type LogLevel, type Logger } from '../log.js';
import { Redactor } from '../util/redact.js';
import { Runner, exitCodeFor } from '../run.js';
import { allChecks } from '../checks/index.js';
import { FileStateStore } from '../state/store.js';
import { renderHuman } from '../report/human.js';
import { renderJson } from '../report/json.js';
import { runLoop } from '../loop.js';
import type { RunResult } from '../types.js';
import { createAlerting } from '../alerting/setup.js';
import { pingHeartbeat } from '../alerting/heartbeat.js';

export interface CheckFlags extends ConfigFlags {
  json?: boolean;
  pretty?: boolean;
  loop?: boolean;
  interval?: number;
  color?: boolean;
  logLevel?: LogLevel;
}

/** Loads configuration and sets up redacted logging; shared by every command that talks to a database. */
export async function setup(flags: ConfigFlags & { logLevel?: LogLevel }): Promise<{ config: SentinelConfig; logger: Logger; redactor: Redactor }> {
  const config = await loadConfig({ flags, env: process.env });
  const redactor = new Redactor(config.secrets);
  const logger = createLogger({ level: flags.logLevel ?? 'info', redactor });
  return { config, logger, redactor };
}

/** `sentinel [--json] [--loop]`: one run or a loop; returns the exit code. */
export async function checkCommand(flags: CheckFlags): Promise<number> {
  const { config, logger, redactor } = await setup(flags);
  const json = Boolean(flags.json || flags.pretty);
  const color = !json && flags.color !== false && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const print = (result: RunResult): void => {
    const text = json ? renderJson(result, { pretty: flags.pretty }) : renderHuman(result, { color });
    process.stdout.write(redactor.redact(text) + '\n');
  };

  const runner = new Runner({ config, logger, checks: allChecks(), state: new FileStateStore(config.stateDir) });
  const alerting = createAlerting(config, logger, redactor);
  // One run: checks, then alerting (silences, lifecycle, delivery), then the report
  // (which shows silenced and acknowledged marks), then the heartbeat.
  const runAndAlert = async (signal?: AbortSignal): Promise<RunResult> => {
    const raw = await runner.runOnce(signal);
    const { result, outcome } = await alerting.process(raw);
    const reported: RunResult = { ...result, notifications: outcome.notifications, ...(outcome.error ? { alerting_error: outcome.error } : {}) };
    // Pages that cannot go out are Sentinel failing: the dead man's switch must say so.
    if (config.heartbeat_url) await pingHeartbeat(config.heartbeat_url, outcome.error ? 'fail' : 'ok', logger, redactor);
    return reported;
  };
  try {
    return await loopOrOnce();
  } catch (err) {
    // Sentinel itself failed (not the pipeline): tell the dead man's switch.
    if (config.heartbeat_url) await pingHeartbeat(config.heartbeat_url, 'fail', logger, redactor);
    throw err;
  } finally {
    await runner.close();
  }

  async function loopOrOnce(): Promise<number> {
    if (!flags.loop) {
      const result = await runAndAlert();
      print(result);
      return exitCodeFor(result.overall_status);
    }

    const stop = new AbortController();
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stop.signal.aborted) {
        logger.warn(`Received ${signal} again: exiting now`);
        process.exit(signal === 'SIGTERM' ? 143 : 130);
      }
      logger.info(`Received ${signal}: finishing the current run, then exiting`);
      stop.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const intervalMs = (flags.interval ?? 300) * 1000;
    logger.info(`Starting loop: environment ${config.env.name}, every ${flags.interval ?? 300}s`);
    const runs = await runLoop({ intervalMs, runOnce: runAndAlert, onResult: print, logger, stop: stop.signal });
    logger.info(`Loop stopped after ${runs} run${runs === 1 ? '' : 's'}`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    return 0;
  }
}
