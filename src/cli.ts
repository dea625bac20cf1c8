#!/usr/bin/env node
/**
 * The `sentinel` binary. `sentinel --version` answers before anything else is
 * loaded (commander alone costs ~30 ms of a cold start); everything else goes to
 * cli-main.ts, which itself imports heavy modules only once a command runs.
 */
import { sentinelVersion } from './util/version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${sentinelVersion()}\n`);
} else {
  const [{ installCrashHandlers, wantsNagios }, { readEnvironment }] = await Promise.all([
    import('./util/crash.js'),
    import('./config/env.js'),
  ]);
  installCrashHandlers({ nagios: wantsNagios(args), debug: readEnvironment().debug });
  await import('./cli-main.js');
}
