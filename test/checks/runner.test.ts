import { describe, it, expect } from 'vitest';
import { runChecks } from '../../src/checks/runner.js';
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
