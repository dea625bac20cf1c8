import { ConfigError } from '../config/load.js';
import { internalErrorExitCode } from '../util/crash.js';
import { errorLine } from '../util/errors.js';
import { redactUrlPasswords } from '../util/redact.js';

/**
 * The last line of defence: an error nobody handled becomes one line on stderr
 * and exit 3. A stack trace is shown only with SENTINEL_DEBUG=1 (`debug`), since what
 * reaches here is usually the user's setup, not a bug to report. Problems and
 * messages echo flags, config values and driver errors: each is escaped and cut
 * (src/util/text.ts) after its passwords are masked.
 */
export function reportFatal(err: unknown, options: { debug?: boolean } = {}): number {
  if (err instanceof ConfigError) {
    for (const problem of err.problems)
      process.stderr.write(`sentinel: config error: ${errorLine(problem, { firstLine: false })}\n`);
    return 3;
  }
  process.stderr.write(`sentinel: ${errorLine(err)}\n`);
  if (options.debug && err instanceof Error && err.stack) process.stderr.write(`${redactUrlPasswords(err.stack)}\n`);
  // 3 for a one-shot command; 70 once a loop ran, so that systemd restarts it.
  return internalErrorExitCode();
}
