import { describe, expect, it } from 'vitest';
import {
  anomalyMessage,
  backtest,
  baselineTable,
  type Cache,
  DEFAULT_OPTIONS,
  HOUR_MS,
  type HourlyStats,
  hourOfWeek,
  type Judgement,
  judgeHour,
  levelOf,
  plainJudge,
  type SourceSeries,
  STATIC_LIMITS,
  staticJudge,
  type Verdict,
  viewOf,
  WEEK_MS,
} from '../../src/anomalies/index.js';
import { countBand, countScore, median } from '../../src/anomalies/stats.js';

/** Monday 2026-10-05 00:00 UTC; the judged week starts four weeks later (Monday 2026-11-02). */
const START = Date.UTC(2026, 9, 5);
const JUDGED = START + 4 * WEEK_MS;
/** Tuesday 2026-11-03 13:00 UTC. */
const TUE_13 = JUDGED + (24 + 13) * HOUR_MS;

interface Shape {
  batches: number;
  rows?: number;
  errors?: number;
  skipped?: number;
  p95?: number;
}

/** A deterministic series: `shape(hour, week)` gives each hour's figures; 0 batches = absent hour. */
function series(
  shape: (hour: number, week: number) => Shape,
  weeks = 5,
  source = 'vendor_a',
  start = START,
): SourceSeries & { hours: Map<number, HourlyStats> } {
  const hours = new Map<number, HourlyStats>();
  for (let t = start; t < start + weeks * WEEK_MS; t += HOUR_MS) {
    const s = shape(t, Math.floor((t - start) / WEEK_MS));
    if (s.batches === 0) continue;
    const rows = s.rows ?? s.batches * 100;
    hours.set(t, {
      hour: t,
      batches: s.batches,
      total_rows: rows,
      error_rows: s.errors ?? 0,
      skipped_rows: s.skipped ?? 0,
      completed: s.batches,
      p95_minutes: s.p95 ?? 2,
    });
  }
  return { source, dataStart: start, hours };
}

/** Small deterministic wobble (±), so spreads are not zero. */
const wobble = (t: number, size: number) => Math.round(size * Math.sin(t / 7_777_777));

function judge(s: SourceSeries, metric: Judgement['metric'], hour: number, options = DEFAULT_OPTIONS): Verdict {
  return judgeHour(viewOf(s, hour + HOUR_MS), metric, hour, options, new Map());
}

function judged(v: Verdict): Judgement {
  if (!v.judged) throw new Error(`not judged: ${v.reason}`);
  return v;
}

/** The same series with one hour replaced. */
function withHour(s: SourceSeries, hour: number, shape: Shape): SourceSeries {
  const hours = new Map(s.hours);
  const rows = shape.rows ?? shape.batches * 100;
  hours.set(hour, {
    hour,
    batches: shape.batches,
    total_rows: rows,
    error_rows: shape.errors ?? 0,
    skipped_rows: shape.skipped ?? 0,
    completed: shape.batches,
    p95_minutes: shape.p95 ?? 2,
  });
  if (shape.batches === 0) hours.delete(hour);
  return { ...s, hours };
}

describe('hour of week', () => {
  it('Monday 00:00 UTC is 0, Tuesday 13:00 is 37, Sunday 23:00 is 167', () => {
    expect(hourOfWeek(JUDGED)).toBe(0);
    expect(hourOfWeek(TUE_13)).toBe(37);
    expect(hourOfWeek(JUDGED + 167 * HOUR_MS)).toBe(167);
  });
});

describe('levels', () => {
  it.each([
    [0, 'ok'],
    [2.99, 'ok'],
    [-3, 'warning'],
    [5.9, 'warning'],
    [6, 'critical'],
    [-12, 'critical'],
  ] as const)('score %s at sensitivity 3 is %s', (score, level) => {
    expect(levelOf(score, 3)).toBe(level);
  });
});

