/**
 * Datadog's two ways in for Sentinel's metrics, and the one transform between their dashboards.
 *
 * - The Agent's OpenMetrics check scraping `/metrics` (docs/datadog.md, section 1):
 *   `sentinel.<name>`, counters as `.count`, the histogram as a distribution plus `.sum` and `.count`,
 *   the instance's `environment` tag, and the service check `sentinel.openmetrics.health`.
 * - OTLP ingest (the Agent's `otlp_config`, the DDOT Collector, a Collector's datadog exporter)
 *   of what Sentinel pushes over OTLP/HTTP (src/metrics/otlp.ts): the OTLP metric names unchanged,
 *   a monotonic Sum as a count, a Gauge as a gauge, an explicit-bucket Histogram as a distribution
 *   (`histograms.mode: distributions`, the default, without aggregation metrics), data point
 *   attributes as tags, and only the resource attributes Datadog maps to its own conventions.
 *
 * datadog/sentinel-overview-otlp.json is {@link toOtlpDashboard} of datadog/sentinel-overview.json,
 * nothing else: vendor-dashboards.test.ts fails when the committed file differs from it, and
 * `UPDATE_DASHBOARDS=1 npx vitest run test/dashboards/vendor-dashboards.test.ts` rewrites it.
 */

/** A metric family as `/metrics` exports it. */
export interface Family {
  name: string;
  type: string;
  labels: readonly string[];
}

// ───────────────────────── The OpenMetrics check

/**
 * The OpenMetrics check (Agent ≥ 7, `openmetrics_endpoint`) as docs/datadog.md configures it:
 * `namespace: sentinel`, `raw_metric_prefix: sentinel_`, `collect_counters_with_distributions: true`.
 * Its parser names a counter family without `_total`; the check then sends
 * `<namespace>.<family>.count` (monotonic count) for a counter, `<namespace>.<family>` for a gauge,
 * and for a histogram a distribution `<namespace>.<family>` plus `.sum` and `.count`.
 */
export const DD_NAMESPACE = 'sentinel';
export const DD_RAW_PREFIX = 'sentinel_';

/** The family name the check matches `metrics:` entries against. */
export function datadogFamily(name: string, type: string): string {
  const trimmed = name.startsWith(DD_RAW_PREFIX) ? name.slice(DD_RAW_PREFIX.length) : name;
  return type === 'counter' && trimmed.endsWith('_total') ? trimmed.slice(0, -'_total'.length) : trimmed;
}

export type DatadogKind = 'gauge' | 'count' | 'distribution';

export interface DatadogMetric {
  name: string;
  family: Family;
  kind: DatadogKind;
}

/** What the OpenMetrics check sends for one family. */
export function datadogMetrics(f: Family): DatadogMetric[] {
  const base = `${DD_NAMESPACE}.${datadogFamily(f.name, f.type)}`;
  if (f.type === 'counter') return [{ name: `${base}.count`, family: f, kind: 'count' }];
  if (f.type === 'histogram' || f.type === 'summary') {
    return [
      { name: base, family: f, kind: 'distribution' },
      { name: `${base}.sum`, family: f, kind: 'count' },
      { name: `${base}.count`, family: f, kind: 'count' },
    ];
  }
  return [{ name: base, family: f, kind: 'gauge' }];
}

/** The service check the OpenMetrics check sends per scrape: Datadog's `up`. */
export const DD_HEALTH_CHECK = `${DD_NAMESPACE}.openmetrics.health`;

// ───────────────────────── OTLP ingest

/**
 * The Datadog metric an OTLP metric becomes, by its OTLP shape (Sentinel sends monotonic Sums,
 * Gauges and explicit-bucket Histograms; the SDK's `DataPointType`: HISTOGRAM 0, GAUGE 2, SUM 3).
 * https://docs.datadoghq.com/metrics/open_telemetry/otlp_metric_types/ : the name is kept; a
 * monotonic Sum is a COUNT whether delta or cumulative (the Agent takes the difference of
 * consecutive cumulative points); a Gauge is a GAUGE; a Histogram is a DISTRIBUTION in the default
 * `histograms.mode: distributions`, and `<name>.sum`/`.count`/`.min`/`.max` exist only with
 * `send_aggregation_metrics: true` (off by default: datadog-agent pkg/config/setup/otlp.go).
 */
