import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { runChecks } from '../../src/checks/runner.js';
import { schemaCacheCheck } from '../../src/checks/schema_cache.js';
import { freePort } from '../../src/postgrest/server.js';
import { answers, startFakePostgrest, type FakePostgrest } from '../helpers/fake-postgrest.js';
import type { Check } from '../../src/checks/types.js';
import { testConfig, testContext } from '../helpers/context.js';

const db = { query: async () => ({ rows: [] }) } as never;
const base = (config = testConfig()) => {
  const { signal: _signal, ...rest } = testContext(db, new Date('2025-01-04T10:00:00Z'), config);
  return rest;
};

const ok: Check = { name: 'stuck_batches', run: async () => [] };
const throwing: Check = {
  name: 'error_spike',
  run: async () => {
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  },
};
const skipped: Check = { name: 'schema_cache', run: async () => ({ skipped: 'no PostgREST URL configured' }) };

describe('runChecks', () => {
  it('turns a throwing check into a critical "Check failed:" alert and still runs the others', async () => {
    const { alerts, checks } = await runChecks([throwing, ok, skipped], base());
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ check: 'error_spike', level: 'critical', message: 'Check failed: connection refused (127.0.0.1:1)' });
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
    const started = Date.now();
    const { alerts } = await runChecks([hanging, ok], base(testConfig({ checks: { stuck_batches: { timeout_seconds: 0.2 } } })));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(alerts[0]!.message).toBe('Check failed: timed out after 0.2s');
    expect(aborted).toBe(true);
  });

  it('skips a check disabled in config without running it', async () => {
    let ran = false;
    const spy: Check = { name: 'error_spike', run: async () => ((ran = true), []) };
    const { checks } = await runChecks([spy], base(testConfig({ checks: { error_spike: { enabled: false } } })));
    expect(ran).toBe(false);
    expect(checks[0]).toMatchObject({ outcome: 'skipped', reason: 'disabled in config' });
  });

  it('adds the guide remediation hint to alerts that have none', async () => {
    const alerting: Check = { name: 'stuck_batches', run: async () => [{ check: 'stuck_batches', level: 'critical', message: 'x', details: {} }] };
    const { alerts } = await runChecks([alerting], base());
    expect(alerts[0]!.remediation).toMatch(/worker logs/);
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
    expect(checks[1]).toMatchObject({ name: 'schema_cache', outcome: 'ok', measurements: { latency_ms: 34, result: 'PGRST002', up: false } });
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
    const { checks } = await runChecks([slow], base(testConfig({ checks: { schema_cache: { timeout_seconds: 0.1 } } })));
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
    expect(summary.measurements!.latency_ms).toBeLessThan(1000);
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
    expect((await runSchemaCache(fake.url)).summary.measurements).toMatchObject({ result: 'http_401', up: false, reloads: 0 });

    fake.setDefault(answers.hang());
    const hung = await runSchemaCache(fake.url, { request_timeout_seconds: 0.2 });
    expect(hung.summary.measurements).toMatchObject({ result: 'timeout', up: false, reloads: 0 });
    expect(hung.summary.measurements!.latency_ms).toBeGreaterThanOrEqual(150);

    const closed = await freePort();
    expect((await runSchemaCache(`http://127.0.0.1:${closed}`)).summary.measurements).toMatchObject({ result: 'refused', up: false, reloads: 0 });
  });

  it('measures through testContext as well', async () => {
    const ctx = testContext(db, new Date('2025-01-04T10:00:00Z'), testConfig({ checks: { schema_cache: settings } }, { restUrl: fake.url }));
    expect(await schemaCacheCheck.run(ctx)).toEqual([]);
    expect(ctx.measured).toMatchObject({ result: 'ok', up: true, reloads: 0 });
  });
});
