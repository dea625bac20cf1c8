import { anomaliesCheck } from '../checks/anomalies.js';
import { ratePct } from '../checks/error_spike.js';
import { databaseReached } from '../checks/reachability.js';
import { schemaCacheCheck } from '../checks/schema_cache.js';
import { IN_FLIGHT_STATUSES, PROCESSING_STATUSES } from '../checks/statuses.js';
import type {
  checkStatus,
  configuredSourceLabels,
  DEFAULT_MAX_SOURCES,
  OTHER_SOURCE,
  sourceLabel,
  sourceSeries,
} from '../metrics/registry.js';
import type { CheckSummary, RunResult } from '../types.js';

/**
 * `--format emf`: the run as CloudWatch Embedded Metric Format documents
 * (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html),
 * one JSON object per line, so a Lambda function, an ECS task (awslogs driver) or a
 * CloudWatch agent shipping stdout gets metrics from its logs, with no agent of Sentinel's own.
 *
 * An EMF document has one set of dimension values (its root members), so one run is
 * several documents, all with the run's timestamp and namespace, each complete on its own:
 *
 * - the run: `environment` (database up, run duration, schema cache, overall pipeline figures);
 * - per batch status: `environment`, `status` (the fixed in-flight and final statuses);
 * - per check: `environment`, `check` (status, duration, silenced alerts, thresholds);
 * - per check and alert level: `environment`, `check`, `level` (alerts firing, 0 included);
 * - per source: `environment`, `source` (the hour bucket's ratios and rows, last batch age),
 *   at most `metrics.max_sources` sources plus `other`, exactly as /metrics bounds them;
 * - per anomaly series: `environment`, `source`, `metric` (score, level, sensitivity), the
 *   same bound and `other` folding as /metrics.
 *
 * Metric names and meanings are those of /metrics (src/metrics/names.ts) where they map.
 * Dimension values are what CloudWatch accepts (API Dimension: ASCII only, no control
 * characters, at least one non-whitespace character, at most 1024 characters): a source's
 * /metrics label with every other character escaped as `\uXXXX`.
 */
/**
 * The rules /metrics applies (src/metrics/registry.ts), passed in by the caller: report/
 * sits below metrics/ in the layering (test/architecture.test.ts), and the bounds must be
 * /metrics' own, not a copy. `renderEmf(result, registry)` with the module itself.
 */
export interface MetricsRules {
  sourceSeries: typeof sourceSeries;
  configuredSourceLabels: typeof configuredSourceLabels;
  sourceLabel: typeof sourceLabel;
  checkStatus: typeof checkStatus;
  OTHER_SOURCE: typeof OTHER_SOURCE;
  DEFAULT_MAX_SOURCES: typeof DEFAULT_MAX_SOURCES;
}

export interface EmfOptions {
  /** CloudWatch namespace (default `Sentinel`). */
  namespace?: string;
  /** `metrics.max_sources`: sources with documents of their own; the rest are `other`. */
  maxSources?: number;
  /** Masks secrets in dimension values (before they are escaped, so a secret is matched whole). */
  redact?: (text: string) => string;
}

export const EMF_NAMESPACE = 'Sentinel';
/** Metric definitions per MetricDirective: the specification's maximum. */
export const EMF_MAX_METRICS_PER_DIRECTIVE = 100;
/** Longest dimension value (CloudWatch API Dimension: 1024): an escaped /metrics source label fits whole. */
export const EMF_MAX_DIMENSION_VALUE = 1024;

/** The units the figures use (of the specification's allowed list). */
type Unit = 'Seconds' | 'Count' | 'None';

interface Figure {
  name: string;
  unit: Unit;
  value: number;
}

interface Doc {
  dimensions: Array<[string, string]>;
  figures: Figure[];
  /** Root members that are not metrics (searchable in Logs Insights). */
  properties?: Record<string, string>;
}

