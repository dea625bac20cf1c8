/**
 * Scores detectors on a generated dataset: recall, precision, false alarms per source-week and
 * detection delay. An incident is detected when any alert on its source and metric falls inside its
 * window; a false alarm is an alert outside every incident window of its source and metric.
 */
import {
  backtest,
  DEFAULT_OPTIONS,
  type DetectorOptions,
  HOUR_MS,
  type Judge,
  judgeHour,
  METRICS,
  plainJudge,
  staticJudge,
  WEEK_MS,
} from '../../src/anomalies/index.js';
import type { Dataset } from './generate.js';

export interface Score {
  name: string;
  incidents: number;
  detected: number;
  alerts: number;
  trueAlerts: number;
  falseAlarms: number;
  recall: number;
  precision: number;
  falseAlarmsPerSourceWeek: number;
  medianDelayHours: number | null;
  maxDelayHours: number | null;
  /**
   * By episode: consecutive alerted hours of one source × metric are one alert (what a user is woken
   * by when the lifecycle keeps one alert open while it fires); true when it overlaps an incident
   * window of its source and metric.
   */
  episodes: number;
  trueEpisodes: number;
  episodePrecision: number;
  falseEpisodesPerSourceWeek: number;
  /** Incidents missed, or found later than 2 hours, for reading. */
  misses: string[];
}

/** Groups alerted hours into episodes: runs of consecutive hours of one source × metric. */
export function episodesOf(alerts: { source: string; metric: string; hour: number }[]): {
  source: string;
  metric: string;
  start: number;
  end: number;
}[] {
  const bySeries = new Map<string, number[]>();
  for (const a of alerts) {
    const key = `${a.source}\u0000${a.metric}`;
    const hours = bySeries.get(key);
    if (hours) hours.push(a.hour);
    else bySeries.set(key, [a.hour]);
  }
  const out: { source: string; metric: string; start: number; end: number }[] = [];
  for (const [key, hours] of bySeries) {
    const [source, metric] = key.split('\u0000') as [string, string];
    hours.sort((a, b) => a - b);
    let start = hours[0]!;
    let last = start;
    for (const h of hours.slice(1)) {
      if (h === last + HOUR_MS) last = h;
      else {
        out.push({ source, metric, start, end: last + HOUR_MS });
        start = last = h;
      }
    }
    out.push({ source, metric, start, end: last + HOUR_MS });
  }
  return out;
}

export function evaluate(name: string, data: Dataset, judge: Judge, options: DetectorOptions = DEFAULT_OPTIONS): Score {
  const to = data.start + data.weeks * WEEK_MS;
  const { verdicts } = backtest({ series: data.series, metrics: METRICS, from: data.evalStart, to, options, judge });
  const alerts = verdicts.filter((v) => v.judged && v.level !== 'ok');
  const hourOf = (iso: string) => Date.parse(iso);
  let trueAlerts = 0;
  for (const a of alerts) {
    const t = hourOf(a.hour_start);
    if (data.incidents.some((i) => i.source === a.source && i.metric === a.metric && t >= i.start && t < i.end)) {
      trueAlerts++;
    }
  }
  const delays: number[] = [];
  const misses: string[] = [];
  for (const i of data.incidents) {
    const hits = alerts
      .filter((a) => a.source === i.source && a.metric === i.metric)
      .map((a) => hourOf(a.hour_start))
      .filter((t) => t >= i.start && t < i.end);
    const when = new Date(i.start).toISOString().slice(0, 13);
    const label = `${i.kind} ${i.source} ${when}h +${(i.end - i.start) / HOUR_MS}h`;
    if (hits.length === 0) misses.push(`missed ${label}`);
    else {
      const d = (Math.min(...hits) - i.start) / HOUR_MS;
      delays.push(d);
      if (d > 2) misses.push(`late ${d} h: ${label}`);
    }
  }
  delays.sort((a, b) => a - b);
  const sourceWeeks = data.series.length * ((to - data.evalStart) / WEEK_MS);
  const falseAlarms = alerts.length - trueAlerts;
  const episodes = episodesOf(alerts.map((a) => ({ source: a.source, metric: a.metric, hour: hourOf(a.hour_start) })));
  const trueEpisodes = episodes.filter((e) =>
    data.incidents.some((i) => i.source === e.source && i.metric === e.metric && e.start < i.end && e.end > i.start),
  ).length;
  return {
    name,
    incidents: data.incidents.length,
    detected: delays.length,
    alerts: alerts.length,
    trueAlerts,
    falseAlarms,
    recall: data.incidents.length ? delays.length / data.incidents.length : 1,
    precision: alerts.length ? trueAlerts / alerts.length : 1,
    falseAlarmsPerSourceWeek: falseAlarms / sourceWeeks,
    medianDelayHours: delays.length ? delays[Math.floor((delays.length - 1) / 2)]! : null,
    maxDelayHours: delays.length ? delays[delays.length - 1]! : null,
    episodes: episodes.length,
    trueEpisodes,
    episodePrecision: episodes.length ? trueEpisodes / episodes.length : 1,
    falseEpisodesPerSourceWeek: (episodes.length - trueEpisodes) / sourceWeeks,
    misses,
  };
}

/** The three judges of the comparison, on one dataset. */
export function compareAll(data: Dataset, options: DetectorOptions = DEFAULT_OPTIONS): Score[] {
  // Today's source_freshness as configured for feeds that never pause: silent for 2 hours.
  const expectedEveryHours = Object.fromEntries(
    data.sources.filter((s) => s.night > 0 && !s.businessHours && s.weekend > 0).map((s) => [s.name, 2]),
  );
  return [
    evaluate('sentinel', data, judgeHour, options),
    evaluate('plain median/MAD', data, plainJudge, options),
    evaluate('static checks', data, staticJudge({ ...staticJudgeDefaults, expectedEveryHours }), options),
  ];
}

const staticJudgeDefaults = { errorRatePercent: 15, errorMinRows: 100, dedupePercent: 50, p95Minutes: 5 };

const fmt = (n: number | null, digits = 2) => (n === null ? '–' : n.toFixed(digits));

export function table(scores: Score[]): string {
  const head = [
    'detector',
    'recall',
    'precision',
    'false alarms / source-week',
    'median delay h',
    'max delay h',
    'alerts',
    'detected',
  ];
  const rows = scores.map((s) => [
    s.name,
    fmt(s.recall),
    fmt(s.precision),
    fmt(s.falseAlarmsPerSourceWeek),
    fmt(s.medianDelayHours, 0),
    fmt(s.maxDelayHours, 0),
    String(s.alerts),
    `${s.detected}/${s.incidents}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The same detectors scored by episode (see Score.episodes). */
export function episodeTable(scores: Score[]): string {
  const head = ['detector', 'episodes', 'true episodes', 'precision by episode', 'false episodes / source-week'];
  const rows = scores.map((s) => [
    s.name,
    String(s.episodes),
    String(s.trueEpisodes),
    fmt(s.episodePrecision),
    fmt(s.falseEpisodesPerSourceWeek),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
