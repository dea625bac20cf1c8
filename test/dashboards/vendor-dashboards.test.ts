/**
 * The Datadog dashboards (datadog/sentinel-overview.json for the OpenMetrics check, and
 * datadog/sentinel-overview-otlp.json for OTLP ingest, generated from it by
 * test/dashboards/datadog-otlp.ts; both the body of `POST /api/v1/dashboard`) and the
 * CloudWatch one (cloudwatch/sentinel-overview.json, the `DashboardBody` of `PutDashboard`)
 * against the documented schemas, against what Sentinel really emits, and against the
 * Grafana overview they mirror:
 *
 * - structure: required fields, allowed widget types and enums, Datadog's ordered
 *   layout with `reflow_type: auto` (no widget layouts), groups one level deep,
 *   every template variable declared and used; CloudWatch's 24-column grid
 *   (x + width ≤ 24, no overlaps), 1–100 metrics per widget, unique expression ids;
 * - names: every metric a query names is one of src/metrics/names.ts (or a
 *   prom-client default), through the mapping docs/datadog.md and
 *   docs/cloudwatch-dashboard.md document (for OTLP, read off the real OTLP conversion),
 *   with only the tags/dimensions it has;
 * - derivation: the committed OTLP dashboard is exactly the transform of the OpenMetrics one
 *   (`UPDATE_DASHBOARDS=1` rewrites it);
 * - parity: every metric the Grafana overview queries appears in each dashboard
 *   (CloudWatch: except the process metrics an EMF run does not write, and `up`),
 *   and every Grafana panel has a widget of the same title.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { OTLP_TEMPORALITIES } from '../../src/config/otlp.js';
import { METRICS } from '../../src/metrics/names.js';
import { type PromMetricJson, toMetricData } from '../../src/metrics/otlp.js';
import * as registry from '../../src/metrics/registry.js';
import { DROPPED_DEFAULT_METRICS } from '../../src/metrics/registry.js';
import { renderEmf } from '../../src/report/emf.js';
import type { RunResult } from '../../src/types.js';
import { hourlyFigures } from '../helpers/run-figures.js';
import {
  type DatadogKind,
  DD_HEALTH_CHECK,
  DD_NAMESPACE,
  DD_OTLP_HOST_TAG,
  DD_OTLP_RESOURCE_TAGS,
  DD_RAW_PREFIX,
  datadogFamily,
  datadogKindOfOtlp,
  datadogMetrics,
  type Family,
  OPENMETRICS_DASHBOARD_FILE,
  OTLP_DASHBOARD_FILE,
  OTLP_TEMPLATE_PREFIXES,
  REGENERATE_COMMAND,
  renderDashboard,
  toOtlpDashboard,
} from './datadog-otlp.js';
import { loadDashboard, overviewQueries, queryPanels, ROOT } from './grafana.js';

const readJson = <T>(file: string): T => JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as T;

/** names.ts and the prom-client default metrics createMetrics() keeps. */
async function exportedFamilies(): Promise<Family[]> {
  const families: Family[] = METRICS.map((m) => ({ name: m.name, type: m.type, labels: m.labels }));
  const defaults = new client.Registry();
  client.collectDefaultMetrics({ register: defaults });
  const dropped = new Set<string>(DROPPED_DEFAULT_METRICS);
  for (const m of await defaults.getMetricsAsJSON()) {
    if (dropped.has(m.name)) continue;
    const labels = [...new Set(m.values.flatMap((v) => Object.keys(v.labels)))].filter((l) => l !== 'le');
    families.push({ name: m.name, type: m.type as unknown as string, labels });
  }
  defaults.clear();
  return families;
}

/** The base metric a Grafana series belongs to (histogram series → the histogram). */
const baseName = (series: string): string => {
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  return m && METRICS.some((x) => x.name === m[1] && x.type === 'histogram') ? m[1]! : series;
};

/** Every metric the Grafana overview queries, as base names. */
const grafanaMetrics = (): Set<string> =>
  new Set(overviewQueries().flatMap((q) => q.refs.map((r) => baseName(r.name))));

// ───────────────────────── Datadog

interface DdRequest {
  q?: string;
  queries?: { data_source: string; name: string; query: string }[];
  formulas?: { formula: string; alias?: string }[];
  response_format?: string;
  display_type?: string;
  style?: { palette?: string; line_type?: string; line_width?: string };
  aggregator?: string;
  conditional_formats?: { comparator: string; value: number; palette: string }[];
  [k: string]: unknown;
}
interface DdDefinition {
  type: string;
  title?: string;
  requests?: DdRequest[];
  widgets?: DdWidget[];
  layout_type?: string;
  content?: string;
  check?: string;
  grouping?: string;
  tags?: string[];
  markers?: { value: string; display_type?: string }[];
  [k: string]: unknown;
}
interface DdWidget {
  definition: DdDefinition;
  layout?: unknown;
  id?: number;
}
interface DdDashboard {
  title: string;
  description?: string;
  layout_type: string;
  reflow_type?: string;
  widgets: DdWidget[];
  template_variables?: { name: string; prefix?: string; available_values?: string[]; defaults?: string[] }[];
  [k: string]: unknown;
}

const datadog = (): DdDashboard => readJson<DdDashboard>(OPENMETRICS_DASHBOARD_FILE);

/** The OTLP dashboard as the transform makes it; UPDATE_DASHBOARDS=1 writes it before anything reads the file. */
const otlpDashboardText = renderDashboard(toOtlpDashboard(datadog(), await exportedFamilies()));
if (process.env.UPDATE_DASHBOARDS === '1') writeFileSync(join(ROOT, OTLP_DASHBOARD_FILE), otlpDashboardText);

/** Every widget, groups' children included. */
const ddWidgets = (d: DdDashboard): DdWidget[] =>
  d.widgets.flatMap((w) => [w, ...(w.definition.type === 'group' ? (w.definition.widgets ?? []) : [])]);

