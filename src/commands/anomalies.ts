import {
  type AnomalyDetails,
  anomalyDetails,
  type BaselineRow,
  backtest,
  baselineTable,
  HOUR_MS,
  METRICS,
  type Metric,
  type SourceSeries,
  type Verdict,
} from '../anomalies/index.js';
import { DAY_NAMES } from '../anomalies/time.js';
import { anomalySettingsFor, longestTrainingWeeks } from '../checks/anomalies.js';
import type { ConfigFlags } from '../config/load.js';
import type { SentinelConfig } from '../config/schema.js';
import { loadSeries, trainingStart } from '../db/anomaly-series.js';
import { describeError, SQLSTATE } from '../db/errors.js';
import { createPool, endPool, type Queryable } from '../db/pool.js';
import type { LogLevel } from '../log.js';
import { createRuntime } from '../runtime.js';
import { oneLine } from '../util/text.js';

/** The longest backtest: a year of hours (8,784 a source and metric). */
export const MAX_BACKTEST_MS = 366 * 24 * HOUR_MS;
/** A backtest reads months of hourly figures: more time than a check's query gets. */
const MIN_STATEMENT_TIMEOUT_MS = 60_000;

/** A user's mistake in `sentinel anomalies`: one line, exit 3, no stack. */
export class AnomalyUsageError extends Error {}

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * `2026-11-02`, `2026-11-02T13:00Z`, `2026-11-02T13:00:00+01:00`: an ISO 8601 date or date-time, in
 * UTC unless it names an offset. Anything else (`yesterday`, `11/02/2026`, `2026-02-30`) is refused.
 */