/** A dimension value CloudWatch accepts: ASCII printable only (others escaped), not blank, bounded. */
export function emfDimensionValue(text: string, max = EMF_MAX_DIMENSION_VALUE): string {
  const parts: string[] = [];
  let length = 0;
  let cut = false;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    let shown: string;
    if (code >= 0x20 && code < 0x7f) shown = ch;
    else if (code > 0xffff) {
      const high = 0xd800 + ((code - 0x10000) >> 10);
      const low = 0xdc00 + ((code - 0x10000) & 0x3ff);
      shown = `\\u${high.toString(16)}\\u${low.toString(16)}`;
    } else shown = `\\u${code.toString(16).padStart(4, '0')}`;
    // Reads no further than it can print: a 1 MB name costs what a short one does.
    if (length + shown.length > max) {
      cut = true;
      break;
    }
    parts.push(shown);
    length += shown.length;
  }
  if (cut) {
    // Room for the `...`, never splitting an escape.
    while (parts.length > 0 && length + 3 > max) length -= parts.pop()!.length;
    parts.push('...');
  }
  const out = parts.join('');
  // Blank (empty or spaces only: other whitespace is escaped): shown quoted, so it has a non-whitespace character.
  return out.trim() === '' ? `"${out.slice(0, max - 2)}"` : out;
}