/** Every metric query string of the dashboard, with where it is. */
function ddQueries(d: DdDashboard): { where: string; query: string }[] {
  const out: { where: string; query: string }[] = [];
  for (const w of ddWidgets(d)) {
    for (const r of w.definition.requests ?? []) {
      if (r.q) out.push({ where: w.definition.title ?? w.definition.type, query: r.q });
      for (const q of r.queries ?? []) out.push({ where: `${w.definition.title} ${q.name}`, query: q.query });
    }
  }
  return out;
}

interface DdRef {
  aggregation: string;
  metric: string;
  filters: string[];
  groups: string[];
  modifiers: string;
}

/** `agg:metric{filters} by {groups}.modifiers()` terms of a metric query. */
function ddRefs(query: string): DdRef[] {
  const refs: DdRef[] = [];
  const re = new RegExp(
    String.raw`(avg|sum|min|max|p\d{2}(?:\.\d+)?):([a-zA-Z][a-zA-Z0-9_.]*)\{([^}]*)\}` +
      String.raw`(?:\s*by\s*\{([^}]*)\})?((?:\.[a-z_]+\([^)]*\))*)`,
    'g',
  );
  for (const m of query.matchAll(re)) {
    refs.push({
      aggregation: m[1]!,
      metric: m[2]!,
      filters: m[3]!.split(',').map((s) => s.trim()),
      groups: m[4] ? m[4].split(',').map((s) => s.trim()) : [],
      modifiers: m[5] ?? '',
    });
  }
  return refs;
}

describe('ddRefs (the query scanner these checks rely on)', () => {
  it('reads aggregation, metric, filters, groups and modifiers', () => {
    expect(
      ddRefs('sum:sentinel.runs.count{$environment,$host,status:ok} by {status,host}.as_count().rollup(sum, 3600)'),
    ).toEqual([
      {
        aggregation: 'sum',
        metric: 'sentinel.runs.count',
        filters: ['$environment', '$host', 'status:ok'],
        groups: ['status', 'host'],
        modifiers: '.as_count().rollup(sum, 3600)',
      },
    ]);
    expect(ddRefs('max:a.b{*} - max:c{x:y}').map((r) => r.metric)).toEqual(['a.b', 'c']);
    expect(ddRefs('p95:sentinel.run_duration_seconds{*}')[0]!.aggregation).toBe('p95');
  });
});

/** The tag each template variable filters on: the check's instance tag, or the one OTLP ingest derives. */
const DATADOG_BODIES: readonly (readonly [string, Readonly<Record<string, string>>])[] = [
  [OPENMETRICS_DASHBOARD_FILE, { environment: 'environment', host: 'host' }],
  [OTLP_DASHBOARD_FILE, OTLP_TEMPLATE_PREFIXES],
];

