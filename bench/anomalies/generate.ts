/**
 * A deterministic, seeded generator of hourly per-source figures with labelled incidents and
 * normal decoys, for evaluating anomaly detectors (issue 15). Pure: same seed, same data.
 */
import { HOUR_MS, type HourlyStats, type Metric, type SourceSeries, WEEK_MS } from '../../src/anomalies/index.js';
import { mulberry32 } from '../../src/util/random.js';

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function poisson(r: () => number, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 50) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal(r)));
  const l = Math.exp(-mean);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= r();
  } while (p > l);
  return k - 1;
}

function binomial(r: () => number, n: number, p: number): number {
  if (n <= 0 || p <= 0) return 0;
  if (n * p > 30 && n * (1 - p) > 30) {
    return Math.min(n, Math.max(0, Math.round(n * p + Math.sqrt(n * p * (1 - p)) * normal(r))));
  }
  if (n <= 200) {
    let k = 0;
    for (let i = 0; i < n; i++) if (r() < p) k++;
    return k;
  }
  return Math.min(n, poisson(r, n * p));
}

export interface SourceProfile {
  name: string;
  /** Batches per hour at the daily peak on a weekday. */
  peak: number;
  rowsPerBatch: number;
  errorRate: number;
  dedupeRate: number;
  /** Median processing minutes of one batch. */
  minutes: number;
  /** Weekend level relative to weekdays. */
  weekend: number;
  /** Night level relative to the peak (0 = silent at night). */
  night: number;
  /** Only Mon–Fri 08:00–18:00 UTC. */
  businessHours?: boolean;
  /** Growth per week (0.02 = 2 %). */
  growth?: number;
  /** Monday 08:00–11:00 surge factor (a normal weekly pattern, a decoy). */
  mondaySurge?: number;
}

export const SOURCES: SourceProfile[] = [
  {
    name: 'vendor_a',
    peak: 100,
    rowsPerBatch: 150,
    errorRate: 0.01,
    dedupeRate: 0.2,
    minutes: 1.5,
    weekend: 0.4,
    night: 0.2,
    mondaySurge: 1.8,
  },
  {
    name: 'vendor_b',
    peak: 40,
    rowsPerBatch: 400,
    errorRate: 0.02,
    dedupeRate: 0.1,
    minutes: 2.5,
    weekend: 0.6,
    night: 0.3,
  },
  {
    name: 'vendor_c',
    peak: 12,
    rowsPerBatch: 60,
    errorRate: 0.015,
    dedupeRate: 0.3,
    minutes: 0.8,
    weekend: 0.5,
    night: 0.25,
  },
  {
    name: 'payroll',
    peak: 30,
    rowsPerBatch: 300,
    errorRate: 0.005,
    dedupeRate: 0.05,
    minutes: 2,
    weekend: 0,
    night: 0,
    businessHours: true,
  },
  {
    name: 'metrics_feed',
    peak: 300,
    rowsPerBatch: 40,
    errorRate: 0.002,
    dedupeRate: 0.4,
    minutes: 0.3,
    weekend: 0.9,
    night: 0.6,
  },
  {
    name: 'crm',
    peak: 25,
    rowsPerBatch: 200,
    errorRate: 0.03,
    dedupeRate: 0.15,
    minutes: 3,
    weekend: 0.3,
    night: 0,
    growth: 0.03,
  },
  {
    name: 'ledger',
    peak: 60,
    rowsPerBatch: 100,
    errorRate: 0.01,
    dedupeRate: 0.2,
    minutes: 1.2,
    weekend: 0.5,
    night: 0.15,
    growth: 0.02,
    mondaySurge: 1.5,
  },
  { name: 'geo', peak: 20, rowsPerBatch: 800, errorRate: 0.04, dedupeRate: 0.25, minutes: 4, weekend: 0.7, night: 0.4 },
];

export type IncidentKind = 'volume_drop' | 'silence' | 'surge' | 'error_up' | 'slow' | 'dedupe_collapse';

export const KIND_METRIC: Record<IncidentKind, Metric> = {
  volume_drop: 'volume',
  silence: 'volume',
  surge: 'volume',
  error_up: 'error_rate',
  slow: 'processing_time',
  dedupe_collapse: 'dedupe_rate',
};

export interface Incident {
  source: string;
  kind: IncidentKind;
  metric: Metric;
  /** Epoch ms, hour start. */
  start: number;
  /** Epoch ms, exclusive. */
  end: number;
}

export interface Dataset {
  start: number;
  weeks: number;
  /** First evaluated hour (after the training weeks). */
  evalStart: number;
  series: SourceSeries[];
  /** Labelled incidents inside the evaluated weeks. */
  incidents: Incident[];
  /** Incidents placed inside the training weeks (the baseline must resist them); not scored. */
  historyIncidents: Incident[];
  sources: SourceProfile[];
}

/** Monday 2026-10-05 00:00 UTC. */
export const DEFAULT_START = Date.UTC(2026, 9, 5);

function level(p: SourceProfile, hour: number, weekIndex: number): number {
  const d = new Date(hour);
  const dow = (d.getUTCDay() + 6) % 7;
  const h = d.getUTCHours();
  const weekday = dow < 5;
  if (p.businessHours)
    return weekday && h >= 8 && h < 18 ? p.peak * (0.7 + 0.3 * Math.sin(((h - 8) / 10) * Math.PI)) : 0;
  // Daytime bump peaking at 14:00 UTC over a night floor.
  const day = Math.max(0, Math.cos(((h - 14) / 24) * 2 * Math.PI));
  const nightFloor = p.night === 0 && (h < 6 || h >= 22) ? 0 : p.night;
  let v = p.peak * (nightFloor + (1 - nightFloor) * day ** 1.5);
  if (p.night === 0 && (h < 6 || h >= 22)) v = 0;
  if (!weekday) v *= p.weekend;
  if (p.mondaySurge && dow === 0 && h >= 8 && h < 11) v *= p.mondaySurge;
  return v * (1 + (p.growth ?? 0)) ** weekIndex;
}

