import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runChecks } from '../../src/checks/runner.js';
import { schemaCacheCheck } from '../../src/checks/schema_cache.js';
import type { Check } from '../../src/checks/types.js';
import type { Queryable } from '../../src/db/pool.js';
import { freePort } from '../../src/postgrest/server.js';
import { testConfig, testContext } from '../helpers/context.js';
import { answers, type FakePostgrest, startFakePostgrest } from '../helpers/fake-postgrest.js';
import { within } from '../helpers/wait.js';

const db = { query: async () => ({ rows: [] }) } as never;
const base = (config = testConfig()) => {
  const { signal: _signal, ...rest } = testContext(db, new Date('2025-01-04T10:00:00Z'), config);
  return rest;
};

const ok: Check = { name: 'stuck_batches', run: async () => [] };
const throwing: Check = {
  name: 'error_spike',
  run: async () => {
    throw Object.assign(new Error('relation "intake.simplicity_batches" does not exist'), { code: '42P01' });
  },
};
const skipped: Check = { name: 'schema_cache', run: async () => ({ skipped: 'no PostgREST URL configured' }) };

describe('runChecks', () => {
  it('turns a throwing check into a critical "Check failed:" alert and still runs the others', async () => {
    const { alerts, checks } = await runChecks([throwing, ok, skipped], base());
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      check: 'error_spike',
      level: 'critical',
      message: 'Check failed: relation "intake.simplicity_batches" does not exist',
    });
    expect(checks.map((c) => [c.name, c.outcome])).toEqual([
      ['error_spike', 'failed'],
      ['stuck_batches', 'ok'],
      ['schema_cache', 'skipped'],
    ]);
    expect(checks[2]!.reason).toBe('no PostgREST URL configured');
  });

  it('times out a hanging check and aborts its signal', async () => {
    let aborted = false;
    const hanging: Check = {
      name: 'stuck_batches',
      run: (ctx) =>
        new Promise(() => {
          ctx.signal.addEventListener('abort', () => (aborted = true));
        }),
    };
    const { alerts } = await within(
      runChecks([hanging, ok], base(testConfig({ checks: { stuck_batches: { timeout_seconds: 0.2 } } }))),
      20_000,
      'the run with a hanging check',
    );
    expect(alerts[0]!.message).toBe('Check failed: timed out after 0.2s');
    expect(aborted).toBe(true);
  });

  it('skips a check disabled in config without running it', async () => {
    let ran = false;
    const spy: Check = {
      name: 'error_spike',
      run: async () => {
        ran = true;
        return [];
      },
    };
    const { checks } = await runChecks([spy], base(testConfig({ checks: { error_spike: { enabled: false } } })));
    expect(ran).toBe(false);
    expect(checks[0]).toMatchObject({ outcome: 'skipped', reason: 'disabled in config' });
  });

  it('adds the guide remediation hint to alerts that have none', async () => {
    const alerting: Check = {
      name: 'stuck_batches',
      run: async () => [{ check: 'stuck_batches', level: 'critical', message: 'x', details: {} }],
    };
    const { alerts } = await runChecks([alerting], base());
    expect(alerts[0]!.remediation).toMatch(/worker logs/);
  });
});