describe.each(DATADOG_BODIES)('%s: the POST /api/v1/dashboard body', (file, prefixes) => {
  const d = readJson<DdDashboard>(file);
  const widgets = ddWidgets(d);

  it('has the required fields and only documented top-level ones', () => {
    expect(typeof d.title).toBe('string');
    expect(d.title.length).toBeGreaterThan(0);
    expect(['ordered', 'free']).toContain(d.layout_type);
    expect(Array.isArray(d.widgets)).toBe(true);
    const allowed = [
      'title',
      'description',
      'layout_type',
      'reflow_type',
      'widgets',
      'template_variables',
      'template_variable_presets',
      'notify_list',
      'tags',
    ];
    expect(Object.keys(d).filter((k) => !allowed.includes(k))).toEqual([]);
    // Read-only fields of the response must not be sent.
    for (const k of ['id', 'url', 'author_handle', 'created_at', 'modified_at']) expect(d).not.toHaveProperty(k);
  });

  it('uses the ordered layout with reflow_type auto, so no widget carries a layout', () => {
    expect(d.layout_type).toBe('ordered');
    expect(d.reflow_type).toBe('auto');
    for (const w of widgets) expect(w.layout, w.definition.title).toBeUndefined();
  });

  it('groups widgets one level deep, each group ordered and titled', () => {
    const groups = d.widgets.filter((w) => w.definition.type === 'group');
    expect(groups.length).toBeGreaterThanOrEqual(5);
    for (const g of groups) {
      expect(g.definition.layout_type, g.definition.title).toBe('ordered');
      expect(g.definition.title).toBeTruthy();
      expect(g.definition.widgets?.length, g.definition.title).toBeGreaterThan(0);
      for (const c of g.definition.widgets!) expect(c.definition.type, g.definition.title).not.toBe('group');
    }
  });

  it('uses only widget types it knows, each with its required fields and valid enums', () => {
    const types = new Set(['group', 'timeseries', 'query_value', 'query_table', 'note', 'check_status']);
    for (const w of widgets) {
      const def = w.definition;
      const where = def.title ?? def.type;
      expect(types.has(def.type), `${where}: type ${def.type}`).toBe(true);
      if (def.type === 'note') expect(def.content?.length, where).toBeGreaterThan(20);
      if (def.type === 'check_status') {
        expect(def.check, where).toBeTruthy();
        expect(['check', 'cluster']).toContain(def.grouping);
      }
      if (!['timeseries', 'query_value', 'query_table'].includes(def.type)) continue;
      expect(def.title, where).toBeTruthy();
      expect(def.requests?.length, `${where}: requests`).toBeGreaterThan(0);
      if (def.type === 'query_value') expect(def.requests!.length, where).toBe(1);
      for (const r of def.requests!) {
        const formulaStyle = r.queries !== undefined || r.formulas !== undefined;
        expect(formulaStyle !== (r.q !== undefined), `${where}: q or queries+formulas, not both`).toBe(true);
        if (formulaStyle) {
          expect(r.queries?.length, where).toBeGreaterThan(0);
          expect(r.formulas?.length, where).toBeGreaterThan(0);
          expect(r.response_format, where).toBe(def.type === 'timeseries' ? 'timeseries' : 'scalar');
          const names = r.queries!.map((q) => q.name);
          expect(new Set(names).size, where).toBe(names.length);
          for (const q of r.queries!) expect(q.data_source, where).toBe('metrics');
          for (const f of r.formulas!) {
            for (const id of f.formula.match(/[a-z_][a-z0-9_]*/gi) ?? [])
              expect(names, `${where}: ${id}`).toContain(id);
          }
        }
        if (def.type === 'timeseries') {
          expect(['line', 'bars', 'area']).toContain(r.display_type);
          if (r.style?.line_type) expect(['dashed', 'dotted', 'solid']).toContain(r.style.line_type);
          if (r.style?.line_width) expect(['normal', 'thick', 'thin']).toContain(r.style.line_width);
        } else if (r.q) {
          expect(['avg', 'last', 'max', 'min', 'sum'], `${where}: aggregator`).toContain(r.aggregator);
        }
        for (const c of r.conditional_formats ?? []) {
          // WidgetComparator of the v1 API: no equality.
          expect(['>', '>=', '<', '<='], `${where}: comparator`).toContain(c.comparator);
          expect(typeof c.value, where).toBe('number');
          expect(c.palette, where).toMatch(/^(white_on_(red|green|yellow|gray)|(red|green|yellow|gray)_on_white)$/);
        }
      }
      for (const m of def.markers ?? []) {
        expect(m.value, where).toMatch(/^y\s*=\s*-?[\d.]+$/);
        expect(m.display_type, where).toMatch(/^(error|warning|info|ok) (dashed|solid|bold)$/);
      }
    }
  });

  it('sets only the fields the v1 API models define for each widget, request and variable', () => {
    // From the v1 models (TimeseriesWidgetDefinition, TimeseriesWidgetRequest, QueryValueWidgetDefinition,
    // TableWidgetRequest, NoteWidgetDefinition, CheckStatusWidgetDefinition, GroupWidgetDefinition,
    // DashboardTemplateVariable), the ones this dashboard can use.
    const common = ['type', 'title', 'title_align', 'title_size', 'time', 'custom_links'];
    const definitionKeys: Record<string, string[]> = {
      timeseries: [
        ...common,
        'requests',
        'markers',
        'events',
        'show_legend',
        'legend_layout',
        'legend_columns',
        'legend_size',
        'yaxis',
        'right_yaxis',
      ],
      query_value: [
        ...common,
        'requests',
        'autoscale',
        'custom_unit',
        'precision',
        'text_align',
        'timeseries_background',
      ],
      query_table: [...common, 'requests', 'has_search_bar'],
      note: [
        'type',
        'content',
        'background_color',
        'font_size',
        'has_padding',
        'show_tick',
        'text_align',
        'tick_edge',
        'tick_pos',
        'vertical_align',
      ],
      check_status: [...common, 'check', 'group', 'group_by', 'grouping', 'tags'],
      group: ['type', 'title', 'layout_type', 'widgets', 'show_title', 'background_color', 'banner_img'],
    };
    const metricRequest = ['q', 'queries', 'formulas', 'response_format', 'conditional_formats'];
    const requestKeys: Record<string, string[]> = {
      timeseries: [...metricRequest, 'display_type', 'style', 'metadata', 'on_right_yaxis'],
      query_value: [...metricRequest, 'aggregator'],
      query_table: [...metricRequest, 'aggregator', 'alias', 'limit', 'order', 'cell_display_mode'],
    };
    const problems: string[] = [];
    for (const w of widgets) {
      const def = w.definition;
      for (const k of Object.keys(def)) {
        if (!definitionKeys[def.type]?.includes(k)) problems.push(`${def.title ?? def.type}: ${def.type}.${k}`);
      }
      for (const r of def.requests ?? []) {
        for (const k of Object.keys(r)) {
          if (!requestKeys[def.type]?.includes(k)) problems.push(`${def.title}: request.${k}`);
        }
      }
      for (const k of Object.keys(w)) if (!['definition', 'id', 'layout'].includes(k)) problems.push(`widget.${k}`);
    }
    for (const v of d.template_variables ?? []) {
      for (const k of Object.keys(v)) {
        if (!['name', 'prefix', 'available_values', 'default', 'defaults'].includes(k)) problems.push(`variable.${k}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('declares every template variable it uses and uses every one it declares', () => {
    const declared = (d.template_variables ?? []).map((v) => v.name);
    expect(declared).toEqual(['environment', 'host']);
    for (const v of d.template_variables!) expect(v.prefix, v.name).toBe(prefixes[v.name]);
    const text = JSON.stringify(d.widgets);
    const used = new Set([...text.matchAll(/\$([a-zA-Z_][a-zA-Z0-9_]*)/g)].map((m) => m[1]!));
    expect([...used].sort()).toEqual([...declared].sort());
    // Every metric query is scoped by both.
    for (const q of ddQueries(d)) {
      for (const r of ddRefs(q.query))
        expect(r.filters, `${q.where}: ${r.metric}`).toEqual(expect.arrayContaining(['$environment', '$host']));
    }
  });

  it('never mixes the symbolic (",", "!") and the word (AND, OR, IN) filter syntaxes', () => {
    for (const q of ddQueries(d)) {
      for (const r of ddRefs(q.query)) {
        expect(r.filters.join(','), q.where).not.toMatch(/\b(AND|OR|NOT|IN)\b/i);
      }
    }
  });

  it('draws the thresholds Sentinel exports as dashed series, never as fixed numbers', () => {
    for (const w of widgets.filter((x) => x.definition.type === 'timeseries')) {
      for (const r of w.definition.requests!) {
        const q = r.q ?? '';
        if (/check_threshold_|check_min_rows/.test(q)) expect(r.style?.line_type, w.definition.title).toBe('dashed');
      }
    }
    const thresholdChecks = [
      'stuck_batches',
      'queue_backlog',
      'processing_time',
      'source_freshness',
      'error_spike',
      'dedupe_rate',
    ];
    const queries = ddQueries(d).map((q) => q.query);
    for (const c of thresholdChecks) {
      expect(
        queries.some((q) => q.includes('check_threshold_') && q.includes(`check:${c}`)),
        c,
      ).toBe(true);
    }
  });
});

/**
 * What is wrong with a Datadog dashboard's queries against what the ingest path produces: `lookup`
 * gives a metric's kind and tags (undefined: not produced). Tags filtered or grouped on must exist,
 * percentiles only of distributions (a distribution only through `distributionAggregation`), counts
 * with `.as_count()` or `.as_rate()`.
 */
function queryProblems(
  d: DdDashboard,
  missing: string,
  distributionAggregation: RegExp,
  distributionHint: string,
  lookup: (metric: string) => { kind: string; tags: Set<string> } | undefined,
): { problems: string[]; count: number } {
  const problems: string[] = [];
  let count = 0;
  for (const q of ddQueries(d)) {
    const refs = ddRefs(q.query);
    expect(refs.length, `${q.where}: no metric in ${q.query}`).toBeGreaterThan(0);
    for (const r of refs) {
      count++;
      const m = lookup(r.metric);
      if (!m) {
        problems.push(`${q.where}: ${r.metric} ${missing}`);
        continue;
      }
      for (const f of r.filters.filter((x) => !x.startsWith('$'))) {
        const key = f.replace(/^!/, '').split(':')[0]!;
        if (!m.tags.has(key)) problems.push(`${q.where}: ${r.metric} has no tag ${key}`);
      }
      for (const g of r.groups)
        if (!m.tags.has(g)) problems.push(`${q.where}: ${r.metric} has no tag ${g} to group by`);
      if (/^p\d/.test(r.aggregation) && m.kind !== 'distribution')
        problems.push(`${q.where}: ${r.aggregation} of ${r.metric}, which is not a distribution`);
      if (m.kind === 'distribution' && !distributionAggregation.test(r.aggregation))
        problems.push(`${q.where}: ${r.aggregation} of ${r.metric}: ${distributionHint}`);
      if (m.kind === 'count' && !/\.as_(count|rate)\(\)/.test(r.modifiers))
        problems.push(`${q.where}: ${r.metric} is a count: say .as_count() or .as_rate()`);
    }
  }
  return { problems, count };
}

describe("datadog/sentinel-overview.json: the OpenMetrics check's names", () => {
  const d = datadog();
  const widgets = ddWidgets(d);

  it('queries only metrics Sentinel emits, through the OpenMetrics mapping, with their tags', async () => {
    const byName = new Map((await exportedFamilies()).flatMap((f) => datadogMetrics(f)).map((m) => [m.name, m]));
    const { problems, count } = queryProblems(d, 'is not emitted', /^p\d/, 'use a percentile', (metric) => {
      const m = byName.get(metric);
      // Tags: the metric's labels, plus the Agent's host and the instance's environment tag.
      return m && { kind: m.kind, tags: new Set([...m.family.labels, 'host']) };
    });
    expect(problems).toEqual([]);
    expect(count).toBeGreaterThan(40);
    // Datadog's `up`: the check's own service check.
    expect(widgets.filter((w) => w.definition.type === 'check_status').map((w) => w.definition.check)).toEqual([
      DD_HEALTH_CHECK,
    ]);
  });

  it('charts every metric the Grafana overview queries', async () => {
    const families = new Map((await exportedFamilies()).map((f) => [f.name, f]));
    const used = new Set(ddQueries(d).flatMap((q) => ddRefs(q.query).map((r) => r.metric)));
    const missing: string[] = [];
    for (const name of grafanaMetrics()) {
      if (name === 'up') continue; // the check_status widget above
      const f = families.get(name);
      expect(f, name).toBeDefined();
      if (!datadogMetrics(f!).some((m) => used.has(m.name))) missing.push(name);
    }
    expect(missing).toEqual([]);
  });
});

/**
 * What Datadog stores from Sentinel's OTLP push, read off the real conversion (src/metrics/otlp.ts
 * toMetricData over a full registry, every labelled family given one series) under both
 * temporalities: per metric, the Datadog kind (datadogKindOfOtlp) and the data point attributes,
 * which OTLP ingest makes tags (https://docs.datadoghq.com/metrics/open_telemetry/otlp_metric_types/).
 */
async function otlpIngested(): Promise<Map<string, { kind: DatadogKind; tags: Set<string> }>> {
  const metrics = registry.createMetrics();
  const labelsOf = new Map<string, readonly string[]>(METRICS.map((m) => [m.name, m.labels]));
  const json = (await metrics.registry.getMetricsAsJSON()) as unknown as PromMetricJson[];
  metrics.registry.clear();
  const filled = json.map((m): PromMetricJson => {
    if (m.values.length > 0) return m;
    const labels = Object.fromEntries((labelsOf.get(m.name) ?? []).map((l) => [l, 'x']));
    const values =
      m.type === 'histogram'
        ? [
            { metricName: `${m.name}_bucket`, labels: { ...labels, le: 1 }, value: 1 },
            { metricName: `${m.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: 1 },
            { metricName: `${m.name}_sum`, labels, value: 0.5 },
            { metricName: `${m.name}_count`, labels, value: 1 },
          ]
        : [{ labels, value: 1 }];
    return { ...m, values };
  });
  const out = new Map<string, { kind: DatadogKind; tags: Set<string> }>();
  for (const temporality of OTLP_TEMPORALITIES) {
    const { data } = toMetricData(filled, { temporality, start: [0, 0], now: [1, 0], sent: new Map() });
    for (const md of data) {
      const kind = datadogKindOfOtlp(md.dataPointType, (md as { isMonotonic?: boolean }).isMonotonic);
      if (!kind) throw new Error(`${md.descriptor.name}: OTLP data point type ${md.dataPointType}`);
      const points = md.dataPoints as readonly { attributes: Record<string, unknown> }[];
      const tags = new Set(points.flatMap((p) => Object.keys(p.attributes)));
      const before = out.get(md.descriptor.name);
      if (before && before.kind !== kind) throw new Error(`${md.descriptor.name}: ${before.kind} or ${kind}`);
      out.set(md.descriptor.name, { kind, tags });
    }
  }
  return out;
}

/** Aggregations Datadog computes on a distribution (https://docs.datadoghq.com/metrics/distributions/). */
const DISTRIBUTION_AGGREGATION = /^(avg|sum|min|max|p\d{2}(\.\d+)?)$/;

describe(`${OTLP_DASHBOARD_FILE}: the OpenMetrics dashboard through Datadog's OTLP ingest`, () => {
  const d = readJson<DdDashboard>(OTLP_DASHBOARD_FILE);
  const widgets = ddWidgets(d);

  it('is exactly the transform of datadog/sentinel-overview.json (test/dashboards/datadog-otlp.ts)', () => {
    const committed = readFileSync(join(ROOT, OTLP_DASHBOARD_FILE), 'utf8');
    expect(
      committed === otlpDashboardText,
      `${OTLP_DASHBOARD_FILE} is not the transform of ${OPENMETRICS_DASHBOARD_FILE}: ` +
        `regenerate it with \`${REGENERATE_COMMAND}\` and commit the result`,
    ).toBe(true);
  });

  it('keeps every group, widget and title, in order; the service-check widget becomes Replicas up', () => {
    const shape = (x: DdDashboard): string[] =>
      ddWidgets(x).map((w) => {
        const title = w.definition.title ?? '';
        return title.startsWith('Replicas up') ? 'Replicas up' : `${w.definition.type}: ${title}`;
      });
    expect(shape(d)).toEqual(shape(datadog()));
  });

  it('queries only metrics Sentinel pushes over OTLP, as Datadog ingests them, with tags they have', async () => {
    const ingested = await otlpIngested();
    const derived = new Set([DD_OTLP_HOST_TAG, ...Object.values(DD_OTLP_RESOURCE_TAGS)]);
    for (const prefix of Object.values(OTLP_TEMPLATE_PREFIXES)) expect(derived).toContain(prefix);
    const { problems, count } = queryProblems(
      d,
      'is not pushed over OTLP',
      DISTRIBUTION_AGGREGATION,
      'of a distribution',
      (metric) => {
        const m = ingested.get(metric);
        return m && { kind: m.kind, tags: new Set([...m.tags, ...derived]) };
      },
    );
    expect(problems).toEqual([]);
    expect(count).toBeGreaterThan(40);
    // The run-duration histogram is one distribution: no `.sum`/`.count` without send_aggregation_metrics.
    expect(ingested.get('sentinel_run_duration_seconds')?.kind).toBe('distribution');
    expect(ingested.get('sentinel_runs_total')?.kind).toBe('count');
  });

  it('charts every metric the Grafana overview queries, under its Prometheus name', async () => {
    const ingested = await otlpIngested();
    const used = new Set(ddQueries(d).flatMap((q) => ddRefs(q.query).map((r) => r.metric)));
    const missing = [...grafanaMetrics()].filter((m) => m !== 'up' && !used.has(m));
    expect(missing).toEqual([]);
    for (const m of grafanaMetrics()) if (m !== 'up') expect(ingested.has(m), m).toBe(true);
  });

  it('refuses to carry over what exists only with the OpenMetrics check, rather than guess', async () => {
    const families = await exportedFamilies();
    const body = (definition: Record<string, unknown>): DdDashboard => ({
      title: 't',
      layout_type: 'ordered',
      widgets: [{ definition: { type: 'timeseries', title: 'x', ...definition } }],
    });
    const q = (query: string) => body({ requests: [{ q: query, display_type: 'line' }] });
    expect(() => toOtlpDashboard(q('sum:sentinel.run_duration_seconds.count{*}.as_count()'), families)).toThrow(
      /no OTLP counterpart for sentinel\.run_duration_seconds\.count/,
    );
    expect(() => toOtlpDashboard(q('max:sentinel.not_a_metric{*}'), families)).toThrow(/sentinel\.not_a_metric/);
    expect(() =>
      toOtlpDashboard(body({ type: 'check_status', check: 'datadog.agent.up', grouping: 'check' }), families),
    ).toThrow(/service check datadog\.agent\.up/);
    expect(() =>
      toOtlpDashboard({ ...q('max:sentinel.leader{*}'), description: 'x', title: 'OpenMetrics' }, families),
    ).toThrow(/OpenMetrics-check wording/);
    // Deterministic: the same input, the same output.
    expect(renderDashboard(toOtlpDashboard(datadog(), families))).toBe(otlpDashboardText);
  });

  it("has no service check (OTLP has none): Replicas up is each host's sentinel_build_info", () => {
    expect(widgets.filter((w) => w.definition.type === 'check_status')).toEqual([]);
    const up = widgets.find((w) => w.definition.title?.startsWith('Replicas up'));
    expect(up?.definition.requests?.map((r) => r.q)).toEqual(['max:sentinel_build_info{$environment,$host} by {host}']);
    expect(JSON.stringify(d)).not.toMatch(/openmetrics/i);
  });
});

describe('docs/datadog.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/datadog.md'), 'utf8');
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const conf = blocks.map((b) => parseYaml(b) as Record<string, unknown>).find((b) => 'instances' in b) as {
    instances: Record<string, unknown>[];
  };

  it('configures the OpenMetrics check with the namespace and prefix the dashboard assumes', () => {
    expect(conf).toBeDefined();
    const i = conf.instances[0]!;
    expect(i.openmetrics_endpoint).toMatch(/^http:\/\/[^/]+:9464\/metrics$/);
    expect(i.namespace).toBe(DD_NAMESPACE);
    expect(i.raw_metric_prefix).toBe(DD_RAW_PREFIX);
    expect(i.collect_counters_with_distributions).toBe(true);
    expect(i.tags).toEqual(expect.arrayContaining([expect.stringMatching(/^environment:/)]));
  });

  it('collects exactly the names.ts metrics and the process metrics the dashboard charts, by family name', async () => {
    const families = await exportedFamilies();
    const want = new Set<string>();
    for (const f of families) {
      if (METRICS.some((m) => m.name === f.name) || grafanaMetrics().has(f.name))
        want.add(datadogFamily(f.name, f.type));
    }
    const listed = conf.instances[0]!.metrics as string[];
    expect(new Set(listed).size).toBe(listed.length);
    expect([...listed].sort()).toEqual([...want].sort());
  });

  it('shows the import command and the bearer token header', () => {
    expect(doc).toContain('https://api.datadoghq.com/api/v1/dashboard');
    expect(doc).toContain('-d @datadog/sentinel-overview.json');
    expect(doc).toMatch(/Authorization: Bearer/);
  });

  describe('Through OTLP instead of the OpenMetrics check', () => {
    const section = doc.slice(doc.indexOf('## Through OTLP instead of the OpenMetrics check'));
    const agent = blocks.map((b) => parseYaml(b) as Record<string, unknown>).find((b) => 'otlp_config' in b) as {
      otlp_config: {
        receiver: { protocols: Record<string, { endpoint: string } | undefined> };
        metrics?: { histograms?: { mode?: string; send_aggregation_metrics?: boolean } };
      };
    };

    it("turns on the Agent's OTLP/HTTP receiver on 4318 with the histogram mode the dashboard assumes", () => {
      expect(section.length).toBeGreaterThan(1000);
      expect(agent).toBeDefined();
      expect(agent.otlp_config.receiver.protocols.http?.endpoint).toMatch(/:4318$/);
      // Sentinel has no gRPC transport: the example must not suggest it needs one.
      expect(agent.otlp_config.receiver.protocols.grpc).toBeUndefined();
      expect(agent.otlp_config.metrics?.histograms?.mode ?? 'distributions').toBe('distributions');
      expect(agent.otlp_config.metrics?.histograms?.send_aggregation_metrics ?? false).toBe(false);
    });

    it('points Sentinel at it with delta temporality, by variables or by flags', () => {
      expect(section).toContain(
        'OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta',
      );
      expect(section).toContain('--otlp-endpoint http://127.0.0.1:4318 --otlp-temporality delta');
    });

    it('names the tags OTLP ingest derives, imports the OTLP dashboard and says how to regenerate it', () => {
      for (const [attribute, tag] of Object.entries(DD_OTLP_RESOURCE_TAGS))
        expect(section).toMatch(new RegExp(`\\| \`${attribute.replace(/\./g, '\\.')}\`[^|]*\\| \`${tag}\` tag`));
      expect(section).toContain(`-d @${OTLP_DASHBOARD_FILE}`);
      expect(section).toContain(REGENERATE_COMMAND);
      expect(section).toContain('sentinel_runs_total');
    });
  });
});

