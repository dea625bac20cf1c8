import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { anomaliesCheck } from '../checks/anomalies.js';
import { ratePct } from '../checks/error_spike.js';
import { findCheck } from '../checks/index.js';
import { databaseReached } from '../checks/reachability.js';
import { NOT_RUN } from '../checks/runner.js';
import { schemaCacheCheck } from '../checks/schema_cache.js';
import { IN_FLIGHT_STATUSES, PROCESSING_STATUSES } from '../checks/statuses.js';
import type { Logger } from '../log.js';
import { type CheckSummary, type CheckThresholds, FAILURE_REASONS, type RunResult } from '../types.js';
import { oneLine } from '../util/text.js';
import { sentinelVersion } from '../util/version.js';
import { METRICS, type MetricName } from './names.js';

/**
 * Sentinel's Prometheus metrics: a registry of its own (never prom-client's global
 * one) holding every metric of `names.ts` plus prom-client's process metrics.
 * Runs write into it with {@link SentinelMetrics.observeRun}; a scrape only renders
 * it, so it never queries the monitored database and answers in milliseconds.
 *
 * Per-run gauges are cleared before each run sets them, so a label set the run no
 * longer reports (a source gone quiet, a check removed) disappears instead of keeping
 * its last value. Label values that are known in advance (the in-flight and
 * processing statuses, completed/failed, the run statuses) are exported as 0 rather
 * than left out, so queries and alert rules need no `absent()`.
 *
 * Replicas: only the leader runs. A follower (`setLeader(false)`, and every
 * follower tick, {@link SentinelMetrics.observeStandby}) exports none of the per-run
 * figures ({@link PER_RUN_METRICS}): it did not observe the pipeline, so a replica
 * that lost leadership must not keep reporting what it saw while it led. It keeps
 * `sentinel_leader 0`, its counters, the run-duration histogram, the build info,
 * the timestamps of its own last runs (facts about this process, not about the
 * pipeline), and `sentinel_database_up` for the lock database it polls.
 *
 * Source names are data: a scrape stays small whatever the monitored tables hold.
 * A `source` label value is escaped like every human output and cut at
 * {@link MAX_LABEL_CHARS}; only `maxSources` sources get series of their own
 * ({@link sourceSeries}): first those sentinel.yml gives a setting of their own (a
 * threshold or `expected_every`, so a per-source rule always finds its series), then
 * the busiest; the rest are summed as `source="other"`.
 *
 * The thresholds the checks applied are exported next to the figures they judge
 * (`sentinel_check_threshold_seconds`, `_ratio`, `sentinel_check_min_rows`), and the
 * ratios are rounded as the checks round them (ratePct: 0.01 %), so a rule comparing
 * the two fires exactly when the check alerts, whatever sentinel.yml says.
 *
 * prom-client's default metrics are registered except {@link DROPPED_DEFAULT_METRICS}
 * (gauges named `_total`, which `promtool check metrics` rejects); the per-type
 * gauges without the suffix carry the same figures.
 */
/** How long a rendered /metrics text may be served again (process metrics move on). */
export const RENDER_CACHE_MS = 1000;

/** `metrics.max_sources` when not configured. */
export const DEFAULT_MAX_SOURCES = 50;
/** Longest `source` label value, in characters; a longer one is cut with `…`. */
export const MAX_LABEL_CHARS = 128;
/** The `source` label value of the sources without series of their own. */
export const OTHER_SOURCE = 'other';

type SourceFigures = { total_rows: number; error_rows: number; skipped_rows: number };

/**
 * The per-source series of one run: each name escaped and cut to
 * {@link MAX_LABEL_CHARS} (names that become the same label are summed), the
 * `max` labels with the most rows kept, ties by label so the choice is stable, and
 * the rest summed as {@link OTHER_SOURCE} (a source really named `other` is part
 * of it). Figures are summed over each source's judged hour bucket.
 */
