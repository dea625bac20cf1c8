/**
 * The Grafana overview's queries and what Sentinel exports, shared by the Grafana
 * test (dashboards.test.ts) and the Datadog/CloudWatch one (vendor-dashboards.test.ts):
 * a module of its own because importing a test file would run its tests twice.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import client from 'prom-client';
import { expect } from 'vitest';
import { METRICS } from '../../src/metrics/names.js';
import { DROPPED_DEFAULT_METRICS } from '../../src/metrics/registry.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REGISTRY_MODULE = join(ROOT, 'src/metrics/registry.ts');

// ───────────────────────── Dashboard JSON

export interface DatasourceRef {
  type?: string;
  uid?: string;
}
export interface Target {
  refId?: string;
  datasource?: DatasourceRef;
  expr?: string;
  rawSql?: string;
  format?: string;
  legendFormat?: string;
}
export interface FieldOverride {
  matcher: { id: string; options?: unknown };
  properties: { id: string; value?: unknown }[];
}
export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: DatasourceRef;
  targets?: Target[];
  panels?: Panel[];
  fieldConfig?: {
    defaults?: {
      unit?: string;
      thresholds?: { steps: { color: string; value: number | null }[] };
      custom?: { thresholdsStyle?: { mode: string } };
    };
    overrides?: FieldOverride[];
  };
  options?: Record<string, unknown>;
}
export interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: DatasourceRef;
}
export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

export function loadDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(join(ROOT, 'grafana/dashboards', file), 'utf8')) as Dashboard;
}

/** Every panel, including those inside (collapsed) rows. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}
export const queryPanels = (d: Dashboard): Panel[] => allPanels(d).filter((p) => p.type !== 'row');

// ───────────────────────── PromQL

export const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
export const PROMQL_FUNCTIONS = new Set([
  ...AGGREGATIONS,
  // functions
  'abs',
  'absent',
  'absent_over_time',
  'ceil',
  'changes',
  'clamp',
  'clamp_max',
  'clamp_min',
  'day_of_month',
  'day_of_week',
  'day_of_year',
  'days_in_month',
  'delta',
  'deriv',
  'exp',
  'floor',
  'histogram_avg',
  'histogram_count',
  'histogram_fraction',
  'histogram_quantile',
  'histogram_stddev',
  'histogram_stdvar',
  'histogram_sum',
  'holt_winters',
  'double_exponential_smoothing',
  'hour',
  'idelta',
  'increase',
  'irate',
  'label_join',
  'label_replace',
  'ln',
  'log2',
  'log10',
  'minute',
  'month',
  'predict_linear',
  'rate',
  'resets',
  'round',
  'scalar',
  'sgn',
  'sort',
  'sort_desc',
  'sort_by_label',
  'sort_by_label_desc',
  'sqrt',
  'time',
  'timestamp',
  'vector',
  'year',
  'avg_over_time',
  'min_over_time',
  'max_over_time',
  'sum_over_time',
  'count_over_time',
  'quantile_over_time',
  'stddev_over_time',
  'stdvar_over_time',
  'last_over_time',
  'present_over_time',
  'mad_over_time',
  'acos',
  'acosh',
  'asin',
  'asinh',
  'atan',
  'atanh',
  'cos',
  'cosh',
  'sin',
  'sinh',
  'tan',
  'tanh',
  'deg',
  'rad',
  'pi',
  // `@ start()` / `@ end()`
  'start',
  'end',
]);
/** Followed by a parenthesised list of label names, not an expression. */
export const GROUPING_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
export const PROMQL_KEYWORDS = new Set([
  ...GROUPING_KEYWORDS,
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

export interface MetricRef {
  name: string;
  /** Label names in the selector's matchers (`{status="x"}` → status). */
  labels: string[];
}

/**
 * The metric selectors of a PromQL expression. A small scanner rather than a regex
 * over the whole text: strings, label matchers, range/subquery brackets, durations,
 * numbers and the label lists of by/without/on/ignoring/group_left/group_right are
 * skipped; an identifier followed by `(` must be a known function; any other
 * identifier that is not a keyword is a metric name. Grafana variables
 * ($job, ${x}, $__rate_interval) are ignored.
 */
export function promqlMetrics(expr: string): MetricRef[] {
  const refs: MetricRef[] = [];
  let i = 0;
  const n = expr.length;
  const skipSpace = (): void => {
    while (i < n && /\s/.test(expr[i]!)) i++;
  };
  /** Index just past the string literal that starts at j. */
  const stringEnd = (j: number): number => {
    const quote = expr[j]!;
    for (let k = j + 1; k < n; k++) {
      if (quote !== '`' && expr[k] === '\\') k++;
      else if (expr[k] === quote) return k + 1;
    }
    throw new Error(`unterminated string in PromQL: ${expr}`);
  };
  /** Index of the bracket that closes the one at i, strings skipped. */
  const closing = (open: string, close: string): number => {
    let depth = 0;
    for (let j = i; j < n; j++) {
      const c = expr[j]!;
      if (c === '"' || c === "'" || c === '`') j = stringEnd(j) - 1;
      else if (c === open) depth++;
      else if (c === close && --depth === 0) return j;
    }
    throw new Error(`unbalanced ${open} in PromQL: ${expr}`);
  };
  const matcherLabels = (block: string): { labels: string[]; name?: string } => {
    const labels: string[] = [];
    let name: string | undefined;
    for (const m of block.matchAll(
      /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)/g,
    )) {
      if (m[1] === '__name__' && m[2] === '=') name = m[3]!.slice(1, -1);
      else labels.push(m[1]!);
    }
    return { labels, name };
  };

  while (i < n) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      i = stringEnd(i); // a function's string argument (label_replace, count_values, ...)
    } else if (c === '$') {
      // A Grafana variable: $name, ${name} or ${name:format}.
      const m = /^\$(\{[^}]*\}|\w+)/.exec(expr.slice(i));
      i += m ? m[0].length : 1;
    } else if (c === '[') {
      i = closing('[', ']') + 1;
    } else if (c === '{') {
      // A bare selector: {__name__="metric", ...}
      const end = closing('{', '}');
      const { labels, name } = matcherLabels(expr.slice(i + 1, end));
      if (name) refs.push({ name, labels });
      else throw new Error(`selector without a metric name in: ${expr}`);
      i = end + 1;
    } else if (/[0-9.]/.test(c)) {
      const m = /^(?:0x[0-9a-fA-F]+|(?:\d+(?:ms|[smhdwy]))+|\d*\.?\d+(?:[eE][+-]?\d+)?)/.exec(expr.slice(i));
      i += m ? m[0].length : 1;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const ident = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))![0];
      i += ident.length;
      skipSpace();
      const next = expr[i];
      const lower = ident.toLowerCase();
      if (GROUPING_KEYWORDS.has(lower)) {
        if (next === '(') i = closing('(', ')') + 1;
      } else if (PROMQL_KEYWORDS.has(lower)) {
        // operator or modifier
      } else if (next === '(' || (AGGREGATIONS.has(lower) && /^(by|without)\b/i.test(expr.slice(i)))) {
        if (!PROMQL_FUNCTIONS.has(lower)) throw new Error(`unknown PromQL function ${ident}() in: ${expr}`);
      } else {
        let labels: string[] = [];
        if (next === '{') {
          const end = closing('{', '}');
          labels = matcherLabels(expr.slice(i + 1, end)).labels;
          i = end + 1;
        }
        refs.push({ name: ident, labels });
      }
    } else {
      i++; // operators, commas, parentheses, @
    }
  }
  return refs;
}

