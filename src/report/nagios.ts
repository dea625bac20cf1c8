import { ownDedupeThresholds } from '../checks/dedupe_rate.js';
import { ownErrorThresholds } from '../checks/error_spike.js';
import { findCheck } from '../checks/index.js';
import type { SentinelConfig } from '../config/schema.js';
import type { Alert, OverallStatus, RunResult } from '../types.js';
import { plural, round } from '../util/format.js';
import { MAX_CHARS, oneLine as safeLine } from '../util/text.js';

/**
 * `--format nagios`: one line in the Nagios plugin API's shape
 * (https://nagios-plugins.org/doc/guidelines.html#AEN200), so Sentinel runs as a
 * check command under Nagios, Icinga or Zabbix:
 *
 *   SENTINEL CRITICAL - 1 batch stuck > 10m: processing(1) (+1 more) | 'stuck_batches'=1;;0;0 'error_rate'=40%;15;;0;100 ...
 *
 * The exit code is the plugin API's too: 0 OK, 1 WARNING, 2 CRITICAL (Sentinel's
 * own 0/1/2), 3 UNKNOWN when Sentinel could not run.
 */

/** Thresholds shown as perfdata `warn` values; a disabled or absent check has none. */
export interface NagiosThresholds {
  /** `checks.error_spike.threshold_pct`. */
  errorRatePct?: number;
  /** `sources.<name>.error_spike_threshold_pct`: these sources get a perfdata entry of their own. */
  sourceErrorRatePct?: ReadonlyMap<string, number>;
  /** `checks.dedupe_rate.threshold_pct`, when that check is configured (see {@link nagiosThresholds}). */
  dedupeRatePct?: number;
  /** `sources.<name>.dedupe_threshold_pct`: these sources get a perfdata entry of their own. */
  sourceDedupeRatePct?: ReadonlyMap<string, number>;
}

export interface NagiosOptions extends NagiosThresholds {
  /** Masks secrets in the alert message; applied before `|` and newlines are replaced, so a secret is matched whole. */
  redact?: (text: string) => string;
}

const STATE: Record<OverallStatus, string> = { healthy: 'OK', degraded: 'WARNING', critical: 'CRITICAL' };

/** Plugin output is a short status line; a `Check failed:` message can be long. */
const MAX_MESSAGE = 240;
/** A per-source label (`error_rate <source>`): the source is data, its name can be any length. */
const MAX_LABEL = MAX_CHARS.cell + 'dedupe_rate '.length;

/**
 * The perfdata thresholds from the config, read defensively: a check may be absent
 * or disabled. The overall hourly figures leave out the sources with their own
 * error threshold (as error_spike judges them); dedupe_rate leaves out those with
 * their own dedupe threshold. Its `warn` is shown only when both sets agree, that is
 * when the figure shown is the one the check judged.
 */
export function nagiosThresholds(config: SentinelConfig): NagiosThresholds {
  const checks = config.checks as Record<string, unknown>;
  const errorRatePct = thresholdPct(checks.error_spike);
  const dedupeRatePct = thresholdPct(checks.dedupe_rate);
  const ownError = ownErrorThresholds(config);
  const ownDedupe = ownDedupeThresholds(config);
  const sameSources = ownError.size === ownDedupe.size && [...ownError.keys()].every((source) => ownDedupe.has(source));
  return {
    ...(errorRatePct !== undefined ? { errorRatePct, sourceErrorRatePct: ownError } : {}),
    ...(dedupeRatePct !== undefined
      ? { ...(sameSources ? { dedupeRatePct } : {}), sourceDedupeRatePct: ownDedupe }
      : {}),
  };
}

function thresholdPct(section: unknown): number | undefined {
  if (typeof section !== 'object' || section === null) return undefined;
  const { enabled, threshold_pct: pct } = section as { enabled?: unknown; threshold_pct?: unknown };
  return enabled !== false && typeof pct === 'number' && Number.isFinite(pct) ? pct : undefined;
}

/** The run as one plugin-output line (no trailing newline): `SENTINEL <STATE> - <text> | <perfdata>`. */
export function renderNagios(result: RunResult, options: NagiosOptions = {}): string {
  return `SENTINEL ${STATE[result.overall_status]} - ${statusText(result, options.redact)} | ${perfdata(result, options).join(' ')}`;
}

/** The line printed when Sentinel itself could not run (exit 3). */
export function renderNagiosUnknown(reason: string): string {
  return `SENTINEL UNKNOWN - ${oneLine(reason)}`;
}

