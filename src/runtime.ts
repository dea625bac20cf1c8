import type { AlertingOutcome } from './alerting/engine.js';
import { pingHeartbeat } from './alerting/heartbeat.js';
import { PgAlertStore } from './alerting/pg-store.js';
import { createAlerting } from './alerting/setup.js';
import { type AlertStateStore, AlertStore } from './alerting/store.js';
import { allChecks } from './checks/index.js';
import { type Environment, readEnvironment } from './config/env.js';
import { ConfigError, type ConfigFlags, loadConfig, prepareStateDir } from './config/load.js';
import { type OtlpFlags, type OtlpSettings, otlpSettings } from './config/otlp.js';
import type { SentinelConfig } from './config/schema.js';
import { stateDatabaseUrl } from './config/state-database.js';
import { describeError } from './db/errors.js';
import { recordOf } from './history/index.js';
import { PgRunHistory } from './history/pg-store.js';
import { FileRunHistory, type RunHistoryStore } from './history/store.js';
import { createLogger, type Logger, type LogLevel } from './log.js';
import { runLoop, stopOnSignals } from './loop.js';
import type { OtlpExport } from './metrics/otlp.js';
import type { Notifier } from './notifiers/contract.js';
import { createNotifiers } from './notifiers/index.js';
import type { LeaderElection } from './replicas/leader.js';
import { Runner } from './run.js';
import type { MonitorServer } from './server/index.js';
import type { ListenAddress } from './server/listen.js';
import { FileStateStore } from './state/store.js';
import type { RunResult } from './types.js';
import { markLongRunning } from './util/crash.js';
import { Redactor } from './util/redact.js';

/**
 * The composition root: every command that needs more than flags builds its
 * runtime here, once, from the configuration and the environment. The one choice
 * that shapes the rest (one process, or replicas sharing state in PostgreSQL)
 * is made in {@link deploymentOf}; the commands (src/commands/*) parse flags, get a
 * runtime, act and report.
 */

/**
 * Where state lives and who may act: one process (this host's state directory,
 * no election) or replicas (`replicas.enabled`: alert state and run history in
 * the state database, a leader elected on its own connection).
 */
export interface Deployment {
  /** True with `replicas.enabled`. */
  readonly replicated: boolean;
  /** Alert state (silences, acknowledgements, the outbox). The caller closes it (`close?.()`). */
  alertStore(): AlertStateStore;
  /** The run history `sentinel slo` reads; `readOnly` for readers. The caller closes it. */
  runHistory(options?: { readOnly?: boolean }): RunHistoryStore;
  /**
   * The leader election (not yet started), undefined for one process. The caller closes it.
   * `deadSessionTimeoutMs`: how soon PostgreSQL frees the lock of a leader cut off from it.
   */
  election(onChange: (leader: boolean) => void, deadSessionTimeoutMs?: number): Promise<LeaderElection | undefined>;
}

/** Everything a command works with, built once by {@link createRuntime}. */
export interface Runtime {
  config: SentinelConfig;
  /** The process environment Sentinel reads besides the configuration (src/config/env.ts). */
  environment: Environment;
  logger: Logger;
  /** Masks the configuration's and the notifiers' secrets in everything printed or logged. */
  redactor: Redactor;
  /** The configured notifiers, built once (their secrets are in `redactor`). */
  notifiers: Notifier[];
  deployment: Deployment;
  /** The OpenTelemetry export (`--otlp-endpoint`, OTEL_*), for the commands that run checks; off when undefined. */
  otlp?: OtlpSettings;
}

/** How to build a runtime besides the flags. */
export interface RuntimeOptions {
  /** False for commands that only touch alert state (silence, ack, notify): they work while the database is down. */
  requireDatabase?: boolean;
  /** The environment the configuration is read from (the demo's own; tests); default the process's. */
  env?: NodeJS.ProcessEnv;
  /** The process settings; default read from `env` (src/config/env.ts). */
  environment?: Environment;
  /** Runs that export metrics (a run, the loop, serve): the OTLP flags; the OTEL_* variables are read too. */
  otlp?: OtlpFlags;
}