export function datadogKindOfOtlp(dataPointType: number, isMonotonic?: boolean): DatadogKind | undefined {
  if (dataPointType === 3) return isMonotonic ? 'count' : 'gauge';
  if (dataPointType === 2) return 'gauge';
  if (dataPointType === 0 || dataPointType === 1) return 'distribution';
  return undefined;
}

/**
 * Tags Datadog derives from Sentinel's resource attributes (src/metrics/otlp.ts resourceAttributes):
 * by default only the mapped semantic conventions become metric tags, `resource_attributes_as_tags`
 * being off (https://docs.datadoghq.com/opentelemetry/mapping/semantic_mapping/):
 * `deployment.environment.name` → `env` (Agent ≥ 7.58.0, Datadog exporter ≥ v0.110.0),
 * `service.name` → `service`, `service.version` → `version`. `service.instance.id` becomes no tag.
 */
export const DD_OTLP_RESOURCE_TAGS: Readonly<Record<string, string>> = {
  'deployment.environment.name': 'env',
  'service.name': 'service',
  'service.version': 'version',
};

/**
 * The host: `host.name` is the hostname when no Datadog-, cloud- or Kubernetes-specific attribute
 * comes first (https://docs.datadoghq.com/opentelemetry/mapping/hostname/), queried as `host`.
 */
export const DD_OTLP_HOST_TAG = 'host';

/** The template variables' tags on the OTLP dashboard: `$environment` is Datadog's `env`. */
export const OTLP_TEMPLATE_PREFIXES: Readonly<Record<string, string>> = {
  environment: DD_OTLP_RESOURCE_TAGS['deployment.environment.name']!,
  host: DD_OTLP_HOST_TAG,
};

// ───────────────────────── The transform

export const OPENMETRICS_DASHBOARD_FILE = 'datadog/sentinel-overview.json';
export const OTLP_DASHBOARD_FILE = 'datadog/sentinel-overview-otlp.json';
export const REGENERATE_COMMAND = 'UPDATE_DASHBOARDS=1 npx vitest run test/dashboards/vendor-dashboards.test.ts';

const OTLP_TITLE_SUFFIX = ' (OTLP)';

const OTLP_DESCRIPTION =
  `Generated from ${OPENMETRICS_DASHBOARD_FILE} (test/dashboards/datadog-otlp.ts): the same panels on the ` +
  'metrics `sentinel serve` pushes over OTLP/HTTP to the Datadog Agent (otlp_config), the DDOT Collector or a ' +
  "Collector's datadog exporter: names as on /metrics (`sentinel_runs_total`), `env` from " +
  'deployment.environment.name, `host` from host.name (see docs/datadog.md). Per-run figures come from the ' +
  'leader only (a follower exports none), so the widgets take the max across hosts.';

/** The OpenMetrics check's service check has no OTLP counterpart: the closest honest widget. */
const REPLICAS_UP_WIDGET = {
  definition: {
    type: 'timeseries',
    title: 'Replicas up (1 per host while its OTLP exports arrive: sentinel_build_info)',
    show_legend: true,
    requests: [{ q: 'max:sentinel_build_info{$environment,$host} by {host}', display_type: 'bars' }],
  },
};

/** Sentences about the OpenMetrics check's own signals, and what they say over OTLP. */
const TEXT_REWRITES: readonly (readonly [string, string])[] = [
  [
    'and the Agent reports a failed scrape as the service check `sentinel.openmetrics.health`',
    'and OTLP has no scrape to fail: a replica whose exports stop drops out of *Replicas up* ' +
      '(`sentinel_build_info`, part of every export)',
  ],
];

interface Json {
  [k: string]: unknown;
}

/** OpenMetrics-check name → OTLP-ingested name and kind, for every family; `.sum`/`.count` of a histogram: none. */
function renames(families: readonly Family[]): Map<string, { name: string; kind: DatadogKind } | null> {
  const out = new Map<string, { name: string; kind: DatadogKind } | null>();
  for (const f of families) {
    for (const m of datadogMetrics(f)) {
      const aggregate = m.kind === 'count' && (f.type === 'histogram' || f.type === 'summary');
      out.set(m.name, aggregate ? null : { name: f.name, kind: m.kind });
    }
  }
  return out;
}

