import { beforeAll, describe, expect, it } from 'vitest';
import { parseIsoInstant } from '../../src/commands/anomalies.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { insertHourlyHistory, thinHour } from '../helpers/fixtures.js';

const HOUR_MS = 3_600_000;
const WEEK_MS = 168 * HOUR_MS;
/** History of a past date: the backtest works on data of any date. */
const END = new Date('2026-10-29T00:00:00Z');
/** A Tuesday: vendor_a sent 1 batch from 14:00 to 15:00 UTC, usually 30. */
const INCIDENT = new Date('2026-10-27T14:00:00Z');
const HOSTILE = 'evil\u001b[2J\u202esource';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDatabase();
  await insertHourlyHistory(db.pool, ['vendor_a', 'vendor_b', HOSTILE], new Date(END.getTime() - 6 * WEEK_MS), END);
  await thinHour(db.pool, 'vendor_a', INCIDENT, 1);
  await thinHour(db.pool, HOSTILE, INCIDENT, 0);
}, 60_000);

const cli = (args: string[]) => runCli(['anomalies', ...args], { DATABASE_URL: db.url }, { timeoutMs: 60_000 });

interface Backtest {
  from: string;
  to: string;
  hours_evaluated: number;
  anomalies: Array<Record<string, unknown>>;
}

