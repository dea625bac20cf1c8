import { errorLine } from './errors.js';
import { redactUrlPasswords } from './redact.js';
import { MAX_CHARS } from './text.js';

/**
 * The process-wide safety net. Whatever escapes every other handler (a bug, an
 * 'error' event nobody listens to, a write to a full disk) ends Sentinel with one
 * line on stderr, never Node's stack trace (unless SENTINEL_DEBUG=1), and never with
 * Node's exit code 1, which cron and Nagios read as "warning":
 *
 * - a one-shot run exits 3, "Sentinel itself could not run" (UNKNOWN to Nagios,
 *   which gets its `SENTINEL UNKNOWN - …` line on stdout instead);
 * - `--loop` and `serve` exit 70 (EX_SOFTWARE), so that systemd restarts them
 *   (the unit keeps Restart=always and prevents restarts only for 3, a config error).
 *
 * SIGUSR1 is taken too: Node would open its inspector on it, an open debugging port
 * on a monitoring host. Sentinel ignores it.
 */
export const EXIT_INTERNAL_ERROR = 3;
export const EXIT_INTERNAL_ERROR_LONG_RUNNING = 70;

let longRunning = false;

/**
 * Whether the command line asks for `--format nagios` (then Sentinel's own failures
 * are `SENTINEL UNKNOWN` lines on stdout, and only there).
 */
export function wantsNagios(argv: readonly string[]): boolean {
  return argv.some((a, i) => a === '--format=nagios' || (a === '--format' && argv[i + 1] === 'nagios'));
}
let nagios = false;

/** `--loop` and `serve` call this once they are about to run for good. */
export function markLongRunning(): void {
  longRunning = true;
}

/** The exit code of an internal error right now: 3 for a one-shot command, 70 once a loop runs. */
export function internalErrorExitCode(): number {
  return longRunning ? EXIT_INTERNAL_ERROR_LONG_RUNNING : EXIT_INTERNAL_ERROR;
}

/**
 * Installed before anything else loads (src/cli.ts), so before any configuration
 * exists: `debug` (SENTINEL_DEBUG=1) comes from src/config/env.ts all the same.
 */
export function installCrashHandlers(options: { nagios?: boolean; debug?: boolean } = {}): void {
  nagios = options.nagios ?? false;
  const debug = options.debug ?? false;
  const crash = (err: unknown): void => {
    // Error messages can quote data (a value from the monitored tables): escaped like every other line.
    // A plugin's status line is short (report/nagios.ts keeps its text to 240 characters).
    const line = errorLine(err, { max: nagios && !longRunning ? 200 : MAX_CHARS.log });
    const hint = debug ? '' : ' (SENTINEL_DEBUG=1 shows where)';
    try {
      // A Nagios check says it once, on stdout (plugin runners show stderr in the same output).
      if (nagios && !longRunning)
        process.stdout.write(`SENTINEL UNKNOWN - internal error: ${line.replace(/\|/g, '/')}${hint}\n`);
      else process.stderr.write(`sentinel: internal error: ${line}${hint}\n`);
      if (debug && err instanceof Error && err.stack) process.stderr.write(`${redactUrlPasswords(err.stack)}\n`);
    } catch {
      // Nothing left to tell it with.
    }
    process.exit(internalErrorExitCode());
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  process.on('SIGUSR1', () => {});
}