export function sourceSeries(
  sources: ReadonlyArray<SourceFigures & { source: string }>,
  max: number,
  pinned: ReadonlySet<string> = new Set(),
): Array<SourceFigures & { source: string }> {
  const byLabel = new Map<string, SourceFigures>();
  const add = (into: SourceFigures, f: SourceFigures): void => {
    into.total_rows += f.total_rows;
    into.error_rows += f.error_rows;
    into.skipped_rows += f.skipped_rows;
  };
  for (const s of sources) {
    const label = oneLine(s.source, MAX_LABEL_CHARS);
    let figures = byLabel.get(label);
    if (!figures) {
      figures = { total_rows: 0, error_rows: 0, skipped_rows: 0 };
      byLabel.set(label, figures);
    }
    add(figures, s);
  }
  const other = byLabel.get(OTHER_SOURCE);
  byLabel.delete(OTHER_SOURCE);
  // Labels in `pinned` (sources with settings of their own) first, then the most rows; ties by label.
  const ranked = [...byLabel].sort(
    ([a, fa], [b, fb]) =>
      Number(pinned.has(b)) - Number(pinned.has(a)) || fb.total_rows - fa.total_rows || (a < b ? -1 : a > b ? 1 : 0),
  );
  const kept = ranked.slice(0, Math.max(0, max)).map(([source, f]) => ({ source, ...f }));
  const folded = ranked.slice(Math.max(0, max));
  if (folded.length === 0 && !other) return kept;
  const rest = { total_rows: 0, error_rows: 0, skipped_rows: 0 };
  if (other) add(rest, other);
  for (const [, f] of folded) add(rest, f);
  return [...kept, { source: OTHER_SOURCE, ...rest }];
}

/** A source's label value: escaped and cut like every human output (also for sources named in sentinel.yml). */
export const sourceLabel = (source: string): string => oneLine(source, MAX_LABEL_CHARS);

/**
 * The labels of the sources sentinel.yml gives a threshold or `expected_every` (from the run's
 * thresholds), at most `max`, by label: they get series of their own before the busiest sources.
 */
export function configuredSourceLabels(thresholds: CheckThresholds | undefined, max: number): Set<string> {
  const labels = new Set<string>();
  for (const t of [...(thresholds?.seconds ?? []), ...(thresholds?.ratios ?? [])])
    if (t.source !== undefined) labels.add(sourceLabel(t.source));
  return new Set([...labels].sort().slice(0, Math.max(0, max)));
}

/** One anomaly series of a run: a source (label) and metric with its score, sensitivity and verdict. */
export interface AnomalySeries {
  source: string;
  metric: string;
  score: number;
  sensitivity: number;
  /** 0 usual, 1 warning, 2 critical. */
  level: number;
}

/**
 * The anomalies check's series of a run, bounded as every per-source series is (/metrics,
 * `--format emf`): one per source × metric it judged, sources past `maxSources` (those without a
 * verdict and least unusual relative to their sensitivity, ties by label) folded into
 * `source="other"`, which carries the most unusual of them and the worst verdict among them.
 */
export function anomalySeries(summary: CheckSummary | undefined, maxSources: number): AnomalySeries[] {
  const bySeries = new Map<string, Partial<AnomalySeries> & { source: string; metric: string }>();
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
  // A source with a verdict first, then the most unusual relative to its sensitivity.
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
  for (const [metric, e] of other) out.push({ ...e, source: OTHER_SOURCE, metric, level: otherLevel.get(metric) ?? 0 });
  return out;
}

/**
 * prom-client default metrics that are gauges named `_total` (`promtool check metrics`: non-counter
 * metrics should not have "_total" suffix). `nodejs_active_handles{type}` and its siblings carry the
 * same counts per type: `sum(nodejs_active_handles)` is the dropped total.
 */
export const DROPPED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

