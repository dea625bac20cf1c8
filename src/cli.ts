#!/usr/bin/env node
/**
 * The `sentinel` binary. `sentinel --version` answers before anything else is
 * loaded (commander alone costs ~30 ms of a cold start); everything else goes to
 * cli-main.ts, which itself imports heavy modules only once a command runs.
 * `--loop`, `serve` and `demo` first set Sentinel's V8 flags (util/v8-flags.ts),
 * unless the user passed their own.
 */
import { sentinelVersion } from './util/version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${sentinelVersion()}\n`);
} else {
  // V8's flags before cli-main.js's heavy imports: the young generation stays small from the start.
  const [{ installCrashHandlers, wantsNagios }, { readEnvironment }] = await Promise.all([
    import('./util/crash.js'),
    import('./config/env.js'),
    import('./util/v8-flags.js').then((m) => m.applyV8Defaults()),
  ]);
  installCrashHandlers({ nagios: wantsNagios(args), debug: readEnvironment().debug });
  await import('./cli-main.js');
}
