import { anomaliesCheck } from '../checks/anomalies.js';
import { ratePct } from '../checks/error_spike.js';
import { databaseReached } from '../checks/reachability.js';
import { schemaCacheCheck } from '../checks/schema_cache.js';
import { IN_FLIGHT_STATUSES, PROCESSING_STATUSES } from '../checks/statuses.js';
import type {
  anomalySeries,
  checkStatus,
  configuredSourceLabels,
  DEFAULT_MAX_SOURCES,
  declaredMeasurements,
  NOTIFICATION_RESULTS,
  notificationCounts,
  OTHER_SOURCE,
  sourceLabel,
  sourceSeries,
} from '../metrics/registry.js';
import type { CheckSummary, RunResult } from '../types.js';
import { sentinelVersion } from '../util/version.js';

/**
 * `--format emf`: the run as CloudWatch Embedded Metric Format documents
 * (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html),
 * one JSON object per line, so a Lambda function, an ECS task (awslogs driver) or a
 * CloudWatch agent shipping stdout gets metrics from its logs, with no agent of Sentinel's own.
 *
 * An EMF document has one set of dimension values (its root members), so one run is
 * several documents, all with the run's timestamp and namespace, each complete on its own:
 *
 * - the run: `environment` (database up, run duration, schema cache and its reloads, overall
 *   pipeline figures); `environment`, `status` (the run's status: `sentinel_runs_total` 1);
 * - per batch status: `environment`, `status` (the fixed in-flight and final statuses);
 * - per check: `environment`, `check` (status, duration, silenced alerts, thresholds);
 *   `environment`, `check`, `measurement` (the figures it declares); `environment`, `check`,
 *   `source` (a configured source's own threshold);
 * - the probe's result (`environment`, `result`), the build (`environment`, `version`,
 *   `node_version`), the run's time and leadership (a line is a run of the leader);
 * - per notifier: `environment`, `notifier` (pending), `… type, result` and `… type, reason` (this run's
 *   deliveries and failures: counters are each run's increment, summed by CloudWatch);
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
  anomalySeries: typeof anomalySeries;
  notificationCounts: typeof notificationCounts;
  NOTIFICATION_RESULTS: typeof NOTIFICATION_RESULTS;
  declaredMeasurements: typeof declaredMeasurements;
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
  // A line is a run of a process that led it (a follower prints nothing): the run's own time.
  run.push(fig('sentinel_leader', 'None', result.role === 'follower' ? 0 : 1));
  run.push(fig('sentinel_last_run_timestamp_seconds', 'Seconds', timestamp / 1000));
  if (!result.checks.some((c) => c.outcome === 'failed'))
    run.push(fig('sentinel_last_successful_run_timestamp_seconds', 'Seconds', timestamp / 1000));
  if (Number.isFinite(result.duration_ms) && result.duration_ms >= 0)
    run.push(fig('sentinel_run_duration_seconds', 'Seconds', result.duration_ms / 1000));
  const probe = result.checks.find((c) => c.name === schemaCacheCheck.name)?.measurements ?? {};
  if (typeof probe.up === 'boolean') run.push(fig('sentinel_schema_cache_up', 'None', Number(probe.up)));
  if (typeof probe.latency_ms === 'number')
    run.push(fig('sentinel_schema_cache_probe_duration_seconds', 'Seconds', probe.latency_ms / 1000));
  // Counters are this run's increments (CloudWatch sums them): reloads sent, and the run itself below.
  if (typeof probe.reloads === 'number') run.push(fig('sentinel_schema_cache_reloads_total', 'Count', probe.reloads));
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
  docs.push({
    dimensions: [env, ['status', value(result.overall_status)]],
    figures: [fig('sentinel_runs_total', 'Count', 1)],
  });
  if (typeof probe.result === 'string')
    docs.push({
      dimensions: [env, ['result', value(probe.result)]],
      figures: [fig('sentinel_schema_cache_probe_result', 'None', 1)],
    });
  docs.push({
    dimensions: [env, ['version', value(sentinelVersion())], ['node_version', value(process.version)]],
    figures: [fig('sentinel_build_info', 'None', 1)],
  });

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
    // The figures a check declares (docs/checks.md), e.g. processing_time's p95_seconds.
    for (const [measurement, v] of summary ? rules.declaredMeasurements(summary) : [])
      docs.push({
        dimensions: [env, ['check', name], ['measurement', value(measurement)]],
        figures: [fig('sentinel_check_measurement', 'None', v)],
      });
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
    // The thresholds of the sources sentinel.yml gives their own (bounded like their series).
    for (const [kind, list] of [
      ['sentinel_check_threshold_seconds', pipeline.thresholds?.seconds ?? []],
      ['sentinel_check_threshold_ratio', pipeline.thresholds?.ratios ?? []],
    ] as const)
      for (const t of list) {
        if (t.source === undefined || !configured.has(sourceLabel(t.source))) continue;
        docs.push({
          dimensions: [env, ['check', value(t.check)], ['source', value(sourceLabel(t.source))]],
          figures: [fig(kind, kind.endsWith('seconds') ? 'Seconds' : 'None', t.value)],
        });
      }
  }

  // Notifications of this run, per notifier (names from sentinel.yml: bounded by the config).
  for (const n of result.notifications ?? []) {
    const notifier = value(n.notifier);
    docs.push({
      dimensions: [env, ['notifier', notifier]],
      figures: [fig('sentinel_notifications_pending', 'Count', n.pending)],
    });
    const counts = rules.notificationCounts(n);
    const type: [string, string] = ['type', value(n.type)];
    for (const r of rules.NOTIFICATION_RESULTS)
      docs.push({
        dimensions: [env, ['notifier', notifier], type, ['result', r]],
        figures: [fig('sentinel_notifications_total', 'Count', counts[r])],
      });
    for (const [reason, count] of Object.entries(n.reasons ?? {}))
      docs.push({
        dimensions: [env, ['notifier', notifier], type, ['reason', value(reason)]],
        figures: [fig('sentinel_notification_failures_total', 'Count', count)],
      });
  }

  // Anomaly series, bounded as /metrics bounds them.
  const anomalies = result.checks.find((c) => c.name === anomaliesCheck.name);
  for (const a of rules.anomalySeries(anomalies, maxSources))
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
