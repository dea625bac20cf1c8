/**
 * The "Unusual hours" card's figures: pure functions of an `/api/anomalies` answer, the zone and
 * the clock, table-tested in test/web/anomalies.test.ts.
 */

import type { AnomaliesResponse, AnomalyHour, AnomalyJudgedHour, AnomalyMetric } from '../../src/server/api-types.js';
import { count, formatHour, pct, type Zone } from './format.js';

export const METRIC_NAMES: Record<AnomalyMetric, string> = {
  volume: 'Volume (batches)',
  error_rate: 'Error rate',
  dedupe_rate: 'Dedupe rate',
  processing_time: 'Processing time (p95)',
};

/** The metrics in the order the API lists them (before the first answer). */
export const METRICS: AnomalyMetric[] = ['volume', 'error_rate', 'dedupe_rate', 'processing_time'];

/** A figure of `metric` as the page writes it: `42 batches`, `8.6 %`, `3.2 min`, `–`. */
export function metricValue(metric: AnomalyMetric, n: number | null): string {
  if (n == null || !Number.isFinite(n)) return '–';
  if (metric === 'volume') return `${count(n)} batch${Math.round(n) === 1 ? '' : 'es'}`;
  if (metric === 'processing_time') return `${n < 10 ? n.toFixed(1) : count(n)} min`;
  return pct(n);
}

/** A range of `metric` with its unit once: `20–65 batches`, `0.5–3.1 %`, `1.8–2.4 min`. */
export function metricRange(metric: AnomalyMetric, lower: number, upper: number): string {
  const hi = metricValue(metric, upper);
  const lo = metricValue(metric, lower).replace(/ (batch(es)?|%|min)$/, '');
  return `${lo}–${hi}`;
}

/** The unit after the axis' top value. */
export function axisUnit(metric: AnomalyMetric): string {
  return metric === 'volume' ? '' : metric === 'processing_time' ? ' min' : ' %';
}

export const judged = (h: AnomalyHour): h is AnomalyJudgedHour => 'level' in h;

/** Above or below the band (the mark's symbol), undefined inside it or not judged. */
export function direction(h: AnomalyHour): 'high' | 'low' | undefined {
  if (!judged(h) || h.level === 'ok') return undefined;
  return h.score >= 0 ? 'high' : 'low';
}

export interface BandPoint {
  hourMs: number;
  label: string;
  observed: number | null;
  /** The usual range; absent where the hour was not judged (drawn as a gap). */
  lower?: number;
  upper?: number;
  /** Outside the band: above or below it. */
  mark?: 'high' | 'low';
  /** The mark in words (its tooltip; the card lists the same words). */
  markName?: string;
}

/** One line about an unusual hour: `18 Nov 15:00: 2 batches, below the usual 30–52 batches (critical, score -9.1)`. */
export function unusualLine(metric: AnomalyMetric, h: AnomalyJudgedHour, zone: Zone): string {
  const where = h.score >= 0 ? 'above' : 'below';
  return (
    `${formatHour(Date.parse(h.hour_start), zone, true)}: ${metricValue(metric, h.observed)}, ${where} the usual ` +
    `${metricRange(metric, h.lower, h.upper)} (${h.level}, score ${h.score})`
  );
}

/** The chart's points, oldest hour first, labelled in `zone`. */
export function bandPoints(answer: AnomaliesResponse, zone: Zone): BandPoint[] {
  return answer.hours.map((h) => {
    const hourMs = Date.parse(h.hour_start);
    const p: BandPoint = { hourMs, label: formatHour(hourMs, zone, true), observed: h.observed };
    if (judged(h)) {
      p.lower = h.lower;
      p.upper = h.upper;
      const mark = direction(h);
      if (mark) {
        p.mark = mark;
        p.markName = `Unusual: ${unusualLine(answer.metric, h, zone)}`;
      }
    }
    return p;
  });
}

export interface Span {
  from: number;
  /** Start of the last hour of the span. */
  to: number;
  hours: number;
  reason: string;
}

/** Runs of consecutive hours not judged for the same reason, oldest first. */
export function notJudgedSpans(answer: AnomaliesResponse): Span[] {
  const spans: Span[] = [];
  for (const h of answer.hours) {
    if (judged(h)) continue;
    const t = Date.parse(h.hour_start);
    const last = spans[spans.length - 1];
    if (last && last.reason === h.reason && t - last.to === 3_600_000) {
      last.to = t;
      last.hours++;
    } else spans.push({ from: t, to: t, hours: 1, reason: h.reason });
  }
  return spans;
}

/** `4 Dec 13:00–5 Dec 02:00 (14 h)`, or one hour: `4 Dec 13:00 (1 h)`. */
export function spanText(span: Span, zone: Zone): string {
  const from = formatHour(span.from, zone, true);
  return span.hours === 1
    ? `${from} (1 h)`
    : `${from}–${formatHour(span.to + 3_600_000, zone, true)} (${span.hours} h)`;
}