// ───────────────────────── CloudWatch

/**
 * What the dashboard assumes of `sentinel --format emf` (docs/cloudwatch-dashboard.md):
 * namespace `Sentinel`; metric names the Prometheus names of names.ts, unchanged
 * (counters keep `_total`; the run-duration histogram is one value per run);
 * dimensions `environment` plus the metric's Prometheus labels, the overall
 * ratios without `source`.
 */
const CW_NAMESPACE = 'Sentinel';
/** The environment each search selects; docs/cloudwatch-dashboard.md says how to change it. */
const CW_ENVIRONMENT = 'environment="production"';
/** Grafana metrics an EMF run does not write: the process's own, and Prometheus's `up`. */
const CW_NOT_IN_EMF = new Set([
  'up',
  'process_resident_memory_bytes',
  'process_cpu_seconds_total',
  'nodejs_eventloop_lag_seconds',
]);

interface CwWidget {
  type: string;
  x: number;
  y: number;
  width: number;
  height: number;
  properties: {
    markdown?: string;
    metrics?: unknown[][];
    region?: string;
    view?: string;
    title?: string;
    period?: number;
    stat?: string;
    stacked?: boolean;
    [k: string]: unknown;
  };
}
interface CwDashboard {
  widgets: CwWidget[];
  [k: string]: unknown;
}