/** The incident plan for one evaluated or training week: every kind, on sources big enough to show it. */
function planIncidents(r: () => number, sources: SourceProfile[], weekStart: number, count: number): Incident[] {
  const kinds: IncidentKind[] = ['volume_drop', 'silence', 'surge', 'error_up', 'slow', 'dedupe_collapse'];
  const out: Incident[] = [];
  const used = new Set<string>();
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length]!;
    // Placed where the incident is detectable in principle: a weekday, 09:00–15:00 UTC; volume
    // incidents where the source expects ≥ 30 batches that hour (1 batch instead of 4 is no
    // evidence for anyone); error_up on sources whose usual error rate is ≤ 2 % (the issue's
    // "usual 1 % to 8 %").
    let p: SourceProfile;
    let start: number;
    let tries = 0;
    do {
      p = sources[Math.floor(r() * sources.length)]!;
      const day = Math.floor(r() * 5);
      const hour = 9 + Math.floor(r() * 6);
      start = weekStart + (day * 24 + hour) * HOUR_MS;
      tries++;
    } while (
      tries < 1000 &&
      (used.has(`${p.name}/${kind}`) ||
        ((kind === 'volume_drop' || kind === 'silence') && level(p, start, 0) < 30) ||
        (kind === 'error_up' && p.errorRate > 0.02))
    );
    used.add(`${p.name}/${kind}`);
    const length = 2 + Math.floor(r() * 3);
    out.push({ source: p.name, kind, metric: KIND_METRIC[kind], start, end: start + length * HOUR_MS });
  }
  return out;
}

export interface GenerateOptions {
  seed?: number;
  weeks?: number;
  trainingWeeks?: number;
  sources?: SourceProfile[];
  /** Incidents per evaluated week (default 9) and per training week (default 3). */
  incidentsPerWeek?: number;
  historyIncidentsPerWeek?: number;
  start?: number;
}

export function generate(opts: GenerateOptions = {}): Dataset {
  const seed = opts.seed ?? 15;
  const weeks = opts.weeks ?? 6;
  const trainingWeeks = opts.trainingWeeks ?? 4;
  const sources = opts.sources ?? SOURCES;
  const start = opts.start ?? DEFAULT_START;
  const r = mulberry32(seed);
  const incidents: Incident[] = [];
  const historyIncidents: Incident[] = [];
  for (let w = 0; w < weeks; w++) {
    const evaluated = w >= trainingWeeks;
    const plan = planIncidents(
      r,
      sources,
      start + w * WEEK_MS,
      evaluated ? (opts.incidentsPerWeek ?? 9) : (opts.historyIncidentsPerWeek ?? 3),
    );
    (evaluated ? incidents : historyIncidents).push(...plan);
  }
  const all = [...incidents, ...historyIncidents];
  const series = sources.map((p) => {
    const hours = new Map<number, HourlyStats>();
    let dayNoise = 1;
    let errNoise = 1;
    for (let t = start; t < start + weeks * WEEK_MS; t += HOUR_MS) {
      if ((t - start) % (24 * HOUR_MS) === 0) {
        dayNoise = Math.exp(0.07 * normal(r));
        errNoise = Math.exp(0.25 * normal(r));
      }
      const active = all.filter((i) => i.source === p.name && t >= i.start && t < i.end);
      const kind = (k: IncidentKind) => active.some((i) => i.kind === k);
      let mean = level(p, t, Math.floor((t - start) / WEEK_MS)) * dayNoise * Math.exp(0.05 * normal(r));
      if (kind('volume_drop')) mean *= 0.3;
      if (kind('surge')) mean *= 3;
      if (kind('silence')) mean = 0;
      const batches = poisson(r, mean);
      if (batches === 0) continue;
      const totalRows = poisson(r, batches * p.rowsPerBatch);
      const errP = kind('error_up')
        ? Math.min(0.12, Math.max(0.08, p.errorRate * 4))
        : p.errorRate * errNoise * Math.exp(0.2 * normal(r));
      const dedP = kind('dedupe_collapse') ? 0.01 : Math.min(0.95, p.dedupeRate * Math.exp(0.08 * normal(r)));
      const slow = kind('slow') ? 2.5 : 1;
      const durations: number[] = [];
      const base = p.minutes * Math.exp(0.06 * normal(r)) * slow;
      for (let i = 0; i < batches; i++) durations.push(base * Math.exp(0.35 * normal(r)));
      durations.sort((a, b) => a - b);
      const p95 = durations[Math.min(durations.length - 1, Math.ceil(0.95 * durations.length) - 1)]!;
      hours.set(t, {
        hour: t,
        batches,
        total_rows: totalRows,
        error_rows: binomial(r, totalRows, Math.min(0.9, errP)),
        skipped_rows: binomial(r, totalRows, dedP),
        completed: batches,
        p95_minutes: Math.round(p95 * 100) / 100,
      });
    }
    return { source: p.name, dataStart: start, hours } satisfies SourceSeries;
  });
  return { start, weeks, evalStart: start + trainingWeeks * WEEK_MS, series, incidents, historyIncidents, sources };
}