describe('counts are counts', () => {
  // A small source: about 3 batches every hour.
  const small = series((t) => ({ batches: 3 + wobble(t, 1) }));

  it.each([
    [2, 'ok'],
    [3, 'ok'],
    [0, 'ok'],
    [6, 'ok'],
  ] as const)('%i batches against about 3 expected is %s', (observed, level) => {
    const v = judged(judge(withHour(small, TUE_13, { batches: observed }), 'volume', TUE_13));
    expect(v.level).toBe(level);
    expect(v.expected).toBeGreaterThanOrEqual(2);
    expect(v.expected).toBeLessThanOrEqual(4);
  });

  it('4 batches where three of the four weeks happened to see 0 (a source at 3 an hour) is not flagged', () => {
    let s: SourceSeries = series(() => ({ batches: 3 }));
    for (const k of [1, 2, 4]) s = withHour(s, TUE_13 - k * WEEK_MS, { batches: 0 });
    s = withHour(s, TUE_13 - 3 * WEEK_MS, { batches: 4 });
    expect(judged(judge(withHour(s, TUE_13, { batches: 4 }), 'volume', TUE_13)).level).toBe('ok');
  });

  it('a burst of 15 against about 3 is flagged', () => {
    const v = judged(judge(withHour(small, TUE_13, { batches: 15 }), 'volume', TUE_13));
    expect(v.level).not.toBe('ok');
    expect(v.score).toBeGreaterThanOrEqual(3);
  });

  it('a third of the usual volume of a busy source is flagged in that hour', () => {
    const busy = series((t) => ({ batches: 100 + wobble(t, 8) }));
    const v = judged(judge(withHour(busy, TUE_13, { batches: 33 }), 'volume', TUE_13));
    expect(v.score).toBeLessThanOrEqual(-3);
    expect(v.lower).toBeGreaterThan(33);
  });
});

describe('a source silent at night', () => {
  const nightly = series((t) => {
    const h = new Date(t).getUTCHours();
    return { batches: h >= 8 && h < 20 ? 40 + wobble(t, 4) : 0 };
  });
  const night = JUDGED + (24 + 3) * HOUR_MS;

  it('0 batches at night is normal', () => {
    const v = judged(judge(nightly, 'volume', night));
    expect(v).toMatchObject({ observed: 0, level: 'ok' });
    // Poisson says 3; the minimum change worth an alert (2 batches over the ~0.1 expected) says 4.
    expect(v.upper).toBeLessThanOrEqual(4);
  });

  it('a burst at night is notable', () => {
    const v = judged(judge(withHour(nightly, night, { batches: 12 }), 'volume', night));
    expect(v.level).not.toBe('ok');
  });

  it('0 batches in a busy daytime hour is flagged as critical', () => {
    const v = judged(judge(withHour(nightly, TUE_13, { batches: 0 }), 'volume', TUE_13));
    expect(v.level).toBe('critical');
  });
});

describe('rates over few rows are weak evidence', () => {
  // 1 % errors over ~5,000 rows an hour, with a little spread between hours.
  const rates = series((t) => ({ batches: 50, rows: 5000, errors: 50 + wobble(t, 8) }));

  it('2 errors in a 40-row hour (5 %) is not an anomaly', () => {
    const v = judged(judge(withHour(rates, TUE_13, { batches: 1, rows: 40, errors: 2 }), 'error_rate', TUE_13));
    expect(v.observed).toBe(5);
    expect(v.level).toBe('ok');
    expect(v.evidence).toBe(40);
  });

  it('5 % over 5,000 rows is, and far outside', () => {
    const v = judged(judge(withHour(rates, TUE_13, { batches: 50, rows: 5000, errors: 250 }), 'error_rate', TUE_13));
    expect(v.level).toBe('critical');
    expect(v.expected).toBeCloseTo(1, 0);
    expect(v.upper).toBeLessThan(5);
  });

  it('an hour without rows is not judged for rates', () => {
    const v = judge(withHour(rates, TUE_13, { batches: 0 }), 'error_rate', TUE_13);
    expect(v).toMatchObject({ judged: false, reason: 'no rows in this hour' });
  });

  it('a dedupe rate falling from 20 % to 1 % is flagged', () => {
    const d = series((t) => ({ batches: 50, rows: 5000, skipped: 1000 + wobble(t, 60) }));
    const v = judged(judge(withHour(d, TUE_13, { batches: 50, rows: 5000, skipped: 50 }), 'dedupe_rate', TUE_13));
    expect(v.score).toBeLessThanOrEqual(-6);
  });
});