const cloudwatch = (): CwDashboard => readJson<CwDashboard>('cloudwatch/sentinel-overview.json');

interface CwSearch {
  where: string;
  schema: string[];
  terms: Record<string, string>;
  stat: string;
  period: number;
}

/** `SEARCH('{Namespace,dim,...} Key="value" ...', 'Stat', period)` inside an expression. */
function cwSearches(expression: string): Omit<CwSearch, 'where'>[] {
  const out: Omit<CwSearch, 'where'>[] = [];
  for (const m of expression.matchAll(/SEARCH\('\{([^}]*)\}\s*([^']*)',\s*'([^']+)',\s*(\d+)\)/g)) {
    const terms: Record<string, string> = {};
    for (const t of m[2]!.matchAll(/([A-Za-z_]+)="([^"]*)"/g)) {
      // An OR group repeats a key: keep the first value, the key is what the checks need.
      terms[t[1]!] ??= t[2]!;
    }
    out.push({ schema: m[1]!.split(',').map((s) => s.trim()), terms, stat: m[3]!, period: Number(m[4]) });
  }
  return out;
}

function cwAllSearches(d: CwDashboard): CwSearch[] {
  return d.widgets.flatMap((w) =>
    (w.properties.metrics ?? []).flatMap((entry) => {
      const e = entry[0] as { expression?: string };
      return e.expression ? cwSearches(e.expression).map((s) => ({ ...s, where: w.properties.title ?? '' })) : [];
    }),
  );
}