/** Loads the configuration and builds the runtime: redacted logging, notifiers, the deployment. */
export async function createRuntime(
  flags: ConfigFlags & { logLevel?: LogLevel },
  options: RuntimeOptions = {},
): Promise<Runtime> {
  // Every problem at once: the OTLP settings' with the configuration's.
  const problems: string[] = [];
  const notices: string[] = [];
  const otlp = options.otlp ? otlpSettings(options.otlp, problems, options.env, notices) : undefined;
  // Both default to process.env, read in src/config/ only.
  const config = await loadConfig({
    flags,
    ...(options.env ? { env: options.env } : {}),
    ...(options.requireDatabase === false ? { requireDatabase: false } : {}),
  }).catch((err: unknown) => {
    throw err instanceof ConfigError && problems.length > 0 ? new ConfigError([...err.problems, ...problems]) : err;
  });
  if (problems.length > 0) throw new ConfigError(problems);
  const environment = options.environment ?? readEnvironment(options.env);
  const redactor = new Redactor([...config.secrets, ...(otlp?.secrets ?? [])]);
  const notifiers = createNotifiers(config.notifiers);
  for (const n of notifiers) redactor.add(n.secrets());
  const logger = createLogger({ level: flags.logLevel ?? 'info', redactor });
  for (const notice of notices) logger.info(notice);
  const deployment = deploymentOf(config, environment, logger, redactor);
  return { config, environment, logger, redactor, notifiers, deployment, ...(otlp ? { otlp } : {}) };
}

/** The one place `replicas.enabled` is decided on. */
export function deploymentOf(
  config: SentinelConfig,
  environment: Environment,
  logger: Logger,
  redactor: Redactor,
): Deployment {
  const connectTimeoutMs = config.connect_timeout_seconds * 1000;
  const retention = config.history.retention_days;
  if (!config.replicas.enabled) {
    return {
      replicated: false,
      alertStore: () => new AlertStore(config.stateDir),
      runHistory: () => new FileRunHistory(config.stateDir, config.env.name, retention),
      election: async () => undefined,
    };
  }
  // The replicas' shared state and leader lock: `replicas.state_database_url`, else the monitored database.
  const url = stateDatabaseUrl(config);
  return {
    replicated: true,
    alertStore: () => new PgAlertStore(url, { connectTimeoutMs }),
    runHistory: (options = {}) =>
      new PgRunHistory(url, config.env.name, retention, { readOnly: options.readOnly ?? false, connectTimeoutMs }),
    election: async (onChange, deadSessionTimeoutMs) => {
      const { LeaderElection } = await import('./replicas/leader.js');
      return new LeaderElection({
        connectionString: url,
        lockKey: config.replicas.lock_key,
        logger,
        redactor,
        connectTimeoutMs,
        onChange,
        ...(environment.pgOptions !== undefined ? { pgOptions: environment.pgOptions } : {}),
        ...(deadSessionTimeoutMs !== undefined ? { deadSessionTimeoutMs } : {}),
      });
    },
  };
}

/** One whole run: checks, then alerting (silences, lifecycle, delivery), then the heartbeat. */
export type RunAndAlert = (signal?: AbortSignal) => Promise<RunResult>;

/** What else a mode may do with the runner's alerting besides runs. */
export interface RunnerTools {
  /**
   * One final, bounded delivery pass over the outbox (see AlertingEngine.flush):
   * for the loop's graceful shutdown. With replicas, only the leader sends.
   */
  flush(): Promise<AlertingOutcome>;
}

export interface WithRunnerOptions {
  /** Replicas: the election, asked right before every act (NOTIFY, each delivery). */
  leadership?: Pick<LeaderElection, 'stillLeader'>;
  /**
   * Replicas, one-shot run without the leader lock: this run only checks and
   * reports. It sends no NOTIFY, records nothing, delivers nothing and pings no
   * heartbeat; its report carries `"role": "follower"`.
   */
  reportOnly?: ReportOnly;
}

export interface ReportOnly {
  /** Logged after the checks: why nothing is recorded or notified. */
  log: string;
  level: 'info' | 'warn';
  /** Why the schema-cache NOTIFY is not sent (shown in that check's alert). */
  refusal: string;
}

/**
 * Runs `body` with the run function every mode shares (one run, the loop,
 * `serve`). When Sentinel itself fails (not the pipeline), the dead man's switch
 * is told; the connections are closed afterwards either way.
 */