/** The run as EMF documents, one JSON text per element (no newlines inside). */
export function renderEmf(result: RunResult, rules: MetricsRules, options: EmfOptions = {}): string[] {
  const { sourceSeries, configuredSourceLabels, sourceLabel, checkStatus } = rules;
  const namespace = options.namespace ?? EMF_NAMESPACE;
  const maxSources = options.maxSources ?? rules.DEFAULT_MAX_SOURCES;
  const redact = options.redact ?? ((t: string) => t);
  const value = (text: string): string => emfDimensionValue(redact(text));
  const environment = value(result.environment);
  const parsed = Date.parse(result.timestamp);
  const timestamp = Number.isNaN(parsed) ? Date.now() : parsed;
  const docs: Doc[] = [];
  const env: [string, string] = ['environment', environment];

  // The run.
  const run: Figure[] = [fig('sentinel_database_up', 'None', databaseReached(result) ? 1 : 0)];
  if (Number.isFinite(result.duration_ms) && result.duration_ms >= 0)
    run.push(fig('sentinel_run_duration_seconds', 'Seconds', result.duration_ms / 1000));
  const probe = result.checks.find((c) => c.name === schemaCacheCheck.name)?.measurements ?? {};
  if (typeof probe.up === 'boolean') run.push(fig('sentinel_schema_cache_up', 'None', Number(probe.up)));
  if (typeof probe.latency_ms === 'number')
    run.push(fig('sentinel_schema_cache_probe_duration_seconds', 'Seconds', probe.latency_ms / 1000));
  const pipeline = result.pipeline;
  const ratio = (part: number, total: number): number => ratePct(part, total) / 100;
  if (pipeline) {
    const overall = pipeline.hourly.overall;
    const overallDedupe = pipeline.hourly.overall_dedupe ?? overall;
    run.push(fig('sentinel_pipeline_bucket_rows', 'Count', overall.total_rows));
    if (overall.total_rows > 0)
      run.push(fig('sentinel_pipeline_error_ratio', 'None', ratio(overall.error_rows, overall.total_rows)));
    if (overallDedupe.total_rows > 0)
      run.push(
        fig('sentinel_pipeline_dedupe_ratio', 'None', ratio(overallDedupe.skipped_rows, overallDedupe.total_rows)),
      );
    run.push(fig('sentinel_pipeline_dedupe_bucket_rows', 'Count', overallDedupe.total_rows));
    if (pipeline.backlog) run.push(fig('sentinel_pipeline_backlog_batches', 'Count', pipeline.backlog.batch_count));
    if (pipeline.thresholds?.min_rows !== undefined)
      run.push(fig('sentinel_check_min_rows', 'Count', pipeline.thresholds.min_rows));
  }
  docs.push({ dimensions: [env], figures: run, properties: { overall_status: result.overall_status } });

  // Per batch status: a fixed set, zeros included (as /metrics).
  if (pipeline) {
    const byStatus = new Map<string, Figure[]>();
    const add = (status: string, f: Figure): void => {
      const list = byStatus.get(status) ?? [];
      list.push(f);
      byStatus.set(status, list);
    };
    const inFlight = new Set<string>(IN_FLIGHT_STATUSES);
    const processing = new Set<string>(PROCESSING_STATUSES);
    for (const status of IN_FLIGHT_STATUSES) {
      const s = pipeline.in_flight.find((x) => x.status === status);
      add(status, fig('sentinel_pipeline_batches_in_flight', 'Count', s?.batch_count ?? 0));
      if (s) add(status, fig('sentinel_pipeline_oldest_batch_age_seconds', 'Seconds', s.oldest_age_seconds));
    }
    for (const status of PROCESSING_STATUSES) {
      const s = pipeline.stuck.by_status.find((x) => x.status === status);
      add(status, fig('sentinel_pipeline_stuck_batches', 'Count', s?.batch_count ?? 0));
    }
    add(
      'completed',
      fig('sentinel_pipeline_batches_finished_last_hour', 'Count', pipeline.finished_last_hour.completed),
    );
    add('failed', fig('sentinel_pipeline_batches_finished_last_hour', 'Count', pipeline.finished_last_hour.failed));
    for (const [status, figures] of byStatus)
      if (inFlight.has(status) || processing.has(status) || status === 'completed' || status === 'failed')
        docs.push({ dimensions: [env, ['status', status]], figures });
  }

  // Per check, and per check and alert level.
  const checks = new Map<string, CheckSummary | undefined>();
  for (const summary of result.checks) checks.set(summary.name, summary);
  for (const alert of result.alerts) if (!checks.has(alert.check)) checks.set(alert.check, undefined);
  const thresholds = pipeline?.thresholds;
  for (const [check, summary] of checks) {
    const name = value(check);
    const figures: Figure[] = [];
    if (summary) {
      figures.push(fig('sentinel_check_status', 'None', checkStatus(summary, result.alerts)));
      if (summary.outcome !== 'skipped' && Number.isFinite(summary.duration_ms) && summary.duration_ms >= 0)
        figures.push(fig('sentinel_check_duration_seconds', 'Seconds', summary.duration_ms / 1000));
    }
    figures.push(
      fig('sentinel_alerts_silenced', 'Count', result.alerts.filter((a) => a.check === check && a.silenced).length),
    );
    const seconds = thresholds?.seconds.find((t) => t.check === check && t.source === undefined);
    if (seconds) figures.push(fig('sentinel_check_threshold_seconds', 'Seconds', seconds.value));
    const rate = thresholds?.ratios.find((t) => t.check === check && t.source === undefined);
    if (rate) figures.push(fig('sentinel_check_threshold_ratio', 'None', rate.value));
    docs.push({ dimensions: [env, ['check', name]], figures });
    for (const level of ['critical', 'warning'] as const) {
      const firing = result.alerts.filter((a) => a.check === check && a.level === level && !a.silenced).length;
      docs.push({
        dimensions: [env, ['check', name], ['level', level]],
        figures: [fig('sentinel_alerts_firing', 'Count', firing)],
      });
    }
  }

  // Per source, bounded as /metrics bounds them.
  if (pipeline) {
    const configured = configuredSourceLabels(pipeline.thresholds, maxSources);
    const bySource = new Map<string, Figure[]>();
    for (const s of sourceSeries(pipeline.hourly.sources, maxSources, configured)) {
      const figures = [fig('sentinel_pipeline_bucket_rows', 'Count', s.total_rows)];
      if (s.total_rows > 0) {
        figures.push(fig('sentinel_pipeline_error_ratio', 'None', ratio(s.error_rows, s.total_rows)));
        figures.push(fig('sentinel_pipeline_dedupe_ratio', 'None', ratio(s.skipped_rows, s.total_rows)));
      }
      bySource.set(s.source, figures);
    }
    for (const f of pipeline.freshness ?? []) {
      const label = sourceLabel(f.source);
      if (!configured.has(label)) continue;
      const figures = bySource.get(label) ?? [];
      figures.push(
        fig(
          'sentinel_pipeline_source_last_batch_age_seconds',
          'Seconds',
          f.last_batch_age_seconds ?? f.lookback_seconds,
        ),
      );
      bySource.set(label, figures);
    }
    for (const [label, figures] of bySource) docs.push({ dimensions: [env, ['source', value(label)]], figures });
  }

  // Anomaly series, bounded as /metrics bounds them.
  for (const a of anomalySeries(result, maxSources, rules))
    docs.push({
      dimensions: [env, ['source', value(a.source)], ['metric', value(a.metric)]],
      figures: [
        fig('sentinel_anomaly_score', 'None', a.score),
        fig('sentinel_anomaly_level', 'None', a.level),
        fig('sentinel_anomaly_sensitivity', 'None', a.sensitivity),
      ],
    });

  return docs.flatMap((doc) => {
    const figures = doc.figures.filter((f) => Number.isFinite(f.value));
    return figures.length === 0 ? [] : [emfDocument(namespace, timestamp, { ...doc, figures })];
  });
}