const CW_STAT = /^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?)$/;

/**
 * What `sentinel --format emf` really writes: each metric with the dimension sets it comes with,
 * read off the EMF lines of a run that has every kind of figure (src/report/emf.ts).
 */
function emfDimensionSets(): Map<string, Set<string>> {
  const figures = hourlyFigures;
  const run: RunResult = {
    timestamp: '2025-01-04T10:15:32.123Z',
    environment: 'production',
    overall_status: 'critical',
    alerts: [{ check: 'stuck_batches', level: 'critical', message: 'x', details: {} }],
    checks: [
      { name: 'stuck_batches', outcome: 'alert', duration_ms: 3 },
      { name: 'error_spike', outcome: 'ok', duration_ms: 3 },
      { name: 'source_freshness', outcome: 'ok', duration_ms: 3 },
      {
        name: 'schema_cache',
        outcome: 'ok',
        duration_ms: 9,
        measurements: { latency_ms: 5, up: true, reloads: 1, result: 'ok' },
      },
      { name: 'processing_time', outcome: 'ok', duration_ms: 2, measurements: { p95_seconds: 90, batches: 3 } },
      { name: 'row_error_codes', outcome: 'ok', duration_ms: 2, measurements: { new_codes: 0 } },
      {
        name: 'anomalies',
        outcome: 'ok',
        duration_ms: 5,
        series: ['score', 'sensitivity', 'level'].map((key) => ({
          key,
          labels: { source: 'vendor_a', metric: 'volume' },
          value: 1,
        })),
      },
    ],
    duration_ms: 40,
    metrics: { total_checks: 5, alerts_triggered: 1, critical_alerts: 1, warning_alerts: 0, skipped_checks: 0 },
    notifications: [
      {
        notifier: 'pager',
        type: 'pagerduty',
        sent: 1,
        pending: 0,
        failed: 0,
        errors: [],
        reasons: { rejected: 0, rate_limited: 0, server_error: 0, timeout: 0, network: 0, expired: 0 },
      },
    ],
    pipeline: {
      taken_at: '2025-01-04T10:15:32.000Z',
      in_flight: [{ status: 'uploaded', batch_count: 1, oldest_age_seconds: 60 }],
      stuck: { threshold_minutes: 10, by_status: [] },
      hourly: { min_rows: 100, overall: figures(10, 100), sources: [{ source: 'vendor_a', ...figures(10, 100) }] },
      finished_last_hour: { completed: 1, failed: 0 },
      backlog: { batch_count: 0, threshold_minutes: 30 },
      freshness: [
        { source: 'vendor_a', expected_every_seconds: 3600, last_batch_age_seconds: 60, lookback_seconds: 604800 },
      ],
      thresholds: {
        seconds: [
          { check: 'stuck_batches', value: 600 },
          { check: 'source_freshness', source: 'vendor_a', value: 3600 },
        ],
        ratios: [
          { check: 'error_spike', value: 0.15 },
          { check: 'error_spike', source: 'vendor_a', value: 0.25 },
        ],
        min_rows: 100,
      },
    } as RunResult['pipeline'],
  };
  const sets = new Map<string, Set<string>>();
  for (const line of renderEmf(run, registry)) {
    const doc = JSON.parse(line) as {
      _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
    };
    for (const d of doc._aws.CloudWatchMetrics)
      for (const m of d.Metrics)
        for (const dims of d.Dimensions) {
          const set = sets.get(m.Name) ?? new Set<string>();
          set.add([...dims].sort().join(','));
          sets.set(m.Name, set);
        }
  }
  return sets;
}

