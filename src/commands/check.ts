import { ConfigError, type ConfigFlags } from '../config/load.js';
import type { OtlpFlags } from '../config/otlp.js';
import type { LogLevel } from '../log.js';
import * as metricsRules from '../metrics/registry.js';
import { type EmfOptions, renderEmf } from '../report/emf.js';
import { renderHuman } from '../report/human.js';
import { renderJson } from '../report/json.js';
import {
  type NagiosThresholds,
  nagiosThresholds,
  renderNagios,
  renderNagiosLongLine,
  renderNagiosUnknown,
} from '../report/nagios.js';
import { exitCodeFor } from '../run.js';
import { createRuntime, type ReportOnly, type RunAndAlert, runContinuously, withRunner } from '../runtime.js';
import type { RunResult } from '../types.js';
import { internalErrorExitCode } from '../util/crash.js';
import { errorLine } from '../util/errors.js';
import type { Redactor } from '../util/redact.js';

export interface CheckFlags extends ConfigFlags, OtlpFlags {
  json?: boolean;
  pretty?: boolean;
  /** `--format`: `json` is what `--json` means; `nagios` is one plugin-API line (one run only). */
  format?: 'human' | 'json' | 'nagios' | 'emf';
  loop?: boolean;
  interval?: number;
  color?: boolean;
  logLevel?: LogLevel;
  /** With --loop: also serve /metrics, /healthz and /readyz on 127.0.0.1:PORT. */
  metricsPort?: number;
}

/**
 * Prints each run's report on stdout, redacted: JSON (one line unless pretty), a
 * Nagios plugin line, CloudWatch EMF documents (one JSON line each) or the human banner.
 */
export function reportPrinter(
  redactor: Redactor,
  options: { json?: boolean; pretty?: boolean; color?: boolean; nagios?: NagiosThresholds; emf?: EmfOptions },
): (result: RunResult) => void {
  return (result) => {
    const text = options.emf
      ? renderEmf(result, metricsRules, { ...options.emf, redact: (t) => redactor.redact(t) }).join('\n')
      : options.nagios
        ? renderNagios(result, { ...options.nagios, redact: (t) => redactor.redact(t) })
        : options.json || options.pretty
          ? renderJson(result, { pretty: options.pretty })
          : renderHuman(result, { color: options.color ?? false, redact: (t) => redactor.redact(t) });
    process.stdout.write(`${redactor.redact(text)}\n`);
  };
}

/**
 * `sentinel [--json | --format nagios] [--loop [--metrics-port N]]`: one run or a
 * loop; returns the exit code. With `--format nagios`, Sentinel failing (exit 3)
 * prints `SENTINEL UNKNOWN - <reason>` on stdout, as a plugin must, and nothing on
 * stderr: plugin runners (Icinga 2) show both, and the reason is said once.
 */
export async function checkCommand(flags: CheckFlags): Promise<number> {
  const after: AfterRun = {};
  const code = await checkOrUnknown(flags, after);
  // Everything is printed (stdout and stderr are synchronous on Linux) and every connection closed:
  // a receiver still trickling an answer must not keep cron's run alive.
  if (after.exportAbandoned) setImmediate(() => process.exit(code));
  return code;
}

async function checkOrUnknown(flags: CheckFlags, after: AfterRun): Promise<number> {
  if (flags.format !== 'nagios') return check(flags, after);
  try {
    return await check(flags, after);
  } catch (err) {
    process.stdout.write(`${nagiosUnknownLines(err).join('\n')}\n`);
    return internalErrorExitCode();
  }
}

/**
 * Sentinel's own failure as plugin output: the UNKNOWN line with the first config
 * problem and how many more, then (the plugin API's long output) one line per
 * further problem. Each is masked by the error's own redaction, escaped and cut.
 */
export function nagiosUnknownLines(err: unknown): string[] {
  // Unescaped and uncut here: the plugin lines escape and cut them themselves.
  const raw = (text: unknown, firstLine = true): string => errorLine(text, { escape: false, firstLine, max: Infinity });
  if (!(err instanceof ConfigError)) return [renderNagiosUnknown(raw(err))];
  const problems = err.problems.length > 0 ? err.problems : [err.message];
  const [first, ...rest] = problems.map((problem) => raw(problem, false));
  const more = rest.length > 0 ? ` (+${rest.length} more)` : '';
  return [
    renderNagiosUnknown(`config error: ${first}${more}`),
    ...rest.map((problem) => renderNagiosLongLine(`config error: ${problem}`)),
  ];
}

/** What a finished run leaves for the command to do. */
interface AfterRun {
  /** An OTLP export outlived its deadline (a receiver trickling its answer): its socket may hold the process. */
  exportAbandoned?: boolean;
}

async function check(flags: CheckFlags, after: AfterRun = {}): Promise<number> {
  const s = await createRuntime(flags, { otlp: flags });
  const json = Boolean(flags.json || flags.pretty || flags.format === 'json');
  const color = !json && flags.color !== false && process.stdout.isTTY === true && !s.environment.noColor;
  const nagios = flags.format === 'nagios' ? nagiosThresholds(s.config) : undefined;
  const emf = flags.format === 'emf' ? { maxSources: s.config.metrics.max_sources } : undefined;
  const print = reportPrinter(s.redactor, {
    json,
    pretty: flags.pretty,
    color: color && !emf,
    ...(nagios ? { nagios } : {}),
    ...(emf ? { emf } : {}),
  });

  if (flags.loop) {
    const listen = flags.metricsPort !== undefined ? { host: '127.0.0.1', port: flags.metricsPort } : undefined;
    return runContinuously(s, {
      intervalSeconds: flags.interval ?? 300,
      print,
      listen,
      reload: () => createRuntime(flags, { otlp: flags }),
    });
  }
  const once = async (runAndAlert: RunAndAlert): Promise<number> => {
    const started = performance.now();
    const result = await runAndAlert();
    const durationMs = performance.now() - started;
    print(result);
    if (s.otlp) {
      const { exportRunOnce } = await import('../metrics/otlp.js');
      const { abandoned } = await exportRunOnce(s.otlp, result, {
        logger: s.logger,
        redact: (t) => s.redactor.redact(t),
        environment: s.config.env.name,
        maxSources: s.config.metrics.max_sources,
        durationMs,
      });
      if (abandoned) after.exportAbandoned = true;
    }
    return exitCodeFor(result.overall_status);
  };
  // Replicas and a one-shot run (cron): it acts only while holding the leader lock,
  // taken once for the run's duration. If another process leads (or the lock
  // database cannot be reached), it checks and reports, and leaves the NOTIFY,
  // recording and notifications to the leader.
  const election = await s.deployment.election(() => {});
  if (!election) return withRunner(s, once);
  try {
    if (await election.check()) return await withRunner(s, once, { leadership: election });
    const reportOnly: ReportOnly =
      election.problem === undefined
        ? {
            log:
              'Another Sentinel process holds the leader lock (replicas): this run checks and reports only; ' +
              'the leader records and notifies what it sees',
            level: 'info',
            refusal: 'another Sentinel process holds the leader lock (replicas): the leader reloads the schema cache',
          }
        : {
            log:
              `Cannot reach the leader lock database (${election.problem}): ` +
              `this run checks and reports only; nothing is recorded or notified`,
            level: 'warn',
            refusal: 'the leader lock database cannot be reached (replicas): only the leader reloads the schema cache',
          };
    return await withRunner(s, once, { reportOnly });
  } finally {
    await election.close();
  }
}