export async function withRunner<T>(
  { config, logger, redactor, notifiers, deployment }: Runtime,
  body: (runAndAlert: RunAndAlert, tools: RunnerTools) => Promise<T>,
  options: WithRunnerOptions = {},
): Promise<T> {
  const { leadership, reportOnly } = options;
  // Before anything runs: a state directory that cannot be made is exit 3 at once.
  await prepareStateDir(config);
  // Replicas: whoever lost the lock since the run started must not act. The
  // NOTIFY and every delivery attempt ask right before they happen.
  const stillLeader =
    reportOnly !== undefined ? async () => false : leadership ? () => leadership.stillLeader() : undefined;
  // A report-only run says why it sends no NOTIFY (the schema-cache check shows it).
  const mayAct =
    reportOnly !== undefined
      ? async (): Promise<boolean> => {
          throw new Error(reportOnly.refusal);
        }
      : stillLeader;
  const runner = new Runner({
    config,
    logger,
    checks: allChecks(),
    state: new FileStateStore(config.stateDir),
    ...(mayAct ? { mayAct } : {}),
  });
  const store = deployment.alertStore();
  const history = deployment.runHistory();
  const alerting = createAlerting(config, logger, redactor, {
    store,
    notifiers,
    ...(stillLeader ? { mayDeliver: stillLeader } : {}),
  });
  // The report shows silenced and acknowledged marks, so alerting runs before it is printed.
  const runAndAlert: RunAndAlert = async (signal) => {
    const raw = await runner.runOnce(signal);
    if (stillLeader && !(await stillLeader())) {
      if (reportOnly !== undefined) logger[reportOnly.level](reportOnly.log);
      // Lost the lock during the checks: the new leader records and notifies what it sees.
      else logger.warn('Not the leader any more: this run is neither recorded nor notified');
      // Silences and acknowledgements still shape the report and the exit code (read-only).
      return { ...(await alerting.annotate(raw)), role: 'follower' };
    }
    const { result, outcome } = await alerting.process(raw);
    const reported: RunResult = {
      ...result,
      notifications: outcome.notifications,
      ...(outcome.error ? { alerting_error: outcome.error } : {}),
      ...(leadership ? { role: 'leader' as const } : {}),
    };
    // The record `sentinel slo` reads; losing one must not fail the run it describes.
    await history
      .append(recordOf(reported))
      .catch((err: unknown) => logger.warn(`Could not record this run in the history: ${describeError(err)}`));
    // Pages that cannot go out are Sentinel failing: the dead man's switch must say so.
    if (config.heartbeat_url)
      await pingHeartbeat(config.heartbeat_url, outcome.error ? 'fail' : 'ok', logger, redactor);
    // Housekeeping for the views' sake, after everything the run reports on.
    await runner.refreshRollups();
    return reported;
  };
  const tools: RunnerTools = {
    flush: async () => {
      const outcome = await alerting.flush(config.env.name);
      // Shown like a run's figures, for the operator reading the logs of a shutdown.
      for (const n of outcome.notifications) {
        if (n.sent || n.failed)
          logger.info(
            `Final delivery for ${n.notifier}: ${n.sent} sent, ${n.failed} failed, ${n.pending} still pending`,
          );
      }
      return outcome;
    },
  };
  try {
    return await body(runAndAlert, tools);
  } catch (err) {
    if (config.heartbeat_url) await pingHeartbeat(config.heartbeat_url, 'fail', logger, redactor);
    throw err;
  } finally {
    // Each closes whatever the others do: a failing one must not leave the rest open.
    await Promise.allSettled([runner.close(), store.close?.(), history.close?.()]);
  }
}

export interface ContinuousOptions {
  intervalSeconds: number;
  /** Called with each run's result (the report on stdout); nothing printed when absent. */
  print?: (result: RunResult) => void;
  /** Serve /metrics, /healthz and /readyz on this address while looping. */
  listen?: ListenAddress;
  /** `sentinel serve`: also the dashboard (page and `/api/*`) on that address. */
  dashboard?: { authToken?: string; metricsWithoutToken?: boolean };
  /** Loads the configuration again (SIGHUP); without it SIGHUP changes nothing. */
  reload?: () => Promise<Runtime>;
}