export function parseIsoInstant(value: string, flag: string): number {
  const m = ISO_8601.exec(value.trim());
  const fail = (): never => {
    throw new AnomalyUsageError(
      `${flag}: expected an ISO 8601 date or date-time such as 2026-11-02 or 2026-11-02T13:00Z, ` +
        `got "${oneLine(value, 60)}"`,
    );
  };
  if (!m) return fail();
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac.slice(0, 4)}${offset}`);
  // Date.parse rolls 2026-02-30 over to March: the calendar fields must survive the round trip.
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (
    Number.isNaN(ms) ||
    check.getUTCFullYear() !== Number(y) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    check.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  )
    return fail();
  return ms;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');

interface Flags extends ConfigFlags {
  logLevel?: LogLevel;
  json?: boolean;
}

export interface BacktestFlags extends Flags {
  from: string;
  to: string;
  source?: string[];
  metric?: Metric[];
}

export interface BaselineFlags extends Flags {
  source: string;
  metric: Metric;
  /** ISO 8601; default the database's now. */
  at?: string;
}

/** One anomaly of a backtest, as `--json` prints it (docs/contract.md §10): an alert's details and its level. */
export type BacktestAnomaly = AnomalyDetails & { level: 'warning' | 'critical' };

export interface BacktestReport {
  from: string;
  to: string;
  hours_evaluated: number;
  anomalies: BacktestAnomaly[];
}

/** Per source: what the human form's summary counts. */
interface SourceSummary {
  source: string;
  judged: number;
  notJudged: number;
  warnings: number;
  criticals: number;
  firstReason?: string;
}

async function withDatabase<T>(config: SentinelConfig, work: (db: Queryable) => Promise<T>): Promise<T> {
  const pool = createPool(config.env.databaseUrl, {
    max: 1,
    statementTimeoutMs: Math.max(config.statement_timeout_ms, MIN_STATEMENT_TIMEOUT_MS),
    connectTimeoutMs: config.connect_timeout_seconds * 1000,
  });
  try {
    return await work(pool);
  } catch (err) {
    if (err instanceof AnomalyUsageError) throw err;
    const missing = (err as { code?: string }).code === SQLSTATE.undefinedTable ? ' (run `sentinel migrate`)' : '';
    throw new Error(`cannot read the hourly figures: ${describeError(err)}${missing}`, { cause: err });
  } finally {
    await endPool(pool);
  }
}

/** The database's clock, so that "the last complete hour" is the one the live check judges. */
async function databaseNow(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ now: Date }>('select now() as now');
  return rows[0]!.now.getTime();
}

/** The series of the named sources, or every source; an unknown name is the user's mistake. */
function pickSeries(all: SourceSeries[], wanted: readonly string[] | undefined, window: string): SourceSeries[] {
  if (!wanted || wanted.length === 0) return all;
  const byName = new Map(all.map((s) => [s.source, s]));
  const unknown = wanted.filter((name) => !byName.has(name));
  if (unknown.length > 0)
    throw new AnomalyUsageError(
      `unknown source ${unknown.map((u) => `"${oneLine(u, 80)}"`).join(', ')}: no batch from it ${window}`,
    );
  return [...new Set(wanted)].map((name) => byName.get(name)!);
}

/**
 * `sentinel anomalies backtest`: every complete UTC hour in [from, to) judged as the live check
 * would have judged it then, from data created before that hour's end only. Exit 0 when it ran,
 * 3 on bad input.
 */
export async function backtestCommand(flags: BacktestFlags): Promise<number> {
  const from = parseIsoInstant(flags.from, '--from');
  const to = parseIsoInstant(flags.to, '--to');
  if (from >= to) throw new AnomalyUsageError(`--from (${iso(from)}) must be before --to (${iso(to)})`);
  if (to - from > MAX_BACKTEST_MS)
    throw new AnomalyUsageError(`--from to --to spans more than a year (${iso(from)} to ${iso(to)}): at most 366 days`);
  const { config, redactor } = await createRuntime(flags);
  const report = await withDatabase(config, async (db) => {
    // Only complete hours: none after the database's last complete hour.
    const end = Math.min(to, Math.floor((await databaseNow(db)) / HOUR_MS) * HOUR_MS);
    const firstHour = Math.ceil(from / HOUR_MS) * HOUR_MS;
    const wanted = new Set<Metric>(flags.metric?.length ? flags.metric : METRICS);
    const readFrom = trainingStart(firstHour, { training_weeks: longestTrainingWeeks(config) });
    const { series } = await loadSeries(db, {
      from: readFrom,
      to: Math.max(end, readFrom),
      ...(flags.source?.length ? { sources: flags.source } : {}),
      metrics: [...wanted],
    });
    const picked = pickSeries(series, flags.source, `between ${iso(readFrom)} and ${iso(Math.max(end, readFrom))}`);
    const verdicts: Verdict[] = [];
    for (const s of picked) {
      const own = anomalySettingsFor(config, s.source);
      // A source left out in sentinel.yml is left out here too, unless named.
      if (!own.enabled && !flags.source?.includes(s.source)) continue;
      const metrics = flags.metric?.length ? flags.metric : own.metrics;
      verdicts.push(...backtest({ series: [s], metrics, from, to: end, options: own.options }).verdicts);
    }
    return { verdicts, hours: end > firstHour ? (end - firstHour) / HOUR_MS : 0, end };
  });
  const out: BacktestReport = {
    from: iso(from),
    to: iso(to),
    hours_evaluated: report.hours,
    anomalies: report.verdicts.flatMap((v): BacktestAnomaly[] =>
      v.judged && v.level !== 'ok' ? [{ ...anomalyDetails(v), level: v.level }] : [],
    ),
  };
  const text = flags.json
    ? JSON.stringify(out)
    : renderBacktest(out, report.verdicts, to > report.end ? report.end : undefined);
  process.stdout.write(`${redactor.redact(text)}\n`);
  return 0;
}

const num = (n: number): string =>
  Number.isInteger(n) ? String(n) : Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(1) : n.toFixed(2);
const UNIT: Record<Metric, string> = { volume: '', error_rate: ' %', dedupe_rate: ' %', processing_time: ' min' };
const name = (s: string): string => oneLine(s, 40);

function table(header: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The human form: the anomalies as a table, then a summary per source. */
export function renderBacktest(report: BacktestReport, verdicts: readonly Verdict[], cutAt?: number): string {
  const lines: string[] = [
    `Backtest ${report.from} to ${report.to}: ${report.hours_evaluated} complete hours evaluated` +
      (cutAt !== undefined ? ` (up to ${iso(cutAt)}, the last complete hour)` : ''),
    '',
  ];
  if (report.anomalies.length === 0) lines.push('No anomalies.');
  else
    lines.push(
      table(
        ['hour (UTC)', 'source', 'metric', 'observed', 'usual', 'score', 'level'],
        report.anomalies.map((a) => [
          a.hour_start.replace('T', ' ').replace(/:00Z$/, ''),
          name(a.source),
          a.metric,
          `${num(a.observed)}${UNIT[a.metric]}`,
          `${num(a.lower)}–${num(a.upper)}${UNIT[a.metric]}`,
          a.score.toFixed(1),
          a.level,
        ]),
        new Set([3, 4, 5]),
      ),
    );
  const bySource = new Map<string, SourceSummary>();
  for (const v of verdicts) {
    const s = bySource.get(v.source) ?? { source: v.source, judged: 0, notJudged: 0, warnings: 0, criticals: 0 };
    if (v.judged) {
      s.judged++;
      if (v.level === 'warning') s.warnings++;
      if (v.level === 'critical') s.criticals++;
    } else {
      s.notJudged++;
      s.firstReason ??= v.reason;
    }
    bySource.set(v.source, s);
  }
  lines.push('', 'Per source:');
  if (bySource.size === 0) lines.push('  no source with batches in the range and its training weeks');
  else
    lines.push(
      table(
        ['source', 'judged', 'warning', 'critical', 'not judged'],
        [...bySource.values()].map((s) => [
          name(s.source),
          String(s.judged),
          String(s.warnings),
          String(s.criticals),
          s.notJudged === 0 ? '0' : `${s.notJudged} (${s.firstReason ?? ''})`,
        ]),
        new Set([1, 2, 3]),
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  lines.push(
    '',
    '(judged: source-hour-metrics with enough history; a warning is |score| ≥ sensitivity, critical ≥ twice it)',
  );
  return lines.join('\n');
}

export interface BaselineReport {
  source: string;
  metric: Metric;
  /** The hour the table was computed at: each row is its slot's next occurrence from there. */
  at: string;
  training_weeks: number;
  sensitivity: number;
  rows: Array<BaselineRow & { day: string; hour: number }>;
}

/** `sentinel anomalies baseline`: the 168 hour-of-week rows of one source and metric. */
export async function baselineCommand(flags: BaselineFlags): Promise<number> {
  const asked = flags.at === undefined ? undefined : parseIsoInstant(flags.at, '--at');
  const { config, redactor } = await createRuntime(flags);
  const own = anomalySettingsFor(config, flags.source);
  const report = await withDatabase(config, async (db): Promise<BaselineReport> => {
    const at = Math.floor((asked ?? (await databaseNow(db))) / HOUR_MS) * HOUR_MS;
    const readFrom = trainingStart(at, own.options);
    const { series } = await loadSeries(db, {
      from: readFrom,
      to: at,
      sources: [flags.source],
      metrics: [flags.metric],
    });
    const [s] = pickSeries(
      series,
      [flags.source],
      `in the ${own.options.training_weeks} training weeks before ${iso(at)}`,
    );
    return {
      source: flags.source,
      metric: flags.metric,
      at: iso(at),
      training_weeks: own.options.training_weeks,
      sensitivity: own.options.sensitivity,
      rows: baselineTable(s!, flags.metric, at, own.options).map((r) => ({
        ...r,
        day: DAY_NAMES[Math.floor(r.hour_of_week / 24)]!.replace(/s$/, ''),
        hour: r.hour_of_week % 24,
      })),
    };
  });
  const text = flags.json ? JSON.stringify(report) : renderBaseline(report);
  process.stdout.write(`${redactor.redact(text)}\n`);
  return 0;
}

export function renderBaseline(r: BaselineReport): string {
  const unit = UNIT[r.metric].trim();
  const head =
    `Baseline of ${r.metric} for ${name(r.source)} at ${r.at}: training_weeks ${r.training_weeks}, ` +
    `sensitivity ${r.sensitivity}${unit ? ` (figures in ${unit})` : ' (batches an hour)'}`;
  const body = table(
    ['day', 'hour (UTC)', 'expected', 'lower', 'upper', 'weeks'],
    r.rows.map((row) => [
      row.day,
      `${String(row.hour).padStart(2, '0')}:00`,
      row.expected === null ? '—' : num(row.expected),
      row.lower === null ? '—' : num(row.lower),
      row.upper === null ? '—' : num(row.upper),
      String(row.weeks),
    ]),
    new Set([2, 3, 4, 5]),
  );
  const short = r.rows.filter((row) => row.expected === null).length;
  return `${head}\n\n${body}${short > 0 ? `\n\n${short} of 168 hours have too little history to be judged (—).` : ''}`;
}
