import { describe, expect, it } from 'vitest';
import type { AnomaliesResponse } from '../../src/server/api-types.js';
import {
  bandPoints,
  metricRange,
  metricValue,
  notJudgedSpans,
  spanText,
  unusualLine,
} from '../../web/src/anomaly-points.js';

/** The "Unusual hours" card's pure helpers (web/src/anomaly-points.ts), with fixed zones. */

const answer: AnomaliesResponse = {
  source: 'vendor_a',
  metric: 'volume',
  metrics: ['volume', 'error_rate', 'dedupe_rate', 'processing_time'],
  from: '2025-01-04T10:00:00Z',
  to: '2025-01-04T15:00:00Z',
  sensitivity: 3,
  training_weeks: 4,
  min_training_weeks: 2,
  enabled: true,
  hours: [
    {
      hour_start: '2025-01-04T10:00:00Z',
      observed: 3,
      reason: 'only 1 of 2 weeks of history at this hour of the week',
    },
    {
      hour_start: '2025-01-04T11:00:00Z',
      observed: 4,
      reason: 'only 1 of 2 weeks of history at this hour of the week',
    },
    {
      hour_start: '2025-01-04T12:00:00Z',
      observed: 40,
      expected: 41,
      lower: 22.4,
      upper: 63.2,
      score: 0.1,
      level: 'ok',
    },
    {
      hour_start: '2025-01-04T13:00:00Z',
      observed: 2,
      expected: 41,
      lower: 22.4,
      upper: 63.2,
      score: -9.12,
      level: 'critical',
    },
    { hour_start: '2025-01-04T14:00:00Z', observed: null, reason: 'no data for this hour' },
  ],
  unusual: 1,
  not_judged: 3,
  sources: ['vendor_a'],
  sources_total: 1,
};

describe('metricValue and metricRange', () => {
  it.each([
    ['volume', 1, '1 batch'],
    ['volume', 1234, '1,234 batches'],
    ['error_rate', 8.61, '8.6 %'],
    ['processing_time', 2.04, '2.0 min'],
    ['processing_time', 12.4, '12 min'],
    ['dedupe_rate', null, '–'],
  ] as const)('%s %s → %s', (metric, n, text) => {
    expect(metricValue(metric, n)).toBe(text);
  });

  it('writes the unit once', () => {
    expect(metricRange('volume', 20.4, 65)).toBe('20–65 batches');
    expect(metricRange('volume', 0.2, 1)).toBe('0–1 batch');
    expect(metricRange('error_rate', 0.5, 3.14)).toBe('0.5–3.1 %');
    expect(metricRange('processing_time', 1.8, 2.4)).toBe('1.8–2.4 min');
  });
});

describe('bandPoints', () => {
  it('gives judged hours a band, unusual ones a mark named in words, others none', () => {
    const points = bandPoints(answer, 'UTC');
    expect(points.map((p) => p.label)).toEqual([
      '4 Jan 10:00',
      '4 Jan 11:00',
      '4 Jan 12:00',
      '4 Jan 13:00',
      '4 Jan 14:00',
    ]);
    expect(points[0]).toEqual({ hourMs: Date.parse('2025-01-04T10:00:00Z'), label: '4 Jan 10:00', observed: 3 });
    expect(points[2]).toMatchObject({ lower: 22.4, upper: 63.2 });
    expect(points[2]!.mark).toBeUndefined();
    expect(points[3]).toMatchObject({
      mark: 'low',
      markName: 'Unusual: 4 Jan 13:00: 2 batches, below the usual 22–63 batches (critical, score -9.12)',
    });
    expect(points[4]!.observed).toBeNull();
  });

  it('labels hours in the chosen zone', () => {
    expect(bandPoints(answer, 'Asia/Kolkata')[0]!.label).toBe('4 Jan 15:30');
    expect(unusualLine('volume', answer.hours[3] as never, 'Asia/Kolkata')).toMatch(/^4 Jan 18:30: /);
  });
});

describe('notJudgedSpans', () => {
  it('groups consecutive hours with the same reason', () => {
    const spans = notJudgedSpans(answer);
    expect(spans).toEqual([
      {
        from: Date.parse('2025-01-04T10:00:00Z'),
        to: Date.parse('2025-01-04T11:00:00Z'),
        hours: 2,
        reason: 'only 1 of 2 weeks of history at this hour of the week',
      },
      {
        from: Date.parse('2025-01-04T14:00:00Z'),
        to: Date.parse('2025-01-04T14:00:00Z'),
        hours: 1,
        reason: 'no data for this hour',
      },
    ]);
    expect(spanText(spans[0]!, 'UTC')).toBe('4 Jan 10:00–4 Jan 12:00 (2 h)');
    expect(spanText(spans[1]!, 'UTC')).toBe('4 Jan 14:00 (1 h)');
  });
});