describe('processing time', () => {
  const slow = series((t) => ({ batches: 40, p95: 2 + wobble(t, 1) / 10 }));

  it('2.5× slower than usual is flagged, 10 % slower is not', () => {
    expect(judged(judge(withHour(slow, TUE_13, { batches: 40, p95: 5 }), 'processing_time', TUE_13)).level).not.toBe(
      'ok',
    );
    expect(judged(judge(withHour(slow, TUE_13, { batches: 40, p95: 2.2 }), 'processing_time', TUE_13)).level).toBe(
      'ok',
    );
  });
});

describe('robust to incidents in the history', () => {
  const clean = series((t) => ({ batches: 100 + wobble(t, 8) }));
  // The same source with the judged hour's slot silent two weeks ago and surging three weeks ago,
  // and a whole silent afternoon a week ago.
  let hurt: SourceSeries = withHour(clean, TUE_13 - 2 * WEEK_MS, { batches: 0 });
  hurt = withHour(hurt, TUE_13 - 3 * WEEK_MS, { batches: 400 });
  for (let h = 0; h < 5; h++)
    hurt = withHour(hurt, TUE_13 - WEEK_MS + (h - 2) * HOUR_MS + 24 * HOUR_MS, { batches: 0 });

  it('neither shifts the expected value nor widens the band much', () => {
    const a = judged(judge(clean, 'volume', TUE_13));
    const b = judged(judge(hurt, 'volume', TUE_13));
    expect(Math.abs(b.expected - a.expected) / a.expected).toBeLessThan(0.06);
    expect(b.upper - b.lower).toBeLessThan(1.25 * (a.upper - a.lower));
  });

  it('keeps the usual volume when two of the four weeks held a drop at this hour', () => {
    // A median of {100, 100, 30, 30} would expect 65; each drop was far outside its own weeks.
    let twice: SourceSeries = withHour(clean, TUE_13 - WEEK_MS, { batches: 30 });
    twice = withHour(twice, TUE_13 - 2 * WEEK_MS, { batches: 30 });
    const a = judged(judge(clean, 'volume', TUE_13));
    const b = judged(judge(twice, 'volume', TUE_13));
    expect(Math.abs(b.expected - a.expected) / a.expected).toBeLessThan(0.06);
    expect(judged(judge(withHour(twice, TUE_13, { batches: 100 }), 'volume', TUE_13)).level).toBe('ok');
  });
});

describe('a mild growth trend', () => {
  // +3 % a week: the judged week sits above every training week.
  const growing = series((t, week) => ({ batches: Math.round((100 + wobble(t, 5)) * 1.03 ** week) }));

  it('the expected value follows the trend, above the plain median of the four weeks', () => {
    const v = judged(judge(growing, 'volume', TUE_13));
    const weeks = [1, 2, 3, 4].map((k) => growing.hours.get(TUE_13 - k * WEEK_MS)!.batches).sort((a, b) => a - b);
    const plainMedian = (weeks[1]! + weeks[2]!) / 2;
    expect(v.expected).toBeGreaterThan(plainMedian * 1.02);
    expect(v.level).toBe('ok');
  });
});

describe('history', () => {
  it('an hour with fewer than min_training_weeks weeks of data is not judged, with "history" in the reason', () => {
    const young = series(() => ({ batches: 10 }), 2, 'vendor_a', JUDGED - WEEK_MS);
    const v = judge(young, 'volume', TUE_13);
    expect(v.judged).toBe(false);
    expect(!v.judged && v.reason).toContain('history');
    // Two weeks of data are enough at the default min_training_weeks of 2.
    expect(judge(young, 'volume', TUE_13 + WEEK_MS).judged).toBe(true);
    expect(judge(young, 'volume', TUE_13 + WEEK_MS, { ...DEFAULT_OPTIONS, min_training_weeks: 3 })).toMatchObject({
      judged: false,
      reason: expect.stringContaining('history'),
    });
  });
});

describe('sensitivity', () => {
  it('sets the band width', () => {
    const s = series((t) => ({ batches: 100 + wobble(t, 8) }));
    const narrow = judged(judge(s, 'volume', TUE_13, { ...DEFAULT_OPTIONS, sensitivity: 2 }));
    const wide = judged(judge(s, 'volume', TUE_13, { ...DEFAULT_OPTIONS, sensitivity: 5 }));
    expect(wide.upper - wide.lower).toBeGreaterThan(2 * (narrow.upper - narrow.lower));
    expect(wide.score).toBe(narrow.score);
  });
});

