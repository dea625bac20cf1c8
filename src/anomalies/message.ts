/** The live check's wording for an anomaly (issue 15's style). */
import { oneLine } from '../util/text.js';
import { DAY_NAMES, hourOfWeek } from './time.js';
import type { Judgement } from './types.js';

const LABEL = {
  volume: 'Volume',
  error_rate: 'Error rate',
  dedupe_rate: 'Dedupe rate',
  processing_time: 'Processing time',
} as const;

/** Counts as integers, other figures with up to one decimal (two under 1): `0.42`, `7.5`, `120`. */
function num(n: number): string {
  const a = Math.abs(n);
  const digits = a >= 100 || Number.isInteger(n) ? 0 : a >= 1 ? 1 : 2;
  return (Math.round(n * 10 ** digits) / 10 ** digits).toLocaleString('en-US', { maximumFractionDigits: digits });
}

const pad = (n: number): string => String(n).padStart(2, '0');

/**
 * `Volume for vendor_a 13:00–14:00 UTC: 12 batches, usually 80–120 on Tuesdays at this hour`.
 * Rates add the rows behind them, processing time the batches: `Error rate for vendor_a
 * 13:00–14:00 UTC: 8 % of 5,400 rows, usually 0.6–1.5 % on Tuesdays at this hour`.
 */
export function anomalyMessage(j: Judgement): string {
  const start = Date.parse(j.hour_start);
  const h = new Date(start).getUTCHours();
  const when = `${pad(h)}:00–${pad((h + 1) % 24)}:00 UTC`;
  const day = DAY_NAMES[Math.floor(hourOfWeek(start) / 24)]!;
  const head = `${LABEL[j.metric]} for ${oneLine(j.source, 80)} ${when}`;
  const usual = `on ${day} at this hour`;
  switch (j.metric) {
    case 'volume': {
      const lo = Math.round(j.lower);
      const hi = Math.round(j.upper);
      const range = lo === hi ? `${num(lo)}` : `${num(lo)}–${num(hi)}`;
      return `${head}: ${num(j.observed)} ${j.observed === 1 ? 'batch' : 'batches'}, usually ${range} ${usual}`;
    }
    case 'error_rate':
    case 'dedupe_rate':
      return (
        `${head}: ${num(j.observed)} % of ${num(j.evidence)} ${j.evidence === 1 ? 'row' : 'rows'}, ` +
        `usually ${num(j.lower)}–${num(j.upper)} % ${usual}`
      );
    case 'processing_time':
      return (
        `${head}: p95 ${num(j.observed)} min over ${num(j.evidence)} ${j.evidence === 1 ? 'batch' : 'batches'}, ` +
        `usually ${num(j.lower)}–${num(j.upper)} min ${usual}`
      );
  }
}
