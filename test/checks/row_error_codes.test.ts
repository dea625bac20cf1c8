import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECK_NAMES } from '../../src/checks/index.js';
import { rowErrorCodesCheck } from '../../src/checks/row_error_codes.js';
import { runChecks } from '../../src/checks/runner.js';
import type { ConfigFile } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { renderNagios } from '../../src/report/nagios.js';
import type { RunResult } from '../../src/types.js';
import { runCli } from '../helpers/cli.js';
import { testConfig, testContext } from '../helpers/context.js';
import { useTestDatabase } from '../helpers/db.js';
import { explainQueries } from '../helpers/explain.js';
import { insertBatch, insertRowErrors } from '../helpers/fixtures.js';

// 10:15:30 UTC: the window is 09:15:30–10:15:30, the lookback the 7 days before it.
const NOW = new Date('2025-01-04T10:15:30Z');
const ago = (minutes: number): Date => new Date(NOW.getTime() - minutes * 60_000);
const DAY = 24 * 60;

const database = useTestDatabase();

/** One batch of `source` at `minutesAgo` with one row error per code. */
async function errors(source: string, minutesAgo: number, codes: string[], message = 'bad row'): Promise<void> {
  const at = ago(minutesAgo);
  const id = await insertBatch(database().pool, { source, status: 'completed', created_at: at });
  await insertRowErrors(
    database().pool,
    id,
    codes.map((error_code) => ({ error_code, error_message: message, created_at: at })),
  );
}

const run = (file: ConfigFile = {}) => rowErrorCodesCheck.run(testContext(database().pool, NOW, testConfig(file)));

describe('row_error_codes', () => {
  it('warns about a code new to its source, naming the code and a sample message', async () => {
    await errors('vendor_a', 3 * DAY, ['E_DATE']);
    await errors('vendor_a', 10, ['E_DATE', 'E_CURRENCY'], 'unknown currency "XBT" in column 7');
    const ctx = testContext(database().pool, NOW, testConfig());
    const alerts = await rowErrorCodesCheck.run(ctx);
    expect(alerts).toEqual([
      {
        check: 'row_error_codes',
        level: 'warning',
        message:
          'New error code for source vendor_a (not seen in 7 days): E_CURRENCY; ' +
          'sample: unknown currency "XBT" in column 7',
        subject: 'vendor_a',
        details: {
          source: 'vendor_a',
          new_codes: 1,
          codes: [{ error_code: 'E_CURRENCY', occurrences: 1 }],
          sample_message: 'unknown currency "XBT" in column 7',
          lookback_days: 7,
        },
      },
    ]);
    expect(ctx.measured).toEqual({ new_codes: 1 });
  });

  it('does not alert on a code the source produced 3 days ago', async () => {
    await errors('vendor_a', 3 * DAY, ['E_DATE']);
    await errors('vendor_a', 5, ['E_DATE']);
    expect(await run()).toEqual([]);
  });

  it('alerts on a code last seen 8 days ago (outside the lookback), and not with lookback_days 9', async () => {
    await errors('vendor_a', 8 * DAY, ['E_DATE']);
    await errors('vendor_a', 5, ['E_DATE']);
    expect((await run()).map((a) => a.message)).toEqual([
      'New error code for source vendor_a (not seen in 7 days): E_DATE; sample: bad row',
    ]);
    expect(await run({ checks: { row_error_codes: { lookback_days: 9 } } })).toEqual([]);
  });

  it('judges only the recent window (window_minutes), not an older new code', async () => {
    await errors('vendor_a', 90, ['E_OLD']);
    expect(await run()).toEqual([]);
    expect((await run({ checks: { row_error_codes: { window_minutes: 120 } } })).map((a) => a.subject)).toEqual([
      'vendor_a',
    ]);
  });

  it('judges every source on its own history: a code another source knows is still new', async () => {
    await errors('vendor_b', 2 * DAY, ['E_DATE']);
    await errors('vendor_a', 5, ['E_DATE']);
    await errors('vendor_b', 5, ['E_DATE', 'E_QTY']);
    const alerts = await run();
    expect(alerts.map((a) => [a.subject, a.details.codes])).toEqual([
      ['vendor_a', [{ error_code: 'E_DATE', occurrences: 1 }]],
      ['vendor_b', [{ error_code: 'E_QTY', occurrences: 1 }]],
    ]);
  });

  it('names at most five codes, most frequent first, and counts the rest', async () => {
    const codes = Array.from({ length: 8 }, (_, i) => `E_${i}`);
    await errors('vendor_a', 5, codes);
    await errors('vendor_a', 4, ['E_7', 'E_7']);
    const [alert] = await run();
    expect(alert!.message).toBe(
      'New error codes for source vendor_a (not seen in 7 days): E_7, E_0, E_1, E_2, E_3 and 3 more; sample: bad row',
    );
    expect(alert!.details.new_codes).toBe(8);
  });

  it('escapes and bounds hostile codes, sources and messages', async () => {
    const hostile = `E_\u001b[2J\nFAKE LINE\u202e`;
    await errors('vendor\u0007a', 5, [hostile], `boom\r\n${'x'.repeat(100_000)}`);
    const [alert] = await run();
    expect(alert!.message).not.toMatch(/[\u0000-\u001f\u202e]/);
    expect(alert!.message).toContain('E_\\x1b[2J\\nFAKE LINE\\u202e');
    expect(alert!.message).toContain('vendor\\x07a');
    expect(alert!.message).toContain('sample: boom\\r\\nxxx');
    expect(alert!.message.length).toBeLessThan(800);
    // JSON keeps values exact but bounded.
    expect(String(alert!.details.sample_message).length).toBeLessThanOrEqual(500);
  });

  it('is skipped, not run, when disabled', async () => {
    await errors('vendor_a', 5, ['E_NEW']);
    const config = testConfig({ checks: { row_error_codes: { enabled: false } } });
    const { alerts, checks } = await runChecks([rowErrorCodesCheck], testContext(database().pool, NOW, config));
    expect(alerts).toEqual([]);
    expect(checks).toEqual([
      { name: 'row_error_codes', outcome: 'skipped', duration_ms: 0, reason: 'disabled in config' },
    ]);
  });

  it('refuses unknown and out-of-range settings with their path', () => {
    expect(() => testConfig({ checks: { row_error_codes: { lookback_day: 7 } } as never })).toThrow(/lookback_day/);
    expect(() => testConfig({ checks: { row_error_codes: { lookback_days: 0 } } })).toThrow();
  });

  it('reads batches through the hour index and their row errors through the batch_id index', async () => {
    // Realistic: 8 days of errors for 50 sources, 20 codes; ANALYZEd so the planner sees the real sizes.
    await database().pool.query(
      `
      insert into intake.simplicity_batches (id, source, status, created_at, updated_at)
      select gen_random_uuid(), 'vendor_' || (i % 50), 'completed', t, t
        from generate_series(1, 20000) i,
             lateral (select $1::timestamptz - (i * interval '35 seconds') as t) at`,
      [NOW.toISOString()],
    );
    await database().pool.query(`
      insert into intake.row_errors (batch_id, row_number, error_code, error_message, created_at)
      select b.id, n, 'E_' || ((n + length(b.source)) % 20), 'bad row ' || n, b.created_at
        from intake.simplicity_batches b, generate_series(1, 10) n`);
    await database().pool.query('analyze intake.simplicity_batches, intake.row_errors');
    // The repo's way (test/helpers/explain.ts): sequential scans off, so a Seq Scan left means no usable index.
    const plans = await explainQueries(database().pool, (db) => rowErrorCodesCheck.run(testContext(db, NOW)));
    expect(plans).toHaveLength(1);
    const plan = plans[0]!;
    expect(plan).toMatch(/sentinel_batches_hour_idx/);
    expect(plan).toMatch(/sentinel_row_errors_batch_id_idx/);
    expect(plan).not.toMatch(/Seq Scan/);
    // The probe of the lookback walks it newest first and stops at the first hit.
    expect(plan).toMatch(/Limit[\s\S]*Index Scan Backward using sentinel_batches_hour_idx/);
  });
});

