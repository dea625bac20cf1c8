/**
 * The two judges the detector is measured against (docs/anomalies.md, "Evaluation"): the issue's
 * plain hour-of-week median/MAD baseline and today's static thresholds.
 */
import { type Judge, levelOf } from './detector.js';
import { MAX_SCORE, median } from './stats.js';
import { isoHour } from './time.js';
import type { HourlyStats, Metric } from './types.js';
import { WEEK_MS } from './types.js';

function plainValue(metric: Metric, s: HourlyStats | undefined): number | undefined {
  if (metric === 'volume') return s?.batches ?? 0;
  if (!s) return undefined;
  if (metric === 'processing_time') return s.completed > 0 && s.p95_minutes !== null ? s.p95_minutes : undefined;
  if (s.total_rows <= 0) return undefined;
  return (100 * (metric === 'error_rate' ? s.error_rows : s.skipped_rows)) / s.total_rows;
}

/**
 * The plain baseline: median and MAD (× 1.4826) of the same hour-of-week over the training weeks,
 * band median ± sensitivity × MAD; a MAD of 0 makes any difference an anomaly.
 */
export const plainJudge: Judge = (view, metric, hour, options) => {
  const head = { source: view.source, metric, hour_start: isoHour(hour) };
  const points: number[] = [];
  let weeks = 0;
  for (let k = 1; k <= options.training_weeks; k++) {
    const t = hour - k * WEEK_MS;
    if (!view.covered(t)) continue;
    weeks++;
    const v = plainValue(metric, view.get(t));
    if (v !== undefined) points.push(v);
  }
  if (weeks < options.min_training_weeks || points.length === 0) {
    return { judged: false, ...head, reason: `only ${weeks} weeks of history` };
  }
  const observed = plainValue(metric, view.get(hour));
  if (observed === undefined) return { judged: false, ...head, reason: 'nothing observed' };
  const med = median(points);
  const mad = 1.4826 * median(points.map((p) => Math.abs(p - med)));
  const diff = observed - med;
  const score = mad > 0 ? diff / mad : diff === 0 ? 0 : Math.sign(diff) * MAX_SCORE;
  const s = options.sensitivity;
  return {
    judged: true,
    ...head,
    observed,
    expected: med,
    lower: med - s * mad,
    upper: med + s * mad,
    score,
    level: levelOf(score, s),
    evidence: 0,
  };
};

export interface StaticLimits {
  /** error_spike: error rate above this percent … */
  errorRatePercent: number;
  /** … over at least this many rows. */
  errorMinRows: number;
  dedupePercent: number;
  p95Minutes: number;
  /** source_freshness: hours without a batch before a source counts as silent, per source (absent: no check). */
  expectedEveryHours: Readonly<Record<string, number>>;
}

export const STATIC_LIMITS: StaticLimits = {
  errorRatePercent: 15,
  errorMinRows: 100,
  dedupePercent: 50,
  p95Minutes: 5,
  expectedEveryHours: {},
};

/** Today's static checks as a judge: an alert is a warning whose score is ±(2 × sensitivity) past the limit. */
export function staticJudge(limits: StaticLimits = STATIC_LIMITS): Judge {
  return (view, metric, hour, options) => {
    const head = { source: view.source, metric, hour_start: isoHour(hour) };
    const s = view.get(hour);
    let observed: number | undefined;
    let limit = 0;
    let breach = false;
    if (metric === 'volume') {
      const every = limits.expectedEveryHours[view.source];
      if (every === undefined) return { judged: false, ...head, reason: 'no expected_every' };
      let silent = 0;
      for (let t = hour; silent < every && view.covered(t) && (view.get(t)?.batches ?? 0) === 0; t -= 3_600_000) {
        silent++;
      }
      observed = s?.batches ?? 0;
      limit = every;
      breach = silent >= every;
    } else if (metric === 'processing_time') {
      if (!s || s.completed <= 0 || s.p95_minutes === null) return { judged: false, ...head, reason: 'none completed' };
      observed = s.p95_minutes;
      limit = limits.p95Minutes;
      breach = observed > limit;
    } else {
      if (!s || s.total_rows <= 0) return { judged: false, ...head, reason: 'no rows' };
      const y = metric === 'error_rate' ? s.error_rows : s.skipped_rows;
      observed = (100 * y) / s.total_rows;
      limit = metric === 'error_rate' ? limits.errorRatePercent : limits.dedupePercent;
      breach = observed > limit && (metric !== 'error_rate' || s.total_rows >= limits.errorMinRows);
    }
    const score = breach ? options.sensitivity : 0;
    return {
      judged: true,
      ...head,
      observed,
      expected: limit,
      lower: 0,
      upper: limit,
      score,
      level: breach ? 'warning' : 'ok',
      evidence: 0,
    };
  };
}
