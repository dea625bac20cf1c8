import { describe, expect, it } from 'vitest';
import type { AlertsResponse, BatchPerformanceResponse } from '../../src/server/api-types.js';
import { aboutLine, alertBatches, alertSource, sortAlerts, topSources } from '../../web/src/details.js';
import {
  ageSince,
  count,
  formatAge,
  formatClock,
  formatHour,
  isoUtc,
  knownZone,
  pct,
  relative,
  short,
  zoneLabel,
} from '../../web/src/format.js';
import { hourPoints } from '../../web/src/series.js';

/** The dashboard's pure helpers (web/src): times with fixed zones and clocks, alert details, chart points. */

const NOW = Date.parse('2025-01-04T14:30:00Z');

describe('formatAge, ageSince, relative', () => {
  it.each([
    [0, '0 s'],
    [-5, '0 s'],
    [42.4, '42 s'],
    [59.6, '1 min'],
    [300, '5 min'],
    [3600, '1 h'],
    [3 * 3600 + 600, '3 h 10 min'],
    [47 * 3600 + 59 * 60, '47 h 59 min'],
    [48 * 3600, '2 d'],
    [52 * 3600, '2 d 4 h'],
  ])('formatAge(%s) = %s', (seconds, expected) => {
    expect(formatAge(seconds)).toBe(expected);
  });

  it.each([
    ['2025-01-04T14:18:00Z', '12 min', '12 min ago'],
    ['2025-01-04T14:29:57Z', '3 s', 'just now'],
    ['2025-01-04T14:31:00Z', '0 s', 'just now'],
    ['2025-01-02T14:30:00Z', '2 d', '2 d ago'],
    ['not a time', '?', 'at an unknown time'],
  ])('%s at 14:30 UTC: age %s, %s', (iso, age, rel) => {
    expect(ageSince(iso, NOW)).toBe(age);
    expect(relative(iso, NOW)).toBe(rel);
  });
});

describe('formatClock: 24-hour, the zone always written', () => {
  it.each([
    ['2025-01-04T14:05:07Z', 'UTC', false, '14:05 UTC'],
    ['2025-01-04T14:05:07Z', 'UTC', true, '14:05:07 UTC'],
    ['2025-01-04T00:05:00Z', 'UTC', false, '00:05 UTC'],
    ['2025-01-04T23:59:00Z', 'UTC', false, '23:59 UTC'],
    // Another day in that zone: the date is written too.
    ['2025-01-03T23:59:00Z', 'UTC', false, '3 Jan 23:59 UTC'],
    // Offsets, not zone names (those depend on the locale data).
    // Berlin is UTC+1 in January: 14:05 UTC is 15:05 there, the same day.
    ['2025-01-04T14:05:00Z', 'Europe/Berlin', false, '15:05 UTC+1'],
    // 23:30 UTC is already the next day in Berlin, whose "now" (15:30) is still the 4th.
    ['2025-01-04T23:30:00Z', 'Europe/Berlin', false, '5 Jan 00:30 UTC+1'],
    // Half-hour offsets keep their minutes.
    ['2025-01-04T14:05:00Z', 'Asia/Kolkata', false, '19:35 UTC+5:30'],
    ['2025-01-04T14:05:00Z', 'America/New_York', false, '09:05 UTC-5'],
    ['garbage', 'UTC', false, 'garbage'],
  ])('%s in %s (seconds: %s) = %s', (iso, zone, seconds, expected) => {
    expect(formatClock(iso, zone, NOW, seconds)).toBe(expected);
  });

  it('names zones', () => {
    expect(zoneLabel('UTC', NOW)).toBe('UTC');
    expect(zoneLabel('Europe/Berlin', NOW)).toBe('UTC+1');
    expect(zoneLabel('Europe/Berlin', Date.parse('2025-07-04T12:00:00Z'))).toBe('UTC+2');
    expect(zoneLabel('America/New_York', NOW)).toBe('UTC-5');
    // A zone at offset zero says UTC, not GMT.
    expect(zoneLabel('Europe/London', NOW)).toBe('UTC');
    expect(formatClock('2025-01-04T14:05:00Z', 'Europe/London', NOW)).toBe('14:05 UTC');
  });

  it('labels hours in the zone, with the day for a 7-day window', () => {
    const h = Date.parse('2025-01-04T14:00:00Z');
    expect(formatHour(h, 'UTC', false)).toBe('14:00');
    expect(formatHour(h, 'UTC', true)).toBe('4 Jan 14:00');
    expect(formatHour(h, 'Europe/Berlin', false)).toBe('15:00');
    expect(formatHour(h, 'Asia/Kolkata', false)).toBe('19:30');
  });

  it('writes ISO 8601 in UTC with seconds, and knows which zones exist', () => {
    expect(isoUtc('2025-01-04T15:05:07.123+01:00')).toBe('2025-01-04T14:05:07Z');
    expect(isoUtc('nope')).toBe('nope');
    expect(knownZone('Europe/Berlin')).toBe(true);
    expect(knownZone('Mars/Olympus')).toBe(false);
    expect(knownZone('')).toBe(false);
  });
});