describe('baseline table', () => {
  it('has the 168 hour-of-week rows with the weeks of data behind each', () => {
    const s = series((t) => ({ batches: new Date(t).getUTCHours() + 10 }));
    const rows = baselineTable(s, 'volume', JUDGED);
    expect(rows).toHaveLength(168);
    expect(rows.map((r) => r.hour_of_week)).toEqual([...Array(168).keys()]);
    expect(rows.every((r) => r.weeks === 4)).toBe(true);
    expect(rows[13]).toMatchObject({ expected: 23 });
    expect(rows[13]!.lower!).toBeLessThan(23);
    expect(rows[13]!.upper!).toBeGreaterThan(23);
    const short = baselineTable(s, 'volume', START + WEEK_MS);
    expect(short[0]).toMatchObject({ weeks: 1, expected: null });
  });
});

describe('backtest', () => {
  const s = series((t) => ({ batches: 60 + wobble(t, 6), rows: 6000, errors: 60 + wobble(t, 9), skipped: 900 }));
  const from = JUDGED;
  const to = JUDGED + 2 * 24 * HOUR_MS;
  const metrics = ['volume', 'error_rate', 'dedupe_rate', 'processing_time'] as const;

  it('judges every complete hour in [from, to) for every metric', () => {
    const r = backtest({ series: [s], metrics, from, to });
    expect(r.hours_evaluated).toBe(48);
    expect(r.verdicts).toHaveLength(48 * 4);
    expect(backtest({ series: [s], metrics, from: from + 1, to: to - 1 }).hours_evaluated).toBe(46);
  });

  it('uses no data created after the judged hour ends: rewriting the future changes nothing before it', () => {
    const before = backtest({ series: [s], metrics, from, to }).verdicts;
    const cut = from + 30 * HOUR_MS;
    const hours = new Map(s.hours);
    for (const [t, v] of hours) {
      if (t >= cut) hours.set(t, { ...v, batches: v.batches * 7, error_rows: v.total_rows, p95_minutes: 99 });
    }
    const after = backtest({ series: [{ ...s, hours }], metrics, from, to }).verdicts;
    const early = (v: Verdict) => Date.parse(v.hour_start) < cut;
    expect(after.filter(early)).toEqual(before.filter(early));
    expect(after.filter(early)).toHaveLength(30 * 4);
    // …and the rewritten hours themselves are judged differently (the test can fail).
    expect(after.filter((v) => !early(v))).not.toEqual(before.filter((v) => !early(v)));
  });

  it('judges an hour the same in a backtest as alone (the live check)', () => {
    const r = backtest({ series: [s], metrics: ['volume'], from, to });
    const alone = judgeHour(viewOf(s, TUE_13 + HOUR_MS), 'volume', TUE_13, DEFAULT_OPTIONS, new Map() as Cache);
    expect(r.verdicts.find((v) => v.hour_start === '2026-11-03T13:00:00Z')).toEqual(alone);
  });
});

describe('messages', () => {
  const base: Judgement = {
    source: 'vendor_a',
    metric: 'volume',
    hour_start: '2026-11-03T13:00:00Z',
    observed: 12,
    expected: 100,
    lower: 80,
    upper: 120,
    score: -7.2,
    level: 'critical',
    evidence: 12,
  };

  it.each([
    [{}, 'Volume for vendor_a 13:00–14:00 UTC: 12 batches, usually 80–120 on Tuesdays at this hour'],
    [{ observed: 1 }, 'Volume for vendor_a 13:00–14:00 UTC: 1 batch, usually 80–120 on Tuesdays at this hour'],
    [
      { metric: 'error_rate', observed: 8, lower: 0.55, upper: 1.6, evidence: 5400 },
      'Error rate for vendor_a 13:00–14:00 UTC: 8 % of 5,400 rows, usually 0.55–1.6 % on Tuesdays at this hour',
    ],
    [
      { metric: 'dedupe_rate', observed: 1.04, lower: 15.2, upper: 24.8, evidence: 5000 },
      'Dedupe rate for vendor_a 13:00–14:00 UTC: 1 % of 5,000 rows, usually 15.2–24.8 % on Tuesdays at this hour',
    ],
    [
      { metric: 'processing_time', observed: 6.24, lower: 1.8, upper: 3.1, evidence: 40 },
      'Processing time for vendor_a 13:00–14:00 UTC: p95 6.2 min over 40 batches, usually 1.8–3.1 min on Tuesdays ' +
        'at this hour',
    ],
    [
      { hour_start: '2026-11-08T23:00:00Z', source: 'evil\u001b[2Jname' },
      'Volume for evil\\x1b[2Jname 23:00–00:00 UTC: 12 batches, usually 80–120 on Sundays at this hour',
    ],
  ] as const)('%o → %s', (over, text) => {
    expect(anomalyMessage({ ...base, ...over } as Judgement)).toBe(text);
  });
});

