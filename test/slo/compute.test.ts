import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/history/record.js';
import { computeSlos, type SloResult } from '../../src/slo/compute.js';
import { renderSloHuman } from '../../src/slo/render.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch } from '../helpers/fixtures.js';

// A one-day window: 2025-01-03 10:30 to 2025-01-04 10:30 UTC. The current hour bucket is 10:00.
const NOW = new Date('2025-01-04T10:30:00Z');

const database = useTestDatabase();

const slos = (runs: RunRecord[] = [], days = 1) =>
  computeSlos({ db: database().pool, now: NOW, days, environment: 'prod', minRows: 100, alertThresholdPct: 15, runs });
const find = (report: { slos: SloResult[] }, name: SloResult['name']): SloResult =>
  report.slos.find((s) => s.name === name)!;

/** A completed batch that started at `start` and took `minutes`. */
async function processed(start: string, minutes: number, extra: Parameters<typeof insertBatch>[1] = {}): Promise<void> {
  const started = new Date(start);
  await insertBatch(database().pool, {
    created_at: started,
    started_at: started,
    completed_at: new Date(started.getTime() + minutes * 60_000),
    ...extra,
  });
}

async function hour(at: string, total: number, errors: number, skipped = 0): Promise<void> {
  await insertBatch(database().pool, {
    status: 'completed',
    created_at: at,
    total_rows: total,
    error_rows: errors,
    skipped_rows: skipped,
    inserted_rows: total - errors - skipped,
  });
}

function run(at: string, ok: boolean | null, code?: string): RunRecord {
  return {
    timestamp: new Date(at).toISOString(),
    environment: 'prod',
    overall_status: ok === false ? 'critical' : 'healthy',
    duration_ms: 10,
    checks: [],
    schema_cache: ok === null ? { probed: false, ok: null } : { probed: true, ok, ...(code ? { code } : {}) },
  };
}