/**
 * `sentinel --loop [--metrics-port N]` and `sentinel serve`: runs every interval
 * until SIGINT/SIGTERM, optionally with the HTTP server. On the first signal the
 * server stops accepting connections and the run in progress finishes (its
 * alerting and outbox delivery included); then the outbox gets one final,
 * bounded delivery pass (`delivery_timeout`; with replicas, by the leader only),
 * everything closes and the exit code is 0. A second signal exits at once (130/143).
 */
export async function runContinuously(s: Runtime, options: ContinuousOptions): Promise<number> {
  const { logger } = s;
  const intervalMs = options.intervalSeconds * 1000;
  // A setup error like an address in use: before anything listens (withRunner checks again, at no cost).
  await prepareStateDir(s.config);
  const stop = stopOnSignals(logger);
  let server: MonitorServer | undefined;
  let election: LeaderElection | undefined;
  // SIGHUP: a valid file takes effect from the next run (the current one finishes
  // with the old); an invalid one is one log line and the old configuration stays.
  let current = s;
  let pending: Runtime | undefined;
  let generation: AbortController | undefined;
  let reloading = false;
  const onHangup = (): void => {
    if (reloading) return;
    reloading = true;
    void reloadConfiguration().finally(() => (reloading = false));
  };
  const reloadConfiguration = async (): Promise<void> => {
    if (!options.reload) return;
    logger.info('Received SIGHUP: reloading the configuration');
    try {
      const next = await options.reload();
      // A state directory that cannot be made is refused here, not by the next run.
      await prepareStateDir(next.config);
      const refusal = needsRestart(current.config, next.config);
      if (refusal) {
        logger.error(
          `Configuration not reloaded: ${refusal} only take effect on a restart; the current configuration stays`,
        );
        return;
      }
      // The server logs through the first setup's redactor: it must mask the new secrets too.
      s.redactor.add(next.config.secrets);
      pending = next;
      logger.info('Configuration reloaded: it takes effect from the next run');
      generation?.abort();
    } catch (err) {
      const reason = err instanceof ConfigError ? err.message : describeError(err);
      logger.error(`Configuration not reloaded: ${reason.replace(/\s*\n\s*/g, ' ')}; the current configuration stays`);
    }
  };
  process.on('SIGHUP', onHangup);
  let otlp: OtlpExport | undefined;
  try {
    // One registry for /metrics and the OTLP export: both carry the same figures.
    const registry = options.listen || s.otlp ? await import('./metrics/registry.js') : undefined;
    const metrics = registry?.createMetrics({ maxSources: s.config.metrics.max_sources });
    metrics?.setLeader(!s.deployment.replicated);
    if (s.otlp && metrics) {
      const { startOtlpExport } = await import('./metrics/otlp.js');
      otlp = await startOtlpExport(s.otlp, metrics.registry, {
        logger,
        redact: (t) => s.redactor.redact(t),
        environment: s.config.env.name,
      });
      otlp.startPeriodic();
      logger.info(
        `Exporting metrics over OTLP (${s.otlp.protocol}, ${s.otlp.temporality}) to ${s.redactor.redact(s.otlp.url)} ` +
          `after every run and every ${s.otlp.intervalMs / 1000}s`,
      );
    }
    if (options.listen) {
      const { startMonitorServer } = await import('./server/index.js');
      const { config } = s;
      // Bound before the first run: an address in use is a setup error (exit 3),
      // found before any check runs or anyone is paged.
      const dashboard = options.dashboard
        ? {
            databaseUrl: config.env.databaseUrl,
            environment: config.env.name,
            stuckThresholdMinutes: config.checks.stuck_batches.threshold_minutes,
            errorThresholdPct: config.checks.error_spike.threshold_pct,
            sourceErrorThresholds: Object.fromEntries(
              Object.entries(config.sources).flatMap(([name, s]) =>
                s.error_spike_threshold_pct !== undefined ? [[name, s.error_spike_threshold_pct]] : [],
              ),
            ),
            anomalyConfig: { checks: config.checks, sources: config.sources },
            connectTimeoutMs: config.connect_timeout_seconds * 1000,
            ...(options.dashboard.authToken !== undefined ? { authToken: options.dashboard.authToken } : {}),
            ...(options.dashboard.metricsWithoutToken ? { metricsWithoutToken: true } : {}),
          }
        : undefined;
      const started = await startMonitorServer({
        listen: options.listen,
        intervalMs,
        logger,
        redactor: s.redactor,
        leader: !s.deployment.replicated,
        maxSources: config.metrics.max_sources,
        ...(metrics ? { metrics } : {}),
        ...(dashboard ? { dashboard } : {}),
      });
      server = started;
      stop.signal.addEventListener('abort', () => void started.close(), { once: true });
    }
    // Replicas: PostgreSQL frees the lock of a leader cut off from it within about
    // one interval (at least a few seconds): failover within one interval.
    election = await s.deployment.election((leader) => metrics?.setLeader(leader), intervalMs);
    const leadership = election;
    // Set up (an address in use was exit 3, a setup error): from here on an internal
    // error exits 70, which systemd restarts (it must not restart a config error).
    markLongRunning();
    logger.info(
      `Starting loop: environment ${s.config.env.name}, every ${options.intervalSeconds}s` +
        `${leadership ? ' (replicas: one leader runs, the others stand by)' : ''}`,
    );
    let runs = 0;
    let nextRunAt: number | undefined;
    while (!stop.signal.aborted) {
      const gen = new AbortController();
      generation = gen;
      const onStop = (): void => gen.abort();
      stop.signal.addEventListener('abort', onStop, { once: true });
      const setupNow = current;
      const stopped = await withRunner(
        setupNow,
        async (runAndAlert, tools) => {
          // The run's own duration_ms covers the checks; the metric covers the whole run.
          let runMs: number | undefined;
          const runOnce: RunAndAlert = async (signal) => {
            const started = performance.now();
            const result = await runAndAlert(signal);
            runMs = performance.now() - started;
            return result;
          };
          const onResult = (result: RunResult): void => {
            if (server) server.observe(result, runMs);
            else if (registry && metrics)
              registry.observeSafely(
                () => registry.observeResult(metrics, result, runMs),
                logger,
                (t) => s.redactor.redact(t),
              );
            options.print?.(result);
            void otlp?.exportNow();
          };
          runs += await runLoop({
            intervalMs,
            runOnce,
            onResult,
            logger: setupNow.logger,
            stop: gen.signal,
            ...(nextRunAt !== undefined ? { firstRunAt: nextRunAt } : {}),
            onRunStart: (at) => (nextRunAt = at + intervalMs),
            ...(leadership
              ? {
                  election: leadership,
                  pollMs:
                    (setupNow.config.replicas.takeover_poll_seconds ?? Math.min(5, options.intervalSeconds)) * 1000,
                  // Followers print nothing; they stay ready while the lock database answers.
                  onStandby: () =>
                    server
                      ? server.standby(leadership.problem)
                      : metrics?.observeStandby({ lockDatabaseReached: leadership.problem === undefined }),
                }
              : {}),
          });
          // A reload: the runner is rebuilt with the new configuration; the outbox stays where it is.
          if (!stop.signal.aborted) return false;
          logger.info(`Loop stopped after ${runs} run${runs === 1 ? '' : 's'}`);
          // Graceful shutdown: what is still in the outbox (a failure during the last
          // run, an entry in backoff) gets one last try. A follower leaves it to the leader.
          if (!leadership || leadership.isLeader) {
            logger.info('Delivering what is left in the outbox before exiting');
            await tools.flush();
          }
          return true;
        },
        leadership ? { leadership } : {},
      );
      stop.signal.removeEventListener('abort', onStop);
      if (stopped) break;
      if (pending) [current, pending] = [pending, undefined];
    }
    return 0;
  } finally {
    process.off('SIGHUP', onHangup);
    // Releases the leader lock (a follower takes over within one poll).
    await election?.close();
    // Still under our signal handlers: a second signal while closing exits at once.
    await server?.close();
    // The last figures (the final delivery's counters), within the export's timeout.
    await otlp?.close();
    stop.dispose();
  }
}

/**
 * Settings a running loop cannot take on: replicas elect on a connection opened at
 * start. Undefined when the new configuration can be applied from the next run.
 */
function needsRestart(before: SentinelConfig, after: SentinelConfig): string | undefined {
  const r = (c: SentinelConfig): string =>
    JSON.stringify([c.replicas.enabled, c.replicas.state_database_url ?? null, String(c.replicas.lock_key)]);
  return r(before) === r(after) ? undefined : 'replicas settings';
}