describe('the comparison judges', () => {
  const s = series((t) => ({ batches: 50, rows: 5000, errors: 50 + wobble(t, 5) }));

  it('the plain median/MAD baseline flags any change where the four weeks agree exactly', () => {
    const v = plainJudge(
      viewOf(withHour(s, TUE_13, { batches: 51 }), TUE_13 + HOUR_MS),
      'volume',
      TUE_13,
      DEFAULT_OPTIONS,
      new Map(),
    );
    expect(v).toMatchObject({ judged: true, level: 'critical', expected: 50 });
  });

  it("the static checks use today's thresholds", () => {
    const judgeStatic = staticJudge(STATIC_LIMITS);
    const at = (shape: Shape, metric: Judgement['metric']) =>
      judgeStatic(viewOf(withHour(s, TUE_13, shape), TUE_13 + HOUR_MS), metric, TUE_13, DEFAULT_OPTIONS, new Map());
    expect(at({ batches: 50, rows: 5000, errors: 700 }, 'error_rate')).toMatchObject({ level: 'ok' });
    expect(at({ batches: 50, rows: 5000, errors: 800 }, 'error_rate')).toMatchObject({ level: 'warning' });
    expect(at({ batches: 1, rows: 99, errors: 50 }, 'error_rate')).toMatchObject({ level: 'ok' });
    expect(at({ batches: 50, rows: 5000, skipped: 2600 }, 'dedupe_rate')).toMatchObject({ level: 'warning' });
    expect(at({ batches: 50, p95: 5.5 }, 'processing_time')).toMatchObject({ level: 'warning' });
    expect(at({ batches: 50 }, 'volume')).toMatchObject({ judged: false });
  });
});

describe('the worked example of docs/anomalies.md', () => {
  // vendor_a, Tuesday 13:00: the four previous Tuesdays 110, 99, 104, 96 (1 … 4 weeks back), growth
  // +0.5 %/week, φ = 0, the day so far at its usual level (day factor 1), no tail correction (κ = 1).
  const points = [110, 99, 104, 96].map((y, i) => y * 1.005 ** (i + 1));
  const mu = median(points);
  const variance = mu * (1 + Math.PI / 8);

  it('has the centre, variance and band the doc gives', () => {
    expect(mu).toBeCloseTo(102.78, 2);
    expect(variance).toBeCloseTo(143.14, 2);
    expect(Math.sqrt(variance)).toBeCloseTo(12, 0);
    expect(countBand(mu, variance, 3)).toEqual({ lower: 71, upper: 142 });
  });

  it('scores the four observations as the table says (the level column: by score alone)', () => {
    const rows: [number, number, Judgement['level']][] = [
      [80, -1.98, 'ok'],
      [70, -3.0, 'warning'],
      [150, 3.47, 'warning'],
      [12, -12.96, 'critical'],
    ];
    for (const [observed, score, level] of rows) {
      const z = countScore(observed, mu, variance);
      expect(z).toBeCloseTo(score, 2);
      expect(levelOf(z, 3)).toBe(level);
    }
  });

  it('words the last one as the doc does', () => {
    const j: Judgement = {
      source: 'vendor_a',
      metric: 'volume',
      hour_start: new Date(TUE_13).toISOString().replace('.000Z', 'Z'),
      observed: 12,
      expected: 102.78,
      lower: 71,
      upper: 142,
      score: -12.96,
      level: 'critical',
      evidence: 12,
    };
    expect(anomalyMessage(j)).toBe(
      'Volume for vendor_a 13:00–14:00 UTC: 12 batches, usually 71–142 on Tuesdays at this hour',
    );
  });
});