describe('runChecks: the database is one root cause', () => {
  const sqlError = (message: string, code: string): Error => Object.assign(new Error(message), { code });
  const queries: string[] = [];
  /** A database check that queries through the context, as real checks do. */
  const querying = (name: string): Check => ({
    name,
    run: async (ctx) => {
      await ctx.db.query(`select 1 -- ${name}`);
      return [];
    },
  });
  const failingDb = (error: Error): Queryable =>
    ({
      query: async (text: string) => {
        queries.push(text);
        throw error;
      },
    }) as Queryable;
  const withDb = (db: Queryable) => ({ ...base(), db });
  beforeEach(() => {
    queries.length = 0;
  });

  it('a connection error: one critical database alert naming the checks not run; nothing else queries', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const postgrest: Check = {
      name: 'schema_cache',
      needsDatabase: false,
      run: async (ctx) => {
        await ctx.notify('pgrst', 'reload schema');
        return [];
      },
    };
    const { alerts, checks, rootCause } = await runChecks(
      [querying('stuck_batches'), querying('error_spike'), postgrest],
      withDb(failingDb(refused)),
    );
    expect(rootCause?.kind).toBe('unreachable');
    expect(alerts).toEqual([
      expect.objectContaining({
        check: 'database',
        subject: 'unreachable',
        level: 'critical',
        message: 'Database unreachable: connection refused (127.0.0.1:1) (2 checks not run)',
        details: expect.objectContaining({ failed_checks: ['stuck_batches'], not_run: ['error_spike'] }),
      }),
      // schema_cache still ran; its NOTIFY was refused without a connection attempt.
      expect.objectContaining({
        check: 'schema_cache',
        message: expect.stringMatching(/^Check failed: not tried: the database is unreachable/),
      }),
    ]);
    expect(checks.map((c) => [c.name, c.outcome, c.reason])).toEqual([
      ['stuck_batches', 'failed', undefined],
      ['error_spike', 'skipped', 'not run: the database is unreachable'],
      ['schema_cache', 'failed', undefined],
    ]);
    expect(queries).toHaveLength(1);
  });

  it('a lock timeout with a lock holder in pg_locks: one database alert naming it; the rest are not sent to wait', async () => {
    const holder = {
      relation: 'intake.simplicity_batches',
      pid: 4242,
      mode: 'AccessExclusiveLock',
      granted: true,
      blocked_by: [],
      user: 'app',
      application: 'psql',
      state: 'idle in transaction',
      query: 'lock table intake.simplicity_batches',
      held_seconds: 72,
    };
    const { alerts, checks } = await runChecks(
      [querying('stuck_batches'), querying('error_spike')],
      withDb(failingDb(sqlError('canceling statement due to lock timeout', '55P03'))),
      undefined,
      {
        findLockHolders: async () => [holder],
      },
    );
    expect(alerts.map((a) => a.message)).toEqual([
      'Database locked: intake.simplicity_batches is locked by pid 4242 (AccessExclusiveLock, user app, application psql, idle in transaction for 1m12s, last statement "lock table intake.simplicity_batches") (2 checks not run)',
    ]);
    expect(alerts[0]!.details.lock_holders).toEqual([holder]);
    expect(checks.map((c) => c.outcome)).toEqual(['failed', 'skipped']);
    expect(queries).toHaveLength(1);
  });

  it("a statement timeout with no lock to blame stays that check's own failure", async () => {
    const { alerts, rootCause } = await runChecks(
      [querying('stuck_batches'), querying('error_spike')],
      withDb(failingDb(sqlError('canceling statement due to statement timeout', '57014'))),
      undefined,
      {
        findLockHolders: async () => [],
      },
    );
    expect(rootCause).toBeUndefined();
    expect(alerts.map((a) => [a.check, a.message])).toEqual([
      ['stuck_batches', 'Check failed: canceling statement due to statement timeout'],
      ['error_spike', 'Check failed: canceling statement due to statement timeout'],
    ]);
  });

  it('a pooled session terminated since its last use is replaced once, not reported', async () => {
    let calls = 0;
    const db = {
      query: async () =>
        ++calls === 1
          ? Promise.reject(sqlError('terminating connection due to administrator command', '57P01'))
          : { rows: [] },
    } as unknown as Queryable;
    const { alerts, checks } = await runChecks([querying('stuck_batches')], withDb(db));
    expect(alerts).toEqual([]);
    expect(checks[0]!.outcome).toBe('ok');
    expect(calls).toBe(2);
  });

  it('a root cause known before the run: no database check runs', async () => {
    let ran = false;
    const spy: Check = {
      name: 'stuck_batches',
      run: async () => {
        ran = true;
        return [];
      },
    };
    const { alerts, checks } = await runChecks([spy], base(), undefined, {
      rootCause: { kind: 'unreachable', reason: 'timed out connecting to the database' },
    });
    expect(ran).toBe(false);
    expect(checks[0]).toMatchObject({ outcome: 'skipped', reason: 'not run: the database is unreachable' });
    expect(alerts.map((a) => a.message)).toEqual([
      'Database unreachable: timed out connecting to the database (1 check not run)',
    ]);
  });
});

describe('runChecks measurements', () => {
  it('collects what each check measured into its summary, and nothing for checks that measured nothing', async () => {
    const measuring: Check = {
      name: 'schema_cache',
      run: async (ctx) => {
        ctx.measure?.('latency_ms', 12);
        ctx.measure?.('result', 'PGRST002');
        ctx.measure?.('latency_ms', 34); // the last value wins
        ctx.measure?.('up', false);
        return [];
      },
    };
    const { checks } = await runChecks([ok, measuring], base());
    expect(checks[0]).not.toHaveProperty('measurements');
    expect(checks[1]).toMatchObject({
      name: 'schema_cache',
      outcome: 'ok',
      measurements: { latency_ms: 34, result: 'PGRST002', up: false },
    });
  });

  it('keeps measurements of checks that alert, are skipped or fail, and gives every check its own', async () => {
    const alerting: Check = {
      name: 'stuck_batches',
      run: async (ctx) => {
        ctx.measure?.('count', 3);
        return [{ check: 'stuck_batches', level: 'critical', message: 'x', details: {} }];
      },
    };
    const failing: Check = {
      name: 'error_spike',
      run: async (ctx) => {
        ctx.measure?.('rows', 10);
        throw new Error('boom');
      },
    };
    const skipping: Check = {
      name: 'schema_cache',
      run: async (ctx) => {
        ctx.measure?.('result', 'none');
        return { skipped: 'not configured' };
      },
    };
    const { checks } = await runChecks([alerting, failing, skipping], base());
    expect(checks.map((c) => [c.outcome, c.measurements])).toEqual([
      ['alert', { count: 3 }],
      ['failed', { rows: 10 }],
      ['skipped', { result: 'none' }],
    ]);
  });

  it('keeps what a timed-out check measured before its timeout and ignores what it measures after', async () => {
    let late: (() => void) | undefined;
    const slow: Check = {
      name: 'schema_cache',
      run: (ctx) =>
        new Promise(() => {
          ctx.measure?.('result', 'timeout');
          late = () => ctx.measure?.('result', 'ok');
        }),
    };
    const { checks } = await runChecks(
      [slow],
      base(testConfig({ checks: { schema_cache: { timeout_seconds: 0.1 } } })),
    );
    late!();
    expect(checks[0]).toMatchObject({ outcome: 'failed', measurements: { result: 'timeout' } });
  });
});