export interface SentinelMetrics {
  registry: Registry;
  /**
   * Sets every per-run metric from a finished run (after alerting, so silences and
   * notifications are in it) and advances the counters. `durationMs` overrides the
   * run's own `duration_ms` for the duration histogram (pass the time the whole run
   * took, alerting included, when the caller measures it).
   */
  observeRun(result: RunResult, options?: { durationMs?: number }): void;
  /**
   * `sentinel_leader`: 1 (the default) on the replica that acts, 0 on a standby.
   * Turning it off clears every per-run series ({@link PER_RUN_METRICS}) and
   * `sentinel_database_up` (unknown until the next follower tick).
   */
  setLeader(leader: boolean): void;
  /** Whether `sentinel_leader` is 1. */
  readonly leader: boolean;
  /**
   * Replicas: a follower's tick (it ran nothing). Clears every per-run series, sets
   * `sentinel_leader 0`, and `sentinel_database_up` to whether the election reached
   * the lock database (the monitored one unless `replicas.state_database_url`).
   */
  observeStandby(standby: { lockDatabaseReached: boolean }): void;
  /** The Content-Type header of {@link render}'s text. */
  contentType: string;
  /** The exposition text. Reads the registry only. */
  render(): Promise<string>;
}

/** Run durations range from tens of milliseconds to the checks' timeouts. */
export const RUN_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * What a follower does not export: the figures of a run (the pipeline, the
 * schema-cache probe, the checks, their alerts and the outbox) that only the
 * leader observes. Counters, the run-duration histogram, `sentinel_leader`,
 * `sentinel_database_up` (set from the lock database on a follower), the last-run
 * timestamps and the build info are not in it.
 */
export const PER_RUN_METRICS = [
  'sentinel_pipeline_batches_in_flight',
  'sentinel_pipeline_oldest_batch_age_seconds',
  'sentinel_pipeline_stuck_batches',
  'sentinel_pipeline_error_ratio',
  'sentinel_pipeline_dedupe_ratio',
  'sentinel_pipeline_bucket_rows',
  'sentinel_pipeline_batches_finished_last_hour',
  'sentinel_pipeline_dedupe_bucket_rows',
  'sentinel_pipeline_backlog_batches',
  'sentinel_pipeline_source_last_batch_age_seconds',
  'sentinel_schema_cache_up',
  'sentinel_schema_cache_probe_duration_seconds',
  'sentinel_schema_cache_probe_result',
  'sentinel_check_status',
  'sentinel_check_duration_seconds',
  'sentinel_check_measurement',
  'sentinel_check_threshold_seconds',
  'sentinel_check_threshold_ratio',
  'sentinel_check_min_rows',
  'sentinel_anomaly_score',
  'sentinel_anomaly_level',
  'sentinel_anomaly_sensitivity',
  'sentinel_alerts_firing',
  'sentinel_alerts_silenced',
  'sentinel_notifications_pending',
] as const satisfies readonly MetricName[];

/** `sentinel_check_status` values (names.ts). */
export const CHECK_STATUS = { ok: 0, warning: 1, critical: 2, failed: 3, skipped: -1 } as const;

const RUN_STATUSES = ['healthy', 'degraded', 'critical'] as const;
const LEVELS = ['critical', 'warning'] as const;
export const NOTIFICATION_RESULTS = ['sent', 'failed', 'retrying'] as const;

/**
 * A notifier's deliveries of one run by result: `sent` delivered, `failed` given up (refused
 * with a 4xx or expired), `retrying` the attempts that failed but stay queued (the errors not
 * accounted for by `failed`, at most the pending count).
 */
export function notificationCounts(
  n: NonNullable<RunResult['notifications']>[number],
): Record<(typeof NOTIFICATION_RESULTS)[number], number> {
  return { sent: n.sent, failed: n.failed, retrying: Math.min(n.pending, Math.max(0, n.errors.length - n.failed)) };
}

type AnyMetric = Gauge | Counter | Histogram;
type Labels = Record<string, string>;

/**
 * Whether a run reached the monitored database: its pipeline snapshot was read, or
 * a check that queries the database (every check but schema_cache, which talks to
 * PostgREST) ran to an answer.
 */
export { databaseReached };

/**
 * The numeric figures of a summary that its check declares (`measurements` in the
 * registry): what `sentinel_check_measurement` exports. Strings (a probe's result
 * name) and undeclared keys are left out: label values stay a bounded set.
 */
export function declaredMeasurements(summary: CheckSummary): Array<[string, number]> {
  const declared = findCheck(summary.name)?.measurements ?? [];
  return declared.flatMap(({ key }) => {
    const value = summary.measurements?.[key];
    if (typeof value === 'boolean') return [[key, value ? 1 : 0] as [string, number]];
    return typeof value === 'number' && Number.isFinite(value) ? [[key, value] as [string, number]] : [];
  });
}