describe("the day's level, from its earlier hours", () => {
  // An error rate of about 1 % whose level swings by day (×0.6 … ×1.7, as real rates do), 5,000 rows
  // an hour, a little hour-to-hour noise. The judged Tuesday runs at 2× all day.
  const dayFactor = (t: number) => [1, 0.6, 1.7, 0.8, 1.3, 0.7, 1.5][Math.floor(t / 86_400_000) % 7]!;
  const s = series((t, week) => {
    const factor = week < 4 ? dayFactor(t + week * 86_400_000) : 2;
    return { batches: 50, rows: 5000, errors: Math.round(50 * factor * (1 + 0.1 * Math.sin(t / 3_600_000))) };
  });
  const tuesday = JUDGED + 24 * HOUR_MS;

  it('a whole day at twice the usual rate is one fact, not an alert every hour', () => {
    const verdicts = backtest({
      series: [s],
      metrics: ['error_rate'],
      from: tuesday,
      to: tuesday + 24 * HOUR_MS,
    }).verdicts.map(judged);
    const alerted = verdicts.filter((v) => v.level !== 'ok').map((v) => new Date(v.hour_start).getUTCHours());
    expect(alerted.every((h) => h < 3)).toBe(true);
    // Later hours are judged against the day's level: expected near 2 %.
    expect(verdicts[20]!.expected).toBeGreaterThan(1.6);
  });

  it('an incident on top of the day is still flagged in its first hour', () => {
    const bad = withHour(s, tuesday + 13 * HOUR_MS, { batches: 50, rows: 5000, errors: 500 });
    expect(judged(judge(bad, 'error_rate', tuesday + 13 * HOUR_MS)).level).not.toBe('ok');
  });
});

describe("the baseline table and the day's level", () => {
  // About 6 batches an hour whose level swings by day; the table is taken at 06:00 on a usual day.
  const dayFactor = (t: number) => [1, 0.6, 1.7, 0.8, 1.3, 0.7, 1.5][Math.floor(t / 86_400_000) % 7]!;
  const s = series((t, week) => ({ batches: Math.round(6 * (week < 4 ? dayFactor(t + week * 86_400_000) : 1)) }));
  const at = JUDGED + 24 * HOUR_MS + 6 * HOUR_MS;

  it('does not read the hours after its cutoff as silent', () => {
    const rows = baselineTable(s, 'volume', at);
    const slot = hourOfWeek(at);
    for (const i of [0, 6, 17]) expect(rows[(slot + i) % 168]!.expected!).toBeGreaterThan(3);
  });
});

describe('what is worth an alert', () => {
  const steady = series((t) => ({ batches: 60 + wobble(t, 4), rows: 6000, errors: 60 + wobble(t, 6) }));

  it('an error rate below its band is reported, not alerted: only up is a problem (processing time too)', () => {
    const low = judged(judge(withHour(steady, TUE_13, { batches: 60, rows: 6000, errors: 0 }), 'error_rate', TUE_13));
    expect(low.score).toBeLessThanOrEqual(-3);
    expect(low.level).toBe('ok');
    const high = judged(
      judge(withHour(steady, TUE_13, { batches: 60, rows: 6000, errors: 600 }), 'error_rate', TUE_13),
    );
    expect(high.level).toBe('critical');
  });

  it('a marginal hour alerts only when the hour before leaned the same way', () => {
    // Find a count just outside the band (|score| in [3, 3.6)) with a usual hour before it.
    const before = TUE_13 - HOUR_MS;
    const marginal = [...Array(60).keys()]
      .map((k) => withHour(steady, TUE_13, { batches: 60 + 15 + k, rows: 6000, errors: 60 }))
      .map((s) => ({ s, v: judged(judge(s, 'volume', TUE_13)) }))
      .find(({ s, v }) => {
        const raw = judged(judge(s, 'volume', TUE_13, { ...DEFAULT_OPTIONS, sensitivity: 1e9 }));
        return raw.score >= 3 && raw.score < 3.6 && v.observed > 0;
      });
    expect(marginal).toBeDefined();
    expect(marginal!.v.level).toBe('ok');
    // The same hour after an hour that was already high: now it alerts.
    const leaning = withHour(marginal!.s, before, { batches: 90, rows: 6000, errors: 60 });
    expect(judged(judge(leaning, 'volume', TUE_13)).level).toBe('warning');
  });
});
