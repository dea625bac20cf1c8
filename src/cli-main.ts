import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { METRICS as ANOMALY_METRICS } from './anomalies/types.js';
import { CHECK_LIST } from './checks/index.js';
import { DEFAULT_LISTEN, formatHostPort, type ListenAddress, parseListen, parsePort } from './server/listen.js';
import { wantsNagios } from './util/crash.js';
import { sentinelVersion } from './util/version.js';

/**
 * Entry point: flags -> command. Heavy modules (pg, zod, the checks) are imported
 * only once a command runs, so `sentinel --version` and `--help` start fast.
 * Exit codes (docs/contract.md §3): 0 healthy, 1 degraded, 2 critical, 3 Sentinel could not run.
 */

const EXIT_USAGE = 3;

/**
 * Flag limits (docs/reliability.md). Kept here rather than imported from the config's
 * limits so that `--help` and `--version` load nothing heavy; the numbers match.
 */
/** `--interval`: one day. A longer timer would overflow Node's 2^31-1 ms and fire at once. */
const MAX_INTERVAL_SECONDS = 86_400;
/** `migrate --lock-timeout`: an hour (0 waits forever). */
const MAX_LOCK_TIMEOUT_SECONDS = 3600;
/** `batches audit --limit`. */
const MAX_AUDIT_LIMIT = 1000;

/** `--interval`: a whole number of seconds from 1 to one day. */
function intervalSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > MAX_INTERVAL_SECONDS) {
    throw new InvalidArgumentError(`expected a whole number of seconds from 1 to ${MAX_INTERVAL_SECONDS} (1 day)`);
  }
  return n;
}

function lockTimeoutSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n <= MAX_LOCK_TIMEOUT_SECONDS)) {
    throw new InvalidArgumentError(
      `expected a number of seconds from 0 (wait forever) to ${MAX_LOCK_TIMEOUT_SECONDS} (1 hour)`,
    );
  }
  return n;
}

function auditLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > MAX_AUDIT_LIMIT)
    throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_AUDIT_LIMIT}`);
  return n;
}

function sloDays(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 365)
    throw new InvalidArgumentError('expected a whole number of days from 1 to 365');
  return n;
}

function listenAddress(value: string): ListenAddress {
  try {
    return parseListen(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function portNumber(value: string): number {
  try {
    return parsePort(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `--metric`: one of the anomaly metrics (commander's own `choices` cannot also collect a repeated flag). */
function metricName(value: string): string {
  if (!(ANOMALY_METRICS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${ANOMALY_METRICS.join(', ')}`);
  return value;
}

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--env <name>', 'environment to check (overrides SUPABASE_MODE; default dev)')
    .option('-c, --config <file>', 'YAML config file (overrides SENTINEL_CONFIG)')
    .option('--database-url <url>', 'PostgreSQL URL (prefer DATABASE_URL: flags are visible in ps)')
    .addOption(
      new Option('--log-level <level>', 'log level on stderr')
        .choices(['debug', 'info', 'warning', 'error'])
        .default('info'),
    );
}

/** The OTLP export of the commands that run checks (docs/opentelemetry.md); the OTEL_* variables also set it. */
function otlpOptions(cmd: Command): Command {
  return cmd
    .option(
      '--otlp-endpoint <url>',
      'also push the metrics over OTLP/HTTP to this collector or agent (e.g. http://127.0.0.1:4318; ' +
        'overrides OTEL_EXPORTER_OTLP_ENDPOINT)',
    )
    .option(
      '--otlp-protocol <protocol>',
      'http/protobuf (default) or http/json (overrides OTEL_EXPORTER_OTLP_PROTOCOL)',
    )
    .addOption(
      new Option(
        '--otlp-temporality <temporality>',
        'counters and histogram as cumulative (default) or delta (Datadog) ' +
          '(overrides OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE)',
      ).choices(['cumulative', 'delta']),
    );
}