describe('cwSearches (the expression scanner these checks rely on)', () => {
  it('reads the schema, the terms, the statistic and the period', () => {
    expect(
      cwSearches(
        `SUM(SEARCH('{Sentinel,environment,check} MetricName="m" environment="p" ` +
          `(check="a" OR check="b")', 'Maximum', 300))`,
      ),
    ).toEqual([
      {
        schema: ['Sentinel', 'environment', 'check'],
        terms: { MetricName: 'm', environment: 'p', check: 'a' },
        stat: 'Maximum',
        period: 300,
      },
    ]);
  });
});

describe('cloudwatch/sentinel-overview.json: the PutDashboard DashboardBody', () => {
  const d = cloudwatch();

  it('has a widgets array of at most 500 widgets and only documented top-level fields', () => {
    expect(Array.isArray(d.widgets)).toBe(true);
    expect(d.widgets.length).toBeGreaterThan(20);
    expect(d.widgets.length).toBeLessThanOrEqual(500);
    expect(
      Object.keys(d).filter((k) => !['widgets', 'start', 'end', 'periodOverride', 'variables'].includes(k)),
    ).toEqual([]);
    expect(['auto', 'inherit']).toContain(d.periodOverride);
    expect(d.start).toMatch(/^-P(T\d+[HMS]|\d+[DWM])$/);
  });

  it('places every widget on the 24-column grid without overlaps', () => {
    for (const w of d.widgets) {
      const where = w.properties.title ?? w.properties.markdown?.slice(0, 30);
      for (const k of ['x', 'y', 'width', 'height'] as const)
        expect(Number.isInteger(w[k]), `${where}: ${k}`).toBe(true);
      expect(w.x, where).toBeGreaterThanOrEqual(0);
      expect(w.y, where).toBeGreaterThanOrEqual(0);
      expect(w.width, where).toBeGreaterThanOrEqual(1);
      expect(w.width, where).toBeLessThanOrEqual(24);
      expect(w.height, where).toBeGreaterThanOrEqual(1);
      expect(w.height, where).toBeLessThanOrEqual(1000);
      expect(w.x + w.width, where).toBeLessThanOrEqual(24);
    }
    for (const [i, a] of d.widgets.entries()) {
      for (const b of d.widgets.slice(i + 1)) {
        const overlap = a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
        expect(overlap, `"${a.properties.title}" overlaps "${b.properties.title}"`).toBe(false);
      }
    }
  });

  it('uses text and metric widgets with their required properties', () => {
    for (const w of d.widgets) {
      expect(['metric', 'text']).toContain(w.type);
      if (w.type === 'text') {
        expect(typeof w.properties.markdown).toBe('string');
        expect(w.properties.markdown!.length).toBeGreaterThan(0);
        continue;
      }
      const p = w.properties;
      const where = p.title!;
      expect(where).toBeTruthy();
      expect(p.region, where).toMatch(/^[a-z]{2}(-[a-z]+)+-\d$/);
      expect(['timeSeries', 'singleValue', 'gauge', 'bar', 'pie', 'table']).toContain(p.view);
      if (p.stacked !== undefined) expect(p.view, `${where}: stacked`).toBe('timeSeries');
      expect(p.metrics!.length, where).toBeGreaterThanOrEqual(1);
      expect(p.metrics!.length, where).toBeLessThanOrEqual(100);
      if (p.period !== undefined) expect(p.period % 60, `${where}: period`).toBe(0);
      const ids: string[] = [];
      for (const entry of p.metrics!) {
        expect(Array.isArray(entry), where).toBe(true);
        const last = entry[entry.length - 1] as Record<string, unknown>;
        if (typeof entry[0] === 'object') {
          // An expression: one object with expression and id.
          expect(entry.length, where).toBe(1);
          expect(typeof last.expression, where).toBe('string');
          expect(last.id, where).toMatch(/^[a-z][a-zA-Z0-9_]*$/);
          ids.push(last.id as string);
        } else {
          // [Namespace, MetricName, (DimensionName, DimensionValue)*, {options}?]
          const strings = entry.filter((x) => typeof x === 'string');
          expect(strings.length % 2, where).toBe(0);
        }
      }
      expect(new Set(ids).size, `${where}: ids`).toBe(ids.length);
    }
  });

  it('searches only metrics Sentinel emits, in namespace Sentinel, with their own dimensions', () => {
    const byName = new Map(METRICS.map((m) => [m.name as string, m]));
    const emitted = emfDimensionSets();
    const searches = cwAllSearches(d);
    expect(searches.length).toBeGreaterThan(40);
    const problems: string[] = [];
    for (const s of searches) {
      const [ns, ...dims] = s.schema;
      if (ns !== CW_NAMESPACE) problems.push(`${s.where}: namespace ${ns}`);
      const m = byName.get(s.terms.MetricName ?? '');
      if (!m) {
        problems.push(`${s.where}: ${s.terms.MetricName} is not in names.ts`);
        continue;
      }
      // Exactly a dimension set `--format emf` writes the metric with (a search matches no other).
      const sets = emitted.get(m.name);
      if (!sets) problems.push(`${s.where}: ${m.name} is not written by --format emf`);
      else if (!sets.has([...dims].sort().join(',')))
        problems.push(`${s.where}: ${m.name} with {${dims.join(',')}}; --format emf writes {${[...sets].join('} {')}}`);
      if (dims[0] !== 'environment') problems.push(`${s.where}: ${m.name} without the environment dimension`);
      for (const k of Object.keys(s.terms)) {
        if (k !== 'MetricName' && !dims.includes(k))
          problems.push(`${s.where}: ${m.name} filters on ${k}, not in its schema`);
      }
      if (s.terms.environment !== 'production') problems.push(`${s.where}: ${m.name} not scoped to the environment`);
      if (!CW_STAT.test(s.stat)) problems.push(`${s.where}: statistic ${s.stat}`);
      if (/^p\d/.test(s.stat) && m.type !== 'histogram') problems.push(`${s.where}: percentile of ${m.name}`);
      if (m.type === 'counter' && s.stat !== 'Sum') problems.push(`${s.where}: counter ${m.name} is summed per run`);
      if (s.period % 60 !== 0) problems.push(`${s.where}: period ${s.period}`);
    }
    expect(problems).toEqual([]);
    // The placeholder docs/cloudwatch-dashboard.md tells users to replace.
    expect(JSON.stringify(d)).toContain(CW_ENVIRONMENT.replace(/"/g, '\\"'));
  });

  it('charts every metric the Grafana overview queries that an EMF run writes', () => {
    const used = new Set(cwAllSearches(d).map((s) => s.terms.MetricName));
    const missing = [...grafanaMetrics()].filter((m) => !CW_NOT_IN_EMF.has(m) && !used.has(m));
    expect(missing).toEqual([]);
    // The exceptions really are not names.ts metrics.
    for (const m of CW_NOT_IN_EMF) expect(METRICS.some((x) => x.name === m)).toBe(false);
  });

  it('charts the overall ratios (no source dimension) apart from the per-source ones', () => {
    const searches = cwAllSearches(d);
    for (const metric of ['sentinel_pipeline_error_ratio', 'sentinel_pipeline_dedupe_ratio']) {
      const of = searches.filter((s) => s.terms.MetricName === metric);
      expect(
        of.some((s) => !s.schema.includes('source')),
        metric,
      ).toBe(true);
      expect(
        of.some((s) => s.schema.includes('source')),
        metric,
      ).toBe(true);
    }
  });
});

describe('docs/cloudwatch-dashboard.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/cloudwatch-dashboard.md'), 'utf8');
  it('shows the put-dashboard command and the names and dimensions it assumes', () => {
    expect(doc).toContain(
      'aws cloudwatch put-dashboard --dashboard-name Sentinel ' +
        '--dashboard-body file://cloudwatch/sentinel-overview.json',
    );
    expect(doc).toContain(CW_ENVIRONMENT);
    expect(doc).toMatch(/namespace `Sentinel`/);
  });
});