describe('row_error_codes through the registry only', () => {
  it('is listed, with its line, in `silence add --help`', async () => {
    // The built CLI, as a user runs it: importing cli-main would run its main().
    const { stdout: help, code } = await runCli(['silence', 'add', '--help'], {});
    expect(code).toBe(0);
    for (const name of CHECK_NAMES) expect(help).toContain(name);
    expect(help).toMatch(/row_error_codes \*\s+Error codes a source produced/);
  });

  it('reaches /metrics and Nagios perfdata from its declared measurement', async () => {
    const result: RunResult = {
      timestamp: NOW.toISOString(),
      environment: 'test',
      overall_status: 'degraded',
      alerts: [],
      checks: [{ name: 'row_error_codes', outcome: 'alert', duration_ms: 3, measurements: { new_codes: 4 } }],
      duration_ms: 10,
      metrics: { alerts_triggered: 1, checks_run: 1 },
    } as unknown as RunResult;
    const metrics = createMetrics({ version: '0.0.0' });
    metrics.observeRun(result);
    expect(await metrics.render()).toContain(
      'sentinel_check_measurement{check="row_error_codes",measurement="new_codes"} 4',
    );
    expect(renderNagios(result)).toMatch(/'new_error_codes'=4;;;0/);
  });

  it('is named nowhere in src/ but its own file and the registry', () => {
    const root = join(import.meta.dirname, '../..');
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
      );
    const naming = files(join(root, 'src'))
      .filter((f) => readFileSync(f, 'utf8').includes('row_error_codes'))
      .map((f) => relative(root, f));
    expect(naming.sort()).toEqual(['src/checks/index.ts', 'src/checks/row_error_codes.ts']);
  });
});
