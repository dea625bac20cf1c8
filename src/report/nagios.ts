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
 * SENTINEL CRITICAL - 1 batch stuck > 10m: processing(1) (+1 more) | 'stuck_batches'=1;;0;0 'error_rate'=40%;15;;0;100
 * ...
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
  /** `checks.dedupe_rate.threshold_pct`, when that check is enabled. */
  dedupeRatePct?: number;
  /**
   * Whether the pipeline snapshot's overall dedupe figure is the one dedupe_rate judges: the
   * snapshot leaves out the sources with their own error threshold, dedupe_rate those with their
   * own dedupe threshold. Only then may the snapshot stand in for the check's own figure (its
   * `overall_rate_pct` measurement) when the check did not record one.
   */
  snapshotDedupeIsJudged?: boolean;
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
 * or disabled. Every enabled check's threshold is kept, whatever the per-source
 * settings: the overall error rate shown is the one error_spike judges (both leave
 * out the sources with their own error threshold), and the overall dedupe rate shown
 * is the one dedupe_rate judges (its own measurement; see {@link overallDedupe}).
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
    ...(dedupeRatePct !== undefined ? { dedupeRatePct, sourceDedupeRatePct: ownDedupe } : {}),
    snapshotDedupeIsJudged: sameSources,
  };
}

/**
 * The overall dedupe perfdata: the rate dedupe_rate judged (its `overall_rate_pct`)
 * with its threshold. Without that measurement (the check disabled, failed or not
 * run), the snapshot's figure when it is the same figure; when it is not (the two
 * checks leave out different sources) and the check is enabled, nothing: a figure
 * under the check's name and threshold that the check did not judge would mislead.
 * A disabled check has no threshold: the snapshot's figure is shown bare.
 */
export function overallDedupe(
  result: Pick<RunResult, 'checks' | 'pipeline'>,
  options: NagiosThresholds,
): { value: number; warn?: number } | undefined {
  const judged = result.checks.find((c) => c.name === 'dedupe_rate')?.measurements?.overall_rate_pct;
  const warn = options.dedupeRatePct !== undefined ? { warn: options.dedupeRatePct } : {};
  if (typeof judged === 'number') return { value: judged, ...warn };
  const snapshot = result.pipeline?.hourly.overall.dedupe_rate_pct;
  if (snapshot === null || snapshot === undefined) return undefined;
  if (options.dedupeRatePct === undefined) return { value: snapshot };
  return options.snapshotDedupeIsJudged === false ? undefined : { value: snapshot, ...warn };
}

function thresholdPct(section: unknown): number | undefined {
  if (typeof section !== 'object' || section === null) return undefined;
  const { enabled, threshold_pct: pct } = section as { enabled?: unknown; threshold_pct?: unknown };
  return enabled !== false && typeof pct === 'number' && Number.isFinite(pct) ? pct : undefined;
}

/**
 * The run as plugin output (no trailing newline): `SENTINEL <STATE> - <text> | <perfdata>`,
 * then, as the plugin API's long output, what went wrong with the notifications. A Nagios
 * run logs nothing on stderr (plugin runners show it in the same output), so this is
 * where an alerting failure is told.
 */
export function renderNagios(result: RunResult, options: NagiosOptions = {}): string {
  const redact = options.redact ?? ((t: string) => t);
  const first =
    `SENTINEL ${STATE[result.overall_status]} - ${statusText(result, options.redact)} | ` +
    `${perfdata(result, options).join(' ')}`;
  const long: string[] = [];
  if (result.alerting_error)
    long.push(`Alerting failed, nobody was notified by this run: ${redact(result.alerting_error)}`);
  for (const n of result.notifications ?? []) {
    if (n.failed === 0 && n.pending === 0) continue;
    const last = n.errors.length > 0 ? `: ${redact(n.errors[n.errors.length - 1]!)}` : '';
    long.push(
      `Notifications ${n.notifier} (${n.type}): ${n.sent} sent, ${n.pending} pending, ${n.failed} failed${last}`,
    );
  }
  return [first, ...long.map(renderNagiosLongLine)].join('\n');
}

/** The line printed when Sentinel itself could not run (exit 3). */
export function renderNagiosUnknown(reason: string): string {
  return `SENTINEL UNKNOWN - ${oneLine(reason)}`;
}

/** A line of the plugin API's long output: one line, no `|` (it would start perfdata there too), cut. */
export function renderNagiosLongLine(text: string): string {
  return oneLine(text);
}

/** The most severe alert first (report order within a level); silenced alerts neither lead nor count. */
function statusText(result: RunResult, redact: (text: string) => string = (t) => t): string {
  const firing = result.alerts.filter((a) => !a.silenced);
  const first: Alert | undefined = firing.find((a) => a.level === 'critical') ?? firing[0];
  if (!first || result.overall_status === 'healthy') {
    const silenced = result.alerts.length - firing.length;
    const note = silenced > 0 ? ` (${plural(silenced, 'silenced alert', 'silenced alerts')})` : '';
    return `${plural(result.metrics.total_checks, 'check', 'checks')} passed${note}`;
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
    const dedupe = overallDedupe(result, options);
    if (dedupe) metric('dedupe_rate', dedupe.value, '%', { warn: dedupe.warn, min: 0, max: 100 });
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