// ───────────────────────── Both against Grafana

describe('the vendor dashboards mirror the Grafana overview panel by panel', () => {
  const grafanaTitles = queryPanels(loadDashboard('sentinel-overview.json')).map((p) => p.title);
  const norm = (t: string): string => t.toLowerCase().replace(/\s+/g, ' ').trim();

  /** Grafana panels the vendor cannot draw as such, and the widget that stands for them. */
  const STANDS_FOR: Record<string, { datadog?: string; cloudwatch?: string }> = {
    // Datadog has no time(): the gap between the two timestamps instead of their ages.
    'Last successful run': { datadog: 'Seconds between the last run and the last successful run' },
    'Last run': { datadog: 'Seconds between the last run and the last successful run' },
    'Replicas up': { datadog: 'Replicas up', cloudwatch: 'Leaders' },
    'Leader by instance': { datadog: 'Leader by host', cloudwatch: 'Leader' },
    'Process memory (RSS)': { cloudwatch: '' },
    'CPU and event loop lag': { datadog: 'CPU', cloudwatch: '' },
  };

  const ddTitles = (file: string): string[] =>
    ddWidgets(readJson<DdDashboard>(file))
      .map((w) => w.definition.title ?? '')
      .filter(Boolean);
  // [what, whose STANDS_FOR entries, widget titles]: the OTLP dashboard stands in as the Datadog one does.
  const vendors = [
    ['datadog', 'datadog', ddTitles(OPENMETRICS_DASHBOARD_FILE)],
    ['datadog (OTLP)', 'datadog', ddTitles(OTLP_DASHBOARD_FILE)],
    [
      'cloudwatch',
      'cloudwatch',
      cloudwatch()
        .widgets.map((w) => w.properties.title ?? '')
        .filter(Boolean),
    ],
  ] as const;

  it.each(vendors)('%s has a widget for every Grafana panel', (_, vendor, titles) => {
    const missing: string[] = [];
    for (const g of grafanaTitles) {
      const stand = STANDS_FOR[g]?.[vendor];
      if (stand === '') continue; // not emitted there (see CW_NOT_IN_EMF)
      const want = norm(stand ?? g);
      if (!titles.some((t) => norm(t).startsWith(want))) missing.push(g);
    }
    expect(missing).toEqual([]);
  });
});
