/**
 * Every metric Sentinel exports, in one list: the registry is built from it, the
 * docs/metrics.md table is checked against it, and the Grafana dashboards and Prometheus
 * rules may only reference names in it (a test enforces all three).
 *
 * Conventions (prometheus.io/docs/practices/naming): base units in the name
 * (`_seconds`), ratios 0–1 (`_ratio`), counters end in `_total`. Values describe
 * the last run; a scrape never queries the monitored database. With replicas only
 * the leader runs: a follower exports none of the last run's figures (the pipeline,
 * schema-cache probe, check, alert and outbox gauges; PER_RUN_METRICS in
 * registry.ts), only what its HELP says a follower reports.
 */
export interface MetricSpec {
  name: string;
  type: 'gauge' | 'counter' | 'histogram';
  help: string;
  labels: readonly string[];
}

export const METRICS = [
  // The pipeline, as the last run saw it.
  {
    name: 'sentinel_pipeline_batches_in_flight',
    type: 'gauge',
    help: 'Batches per in-flight status (uploaded, processing, validating, inserting).',
    labels: ['status'],
  },
  {
    name: 'sentinel_pipeline_oldest_batch_age_seconds',
    type: 'gauge',
    help: 'Age of the oldest batch per in-flight status, since its last status change.',
    labels: ['status'],
  },
  {
    name: 'sentinel_pipeline_stuck_batches',
    type: 'gauge',
    help: 'Batches in a processing status longer than checks.stuck_batches.threshold_minutes.',
    labels: ['status'],
  },
  {
    name: 'sentinel_pipeline_error_ratio',
    type: 'gauge',
    help:
      'Rejected rows / total rows of the hour bucket the error_spike check judges; no source label = overall ' +
      '(sources with their own threshold excluded).',
    labels: ['source'],
  },
  {
    name: 'sentinel_pipeline_dedupe_ratio',
    type: 'gauge',
    help: 'Skipped (duplicate) rows / total rows of the same hour bucket; no source label = overall.',
    labels: ['source'],
  },
  {
    name: 'sentinel_pipeline_bucket_rows',
    type: 'gauge',
    help: 'Total rows of the judged hour bucket (the denominator of the ratios).',
    labels: ['source'],
  },
  {
    name: 'sentinel_pipeline_dedupe_bucket_rows',
    type: 'gauge',
    help:
      'Total rows of the hour bucket the overall dedupe_rate judges (sources with their own ' +
      'dedupe_threshold_pct excluded); per source it is sentinel_pipeline_bucket_rows.',
    labels: [],
  },
  {
    name: 'sentinel_pipeline_backlog_batches',
    type: 'gauge',
    help: 'Batches waiting in uploaded longer than checks.queue_backlog.threshold_minutes.',
    labels: [],
  },
  {
    name: 'sentinel_pipeline_source_last_batch_age_seconds',
    type: 'gauge',
    help:
      'Per source with sources.<name>.expected_every: time since its newest batch; the whole lookback ' +
      '(at least 7 days) when it sent none within it.',
    labels: ['source'],
  },
  {
    name: 'sentinel_pipeline_batches_finished_last_hour',
    type: 'gauge',
    help: 'Batches that reached completed or failed in the last hour.',
    labels: ['status'],
  },
  {
    name: 'sentinel_schema_cache_up',
    type: 'gauge',
    help: '1 when PostgREST served ops.v_pipeline_health at the last probe (after any reload), 0 otherwise.',
    labels: [],
  },
  {
    name: 'sentinel_schema_cache_probe_duration_seconds',
    type: 'gauge',
    help: 'Latency of the last PostgREST probe.',
    labels: [],
  },
  {
    name: 'sentinel_schema_cache_probe_result',
    type: 'gauge',
    help: '1 for the outcome of the last probe (ok, PGRST002, PGRST205, timeout, ...), 0 for earlier outcomes.',
    labels: ['result'],
  },
  {
    name: 'sentinel_schema_cache_reloads_total',
    type: 'counter',
    help: "NOTIFY pgrst, 'reload schema' sent by this process.",
    labels: [],
  },
  // Sentinel itself.
  { name: 'sentinel_runs_total', type: 'counter', help: 'Completed runs by overall status.', labels: ['status'] },
  {
    name: 'sentinel_run_duration_seconds',
    type: 'histogram',
    help: 'Duration of a whole run (checks, alerting).',
    labels: [],
  },
  {
    name: 'sentinel_check_status',
    type: 'gauge',
    help: 'Last outcome per check: 0 ok, 1 warning, 2 critical, 3 failed to run, -1 skipped.',
    labels: ['check'],
  },
  {
    name: 'sentinel_check_duration_seconds',
    type: 'gauge',
    help: 'Duration of the last run of each check that ran (skipped checks are left out), to the millisecond.',
    labels: ['check'],
  },
  {
    name: 'sentinel_check_measurement',
    type: 'gauge',
    help:
      'Figures a check records and declares in its registry entry (docs/checks.md), from its last run; ' +
      'true is 1, false 0.',
    labels: ['check', 'measurement'],
  },
  {
    name: 'sentinel_check_threshold_seconds',
    type: 'gauge',
    help:
      'Duration thresholds the enabled checks applied in the last run (stuck_batches, queue_backlog, ' +
      'processing_time p95; source_freshness per source from expected_every).',
    labels: ['check', 'source'],
  },
  {
    name: 'sentinel_check_threshold_ratio',
    type: 'gauge',
    help:
      'Rate thresholds (0-1) the enabled checks applied in the last run (error_spike, dedupe_rate); no ' +
      'source label = overall, source = sources.<name> with its own threshold.',
    labels: ['check', 'source'],
  },
  {
    name: 'sentinel_check_min_rows',
    type: 'gauge',
    help: 'checks.error_spike.min_rows: an hour bucket with fewer rows is not judged (error_spike, dedupe_rate).',
    labels: [],
  },
  {
    name: 'sentinel_anomaly_score',
    type: 'gauge',
    help:
      "anomalies: the last complete hour's score per source and metric (signed, in normal-equivalent " +
      "standard deviations from the source's own band for that hour of the week; docs/anomalies.md). " +
      'Sources beyond metrics.max_sources share source="other" (the most unusual of them).',
    labels: ['source', 'metric'],
  },
  {
    name: 'sentinel_anomaly_level',
    type: 'gauge',
    help:
      "anomalies: the check's verdict per source and metric for the last complete hour: 0 usual, 1 warning, " +
      '2 critical (the score with the rules of docs/anomalies.md: direction, minimum change, a marginal hour ' +
      'confirmed by the hour before).',
    labels: ['source', 'metric'],
  },
  {
    name: 'sentinel_anomaly_sensitivity',
    type: 'gauge',
    help:
      'anomalies: the sensitivity applied to each sentinel_anomaly_score series (checks.anomalies or ' +
      'sources.<name>.anomalies): |score| at or above it is a warning, at twice it critical.',
    labels: ['source', 'metric'],
  },
  {
    name: 'sentinel_alerts_firing',
    type: 'gauge',
    help: 'Alerts of the last run by check and level (silenced ones excluded).',
    labels: ['check', 'level'],
  },
  {
    name: 'sentinel_alerts_silenced',
    type: 'gauge',
    help: 'Alerts of the last run matched by a silence.',
    labels: ['check'],
  },
  {
    name: 'sentinel_notifications_total',
    type: 'counter',
    help: 'Notification deliveries by notifier and result (sent, failed, retrying).',
    labels: ['notifier', 'type', 'result'],
  },
  {
    name: 'sentinel_notification_failures_total',
    type: 'counter',
    help:
      'Failed delivery attempts by notifier and reason: rejected (4xx), rate_limited (429), server_error ' +
      '(5xx), timeout, network, expired (given up after max_outbox_age).',
    labels: ['notifier', 'type', 'reason'],
  },
  {
    name: 'sentinel_notifications_pending',
    type: 'gauge',
    help: 'Notifications waiting in the outbox per notifier.',
    labels: ['notifier'],
  },
  {
    name: 'sentinel_database_up',
    type: 'gauge',
    help:
      '1 when the last run reached the monitored database, 0 when it did not. On a follower replica ' +
      '(sentinel_leader 0), whether it reached the lock database at its last attempt to take the leader lock ' +
      '(the monitored database unless replicas.state_database_url is set).',
    labels: [],
  },
  {
    name: 'sentinel_last_run_timestamp_seconds',
    type: 'gauge',
    help: 'Unix time the last run of this process finished (on a follower: its last run as leader, if any).',
    labels: [],
  },
  {
    name: 'sentinel_last_successful_run_timestamp_seconds',
    type: 'gauge',
    help: 'Unix time of the last run in which every check ran (none failed).',
    labels: [],
  },
  {
    name: 'sentinel_leader',
    type: 'gauge',
    help:
      '1 when this process runs the checks that act and sends notifications, 0 on a standby replica (which ' +
      'exports no per-run figures).',
    labels: [],
  },
  {
    name: 'sentinel_build_info',
    type: 'gauge',
    help: 'Always 1; labels carry the version.',
    labels: ['version', 'node_version'],
  },
] as const satisfies readonly MetricSpec[];

export type MetricName = (typeof METRICS)[number]['name'];