describe('sentinel anomalies backtest', () => {
  it('prints the contract document, the incident hour in it, exit 0', async () => {
    const r = await cli(['backtest', '--from', '2026-10-27', '--to', '2026-10-28', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Backtest;
    expect(Object.keys(doc)).toEqual(['from', 'to', 'hours_evaluated', 'anomalies']);
    expect(doc).toMatchObject({ from: '2026-10-27T00:00:00Z', to: '2026-10-28T00:00:00Z', hours_evaluated: 24 });
    for (const a of doc.anomalies)
      expect(Object.keys(a)).toEqual([
        'source',
        'metric',
        'hour_start',
        'observed',
        'expected',
        'lower',
        'upper',
        'score',
        'level',
      ]);
    const incident = doc.anomalies.filter((a) => a.hour_start === '2026-10-27T14:00:00Z' && a.metric === 'volume');
    expect(incident.map((a) => [a.source, a.observed, a.level])).toEqual([
      ['evil\u001b[2J\u202esource', 0, 'critical'],
      ['vendor_a', 1, 'critical'],
    ]);
    // vendor_b had a normal day: nothing of it is far outside its band.
    expect(doc.anomalies.filter((a) => a.source === 'vendor_b' && a.level === 'critical')).toEqual([]);
  });

  it('narrows to --source and --metric, and evaluates only complete hours up to now', async () => {
    const r = await cli([
      'backtest',
      '--from',
      '2026-10-27T13:00Z',
      '--to',
      '2026-10-27T16:00+00:00',
      '--source',
      'vendor_a',
      '--metric',
      'volume',
      '--metric',
      'error_rate',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Backtest;
    expect(doc.hours_evaluated).toBe(3);
    expect(doc.anomalies.map((a) => `${a.source} ${a.metric} ${a.hour_start}`)).toEqual([
      'vendor_a volume 2026-10-27T14:00:00Z',
    ]);
  });

  it('prints a table and a per-source summary, hostile names escaped', async () => {
    const r = await cli(['backtest', '--from', '2026-10-27T14:00Z', '--to', '2026-10-27T15:00Z']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Backtest 2026-10-27T14:00:00Z to 2026-10-27T15:00:00Z: 1 complete hours evaluated$/m);
    expect(r.stdout).toMatch(/^2026-10-27 14:00 +vendor_a +volume +1 +\d+–\d+ +-\d+\.\d +critical$/m);
    expect(r.stdout).toMatch(/^Per source:$/m);
    expect(r.stdout).toMatch(/^ {2}vendor_b +4 +0 +0 +0$/m);
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u202e]/);
    expect(r.stdout).toContain('evil\\x1b[2J\\u202esource');
  });

  it.each([
    [['--from', '2026-10-28', '--to', '2026-10-27'], /^sentinel: --from \(2026-10-28T00:00:00Z\) must be before --to/],
    [['--from', '2025-01-01', '--to', '2026-10-27'], /spans more than a year .*: at most 366 days$/],
    [['--from', '27/10/2026', '--to', '2026-10-28'], /^sentinel: --from: expected an ISO 8601 date or date-time/],
    [['--from', '2026-10-27', '--to', 'tomorrow'], /^sentinel: --to: expected an ISO 8601 date/],
    [
      ['--from', '2026-10-27', '--to', '2026-10-28', '--metric', 'latency'],
      /'latency' is invalid\. expected one of volume/,
    ],
    [
      ['--from', '2026-10-27', '--to', '2026-10-28', '--source', 'nobody'],
      /^sentinel: unknown source "nobody": no batch/,
    ],
    [['--to', '2026-10-28'], /required option '--from <iso>' not specified/],
  ])('%j: one line, exit 3', async (args, message) => {
    const r = await cli(['backtest', ...args]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
  });
});

describe('sentinel anomalies baseline', () => {
  it('prints the 168 hour-of-week rows as the detector saw them at --at', async () => {
    const r = await cli([
      'baseline',
      '--source',
      'vendor_a',
      '--metric',
      'volume',
      '--at',
      END.toISOString(),
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      source: string;
      metric: string;
      at: string;
      training_weeks: number;
      sensitivity: number;
      rows: Array<{
        hour_of_week: number;
        day: string;
        hour: number;
        expected: number;
        lower: number;
        upper: number;
        weeks: number;
      }>;
    };
    expect(doc).toMatchObject({
      source: 'vendor_a',
      metric: 'volume',
      at: '2026-10-29T00:00:00Z',
      training_weeks: 4,
      sensitivity: 3,
    });
    expect(doc.rows).toHaveLength(168);
    expect(doc.rows.map((row) => row.hour_of_week)).toEqual([...Array(168).keys()]);
    // Tuesday 14:00: 30-32 batches a week; the incident week's 1 does not drag the centre down much
    // (a median), the growth estimate a little.
    const tuesday14 = doc.rows[24 + 14]!;
    expect(tuesday14).toMatchObject({ day: 'Tuesday', hour: 14, weeks: 4 });
    expect(tuesday14.expected).toBeGreaterThan(27);
    expect(tuesday14.lower).toBeGreaterThan(10);
    // Night hours: 10-12 batches.
    const night = doc.rows[3]!;
    expect(night.expected).toBeGreaterThanOrEqual(10);
    expect(night.expected).toBeLessThan(13);
  });

  it('prints a table for people, and refuses an unknown source or metric in one line', async () => {
    const r = await cli(['baseline', '--source', 'vendor_a', '--metric', 'error_rate', '--at', '2026-10-29']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^Baseline of error_rate for vendor_a at 2026-10-29T00:00:00Z: training_weeks 4, sensitivity 3/,
    );
    expect(r.stdout).toMatch(/^Tuesday +14:00 +1(\.0)? +[\d.]+ +[\d.]+ +4$/m);
    const unknown = await cli(['baseline', '--source', 'nobody', '--metric', 'volume']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr.trim()).toMatch(
      /^sentinel: unknown source "nobody": no batch from it in the 4 training weeks/,
    );
    const metric = await cli(['baseline', '--source', 'vendor_a', '--metric', 'rows']);
    expect(metric.code).toBe(3);
    expect(metric.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('parseIsoInstant', () => {
  it('reads ISO 8601 dates and date-times, UTC unless an offset is given', () => {
    expect(parseIsoInstant('2026-11-02', '--from')).toBe(Date.UTC(2026, 10, 2));
    expect(parseIsoInstant('2026-11-02T13:00Z', '--from')).toBe(Date.UTC(2026, 10, 2, 13));
    expect(parseIsoInstant('2026-11-02T13:00:00+01:00', '--from')).toBe(Date.UTC(2026, 10, 2, 12));
    expect(parseIsoInstant('2026-11-02T13:00:00.5-0130', '--from')).toBe(Date.UTC(2026, 10, 2, 14, 30, 0, 500));
    expect(parseIsoInstant('2026-11-02 13:00', '--from')).toBe(Date.UTC(2026, 10, 2, 13));
    for (const bad of ['2026-02-30', '2026-11-02T24:00Z', '2026-1-2', 'now', '', '1730000000'])
      expect(() => parseIsoInstant(bad, '--from'), bad).toThrow(/--from: expected an ISO 8601/);
  });
});