/** One metric query, rewritten; throws on a metric it cannot carry over. */
function rewriteQuery(query: string, names: ReturnType<typeof renames>, families: readonly Family[]): string {
  let q = query;
  // A histogram's mean (`.sum / .count`, which OTLP ingest sends only with send_aggregation_metrics):
  // the distribution's own `avg:` (sum / count of the values, as the OTLP metric types page shows).
  for (const f of families.filter((x) => x.type === 'histogram')) {
    const base = `${DD_NAMESPACE}.${datadogFamily(f.name, f.type)}`.replace(/\./g, '\\.');
    const mean = new RegExp(
      String.raw`sum:${base}\.sum\{([^}]*)\}\.as_count\(\)\s*/\s*sum:${base}\.count\{\1\}\.as_count\(\)`,
      'g',
    );
    q = q.replace(mean, (_, filters: string) => `avg:${f.name}{${filters}}`);
  }
  return q.replace(/\b(avg|sum|min|max|p\d{2}(?:\.\d+)?):([a-zA-Z][a-zA-Z0-9_.]*)\{/g, (whole, agg, metric) => {
    if (!metric.includes('.')) return whole; // already an OTLP name (the mean above)
    const to = names.get(metric);
    if (!to) throw new Error(`no OTLP counterpart for ${metric} in: ${query}`);
    return `${agg}:${to.name}{`;
  });
}

/** Prose (notes): the sentences above, then every backticked OpenMetrics-check name. */
function rewriteText(text: string, names: ReturnType<typeof renames>): string {
  let t = text;
  for (const [from, to] of TEXT_REWRITES) t = t.split(from).join(to);
  return t.replace(/`(sentinel\.[a-z0-9_.]+)`/g, (_whole, metric: string) => {
    const to = names.get(metric);
    if (!to) throw new Error(`no OTLP counterpart for ${metric} in a note: ${text}`);
    return `\`${to.name}\``;
  });
}

function rewriteWidget(widget: Json, names: ReturnType<typeof renames>, families: readonly Family[]): Json {
  const def = widget.definition as Json;
  if (def.type === 'check_status') {
    if (def.check !== DD_HEALTH_CHECK) throw new Error(`no OTLP counterpart for the service check ${def.check}`);
    return structuredClone(REPLICAS_UP_WIDGET);
  }
  const out: Json = { ...def };
  if (typeof def.content === 'string') out.content = rewriteText(def.content, names);
  if (Array.isArray(def.requests)) {
    out.requests = (def.requests as Json[]).map((r) => {
      const req: Json = { ...r };
      if (typeof r.q === 'string') req.q = rewriteQuery(r.q, names, families);
      if (Array.isArray(r.queries)) {
        req.queries = (r.queries as Json[]).map((x) => ({
          ...x,
          query: rewriteQuery(String(x.query), names, families),
        }));
      }
      return req;
    });
  }
  if (Array.isArray(def.widgets)) out.widgets = (def.widgets as Json[]).map((w) => rewriteWidget(w, names, families));
  return { ...widget, definition: out };
}

/**
 * The OTLP dashboard of the OpenMetrics one: same groups, widgets and titles; metric names as
 * OTLP ingest sends them; `$environment` on `env`; the service-check widget replaced by
 * {@link REPLICAS_UP_WIDGET}. Pure and deterministic; throws rather than carry over anything that
 * exists only with the OpenMetrics check, so a new widget cannot slip through unmapped.
 */
export function toOtlpDashboard(openMetrics: unknown, families: readonly Family[]): Json {
  const d = structuredClone(openMetrics) as Json;
  const names = renames(families);
  const out: Json = {};
  for (const [k, v] of Object.entries(d)) {
    if (k === 'title') out.title = `${v}${OTLP_TITLE_SUFFIX}`;
    else if (k === 'description') out.description = OTLP_DESCRIPTION;
    else if (k === 'template_variables') {
      out.template_variables = (v as Json[]).map((tv) => {
        const prefix = OTLP_TEMPLATE_PREFIXES[String(tv.name)];
        if (!prefix) throw new Error(`template variable ${tv.name} has no OTLP tag`);
        return { ...tv, prefix };
      });
    } else if (k === 'widgets') out.widgets = (v as Json[]).map((w) => rewriteWidget(w, names, families));
    else out[k] = v;
  }
  const text = JSON.stringify(out);
  const left = /openmetrics|[:`]sentinel\.[a-z]/i.exec(text);
  if (left)
    throw new Error(
      `OpenMetrics-check wording left in the OTLP dashboard: …${text.slice(left.index, left.index + 60)}…`,
    );
  return out;
}

/** The file's text: two-space JSON and a final newline, as datadog/sentinel-overview.json is written. */
export const renderDashboard = (d: unknown): string => `${JSON.stringify(d, null, 2)}\n`;