/** Grafana's Prometheus variable queries: label_values(selector, label), query_result(expr), or PromQL. */
export function variableQueryMetrics(query: string): MetricRef[] {
  const labelValues = /^\s*label_values\(\s*(.*?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(query);
  if (labelValues) return promqlMetrics(labelValues[1]!);
  const queryResult = /^\s*query_result\(\s*(.*)\s*\)\s*$/.exec(query);
  if (queryResult) return promqlMetrics(queryResult[1]!);
  return promqlMetrics(query);
}

// ───────────────────────── What Sentinel exports

export interface Exported {
  /** Series names (histograms expanded) → allowed selector labels. */
  series: Map<string, Set<string>>;
}

export const TARGET_LABELS = ['job', 'instance'];

export function seriesOf(name: string, type: string): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

/** names.ts, prom-client's default metrics (as prom-client 15 really names them) and `up`. */
export async function declaredMetrics(): Promise<Exported> {
  const series = new Map<string, Set<string>>();
  for (const m of METRICS) {
    for (const s of seriesOf(m.name, m.type)) {
      series.set(s, new Set([...m.labels, ...TARGET_LABELS, ...(s.endsWith('_bucket') ? ['le'] : [])]));
    }
  }
  const defaults = new client.Registry();
  client.collectDefaultMetrics({ register: defaults });
  const dropped = new Set<string>(DROPPED_DEFAULT_METRICS);
  for (const m of await defaults.getMetricsAsJSON()) {
    if (dropped.has(m.name)) continue; // createMetrics removes them (promtool check metrics)
    for (const s of seriesOf(m.name, m.type as unknown as string)) series.set(s, new Set(TARGET_LABELS));
  }
  defaults.clear();
  series.set('up', new Set(TARGET_LABELS));
  return { series };
}

/** The series names in the text exposition that createMetrics().render() produces. */
export async function renderedSeries(): Promise<Set<string>> {
  const mod = (await import(pathToFileURL(REGISTRY_MODULE).href)) as {
    createMetrics: () => { render(): Promise<string> };
  };
  const text = await mod.createMetrics().render();
  const names = new Set<string>(['up']);
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) for (const s of seriesOf(type[1]!, type[2]!)) names.add(s);
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

export interface Query {
  where: string;
  expr: string;
  refs: MetricRef[];
}

export function overviewQueries(): Query[] {
  const d = loadDashboard('sentinel-overview.json');
  const out: Query[] = [];
  for (const p of queryPanels(d)) {
    for (const t of p.targets ?? []) {
      expect(t.expr, `${p.title} ${t.refId}: expr`).toBeTruthy();
      out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr!, refs: promqlMetrics(t.expr!) });
    }
  }
  for (const v of d.templating.list.filter((x) => x.type === 'query')) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    expect(q, `variable ${v.name}`).toBeTruthy();
    out.push({ where: `variable $${v.name}`, expr: q!, refs: variableQueryMetrics(q!) });
  }
  return out;
}

// ───────────────────────── Rules file