function fig(name: string, unit: Unit, value: number): Figure {
  return { name, unit, value };
}

/** One EMF document: its dimension values and metric values as root members, the directives in `_aws`. */
function emfDocument(namespace: string, timestamp: number, doc: Doc): string {
  const names = doc.dimensions.map(([name]) => name);
  const directives: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: Unit }> }> =
    [];
  for (let i = 0; i < doc.figures.length; i += EMF_MAX_METRICS_PER_DIRECTIVE) {
    const chunk = doc.figures.slice(i, i + EMF_MAX_METRICS_PER_DIRECTIVE);
    directives.push({
      Namespace: namespace,
      Dimensions: [names],
      Metrics: chunk.map((f) => ({ Name: f.name, Unit: f.unit })),
    });
  }
  const root: Record<string, unknown> = { _aws: { Timestamp: timestamp, CloudWatchMetrics: directives } };
  for (const [name, v] of doc.dimensions) root[name] = v;
  for (const [name, v] of Object.entries(doc.properties ?? {})) root[name] = v;
  for (const f of doc.figures) root[f.name] = f.value;
  return JSON.stringify(root);
}

type AnomalySeries = { source: string; metric: string; score: number; sensitivity: number; level: number };

/**
 * The anomalies check's series as /metrics exports them (src/metrics/registry.ts,
 * observeAnomalies): one per source × metric, sources past `maxSources` (those without
 * a verdict and least unusual) folded into `other`, which carries the most unusual of them
 * and the worst verdict among them.
 */
function anomalySeries(result: RunResult, maxSources: number, rules: MetricsRules): AnomalySeries[] {
  const { sourceLabel, OTHER_SOURCE } = rules;
  const summary = result.checks.find((c) => c.name === anomaliesCheck.name);
  const bySeries = new Map<
    string,
    { source: string; metric: string; score?: number; sensitivity?: number; level?: number }
  >();
  for (const m of summary?.series ?? []) {
    const { source, metric } = m.labels;
    if (source === undefined || metric === undefined || !Number.isFinite(m.value)) continue;
    const key = JSON.stringify([sourceLabel(source), metric]);
    const entry = bySeries.get(key) ?? { source: sourceLabel(source), metric };
    if (m.key === 'score') entry.score = m.value;
    else if (m.key === 'sensitivity') entry.sensitivity = m.value;
    else if (m.key === 'level') entry.level = m.value;
    bySeries.set(key, entry);
  }
  const judged = [...bySeries.values()]
    .filter((e) => e.score !== undefined && e.sensitivity !== undefined && e.sensitivity > 0)
    .map((e) => ({ ...e, level: e.level ?? 0 }) as AnomalySeries);
  const unusual = (e: AnomalySeries): number => Math.abs(e.score) / e.sensitivity;
  const worst = new Map<string, number>();
  for (const e of judged) worst.set(e.source, Math.max(worst.get(e.source) ?? 0, e.level * 1e6 + unusual(e)));
  const ranked = [...worst].sort(([a, wa], [b, wb]) => wb - wa || (a < b ? -1 : a > b ? 1 : 0)).map(([s]) => s);
  const kept = new Set(ranked.slice(0, Math.max(0, maxSources)).filter((s) => s !== OTHER_SOURCE));
  const out: AnomalySeries[] = [];
  const other = new Map<string, AnomalySeries>();
  const otherLevel = new Map<string, number>();
  for (const e of judged) {
    if (kept.has(e.source)) {
      out.push(e);
      continue;
    }
    const o = other.get(e.metric);
    if (!o || unusual(e) > unusual(o)) other.set(e.metric, e);
    otherLevel.set(e.metric, Math.max(otherLevel.get(e.metric) ?? 0, e.level));
  }
  for (const [metric, e] of other)
    out.push({
      source: OTHER_SOURCE,
      metric,
      score: e.score,
      sensitivity: e.sensitivity,
      level: otherLevel.get(metric) ?? 0,
    });
  return out;
}
