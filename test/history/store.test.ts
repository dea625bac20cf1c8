import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunRecord, recordOf } from '../../src/history/record.js';
import { FileRunHistory } from '../../src/history/store.js';
import type { Alert, CheckSummary, RunResult } from '../../src/types.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

function record(timestamp: string | Date, ok: boolean | null = true, environment = 'prod'): RunRecord {
  return {
    timestamp: new Date(timestamp).toISOString(),
    environment,
    overall_status: 'healthy',
    duration_ms: 12,
    checks: [],
    schema_cache: ok === null ? { probed: false, ok: null } : { probed: true, ok },
  };
}

function result(checks: CheckSummary[], alerts: Alert[]): RunResult {
  return {
    timestamp: '2025-01-04T10:15:32.123Z',
    environment: 'prod',
    overall_status: alerts.some((a) => a.level === 'critical') ? 'critical' : alerts.length ? 'degraded' : 'healthy',
    alerts,
    checks,
    duration_ms: 31,
    metrics: {
      total_checks: checks.length,
      alerts_triggered: alerts.length,
      critical_alerts: 0,
      warning_alerts: 0,
      skipped_checks: 0,
    },
  };
}

describe('recordOf', () => {
  it('keeps each check with its worst alert level and the run figures', () => {
    const r = recordOf(
      result(
        [
          { name: 'stuck_batches', outcome: 'alert', duration_ms: 4 },
          { name: 'error_spike', outcome: 'alert', duration_ms: 3 },
          { name: 'schema_cache', outcome: 'ok', duration_ms: 20 },
        ],
        [
          { check: 'error_spike', level: 'warning', message: 'a', details: {} },
          { check: 'stuck_batches', level: 'critical', message: 'b', details: {} },
          { check: 'error_spike', level: 'critical', message: 'Check failed: x', details: {}, failed: true },
        ],
      ),
    );
    expect(r).toEqual({
      timestamp: '2025-01-04T10:15:32.123Z',
      environment: 'prod',
      overall_status: 'critical',
      duration_ms: 31,
      checks: [
        { name: 'stuck_batches', outcome: 'alert', level: 'critical', duration_ms: 4 },
        { name: 'error_spike', outcome: 'alert', level: 'critical', duration_ms: 3 },
        { name: 'schema_cache', outcome: 'ok', level: null, duration_ms: 20 },
      ],
      schema_cache: { probed: true, ok: true },
    });
  });

  it(
    'derives the schema-cache probe: alert and failed are not ok (with the code), skipped or absent is not ' + 'probed',
    () => {
      const probe = (outcome: CheckSummary['outcome'], alerts: Alert[] = []) =>
        recordOf(result([{ name: 'schema_cache', outcome, duration_ms: 1 }], alerts)).schema_cache;
      const recovered: Alert = {
        check: 'schema_cache',
        level: 'warning',
        message: 'PGRST002 detected - auto-reload triggered',
        details: { code: 'PGRST002', recovered: true },
      };
      expect(probe('alert', [recovered])).toEqual({ probed: true, ok: false, code: 'PGRST002' });
      expect(
        probe('failed', [
          { check: 'schema_cache', level: 'critical', message: 'Check failed: timeout', details: { error: 'timeout' } },
        ]),
      ).toEqual({ probed: true, ok: false });
      expect(probe('skipped')).toEqual({ probed: false, ok: null });
      expect(recordOf(result([], [])).schema_cache).toEqual({ probed: false, ok: null });
    },
  );
});

describe('FileRunHistory', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sentinel-history-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('appends one JSON line per run and reads a window, bounds included, oldest first', async () => {
    const history = new FileRunHistory(dir, 'prod', 30, () => new Date('2025-01-04T12:00:00Z'));
    for (const t of ['2025-01-04T09:00:00Z', '2025-01-04T10:00:00Z', '2025-01-04T11:00:00Z'])
      await history.append(record(t));
    const text = await readFile(join(dir, 'history-prod.jsonl'), 'utf8');
    expect(text.trimEnd().split('\n')).toHaveLength(3);
    const got = await history.read(new Date('2025-01-04T10:00:00Z'), new Date('2025-01-04T11:00:00Z'));
    expect(got.map((r) => r.timestamp)).toEqual(['2025-01-04T10:00:00.000Z', '2025-01-04T11:00:00.000Z']);
  });

  it('reads nothing from a missing file and skips a torn or foreign line', async () => {
    const history = new FileRunHistory(dir, 'prod', 30);
    expect(await history.read(new Date(0), new Date())).toEqual([]);
    await appendFile(
      join(dir, 'history-prod.jsonl'),
      `${JSON.stringify(record('2025-01-04T10:00:00Z'))}\n{"timestamp":"2025-01-04T10:05\n` +
        `${JSON.stringify(record('2025-01-04T10:10:00Z', true, 'dev'))}\n`,
    );
    expect(await history.read(new Date(0), new Date('2026-01-01T00:00:00Z'))).toHaveLength(1);
  });

  it('keeps each environment in its own file', async () => {
    const now = () => new Date('2025-01-04T12:00:00Z');
    await new FileRunHistory(dir, 'prod', 30, now).append(record('2025-01-04T10:00:00Z'));
    await new FileRunHistory(dir, 'dev', 30, now).append(record('2025-01-04T10:00:00Z', true, 'dev'));
    expect(
      await new FileRunHistory(dir, 'prod', 30, now).read(new Date(0), new Date('2026-01-01T00:00:00Z')),
    ).toHaveLength(1);
    expect((await readFile(join(dir, 'history-dev.jsonl'), 'utf8')).trimEnd().split('\n')).toHaveLength(1);
  });

  it('prunes records past the retention once the oldest is more than an hour past it, not before', async () => {
    const now = new Date('2025-02-01T00:00:00Z');
    const file = join(dir, 'history-prod.jsonl');
    const cutoff = now.getTime() - 30 * DAY;
    // The oldest line is 59 minutes past the retention: left alone (pruning runs at most about hourly).
    await writeFile(
      file,
      [record(new Date(cutoff - 59 * 60_000)), record(new Date(cutoff + HOUR))]
        .map((r) => `${JSON.stringify(r)}\n`)
        .join(''),
    );
    const history = new FileRunHistory(dir, 'prod', 30, () => now);
    await history.append(record(now));
    expect((await readFile(file, 'utf8')).trimEnd().split('\n')).toHaveLength(3);
    // Two hours past: every line older than the retention goes, the rest stays in order.
    await writeFile(
      file,
      [
        record(new Date(cutoff - 2 * HOUR)),
        record(new Date(cutoff - 1)),
        record(new Date(cutoff)),
        record(new Date(cutoff + HOUR)),
      ]
        .map((r) => `${JSON.stringify(r)}\n`)
        .join(''),
    );
    await history.append(record(now));
    const left = (await readFile(file, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as RunRecord).timestamp);
    expect(left).toEqual([new Date(cutoff).toISOString(), new Date(cutoff + HOUR).toISOString(), now.toISOString()]);
  });

  it('loses no record when runs append while another prunes', async () => {
    const now = new Date('2025-02-01T00:00:00Z');
    const file = join(dir, 'history-prod.jsonl');
    await writeFile(file, `${JSON.stringify(record(new Date(now.getTime() - 40 * DAY)))}\n`);
    const history = () => new FileRunHistory(dir, 'prod', 30, () => now);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => history().append(record(new Date(now.getTime() - i * 1000)))),
    );
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(20);
    expect(new Set(lines).size).toBe(20);
  });
});