describe('pct, count, short', () => {
  it.each([
    [null, '–'],
    [undefined, '–'],
    [Number.NaN, '–'],
    [0, '0 %'],
    [8.64, '8.6 %'],
    [15, '15 %'],
    [21.67, '21.7 %'],
    [29.96, '30 %'],
    [100, '100 %'],
  ])('pct(%s) = %s', (n, expected) => {
    expect(pct(n)).toBe(expected);
  });

  it('groups thousands and cuts long names without splitting a character', () => {
    expect(count(0)).toBe('0');
    expect(count(1234567)).toBe('1,234,567');
    expect(short('vendor_a', 40)).toBe('vendor_a');
    expect(short('x'.repeat(256), 40)).toBe(`${'x'.repeat(39)}…`);
    expect(short('😀'.repeat(5), 3)).toBe('😀😀…');
  });
});

type ApiAlert = AlertsResponse['alerts'][number];
const alert = (a: Partial<ApiAlert>): ApiAlert => ({
  check: 'error_spike',
  level: 'warning',
  message: 'm',
  details: {},
  ...a,
});

describe('alert details', () => {
  const stuck = alert({
    check: 'stuck_batches',
    level: 'critical',
    details: {
      oldest_batches: [
        { id: 'b-1', source: 'vendor_b', status: 'validating', age_minutes: 35.2 },
        { id: 'b-2', source: 'vendor_b', status: 'processing' },
        { id: 7, source: 'vendor_c' },
        { source: 'no id' },
        'junk',
        null,
      ],
    },
  });
  const spike = alert({
    details: {
      top_sources: [
        { source: 'vendor_a', error_rate_pct: 40, error_rows: 160, total_rows: 400 },
        { source: 'x'.repeat(256), error_rate_pct: 30, error_rows: 90, total_rows: 300 },
        { source: 'vendor_c', error_rate_pct: 2, error_rows: 1, total_rows: 50 },
        { source: 'no rate' },
      ],
    },
  });

  it('reads the batches and top sources it can, skipping malformed entries', () => {
    expect(alertBatches(stuck)).toEqual([
      { id: 'b-1', source: 'vendor_b', status: 'validating', age_minutes: 35.2 },
      { id: 'b-2', source: 'vendor_b', status: 'processing' },
      { id: '7', source: 'vendor_c' },
    ]);
    expect(topSources(spike).map((s) => s.error_rate_pct)).toEqual([40, 30, 2]);
    expect(alertBatches(alert({ details: { oldest_batches: 'nope' } }))).toEqual([]);
    expect(topSources(alert({}))).toEqual([]);
  });

  it.each([
    ['per-source alert', alert({ subject: 'vendor_x', details: { source: 'vendor_x' } }), 'source vendor_x'],
    ['details.source only', alert({ details: { source: 'vendor_y' } }), 'source vendor_y'],
    ['long subject', alert({ subject: 'y'.repeat(256) }), `source ${'y'.repeat(39)}…`],
    ['stuck batches', stuck, 'source vendor_b, vendor_c'],
    ['overall spike', spike, `overall; top: vendor_a, ${'x'.repeat(39)}… +1`],
    ['overall spike without details', alert({}), 'overall (all sources)'],
    ['another check', alert({ check: 'schema_cache' }), ''],
  ])('says what a %s is about', (_name, a, expected) => {
    expect(aboutLine(a)).toBe(expected);
  });

  it('prefers the subject as the source and sorts critical first, keeping the run order', () => {
    expect(alertSource(alert({ subject: 's', details: { source: 'd' } }))).toBe('s');
    const w1 = alert({ message: 'w1' });
    const c1 = alert({ level: 'critical', message: 'c1' });
    const w2 = alert({ message: 'w2' });
    const c2 = alert({ level: 'critical', message: 'c2' });
    expect(sortAlerts([w1, c1, w2, c2]).map((a) => a.message)).toEqual(['c1', 'c2', 'w1', 'w2']);
  });
});

describe('hourPoints', () => {
  const perf = (hours: number, rows: Array<{ hour: string; completed: number; rate: number | null }>) =>
    ({
      hours,
      error_threshold_pct: 15,
      rows: rows.map((r) => ({
        hour_bucket: r.hour,
        total_batches: r.completed,
        completed_batches: r.completed,
        failed_batches: 0,
        avg_parse_ms: null,
        avg_db_ms: null,
        avg_total_ms: null,
        total_rows: 0,
        inserted_rows: 0,
        skipped_rows: 0,
        error_rows: 0,
        dedupe_rate_pct: null,
        error_rate_pct: r.rate,
      })),
    }) satisfies BatchPerformanceResponse;

  it('has one point per hour of the window, oldest first, zeros where no batch was, labels in the zone', () => {
    const points = hourPoints(
      perf(24, [
        { hour: '2025-01-04T14:00:00.000Z', completed: 3, rate: 8.6 },
        { hour: '2025-01-04T10:00:00.000Z', completed: 1, rate: null },
        // Outside the window: ignored.
        { hour: '2025-01-02T10:00:00.000Z', completed: 9, rate: 50 },
      ]),
      NOW,
      'Europe/Berlin',
    );
    expect(points).toHaveLength(24);
    expect(points[0]!.hourMs).toBe(Date.parse('2025-01-03T15:00:00Z'));
    expect(points[23]).toMatchObject({ label: '15:00', completed: 3, errorRate: 8.6 });
    expect(points[19]).toMatchObject({ label: '11:00', completed: 1, errorRate: null });
    expect(points.reduce((n, p) => n + p.completed, 0)).toBe(4);
    expect(hourPoints(perf(168, []), NOW, 'UTC')[167]!.label).toBe('4 Jan 14:00');
  });
});