describe('computeSlos', () => {
  it('processing_time: the share within 5 minutes, percentiles, budget and the last hour burn, by hand', async () => {
    await processed('2025-01-04T09:00:00Z', 4);
    await processed('2025-01-04T08:00:00Z', 10); // slow
    await processed('2025-01-04T09:50:00Z', 5); // exactly 5m: within; completed 09:55, last hour
    await processed('2025-01-04T10:00:00Z', 7); // slow, last hour
    // Created 22.5 h before the window starts, completed inside it: counted.
    await insertBatch(database().pool, {
      created_at: '2025-01-02T12:00:00Z',
      started_at: '2025-01-03T11:00:00Z',
      completed_at: '2025-01-03T11:03:00Z',
    });
    // Not counted: completed before the window, failed, never started, still running.
    await processed('2025-01-03T10:00:00Z', 29);
    await processed('2025-01-04T09:00:00Z', 30, { status: 'failed' });
    await insertBatch(database().pool, {
      created_at: '2025-01-04T09:00:00Z',
      started_at: null,
      completed_at: '2025-01-04T09:30:00Z',
    });
    await insertBatch(database().pool, {
      status: 'processing',
      created_at: '2025-01-04T09:00:00Z',
      started_at: '2025-01-04T09:00:00Z',
      completed_at: null,
    });

    const p = find(await slos(), 'processing_time');
    // 5 batches (3, 4, 5, 7, 10 minutes), 2 slower than 5 minutes: 60 % within, 40 % slow.
    expect(p).toEqual({
      name: 'processing_time',
      value: 60,
      unit: '%',
      target: '>= 95% of batches within 5m (p95 < 5m)',
      met: false,
      error_budget_remaining_pct: -700, // 100 × (1 − 0.4 / 0.05)
      burn_rate: 10, // last hour: 1 slow of 2 → 0.5 / 0.05
      detail: {
        batches: 5,
        slow_batches: 2,
        p50_minutes: 5,
        p95_minutes: 9.4,
        max_minutes: 10,
        batches_last_hour: 2,
        slow_batches_last_hour: 1,
      },
    });
  });

  it('processing_time is met with budget left when at most 5 % are slow', async () => {
    for (let i = 0; i < 19; i++) await processed('2025-01-04T08:00:00Z', 2);
    await processed('2025-01-04T07:00:00Z', 6);
    const p = find(await slos(), 'processing_time');
    expect(p).toMatchObject({ value: 95, met: true, error_budget_remaining_pct: 0, burn_rate: null });
  });

  it('error_rate and dedupe_rate: hourly buckets of the window, min_rows, the last 6 hours, by hand', async () => {
    await hour('2025-01-03T10:20:00Z', 1000, 900); // before the window
    await hour('2025-01-03T10:40:00Z', 1000, 10, 300); // 1 %: good
    await hour('2025-01-03T15:00:00Z', 200, 10, 120); // 5.00 %: bad (not below 5 %); dedupe 60 % > 50 %
    await hour('2025-01-03T16:00:00Z', 200, 9); // 4.5 %: good
    await hour('2025-01-03T20:00:00Z', 50, 50); // below min_rows: not judged
    await hour('2025-01-04T06:00:00Z', 1000, 200); // 20 %: bad, above the 15 % alert threshold
    await hour('2025-01-04T09:10:00Z', 500, 0); // good
    await hour('2025-01-04T10:30:01Z', 1000, 1000); // after now

    const report = await slos();
    expect(find(report, 'error_rate')).toEqual({
      name: 'error_rate',
      value: 60, // 3 good of 5 judged hours
      unit: '%',
      target: '>= 99% of hours < 5% errors',
      met: false,
      error_budget_remaining_pct: -3900, // 100 × (1 − 0.4 / 0.01)
      burn_rate: 50, // hours from 05:00: 06:00 bad, 09:00 good → 0.5 / 0.01
      detail: {
        hours_judged: 5,
        bad_hours: 2,
        hours_below_min_rows: 1,
        min_rows: 100,
        overall_error_rate_pct: 9.46, // 279 / 2950
        alert_threshold_pct: 15,
        hours_above_alert_threshold: 1,
        total_rows: 2950,
        error_rows: 279,
      },
    });
    expect(find(report, 'dedupe_rate')).toEqual({
      name: 'dedupe_rate',
      value: 14.24, // 420 / 2950
      unit: '%',
      target: '10-30% (investigate > 50%)',
      met: true,
      error_budget_remaining_pct: null,
      burn_rate: null,
      detail: {
        total_rows: 2950,
        skipped_rows: 420,
        hours_judged: 5,
        hours_above_investigate: 1,
        hours_above_investigate_pct: 20,
        investigate_pct: 50,
      },
    });
  });

  it('dedupe_rate is missed outside 10-30 %, bounds included', async () => {
    await hour('2025-01-04T09:00:00Z', 1000, 0, 300);
    expect(find(await slos(), 'dedupe_rate')).toMatchObject({ value: 30, met: true });
    await hour('2025-01-04T08:00:00Z', 1, 0, 1);
    expect(find(await slos(), 'dedupe_rate')).toMatchObject({ value: 30.07, met: false });
  });

  it('schema_cache: probes that found PostgREST healthy, from the run history, by hand', async () => {
    const runs: RunRecord[] = [];
    // 2000 probes every 30 s up to 09:25 (none in the last hour), one failed; plus runs that did not probe.
    for (let i = 0; i < 2000; i++)
      runs.push(
        run(
          new Date(Date.parse('2025-01-04T09:25:00Z') - i * 30_000).toISOString(),
          i !== 1000,
          i === 1000 ? 'PGRST002' : undefined,
        ),
      );
    runs.push(run('2025-01-04T10:00:00Z', null));
    const s = find(await slos(runs), 'schema_cache');
    expect(s).toEqual({
      name: 'schema_cache',
      value: 99.95,
      unit: '%',
      target: '>= 99.9% of probes ok',
      met: true,
      error_budget_remaining_pct: 50, // 100 × (1 − 0.0005 / 0.001)
      burn_rate: null, // no probe in the last hour
      detail: { runs: 2001, probes: 2000, failed_probes: 1, failures_by_code: { PGRST002: 1 }, probes_last_hour: 0 },
    });
    // Two probes in the last hour, one failed: burn 0.5 / 0.001. 2 failed of 2002 is still within 0.1 %, just.
    const recent = find(
      await slos([...runs, run('2025-01-04T10:10:00Z', true), run('2025-01-04T10:20:00Z', false)]),
      'schema_cache',
    );
    expect(recent).toMatchObject({
      value: 99.9,
      met: true,
      error_budget_remaining_pct: 0.1,
      burn_rate: 500,
      detail: { failed_probes: 2, failures_by_code: { PGRST002: 1, unknown: 1 } },
    });
    // One more failure overspends it.
    const missed = find(
      await slos([...runs, run('2025-01-04T10:10:00Z', false), run('2025-01-04T10:20:00Z', false)]),
      'schema_cache',
    );
    expect(missed).toMatchObject({ met: false, error_budget_remaining_pct: -49.85, burn_rate: 1000 });
  });

  it('an empty window: every value null, nothing judged, all met', async () => {
    await hour('2025-01-02T10:00:00Z', 1000, 900, 900); // outside the window
    const report = await slos([run('2025-01-04T10:00:00Z', null)]);
    expect(report).toMatchObject({
      from: '2025-01-03T10:30:00.000Z',
      to: '2025-01-04T10:30:00.000Z',
      days: 1,
      environment: 'prod',
      all_met: true,
    });
    for (const s of report.slos)
      expect(s).toMatchObject({ value: null, met: null, error_budget_remaining_pct: null, burn_rate: null });
    expect(find(report, 'schema_cache').detail.note).toBe('no probes recorded (PostgREST not configured?)');
    const text = renderSloHuman(report);
    // The table says `no data` for every SLO without data, schema_cache included (docs/slo.md);
    // the JSON keeps the note.
    expect(text).not.toContain('no probes recorded');
    for (const name of ['processing_time', 'error_rate', 'schema_cache', 'dedupe_rate'])
      expect(text).toMatch(new RegExp(`\\n${name} +no data `));
    expect(text).toContain('Every SLO with data is met.');
  });

  it('the human table names what is missed and prints one formula per SLO', async () => {
    await processed('2025-01-04T08:00:00Z', 10);
    const text = renderSloHuman(await slos());
    const lines = text.split('\n');
    expect(lines[0]).toBe('SLO report for prod: last 1 day (2025-01-03 10:30Z to 2025-01-04 10:30Z, database clock)');
    expect(lines[2]).toMatch(/^SLO +value +target +met +budget left +burn rate$/);
    expect(lines[3]).toMatch(/^processing_time +0\.00% within 5m, p95 10m \(1 batches\) +>= 95% .* +NO +-1900\.0% +-$/);
    expect(text).toContain('Missed: processing_time');
    expect(
      lines.filter((l) => /^ {2}(processing_time|error_rate|schema_cache|dedupe_rate): value = /.test(l)),
    ).toHaveLength(4);
  });
});