/**
 * A subcommand's options plus those given explicitly before it
 * (`sentinel --env prod migrate`). The subcommand's own explicit values win; a
 * parent's defaults never override anything (commander's optsWithGlobals lets
 * them, which would silently drop `migrate --log-level debug`).
 */
// Commander has checked required options and choices; the shape is the declared one.
function withGlobals<T>(cmd: Command): T {
  const merged: Record<string, unknown> = { ...cmd.opts() };
  for (let parent = cmd.parent; parent; parent = parent.parent) {
    for (const [key, value] of Object.entries(parent.opts())) {
      const explicit = parent.getOptionValueSource(key) === 'cli';
      const localExplicit = cmd.getOptionValueSource(key) === 'cli';
      if (explicit && !localExplicit) merged[key] = value;
    }
  }
  return merged as T;
}

export function buildProgram(): Command {
  const program = new Command('sentinel')
    .description('Health monitor for the Dragonfly ingestion pipeline')
    .version(sentinelVersion(), '-V, --version')
    .showSuggestionAfterError(true)
    // Options after a subcommand belong to it (`sentinel demo --json`).
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: () => {} });

  connectionOptions(program)
    .option('--json', 'print the report as one JSON line on stdout')
    .option('--pretty', 'indent the JSON report (implies --json)')
    .addOption(
      new Option(
        '--format <format>',
        'report format: human (default), json (= --json), nagios (one plugin-API line; exit 0/1/2/3) or emf ' +
          '(CloudWatch Embedded Metric Format: JSON lines of metrics, docs/cloudwatch.md)',
      ).choices(['human', 'json', 'nagios', 'emf']),
    )
    .option('--loop', 'run checks every --interval seconds until SIGINT/SIGTERM')
    .option('--interval <seconds>', 'seconds between run starts in --loop mode (1 to 86400)', intervalSeconds, 300)
    .option('--postgrest-url <url>', 'PostgREST root URL (overrides POSTGREST_URL / SUPABASE_URL)')
    .option('--no-color', 'no ANSI colours in the human report')
    .option(
      '--metrics-port <port>',
      'with --loop: also serve /metrics, /healthz and /readyz on 127.0.0.1:PORT (see sentinel serve)',
      portNumber,
    );
  otlpOptions(program).action(async (opts: Record<string, unknown>, cmd: Command) => {
    if (opts.loop && opts.pretty)
      throw new CommanderError(
        EXIT_USAGE,
        'sentinel.usage',
        '--pretty cannot be used with --loop: a loop prints one JSON line per run (use --json)',
      );
    if (!opts.loop && cmd.getOptionValueSource('interval') === 'cli')
      throw new CommanderError(EXIT_USAGE, 'sentinel.usage', '--interval needs --loop');
    if (!opts.loop && opts.metricsPort !== undefined)
      throw new CommanderError(EXIT_USAGE, 'sentinel.usage', '--metrics-port needs --loop (or use sentinel serve)');
    if ((opts.json || opts.pretty) && opts.format !== undefined && opts.format !== 'json') {
      throw new CommanderError(
        EXIT_USAGE,
        'sentinel.usage',
        `--${opts.pretty ? 'pretty' : 'json'} cannot be used with --format ${String(opts.format)}`,
      );
    }
    if (opts.format === 'nagios') {
      if (opts.loop)
        throw new CommanderError(
          EXIT_USAGE,
          'sentinel.usage',
          '--format nagios cannot be used with --loop: a Nagios check is one run, one line and an exit code',
        );
      // Plugin runners (Icinga 2) read stderr into the plugin output, and the plugin line
      // already names what went wrong: nothing is logged unless asked for.
      if (cmd.getOptionValueSource('logLevel') !== 'cli') opts.logLevel = 'off';
    }
    const { checkCommand } = await import('./commands/check.js');
    process.exitCode = await checkCommand(opts);
  });

  const serve = connectionOptions(program.command('serve'))
    .description(
      'run the checks every --interval seconds and serve the dashboard (/, /api/*), ' +
        '/metrics, /healthz and /readyz over HTTP',
    )
    .option('--postgrest-url <url>', 'PostgREST root URL (overrides POSTGREST_URL / SUPABASE_URL)')
    .addOption(
      new Option(
        '--listen <host:port>',
        'address of the HTTP server ([::1]:9464 for IPv6; 0.0.0.0 exposes it on every interface)',
      )
        .argParser(listenAddress)
        .default(DEFAULT_LISTEN, formatHostPort(DEFAULT_LISTEN.host, DEFAULT_LISTEN.port)),
    )
    .option('--interval <seconds>', 'seconds between run starts (1 to 86400)', intervalSeconds, 300)
    .option('--json', "print each run's report as one JSON line on stdout")
    .option(
      '--auth-token <token>',
      'bearer token for /api/* and /metrics, required off loopback ' +
        '(prefer SENTINEL_DASHBOARD_TOKEN: flags are visible in ps)',
    )
    .option('--metrics-without-token', 'keep /metrics open although a token is set (a scraper that cannot send one)');
  otlpOptions(serve).action(async (_opts: Record<string, unknown>, cmd: Command) => {
    const { serveCommand } = await import('./commands/serve.js');
    process.exitCode = await serveCommand(withGlobals(cmd));
  });

  connectionOptions(program.command('slo'))
    .description(
      "the guide's four SLOs over the last --days days: value, target, met, error budget left, " +
        'burn rate (exit 1 when one is missed)',
    )
    .option('--days <n>', 'length of the window in days, 1 to 365', sloDays, 30)
    .option('--json', 'print the report as one JSON object')
    .action(async (_opts: Record<string, unknown>, cmd: Command) => {
      const { sloCommand } = await import('./commands/slo.js');
      process.exitCode = await sloCommand(withGlobals(cmd));
    });

  connectionOptions(program.command('migrate'))
    .description('apply the ops views migration (and the reference intake schema with --with-intake)')
    .option('--with-intake', 'also create the reference intake schema (demos and tests; production has its own)')
    .option(
      '--lock-timeout <seconds>',
      'give up when a table stays locked this long, at most 3600 (0 waits forever)',
      lockTimeoutSeconds,
      5,
    )
    .action(async (_opts: Record<string, unknown>, cmd: Command) => {
      const { migrateCommand } = await import('./commands/migrate.js');
      process.exitCode = await migrateCommand(withGlobals(cmd));
    });

  program
    .command('demo')
    .description('run a self-contained demo on an embedded PostgreSQL with simulated incidents')
    .option('--json', 'print the demo report as JSON')
    .action(async (_opts: Record<string, unknown>, cmd: Command) => {
      const { demoCommand } = await import('./demo/index.js');
      process.exitCode = await demoCommand(withGlobals(cmd));
    });

  const anomaliesCmd = program
    .command('anomalies')
    .description('each source against its own hour-of-week baseline: what the anomalies check would say');
  const anomalies = () => import('./commands/anomalies.js');
  const metricOption = (flag: string, description: string) =>
    new Option(flag, `${description}: ${ANOMALY_METRICS.join(', ')}`).argParser(metricName);
  connectionOptions(anomaliesCmd.command('backtest'))
    .description(
      'judge every complete UTC hour in [--from, --to) as the live check would have then, from data created ' +
        'before each hour ended (exit 0 when it ran, 3 on bad input)',
    )
    .requiredOption('--from <iso>', 'first hour, ISO 8601 (2026-11-02 or 2026-11-02T13:00Z; UTC unless an offset)')
    .requiredOption('--to <iso>', 'end of the range (exclusive), ISO 8601; at most 366 days after --from')
    .addOption(
      new Option('--source <name>', 'only this source (repeatable)')
        .argParser((v: string, list: string[]) => [...list, v])
        .default([], 'every source'),
    )
    .addOption(
      metricOption('--metric <name>', 'only this metric (repeatable)')
        .argParser((v: string, list: string[]) => [...list, metricName(v)])
        .default([], "each source's configured metrics"),
    )
    .option('--json', 'print one JSON document: { from, to, hours_evaluated, anomalies: [...] }')
    .action(async (_opts: Record<string, unknown>, cmd: Command) => {
      const { backtestCommand } = await anomalies();
      process.exitCode = await backtestCommand(withGlobals(cmd));
    });
  connectionOptions(anomaliesCmd.command('baseline'))
    .description('the 168 hour-of-week rows of one source and metric: expected, lower, upper, weeks of data')
    .requiredOption('--source <name>', 'the source')
    .addOption(metricOption('--metric <name>', 'the metric').makeOptionMandatory())
    .option('--at <iso>', 'as the detector saw it at this time, ISO 8601 (default now): history of any date')
    .option('--json', 'print one JSON document')
    .action(async (_opts: Record<string, unknown>, cmd: Command) => {
      const { baselineCommand } = await anomalies();
      process.exitCode = await baselineCommand(withGlobals(cmd));
    });

  const alertOptions = (cmd: Command): Command =>
    cmd
      .option('--env <name>', 'environment (overrides SUPABASE_MODE; default dev)')
      .option('-c, --config <file>', 'YAML config file (overrides SENTINEL_CONFIG)')
      .addOption(
        new Option('--log-level <level>', 'log level on stderr')
          .choices(['debug', 'info', 'warning', 'error'])
          .default('info'),
      );
  const alerts = () => import('./commands/alerts.js');

  const silence = program
    .command('silence')
    .description('quiet alerts during planned work: reported, not notified, exit code unaffected');
  alertOptions(silence.command('add'))
    .description('silence a check (optionally one source) for a while')
    .requiredOption('--check <name>', `check to silence (${CHECK_LIST.map((c) => c.name).join(', ')})`)
    .option('--source <name>', 'only the alerts of this source')
    .requiredOption('--duration <duration>', 'how long, e.g. 30m, 2h, 1h30m (at most 366d)')
    .requiredOption('--reason <text>', 'why, shown to whoever looks next')
    .option('--all-environments', 'silence it in every environment, not only the current one')
    .addHelpText('after', checksHelp)
    .action(async (_opts, cmd: Command) => {
      process.exitCode = await (await alerts()).silenceAdd(withGlobals(cmd));
    });
  alertOptions(silence.command('list'))
    .description('list active silences')
    .option('--all', 'include expired silences of the last 7 days')
    .option('--json', 'JSON output')
    .action(async (_opts, cmd: Command) => {
      process.exitCode = await (await alerts()).silenceList(withGlobals(cmd));
    });
  alertOptions(silence.command('expire'))
    .description('end a silence now')
    .argument('<id>', 'silence id (s-…)')
    .action(async (id: string, _opts, cmd: Command) => {
      process.exitCode = await (await alerts()).silenceExpire({ ...withGlobals(cmd), id });
    });
  alertOptions(program.command('ack'))
    .description('acknowledge a firing alert: no repeats until it resolves')
    .argument('<id>', 'alert id from the report or `sentinel alerts`')
    .action(async (id: string, _opts, cmd: Command) => {
      process.exitCode = await (await alerts()).ack({ ...withGlobals(cmd), id });
    });
  alertOptions(program.command('alerts'))
    .description("list this host's firing alerts, with their ids")
    .option('--json', 'JSON output')
    .action(async (_opts, cmd: Command) => {
      process.exitCode = await (await alerts()).listAlerts(withGlobals(cmd));
    });
  alertOptions(program.command('notify').description('notifications by hand: `sentinel notify test`').command('test'))
    .description('send a clearly marked test message through each configured notifier')
    .option('--notifier <name>', 'only this notifier')
    .action(async (_opts, cmd: Command) => {
      process.exitCode = await (await alerts()).notifyTest(withGlobals(cmd));
    });

  // Remediation: `sentinel batches stuck | fail-stuck | audit` (src/commands/batches.ts).
  const batches = () => import('./commands/batches.js');
  const batchesCmd = program
    .command('batches')
    .description('stuck batches: list them, fail them safely (dry run first, audited), show the audit');
  connectionOptions(batchesCmd.command('stuck'))
    .description('list the batches stuck longer than checks.stuck_batches.threshold_minutes (exit 0 either way)')
    .option('--json', 'JSON output')
    .action(async (_opts, cmd: Command) => {
      process.exitCode = await (await batches()).batchesStuck(withGlobals(cmd));
    });
  connectionOptions(batchesCmd.command('fail-stuck'))
    .description(
      'set the batches stuck longer than --older-than to failed: a dry run unless --yes; one audited transaction',
    )
    .requiredOption('--older-than <duration>', 'only batches stuck longer than this, e.g. 30m, 2h (1m to 366d)')
    .requiredOption(
      '--reason <text>',
      'why, stored as rejection_reason and in the audit record (at most 500 characters)',
    )
    .option('--source <name>', 'only the batches of this source')
    .option('--yes', 'apply the change (without it: list what would change, write nothing)')
    .option('--json', 'JSON output')
    .action(async (_opts, cmd: Command) => {
      process.exitCode = await (await batches()).batchesFailStuck(withGlobals(cmd));
    });
  connectionOptions(batchesCmd.command('audit'))
    .description('list who failed which batches with fail-stuck, and why, newest first')
    .option('--limit <n>', 'how many records, 1 to 1000 (default 20)', auditLimit)
    .option('--json', 'JSON output')
    .action(async (_opts, cmd: Command) => {
      process.exitCode = await (await batches()).batchesAudit(withGlobals(cmd));
    });

  const quiet = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ outputError: () => {} });
    cmd.commands.forEach(quiet);
  };
  quiet(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  // A reader that goes away (`sentinel --loop --json | head -1`) is not an error
  // to report: stop quietly, like other Unix tools.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        process.exitCode = 0;
        return;
      }
      // The message echoes what was typed (an unknown option, a bad value): escaped and cut like data.
      const { errorLine } = await import('./util/errors.js');
      const text =
        err.code === 'commander.excessArguments'
          ? `unknown command '${argv.slice(2).find((a) => !a.startsWith('-')) ?? ''}'`
          : err.message.replace(/^error: /, '').replace(/\n\(Did you mean /, ' (Did you mean ');
      const message = errorLine(text, { firstLine: false });
      // A check command with bad arguments is UNKNOWN to Nagios, on stdout like every plugin
      // result, and said once: plugin runners show stderr in the same output.
      if (wantsNagios(argv)) {
        const { renderNagiosUnknown } = await import('./report/nagios.js');
        process.stdout.write(`${renderNagiosUnknown(`${message} (see sentinel --help)`)}\n`);
      } else {
        process.stderr.write(`sentinel: ${message} (see sentinel --help)\n`);
      }
      process.exitCode = EXIT_USAGE;
      return;
    }
    const [{ reportFatal }, { readEnvironment }] = await Promise.all([
      import('./commands/fatal.js'),
      import('./config/env.js'),
    ]);
    process.exitCode = reportFatal(err, { debug: readEnvironment().debug });
  }
}

await main(process.argv);
// Everything is printed and every pool was asked to close. A connection to a
// server that stopped answering can still hold the event loop open; it must not
// keep a finished run alive (under cron with flock, that would stop monitoring).
// The timer is unref'd: a clean exit does not wait for it.
setTimeout(() => process.exit(), 3000).unref();

/** Every check with its one line, from the registry (`*`: takes --source), wrapped to 80 columns. */
function checksHelp(): string {
  const indent = 23;
  const wrap = (text: string): string[] => {
    const lines: string[] = [];
    let line = '';
    for (const word of text.split(' ')) {
      if (line && indent + line.length + 1 + word.length > 80) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    return [...lines, line];
  };
  return [
    '',
    'Checks (* = per source, takes --source):',
    ...CHECK_LIST.flatMap((c) =>
      wrap(c.description).map((text, i) =>
        i === 0
          ? `  ${`${c.name}${c.perSource ? ' *' : ''}`.padEnd(indent - 3)} ${text}`
          : `${' '.repeat(indent)}${text}`,
      ),
    ),
  ].join('\n');
}