/** The most severe alert first (report order within a level); silenced alerts neither lead nor count. */
function statusText(result: RunResult, redact: (text: string) => string = (t) => t): string {
  const firing = result.alerts.filter((a) => !a.silenced);
  const first: Alert | undefined = firing.find((a) => a.level === 'critical') ?? firing[0];
  if (!first || result.overall_status === 'healthy') {
    const silenced = result.alerts.length - firing.length;
    return `${plural(result.metrics.total_checks, 'check', 'checks')} passed${silenced > 0 ? ` (${plural(silenced, 'silenced alert', 'silenced alerts')})` : ''}`;
  }
  const more = firing.length - 1;
  return `${oneLine(redact(first.message))}${more > 0 ? ` (+${more} more)` : ''}`;
}

/**
 * `|` starts the perfdata and a newline ends the first line: neither may appear in
 * the text. Control and bidi characters are escaped (`\n`, `\x1b`), as in every
 * human output (src/util/text.ts).
 */
function oneLine(text: string): string {
  return safeLine(text.trim().replace(/\|/g, '/'), MAX_MESSAGE);
}

/**
 * Perfdata from the exact figures of the run; a figure the run does not have is
 * left out, never shown as 0. `warn`/`crit` use the plugin API's range format, where
 * a bare `N` alerts above N: `15` for an error rate means "above 15 %", as the check
 * judges it, and `0` for stuck batches means "one or more".
 */
function perfdata(result: RunResult, options: NagiosThresholds): string[] {
  const out: string[] = [];
  const metric = (label: string, value: number, uom: string, bounds: Bounds): void => {
    if (Number.isFinite(value)) out.push(formatMetric(label, value, uom, bounds));
  };
  const p = result.pipeline;
  if (p) {
    metric('stuck_batches', sum(p.stuck.by_status), '', { crit: 0, min: 0 });
    const overall = p.hourly.overall;
    if (overall.error_rate_pct !== null)
      metric('error_rate', overall.error_rate_pct, '%', { warn: options.errorRatePct, min: 0, max: 100 });
    for (const s of p.hourly.sources) {
      const own = options.sourceErrorRatePct?.get(s.source);
      if (own !== undefined && s.error_rate_pct !== null)
        metric(`error_rate ${s.source}`, s.error_rate_pct, '%', { warn: own, min: 0, max: 100 });
    }
    if (overall.dedupe_rate_pct !== null)
      metric('dedupe_rate', overall.dedupe_rate_pct, '%', { warn: options.dedupeRatePct, min: 0, max: 100 });
    for (const s of p.hourly.sources) {
      const own = options.sourceDedupeRatePct?.get(s.source);
      if (own !== undefined && s.dedupe_rate_pct !== null)
        metric(`dedupe_rate ${s.source}`, s.dedupe_rate_pct, '%', { warn: own, min: 0, max: 100 });
    }
    metric('in_flight', sum(p.in_flight), '', { min: 0 });
  }
  metric('alerts', result.metrics.alerts_triggered, '', { min: 0 });
  metric('run_time', result.duration_ms / 1000, 's', { min: 0 });
  if (result.metrics.database_ms !== undefined) metric('db_time', result.metrics.database_ms, 'ms', { min: 0 });
  // What checks declare as perfdata in the registry (schema_cache's probe latency, ...), in run order.
  for (const summary of result.checks) {
    for (const spec of findCheck(summary.name)?.measurements ?? []) {
      const value = summary.measurements?.[spec.key];
      if (spec.perfdata && typeof value === 'number') metric(spec.perfdata.label, value, spec.perfdata.uom, { min: 0 });
    }
  }
  return out;
}

function sum(rows: Array<{ batch_count: number }>): number {
  return rows.reduce((n, r) => n + r.batch_count, 0);
}

interface Bounds {
  warn?: number | undefined;
  crit?: number | undefined;
  min?: number;
  max?: number;
}

/** `'label'=value[UOM];[warn];[crit];[min];[max]`, trailing empty fields dropped. */
function formatMetric(label: string, value: number, uom: string, bounds: Bounds): string {
  const fields = [bounds.warn, bounds.crit, bounds.min, bounds.max].map((v) => (v === undefined ? '' : num(v)));
  while (fields.length > 0 && fields[fields.length - 1] === '') fields.pop();
  return [`${quoteLabel(label)}=${num(value)}${uom}`, ...fields].join(';');
}

/**
 * Always quoted (allowed everywhere, required with spaces); a quote is doubled.
 * The plugin API allows no `=` in a label, and `|` would start the long output's
 * perfdata: both are written as escapes (`\x3d`, `\x7c`) like control and bidi
 * characters, and a label is cut at {@link MAX_LABEL} characters.
 */
function quoteLabel(label: string): string {
  const safe = safeLine(label, MAX_LABEL, '=|');
  return `'${safe.replace(/'/g, "''")}'`;
}

/** Values are in the class [-0-9.]: plain decimals (3 at most, so never an exponent). */
function num(n: number): string {
  return String(round(n, 3));
}
