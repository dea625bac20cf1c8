#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';

/**
 * Entry point: flags -> command. Heavy modules (pg, zod, the checks) are imported
 * only once a command runs, so `sentinel --version` and `--help` start fast.
 * Exit codes (SPEC.md §3): 0 healthy, 1 degraded, 2 critical, 3 Sentinel could not run.
 */

const EXIT_USAGE = 3;

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a whole number of seconds, at least 1');
  }
  return n;
}

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--env <name>', 'environment to check (overrides SUPABASE_MODE; default dev)')
    .option('-c, --config <file>', 'YAML config file (overrides SENTINEL_CONFIG)')
    .option('--database-url <url>', 'PostgreSQL URL (prefer DATABASE_URL: flags are visible in ps)')
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['debug', 'info', 'warning', 'error']).default('info'));
}

export function buildProgram(): Command {
  const program = new Command('sentinel')
    .description('Health monitor for the Dragonfly ingestion pipeline')
    .version(pkg.version, '-V, --version')
    .showSuggestionAfterError(true)
    // Options after a subcommand belong to it (`sentinel demo --json`).
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: () => {} });

  connectionOptions(program)
    .option('--json', 'print the report as one JSON line on stdout')
    .option('--pretty', 'indent the JSON report (implies --json)')
    .option('--loop', 'run checks every --interval seconds until SIGINT/SIGTERM')
    .option('--interval <seconds>', 'seconds between run starts in --loop mode', positiveSeconds, 300)
    .option('--postgrest-url <url>', 'PostgREST root URL (overrides POSTGREST_URL / SUPABASE_URL)')
    .option('--no-color', 'no ANSI colours in the human report')
    .action(async (opts: Record<string, unknown>) => {
      const { checkCommand } = await import('./commands/check.js');
      process.exitCode = await checkCommand(opts);
    });

  connectionOptions(program.command('migrate'))
    .description('apply the ops views migration (and the reference intake schema with --with-intake)')
    .option('--with-intake', 'also create the reference intake schema (demos and tests; production has its own)')
    .action(async (opts: Record<string, unknown>) => {
      const { migrateCommand } = await import('./commands/migrate.js');
      process.exitCode = await migrateCommand(opts);
    });

  program
    .command('demo')
    .description('run a self-contained demo on an embedded PostgreSQL with simulated incidents')
    .option('--json', 'print the demo report as JSON')
    .action(async (opts: Record<string, unknown>) => {
      const { demoCommand } = await import('./demo/index.js');
      process.exitCode = await demoCommand(opts);
    });

  const alertOptions = (cmd: Command): Command =>
    cmd
      .option('--env <name>', 'environment (overrides SUPABASE_MODE; default dev)')
      .option('-c, --config <file>', 'YAML config file (overrides SENTINEL_CONFIG)')
      .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['debug', 'info', 'warning', 'error']).default('info'));
  const alerts = () => import('./commands/alerts.js');

  const silence = program.command('silence').description('quiet alerts during planned work: reported, not notified, exit code unaffected');
  alertOptions(silence.command('add'))
    .description('silence a check (optionally one source) for a while')
    .requiredOption('--check <name>', 'check to silence (stuck_batches, error_spike, schema_cache)')
    .option('--source <name>', 'only the alerts of this source')
    .requiredOption('--duration <duration>', 'how long, e.g. 30m, 2h, 1h30m')
    .requiredOption('--reason <text>', 'why, shown to whoever looks next')
    .option('--all-environments', 'silence it in every environment, not only the current one')
    .action(async (opts) => {
      process.exitCode = await (await alerts()).silenceAdd(opts);
    });
  alertOptions(silence.command('list'))
    .description('list active silences')
    .option('--all', 'include expired silences of the last 7 days')
    .option('--json', 'JSON output')
    .action(async (opts) => {
      process.exitCode = await (await alerts()).silenceList(opts);
    });
  alertOptions(silence.command('expire'))
    .description('end a silence now')
    .argument('<id>', 'silence id (s-…)')
    .action(async (id: string, opts) => {
      process.exitCode = await (await alerts()).silenceExpire({ ...opts, id });
    });
  alertOptions(program.command('ack'))
    .description('acknowledge a firing alert: no repeats until it resolves')
    .argument('<id>', 'alert id from the report or `sentinel alerts`')
    .action(async (id: string, opts) => {
      process.exitCode = await (await alerts()).ack({ ...opts, id });
    });
  alertOptions(program.command('alerts'))
    .description("list this host's firing alerts, with their ids")
    .option('--json', 'JSON output')
    .action(async (opts) => {
      process.exitCode = await (await alerts()).listAlerts(opts);
    });
  alertOptions(program.command('notify').command('test'))
    .description('send a clearly marked test message through each configured notifier')
    .option('--notifier <name>', 'only this notifier')
    .action(async (opts) => {
      process.exitCode = await (await alerts()).notifyTest(opts);
    });

  const quiet = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ outputError: () => {} });
    cmd.commands.forEach(quiet);
  };
  quiet(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        process.exitCode = 0;
        return;
      }
      process.stderr.write(`sentinel: ${err.message.replace(/^error: /, '')} (see sentinel --help)\n`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    const { reportFatal } = await import('./commands/fatal.js');
    process.exitCode = reportFatal(err);
  }
}

await main(process.argv);