describe('schema_cache measurements through runChecks', () => {
  let fake: FakePostgrest;
  beforeEach(async () => {
    fake = await startFakePostgrest();
  });
  afterEach(async () => {
    await fake.close();
  });

  const settings = { reprobe_attempts: 3, reprobe_interval_seconds: 0.05, request_timeout_seconds: 1 };
  const runSchemaCache = async (restUrl: string, extra: Record<string, unknown> = {}) => {
    const ctx = base(testConfig({ checks: { schema_cache: { ...settings, ...extra } } }, { restUrl }));
    // PostgREST reloads when the NOTIFY arrives.
    ctx.notify = async () => fake.reload();
    const { checks, alerts } = await runChecks([schemaCacheCheck], ctx);
    return { summary: checks[0]!, alerts };
  };

  it('records latency, result ok, up and no reload for a healthy PostgREST', async () => {
    const { summary, alerts } = await runSchemaCache(fake.url);
    expect(alerts).toEqual([]);
    expect(summary.outcome).toBe('ok');
    expect(summary.measurements).toEqual({ latency_ms: expect.any(Number), result: 'ok', up: true, reloads: 0 });
    expect(summary.measurements!.latency_ms).toBeGreaterThanOrEqual(0);
    // An answer slower than request_timeout_seconds would have been a timeout, not ok.
    expect(summary.measurements!.latency_ms).toBeLessThanOrEqual(settings.request_timeout_seconds * 1000);
  });

  it('records the last probe after a reload that fixed PGRST002, and the reload', async () => {
    fake.brokenUntilReload(answers.pgrst002());
    const { summary, alerts } = await runSchemaCache(fake.url);
    expect(alerts.map((a) => a.message)).toEqual(['PGRST002 detected - auto-reload triggered']);
    expect(summary.measurements).toMatchObject({ result: 'ok', up: true, reloads: 1 });
  });

  it("records PostgREST's code when the cache stays broken", async () => {
    fake.setDefault(answers.pgrst205());
    const { summary, alerts } = await runSchemaCache(fake.url);
    expect(alerts[0]!.message).toBe('Stale schema cache (PGRST205) persists after auto-reload');
    expect(summary.measurements).toMatchObject({ result: 'PGRST205', up: false, reloads: 1 });
  });

  it('records no reload when auto_reload is off', async () => {
    fake.setDefault(answers.pgrst002());
    const { summary } = await runSchemaCache(fake.url, { auto_reload: false });
    expect(summary.measurements).toMatchObject({ result: 'PGRST002', up: false, reloads: 0 });
  });

  it('records http_<status> for an answer without a PostgREST code, refused and timeout for network failures', async () => {
    fake.setDefault(answers.gateway401());
    expect((await runSchemaCache(fake.url)).summary.measurements).toMatchObject({
      result: 'http_401',
      up: false,
      reloads: 0,
    });

    fake.setDefault(answers.hang());
    const hung = await runSchemaCache(fake.url, { request_timeout_seconds: 0.2 });
    expect(hung.summary.measurements).toMatchObject({ result: 'timeout', up: false, reloads: 0 });
    expect(hung.summary.measurements!.latency_ms).toBeGreaterThanOrEqual(150);

    const closed = await freePort();
    expect((await runSchemaCache(`http://127.0.0.1:${closed}`)).summary.measurements).toMatchObject({
      result: 'refused',
      up: false,
      reloads: 0,
    });
  });

  it('measures through testContext as well', async () => {
    const ctx = testContext(
      db,
      new Date('2025-01-04T10:00:00Z'),
      testConfig({ checks: { schema_cache: settings } }, { restUrl: fake.url }),
    );
    expect(await schemaCacheCheck.run(ctx)).toEqual([]);
    expect(ctx.measured).toMatchObject({ result: 'ok', up: true, reloads: 0 });
  });
});