/** A check's last outcome as `sentinel_check_status` encodes it (silenced alerts count: the check found them). */
export function checkStatus(summary: CheckSummary, alerts: RunResult['alerts']): number {
  switch (summary.outcome) {
    case 'ok':
      return CHECK_STATUS.ok;
    case 'skipped':
      // Not run because the database was unreachable or locked: it failed to run, as far as a dashboard is concerned.
      return summary.reason?.startsWith(NOT_RUN) ? CHECK_STATUS.failed : CHECK_STATUS.skipped;
    case 'failed':
      return CHECK_STATUS.failed;
    case 'alert':
      return alerts.some((a) => a.check === summary.name && a.level === 'critical')
        ? CHECK_STATUS.critical
        : CHECK_STATUS.warning;
  }
}

export interface MetricsOptions {
  /** `sentinel_build_info`'s version; default the package's. */
  version?: string;
  /** `metrics.max_sources`: sources with series of their own (default {@link DEFAULT_MAX_SOURCES}). */
  maxSources?: number;
}

export function createMetrics(opts: MetricsOptions = {}): SentinelMetrics {
  const maxSources = opts.maxSources ?? DEFAULT_MAX_SOURCES;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);

  const metrics = new Map<MetricName, AnyMetric>();
  for (const spec of METRICS) {
    const config = { name: spec.name, help: spec.help, labelNames: [...spec.labels], registers: [registry] };
    const metric =
      spec.type === 'counter'
        ? new Counter(config)
        : spec.type === 'histogram'
          ? new Histogram({ ...config, buckets: RUN_DURATION_BUCKETS })
          : new Gauge(config);
    metrics.set(spec.name, metric);
  }
  const gauge = (name: MetricName): Gauge => {
    const m = metrics.get(name);
    if (!(m instanceof Gauge)) throw new Error(`${name} is not a gauge in names.ts`);
    return m;
  };
  const counter = (name: MetricName): Counter => {
    const m = metrics.get(name);
    if (!(m instanceof Counter)) throw new Error(`${name} is not a counter in names.ts`);
    return m;
  };
  const histogram = (name: MetricName): Histogram => {
    const m = metrics.get(name);
    if (!(m instanceof Histogram)) throw new Error(`${name} is not a histogram in names.ts`);
    return m;
  };

  const g = {
    inFlight: gauge('sentinel_pipeline_batches_in_flight'),
    oldestAge: gauge('sentinel_pipeline_oldest_batch_age_seconds'),
    stuck: gauge('sentinel_pipeline_stuck_batches'),
    errorRatio: gauge('sentinel_pipeline_error_ratio'),
    dedupeRatio: gauge('sentinel_pipeline_dedupe_ratio'),
    bucketRows: gauge('sentinel_pipeline_bucket_rows'),
    finished: gauge('sentinel_pipeline_batches_finished_last_hour'),
    dedupeRows: gauge('sentinel_pipeline_dedupe_bucket_rows'),
    backlog: gauge('sentinel_pipeline_backlog_batches'),
    lastBatchAge: gauge('sentinel_pipeline_source_last_batch_age_seconds'),
    thresholdSeconds: gauge('sentinel_check_threshold_seconds'),
    thresholdRatio: gauge('sentinel_check_threshold_ratio'),
    minRows: gauge('sentinel_check_min_rows'),
    cacheUp: gauge('sentinel_schema_cache_up'),
    probeDuration: gauge('sentinel_schema_cache_probe_duration_seconds'),
    probeResult: gauge('sentinel_schema_cache_probe_result'),
    checkStatus: gauge('sentinel_check_status'),
    checkDuration: gauge('sentinel_check_duration_seconds'),
    measurement: gauge('sentinel_check_measurement'),
    anomalyScore: gauge('sentinel_anomaly_score'),
    anomalyLevel: gauge('sentinel_anomaly_level'),
    anomalySensitivity: gauge('sentinel_anomaly_sensitivity'),
    alertsFiring: gauge('sentinel_alerts_firing'),
    alertsSilenced: gauge('sentinel_alerts_silenced'),
    pending: gauge('sentinel_notifications_pending'),
    databaseUp: gauge('sentinel_database_up'),
    lastRun: gauge('sentinel_last_run_timestamp_seconds'),
    lastSuccess: gauge('sentinel_last_successful_run_timestamp_seconds'),
    leader: gauge('sentinel_leader'),
    buildInfo: gauge('sentinel_build_info'),
  };
  const c = {
    reloads: counter('sentinel_schema_cache_reloads_total'),
    runs: counter('sentinel_runs_total'),
    notifications: counter('sentinel_notifications_total'),
    failures: counter('sentinel_notification_failures_total'),
  };
  const runDuration = histogram('sentinel_run_duration_seconds');

  // Gauges without labels read 0 until set; before the first run (or while a
  // figure is unknown) they are left out instead, so nothing reports a fake 0.
  for (const unknown of [
    g.cacheUp,
    g.probeDuration,
    g.databaseUp,
    g.lastRun,
    g.lastSuccess,
    g.dedupeRows,
    g.backlog,
    g.minRows,
  ])
    unknown.remove({});
  g.leader.set(1);
  g.buildInfo.set({ version: opts.version ?? sentinelVersion(), node_version: process.version }, 1);
  for (const status of RUN_STATUSES) c.runs.inc({ status }, 0);
  const probeResults = new Set<string>();

  const setOrRemove = (metric: Gauge, value: number | undefined): void => {
    if (value === undefined || !Number.isFinite(value)) metric.remove({});
    else metric.set(value);
  };

  const pipelineGauges = [
    g.inFlight,
    g.oldestAge,
    g.stuck,
    g.errorRatio,
    g.dedupeRatio,
    g.bucketRows,
    g.finished,
    g.dedupeRows,
    g.backlog,
    g.lastBatchAge,
    g.thresholdSeconds,
    g.thresholdRatio,
    g.minRows,
  ];
  function observePipeline(pipeline: RunResult['pipeline']): void {
    for (const m of pipelineGauges) {
      m.reset();
      m.remove({}); // reset() leaves a gauge without labels at 0
    }
    if (!pipeline) return;
    const configured = configuredSourceLabels(pipeline.thresholds, maxSources);
    for (const status of IN_FLIGHT_STATUSES) g.inFlight.set({ status }, 0);
    for (const s of pipeline.in_flight) {
      g.inFlight.set({ status: s.status }, s.batch_count);
      g.oldestAge.set({ status: s.status }, s.oldest_age_seconds);
    }
    for (const status of PROCESSING_STATUSES) g.stuck.set({ status }, 0);
    for (const s of pipeline.stuck.by_status) g.stuck.set({ status: s.status }, s.batch_count);
    // Ratios rounded as the checks judge them (ratePct, 0.01 %), so `ratio > threshold` is the check's test.
    const ratio = (part: number, total: number): number => ratePct(part, total) / 100;
    const hourly = (labels: Labels, f: SourceFigures, dedupe: SourceFigures = f): void => {
      g.bucketRows.set(labels, f.total_rows);
      if (f.total_rows > 0) g.errorRatio.set(labels, ratio(f.error_rows, f.total_rows));
      if (dedupe.total_rows > 0) g.dedupeRatio.set(labels, ratio(dedupe.skipped_rows, dedupe.total_rows));
    };
    const overallDedupe = pipeline.hourly.overall_dedupe ?? pipeline.hourly.overall;
    hourly({}, pipeline.hourly.overall, overallDedupe);
    g.dedupeRows.set(overallDedupe.total_rows);
    for (const s of sourceSeries(pipeline.hourly.sources, maxSources, configured)) hourly({ source: s.source }, s);
    g.finished.set({ status: 'completed' }, pipeline.finished_last_hour.completed);
    g.finished.set({ status: 'failed' }, pipeline.finished_last_hour.failed);
    if (pipeline.backlog) g.backlog.set(pipeline.backlog.batch_count);
    for (const f of pipeline.freshness ?? []) {
      const source = sourceLabel(f.source);
      // No batch within the lookback: the lookback, a lower bound that is above expected_every.
      if (configured.has(source)) g.lastBatchAge.set({ source }, f.last_batch_age_seconds ?? f.lookback_seconds);
    }
    observeThresholds(pipeline.thresholds, configured);
  }

  function observeThresholds(thresholds: CheckThresholds | undefined, configured: ReadonlySet<string>): void {
    if (!thresholds) return;
    const set = (gauge: Gauge, t: { check: string; source?: string; value: number }): void => {
      if (t.source === undefined) gauge.set({ check: t.check }, t.value);
      else if (configured.has(sourceLabel(t.source)))
        gauge.set({ check: t.check, source: sourceLabel(t.source) }, t.value);
    };
    for (const t of thresholds.seconds) set(g.thresholdSeconds, t);
    for (const t of thresholds.ratios) set(g.thresholdRatio, t);
    if (thresholds.min_rows !== undefined) g.minRows.set(thresholds.min_rows);
  }

  function observeSchemaCache(summary: CheckSummary | undefined): void {
    const m = summary?.measurements ?? {};
    setOrRemove(g.probeDuration, typeof m.latency_ms === 'number' ? m.latency_ms / 1000 : undefined);
    setOrRemove(g.cacheUp, typeof m.up === 'boolean' ? Number(m.up) : undefined);
    for (const result of probeResults) g.probeResult.set({ result }, 0);
    if (typeof m.result === 'string') {
      probeResults.add(m.result);
      g.probeResult.set({ result: m.result }, 1);
    }
    if (typeof m.reloads === 'number' && Number.isFinite(m.reloads) && m.reloads > 0) c.reloads.inc(m.reloads);
  }

  /** The anomalies check's series ({@link anomalySeries}), replaced each run. */
  function observeAnomalies(summary: CheckSummary | undefined): void {
    g.anomalyScore.reset();
    g.anomalyLevel.reset();
    g.anomalySensitivity.reset();
    for (const e of anomalySeries(summary, maxSources)) {
      const labels = { source: e.source, metric: e.metric };
      g.anomalyScore.set(labels, e.score);
      g.anomalySensitivity.set(labels, e.sensitivity);
      g.anomalyLevel.set(labels, e.level);
    }
  }

  function observeChecks(result: RunResult): void {
    observeAnomalies(result.checks.find((ch) => ch.name === anomaliesCheck.name));
    for (const m of [g.checkStatus, g.checkDuration, g.measurement, g.alertsFiring, g.alertsSilenced]) m.reset();
    const checks = new Set<string>();
    for (const summary of result.checks) {
      checks.add(summary.name);
      for (const [measurement, value] of declaredMeasurements(summary)) {
        g.measurement.set({ check: summary.name, measurement }, value);
      }
      g.checkStatus.set({ check: summary.name }, checkStatus(summary, result.alerts));
      // A skipped check did not run: no duration (its status says -1). The runner
      // reports whole milliseconds, so durations have millisecond resolution.
      if (summary.outcome !== 'skipped' && Number.isFinite(summary.duration_ms) && summary.duration_ms >= 0) {
        g.checkDuration.set({ check: summary.name }, summary.duration_ms / 1000);
      }
    }
    for (const alert of result.alerts) checks.add(alert.check);
    for (const check of checks) {
      g.alertsSilenced.set({ check }, 0);
      for (const level of LEVELS) g.alertsFiring.set({ check, level }, 0);
    }
    for (const alert of result.alerts) {
      if (alert.silenced) g.alertsSilenced.inc({ check: alert.check });
      else g.alertsFiring.inc({ check: alert.check, level: alert.level });
    }
  }

  /**
   * The engine's per-notifier figures of one run: `sent` delivered, `failed` given
   * up (refused with a 4xx or expired), `errors` one message per failed attempt,
   * retryable or not. Attempts that failed but stay queued (retrying) are the
   * errors not accounted for by `failed`, at most the pending count.
   */
  function observeNotifications(notifications: RunResult['notifications']): void {
    g.pending.reset();
    for (const n of notifications ?? []) {
      const counts = notificationCounts(n);
      for (const result of NOTIFICATION_RESULTS)
        c.notifications.inc({ notifier: n.notifier, type: n.type, result }, counts[result]);
      // Every reason is exported from the first run on (at 0), so rate() sees the first failure.
      for (const reason of FAILURE_REASONS)
        c.failures.inc({ notifier: n.notifier, type: n.type, reason }, n.reasons?.[reason] ?? 0);
      g.pending.set({ notifier: n.notifier }, n.pending);
    }
  }

  /** A follower reports no run's figures (see PER_RUN_METRICS). */
  function clearRun(): void {
    for (const name of PER_RUN_METRICS) {
      const m = gauge(name);
      // reset() would leave a gauge without labels at 0: leave it out instead.
      m.reset();
      m.remove({});
    }
    probeResults.clear();
  }

  let leader = true;
  function setLeader(value: boolean): void {
    leader = value;
    g.leader.set(value ? 1 : 0);
    if (!value) {
      clearRun();
      // Until the next follower tick says whether the lock database answers.
      g.databaseUp.remove({});
    }
  }

  // A scrape storm (or several Prometheus servers) must not cost a registry walk and
  // a fresh set of process metrics per request: the text is rendered at most once per
  // RENDER_CACHE_MS and shared, and any change of Sentinel's own figures renders anew.
  let rendered: { at: number; version: number; text: Promise<string> } | undefined;
  let version = 0;
  const changed = (): void => {
    version++;
  };
  function render(): Promise<string> {
    const now = performance.now();
    if (!rendered || rendered.version !== version || now - rendered.at >= RENDER_CACHE_MS) {
      const text = registry.metrics();
      rendered = { at: now, version, text };
      // A failed render is not cached.
      text.catch(() => {
        if (rendered?.text === text) rendered = undefined;
      });
    }
    return rendered.text;
  }

  return {
    registry,
    contentType: registry.contentType,
    render,
    get leader() {
      return leader;
    },
    setLeader(value) {
      setLeader(value);
      changed();
    },
    observeStandby({ lockDatabaseReached }) {
      changed();
      if (leader) setLeader(false);
      else clearRun();
      g.databaseUp.set(lockDatabaseReached ? 1 : 0);
    },
    observeRun(result, options = {}) {
      changed();
      observePipeline(result.pipeline);
      observeSchemaCache(result.checks.find((ch) => ch.name === schemaCacheCheck.name));
      observeChecks(result);
      observeNotifications(result.notifications);

      c.runs.inc({ status: result.overall_status });
      const durationMs = options.durationMs ?? result.duration_ms;
      if (Number.isFinite(durationMs) && durationMs >= 0) runDuration.observe(durationMs / 1000);
      g.databaseUp.set(databaseReached(result) ? 1 : 0);
      const finished = Date.parse(result.timestamp);
      const finishedSeconds = (Number.isNaN(finished) ? Date.now() : finished) / 1000;
      g.lastRun.set(finishedSeconds);
      if (!result.checks.some((ch) => ch.outcome === 'failed')) g.lastSuccess.set(finishedSeconds);
    },
  };
}

/**
 * Feeds one finished run to `metrics` (/metrics, the OTLP export). A run that ends with
 * `role: 'follower'` (leadership lost during it: neither recorded nor notified) counts as a
 * follower tick: the new leader reports what it sees, so its figures are not exported.
 * `durationMs`: how long the whole run took (checks, alerting, heartbeat), for the histogram.
 */
export function observeResult(metrics: SentinelMetrics, result: RunResult, durationMs?: number): void {
  if (result.role === 'follower') metrics.setLeader(false);
  else metrics.observeRun(result, durationMs !== undefined ? { durationMs } : {});
}

/** Runs a metrics update; a metrics bug is one log line, never a stopped loop (the run was reported and alerted on). */
export function observeSafely(update: () => void, logger: Logger, redact: (text: string) => string): void {
  try {
    update();
  } catch (err) {
    logger.warn(`Could not update metrics: ${redact(err instanceof Error ? err.message : String(err))}`);
  }
}
