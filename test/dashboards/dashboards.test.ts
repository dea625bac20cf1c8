/**
 * The Grafana dashboards (grafana/dashboards/*.json) and the Prometheus rules
 * (prometheus/sentinel-rules.yml) against what Sentinel really exports and the
 * views that really exist:
 *
 * - dashboard structure: schema version, unique panel ids, grid positions, every
 *   panel and query on the dashboard's data source variable (so it imports anywhere);
 * - every metric a PromQL expression or variable query names is in
 *   src/metrics/names.ts (histograms with their _bucket/_sum/_count series), a
 *   prom-client default metric or Prometheus's `up`, with only labels it has, and
 *   is in the text the real registry renders (src/metrics/registry.ts, when present);
 * - every rule is well-formed (recording names level:metric:operations; alerts with
 *   `for`, severity, prose summary and description, and a runbook_url pointing at their
 *   own section of docs/runbooks.md, every section used); every check has an alert;
 * - every SQL query of pipeline-sql.json runs against the real ops views of a
 *   migrated database, with Grafana's macros expanded, and returns the columns the
 *   panel uses;
 * - with promtool installed (on PATH or $PROMTOOL; Debian's `prometheus` package has
 *   it): `promtool check rules` on the rules and on every dashboard expression, and
 *   `promtool test rules prometheus/sentinel-rules.test.yml`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { CHECK_NAMES } from '../../src/checks/index.js';
import { METRICS } from '../../src/metrics/names.js';
import { PER_RUN_METRICS } from '../../src/metrics/registry.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, insertRowErrors, minutesAgo } from '../helpers/fixtures.js';
import { havePromtool, promtool as runPromtool } from '../metrics/promtool.js';
import {
  allPanels,
  declaredMetrics,
  loadDashboard,
  overviewQueries,
  type Panel,
  promqlMetrics,
  type Query,
  queryPanels,
  ROOT,
  renderedSeries,
} from './grafana.js';

const DS_VAR = '${datasource}';

const DASHBOARDS = [
  { file: 'sentinel-overview.json', datasourceType: 'prometheus' },
  { file: 'pipeline-sql.json', datasourceType: 'grafana-postgresql-datasource' },
] as const;

describe.each(DASHBOARDS)('$file', ({ file, datasourceType }) => {
  const dashboard = loadDashboard(file);

  it('is a Grafana 10/11 dashboard (schemaVersion ≥ 36) with a uid and title', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(dashboard.title).toBeTruthy();
    expect(queryPanels(dashboard).length).toBeGreaterThan(5);
  });

  it(`declares the data source as a variable of type ${datasourceType}`, () => {
    const v = dashboard.templating.list.find((x) => x.name === 'datasource');
    expect(v).toMatchObject({ type: 'datasource', query: datasourceType });
  });

  it('has unique panel ids', () => {
    const ids = allPanels(dashboard).map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('places every panel on the 24-column grid without overlaps', () => {
    const boxes = allPanels(dashboard).map((p) => ({ title: p.title, ...p.gridPos! }));
    for (const b of boxes) {
      expect(b, `${b.title}: gridPos`).toEqual(
        expect.objectContaining({
          x: expect.any(Number),
          y: expect.any(Number),
          w: expect.any(Number),
          h: expect.any(Number),
        }),
      );
      expect(b.w, b.title).toBeGreaterThan(0);
      expect(b.h, b.title).toBeGreaterThan(0);
      expect(b.x + b.w, b.title).toBeLessThanOrEqual(24);
    }
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `"${a.title}" overlaps "${b.title}"`).toBe(false);
      }
    }
  });

  it('queries only through the data source variable', () => {
    const expected = { type: datasourceType, uid: DS_VAR };
    for (const p of queryPanels(dashboard)) {
      expect(p.datasource, p.title).toEqual(expected);
      expect(p.targets?.length, `${p.title}: targets`).toBeGreaterThan(0);
      for (const t of p.targets!) {
        expect(t.datasource, `${p.title} ${t.refId}`).toEqual(expected);
        expect(t.refId, p.title).toBeTruthy();
      }
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, `${p.title}: refIds`).toBe(refIds.length);
    }
    for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
      expect(v.datasource, `variable ${v.name}`).toEqual(expected);
    }
    // No data source uid of somebody's Grafana baked in anywhere.
    const uids = [...JSON.stringify(dashboard).matchAll(/"uid":"([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(uids.filter((u) => u !== DS_VAR && u !== '-- Grafana --' && u !== dashboard.uid))).toEqual(
      new Set(),
    );
  });
});

describe('promqlMetrics (the tokenizer these checks rely on)', () => {
  it.each([
    ['up', ['up']],
    ['up{job="sentinel"} == 0', ['up']],
    [
      'histogram_quantile(0.95, sum by (le, job) (rate(foo_seconds_bucket{job=~"$job", ' +
        'instance=~"${instance}"}[$__rate_interval])))',
      ['foo_seconds_bucket'],
    ],
    ['sum without (instance) (a) / on (job) group_left (version) b offset 5m', ['a', 'b']],
    ['max(x{source=""}) > 0.15 and on(job) max by (job) (y) >= 1e2 unless z == bool 1', ['x', 'y', 'z']],
    ['time() - max(last_ts{l="by (x) rate("}) > 900', ['last_ts']],
    ['sum(rate(a_total[1h:5m])) or vector(0)', ['a_total']],
    ['{__name__="weird", job="x"}', ['weird']],
    ['a:recorded:max > Inf', ['a:recorded:max']],
    ['label_replace(m{a="x"}, "dst", "$1", "src", "(.*)") > 0', ['m']],
    ['SUM BY (job) (m)', ['m']],
    ['sum by (job) (max without (instance) (m))', ['m']],
  ])('%s', (expr, names) => {
    expect(promqlMetrics(expr).map((r) => r.name)).toEqual(names);
  });

  it('collects the label names of a selector', () => {
    expect(promqlMetrics('m{a="1", b=~"x|y", c!="", d!~"z"}')).toEqual([{ name: 'm', labels: ['a', 'b', 'c', 'd'] }]);
  });

  it('rejects unknown functions instead of taking them for metrics', () => {
    expect(() => promqlMetrics('sumx(foo)')).toThrow(/unknown PromQL function sumx/);
  });
});

interface Rule {
  record?: string;
  alert?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; interval?: string; rules: Rule[] }[];
}

const rulesFile = (): RuleFile =>
  parseYaml(readFileSync(join(ROOT, 'prometheus/sentinel-rules.yml'), 'utf8')) as RuleFile;
const allRules = (): Rule[] => rulesFile().groups.flatMap((g) => g.rules);
const recordedNames = (): Set<string> => new Set(allRules().flatMap((r) => (r.record ? [r.record] : [])));

function ruleQueries(): Query[] {
  return allRules().map((r) => ({
    where: `rule ${r.record ?? r.alert}`,
    expr: r.expr!,
    refs: promqlMetrics(r.expr!),
  }));
}

/** GitHub's anchors for the headings of a document of the repository (`docs/checks.md`). */
function anchorsOf(doc: string): Set<string> {
  const readme = readFileSync(join(ROOT, doc), 'utf8');
  const anchors = new Set<string>();
  let inFence = false;
  for (const line of readme.split('\n')) {
    if (line.startsWith('```')) inFence = !inFence;
    const h = !inFence && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const slug = h[1]!
      .toLowerCase()
      .replace(/`/g, '')
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    anchors.add(slug);
  }
  return anchors;
}

// ───────────────────────── Metric references, dashboards and rules

describe('metrics referenced by the overview dashboard and the rules', () => {
  const sources = [
    ['grafana/dashboards/sentinel-overview.json', overviewQueries],
    ['prometheus/sentinel-rules.yml', ruleQueries],
  ] as const;

  it.each(sources)(
    '%s names only metrics from names.ts, prom-client defaults or up, with their labels',
    async (_, queries) => {
      const { series } = await declaredMetrics();
      const recorded = recordedNames();
      const problems: string[] = [];
      let count = 0;
      for (const q of queries()) {
        expect(q.refs.length, `${q.where}: no metric in ${q.expr}`).toBeGreaterThan(0);
        for (const ref of q.refs) {
          count++;
          if (recorded.has(ref.name)) continue;
          const labels = series.get(ref.name);
          if (!labels) {
            problems.push(`${q.where}: ${ref.name} is not exported`);
            continue;
          }
          for (const l of ref.labels) if (!labels.has(l)) problems.push(`${q.where}: ${ref.name} has no label ${l}`);
        }
      }
      expect(problems).toEqual([]);
      expect(count).toBeGreaterThan(10);
    },
  );

  it.each(sources)('%s names only metrics that createMetrics().render() really exports', async (_, queries) => {
    const rendered = await renderedSeries();
    const recorded = recordedNames();
    const missing = queries().flatMap((q) =>
      q.refs.filter((r) => !recorded.has(r.name) && !rendered.has(r.name)).map((r) => `${q.where}: ${r.name}`),
    );
    expect(missing).toEqual([]);
  });
});

describe('sentinel-overview.json', () => {
  const panels = queryPanels(loadDashboard('sentinel-overview.json'));
  const panelUsing = (metric: string): Panel[] =>
    panels.filter((p) => p.type === 'timeseries' && p.targets?.some((t) => t.expr?.includes(metric)));
  const thresholdValues = (p: Panel): (number | null)[] =>
    p.fieldConfig?.defaults?.thresholds?.steps.map((s) => s.value) ?? [];

  it.each([
    ['sentinel_pipeline_error_ratio', 'percentunit', 'sentinel_check_threshold_ratio', 'error_spike'],
    ['sentinel_pipeline_dedupe_ratio', 'percentunit', 'sentinel_check_threshold_ratio', 'dedupe_rate'],
    ['sentinel_pipeline_oldest_batch_age_seconds', 's', 'sentinel_check_threshold_seconds', 'stuck_batches'],
    ['sentinel_pipeline_oldest_batch_age_seconds', 's', 'sentinel_check_threshold_seconds', 'queue_backlog'],
    ['sentinel_pipeline_source_last_batch_age_seconds', 's', 'sentinel_check_threshold_seconds', 'source_freshness'],
    ['sentinel_check_measurement', 's', 'sentinel_check_threshold_seconds', 'processing_time'],
  ])('charts %s in %s next to the threshold Sentinel exports (%s of %s), dashed', (metric, unit, threshold, check) => {
    const p = panelUsing(metric).find((x) =>
      x.targets!.some((t) => t.expr!.includes(threshold) && t.expr!.includes(`check="${check}"`)),
    );
    expect(p, `${metric} with ${check}'s threshold`).toBeDefined();
    expect(p!.fieldConfig?.defaults?.unit).toBe(unit);
    const line = p!.targets!.find((t) => t.expr!.includes(threshold) && t.expr!.includes(`check="${check}"`))!;
    expect(line.legendFormat).toMatch(/threshold/);
    // No fixed line that would disagree with sentinel.yml.
    expect(thresholdValues(p!).filter((v) => v !== null)).toEqual([]);
    expect(p!.fieldConfig?.overrides).toContainEqual(
      expect.objectContaining({ matcher: { id: 'byRegexp', options: '.*threshold.*' } }),
    );
  });

  it('charts every check, each panel saying what it counts and over which window', () => {
    const checkMetric: Record<string, RegExp> = {
      stuck_batches: /sentinel_pipeline_stuck_batches/,
      error_spike: /sentinel_pipeline_error_ratio/,
      schema_cache: /sentinel_schema_cache_up|sentinel_schema_cache_probe_result/,
      dedupe_rate: /sentinel_pipeline_dedupe_ratio/,
      processing_time: /check="processing_time"/,
      queue_backlog: /sentinel_pipeline_backlog_batches/,
      source_freshness: /sentinel_pipeline_source_last_batch_age_seconds/,
      row_error_codes: /check="row_error_codes"/,
      anomalies: /sentinel_anomaly_score/,
    };
    expect(Object.keys(checkMetric).sort()).toEqual([...CHECK_NAMES].sort());
    for (const [check, re] of Object.entries(checkMetric)) {
      const charted = panels.filter((p) => p.type !== 'stat' && p.targets?.some((t) => re.test(t.expr ?? '')));
      expect(charted.length, check).toBeGreaterThan(0);
    }
    for (const p of panels) {
      expect(p.title, `panel ${p.id}`).toBeTruthy();
      expect(p.description?.length ?? 0, `${p.title}: description`).toBeGreaterThan(30);
    }
    // The panels of the checks that had none say their window.
    for (const title of [
      'Processing time of the batches completed in the last hour',
      'Queue backlog: batches waiting in uploaded past the threshold',
      "Source freshness: time since each source's last batch",
      'Error ratio per source with its own threshold',
      'Dedupe ratio per source with its own threshold',
      'New row error codes',
    ]) {
      const p = panels.find((x) => x.title === title);
      expect(p, title).toBeDefined();
      expect(p!.description, title).toMatch(/hour|run|window|lookback/);
    }
  });

  it('charts the error and dedupe ratios overall (no source label) and per source', () => {
    for (const metric of ['sentinel_pipeline_error_ratio', 'sentinel_pipeline_dedupe_ratio']) {
      const exprs = panelUsing(metric).flatMap((p) => p.targets!.map((t) => t.expr!));
      expect(
        exprs.some((e) => e.includes('source=""')),
        metric,
      ).toBe(true);
      expect(
        exprs.some((e) => /by \(source\)/.test(e) && e.includes('source!=""')),
        metric,
      ).toBe(true);
    }
  });

  it("shows the last run's figures of the leader only", () => {
    const perRun = new Set<string>(PER_RUN_METRICS);
    const LEADER = 'and on (job, instance) sentinel_leader{job=~"$job"} == 1';
    let checked = 0;
    for (const q of overviewQueries()) {
      const refs = q.refs.filter((r) => perRun.has(r.name));
      if (refs.length === 0) continue;
      // Right after each selector of a per-run metric.
      for (const r of refs) {
        const selector = new RegExp(`${r.name}\\{[^}]*\\} ${LEADER.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
        expect(q.expr, `${q.where}: ${r.name}`).toMatch(selector);
      }
      expect(q.expr.split(LEADER).length - 1, q.where).toBe(refs.length);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(20);
  });

  it('shows the database down when any replica reports it (a follower: the lock database)', () => {
    const [p] = panels.filter((x) => x.title === 'Database');
    expect(p!.targets!.map((t) => t.expr)).toEqual(['min(sentinel_database_up{job=~"$job", instance=~"$instance"})']);
    expect(p!.description).toMatch(/follower reached the lock database/);
  });

  it('uses every metric of names.ts somewhere', () => {
    const used = new Set(
      overviewQueries().flatMap((q) => q.refs.map((r) => r.name.replace(/_(bucket|sum|count)$/, ''))),
    );
    expect(METRICS.map((m) => m.name).filter((m) => !used.has(m))).toEqual([]);
  });
});

describe('prometheus/sentinel-rules.yml', () => {
  it('parses into named groups of rules that each have an expression', () => {
    const file = rulesFile();
    expect(file.groups.length).toBeGreaterThan(0);
    const groupNames = file.groups.map((g) => g.name);
    expect(new Set(groupNames).size).toBe(groupNames.length);
    for (const g of file.groups) {
      expect(g.rules.length, g.name).toBeGreaterThan(0);
      for (const r of g.rules) {
        expect(typeof r.expr, `${g.name}: ${r.record ?? r.alert}`).toBe('string');
        expect(Boolean(r.record) !== Boolean(r.alert), `${g.name}: exactly one of record/alert`).toBe(true);
      }
    }
  });

  it('names recording rules level:metric:operations after an exported metric, each once', async () => {
    const records = allRules().flatMap((r) => (r.record ? [r.record] : []));
    expect(records.length).toBeGreaterThan(0);
    expect(new Set(records).size).toBe(records.length);
    const { series } = await declaredMetrics();
    for (const name of records) {
      expect(name).toMatch(/^[a-z_]+:[a-z_]+:[a-z_0-9]+$/);
      const metric = name.split(':')[1]!;
      // A rate or increase of a counter drops the _total suffix.
      const exported = series.has(metric) || series.has(`${metric}_total`) || METRICS.some((m) => m.name === metric);
      expect(exported, `${name}: ${metric}`).toBe(true);
    }
  });

  it('gives every alert a for, a severity, prose annotations and a runbook_url to its own section', () => {
    const alerts = allRules().filter((r) => r.alert);
    const names = alerts.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
    const sections = anchorsOf('docs/runbooks.md');
    const used: string[] = [];
    for (const a of alerts) {
      expect(a.alert).toMatch(/^Sentinel[A-Z][A-Za-z]+$/);
      expect(a.for, a.alert).toMatch(/^(\d+(ms|s|m|h|d|w|y))+$/);
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      expect(Object.keys(a.annotations ?? {}).sort(), a.alert).toEqual(['description', 'runbook_url', 'summary']);
      for (const key of ['summary', 'description'] as const) {
        const text = a.annotations![key]!;
        expect(text.length, `${a.alert} ${key}`).toBeGreaterThan(10);
        // Prose, never a JSON array or object, nor a Go value dump.
        expect(text, `${a.alert} ${key}`).not.toMatch(/\[\s*[{"]|\{\s*"|map\[|\$value\s*\}\}\s*\]/);
        expect(text, `${a.alert} ${key}`).not.toMatch(/printf "[^"]*" \$labels\.\w+ \| query \}\}\{\{ \. \}\}/);
      }
      const runbook = /^docs\/runbooks\.md#([a-z0-9-]+)$/.exec(a.annotations!.runbook_url!);
      expect(runbook, `${a.alert}: runbook_url ${a.annotations!.runbook_url}`).not.toBeNull();
      expect(sections, `${a.alert}: docs/runbooks.md has no section #${runbook![1]}`).toContain(runbook![1]);
      used.push(runbook![1]!);
    }
    // One section per alert, and no section without its alert.
    expect(new Set(used).size, 'two alerts share a runbook section').toBe(used.length);
    const level2 = new Set(
      [...readFileSync(join(ROOT, 'docs/runbooks.md'), 'utf8').matchAll(/^## (.+)$/gm)].map((m) =>
        m[1]!
          .toLowerCase()
          .replace(/[^\p{L}\p{N}\s_-]/gu, '')
          .replace(/\s/g, '-'),
      ),
    );
    expect([...level2].sort()).toEqual([...used].sort());
  });

  it('has promtool cases for every alert, firing and not firing, and for the leader selection', () => {
    interface UnitTests {
      tests: Array<{
        name: string;
        input_series: Array<{ series: string }>;
        alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }>;
      }>;
    }
    const file = parseYaml(readFileSync(join(ROOT, 'prometheus/sentinel-rules.test.yml'), 'utf8')) as UnitTests;
    const cases = file.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of allRules().flatMap((r) => (r.alert ? [r.alert] : []))) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert}: a firing case`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert}: a not-firing case`,
      ).toBe(true);
    }
    // Cases where a follower (sentinel_leader 0 throughout) carries stale per-run series.
    const withStaleFollower = file.tests.filter((t) =>
      t.input_series.some((s) => /instance="b:9464"/.test(s.series) && /^sentinel_pipeline_/.test(s.series)),
    );
    expect(withStaleFollower.length).toBeGreaterThanOrEqual(4);
  });

  it('has an alert for every check, with the check as a label and in its runbook anchor', () => {
    const byCheck = new Map<string, Rule[]>();
    for (const r of allRules().filter((x) => x.alert && x.labels?.check)) {
      byCheck.set(r.labels!.check!, [...(byCheck.get(r.labels!.check!) ?? []), r]);
    }
    expect([...byCheck.keys()].sort()).toEqual([...CHECK_NAMES].sort());
    // The check's own section is its name with dashes (stable anchors other docs link to).
    for (const check of CHECK_NAMES) {
      const anchors = byCheck.get(check)!.map((r) => r.annotations!.runbook_url!.split('#')[1]);
      expect(anchors, check).toContain(check.replace(/_/g, '-'));
    }
  });

  it('names the status of stuck batches from the data, never "processing" for every status', () => {
    const stuck = allRules().find((r) => r.alert === 'SentinelStuckBatches')!;
    expect(stuck.expr!.replace(/\s+/g, ' ').trim()).toMatch(
      /^job_status:sentinel_pipeline_stuck_batches:leader_max > 0/,
    );
    expect(stuck.annotations!.summary).toContain('stuck in {{ $labels.status }}');
    expect(`${stuck.annotations!.summary} ${stuck.annotations!.description}`).not.toMatch(/stuck in processing/);
  });

  /** The metrics an expression reads, directly or through a recording rule (level:metric:operations). */
  const readsMetrics = (expr: string): string[] =>
    promqlMetrics(expr).map((r) => (recordedNames().has(r.name) ? r.name.split(':')[1]! : r.name));

  it.each([
    ['SentinelStuckBatches', 'critical', 'sentinel_pipeline_stuck_batches'],
    ['SentinelStuckBatches', 'critical', 'sentinel_check_threshold_seconds'],
    ['SentinelErrorSpike', 'warning', 'sentinel_pipeline_error_ratio'],
    ['SentinelErrorSpike', 'warning', 'sentinel_check_threshold_ratio'],
    ['SentinelErrorSpike', 'warning', 'sentinel_check_min_rows'],
    ['SentinelErrorSpikeSource', 'warning', 'sentinel_pipeline_error_ratio'],
    ['SentinelErrorSpikeSource', 'warning', 'sentinel_check_threshold_ratio'],
    ['SentinelDedupeSpike', 'warning', 'sentinel_pipeline_dedupe_ratio'],
    ['SentinelDedupeSpike', 'warning', 'sentinel_pipeline_dedupe_bucket_rows'],
    ['SentinelDedupeSpikeSource', 'warning', 'sentinel_pipeline_dedupe_ratio'],
    ['SentinelProcessingTimeSlow', 'warning', 'sentinel_check_measurement'],
    ['SentinelProcessingTimeSlow', 'warning', 'sentinel_check_threshold_seconds'],
    ['SentinelQueueBacklog', 'warning', 'sentinel_pipeline_backlog_batches'],
    ['SentinelSourceSilent', 'warning', 'sentinel_pipeline_source_last_batch_age_seconds'],
    ['SentinelSourceSilent', 'warning', 'sentinel_check_threshold_seconds'],
    ['SentinelSchemaCacheDown', 'critical', 'sentinel_schema_cache_up'],
    ['SentinelSchemaCacheReloaded', 'warning', 'sentinel_check_status'],
    ['SentinelNewErrorCodes', 'warning', 'sentinel_check_measurement'],
    ['SentinelDatabaseUnreachable', 'critical', 'sentinel_database_up'],
    ['SentinelCheckFailing', 'critical', 'sentinel_check_status'],
    ['SentinelMetricsAbsent', 'critical', 'sentinel_build_info'],
    ['SentinelNotRunning', 'critical', 'sentinel_last_run_timestamp_seconds'],
    ['SentinelReplicaNotRunning', 'warning', 'sentinel_last_run_timestamp_seconds'],
    ['SentinelReplicaNotRunning', 'warning', 'up'],
    ['SentinelTargetDown', 'warning', 'up'],
    ['SentinelNoLeader', 'critical', 'sentinel_leader'],
    ['SentinelSplitBrain', 'critical', 'sentinel_leader'],
  ])('has %s (%s) on %s', (alert, severity, metric) => {
    const rule = allRules().find((r) => r.alert === alert);
    expect(rule, alert).toBeDefined();
    expect(rule!.labels?.severity).toBe(severity);
    expect(readsMetrics(rule!.expr!)).toContain(metric);
  });

  it('pages on the thresholds of the checks and of Sentinel going silent', () => {
    const expr = (alert: string): string =>
      allRules()
        .find((r) => r.alert === alert)!
        .expr!.replace(/\s+/g, ' ')
        .trim();
    // The thresholds are Sentinel's (exported per check and source), never numbers in the rules.
    const checkAlerts = allRules().filter((r) => r.alert && r.labels?.check);
    for (const r of checkAlerts) {
      // Only 0 and 1 (counts above zero, status codes); no threshold, ratio or duration literal. The one
      // exception: the anomalies check's verdict (sentinel_anomaly_level: 1 warning, 2 critical).
      const fixed = r.labels?.check === 'anomalies' ? ['0', '1', '2'] : ['0', '1'];
      const numbers = (r.expr!.replace(/\{[^}]*\}/g, '').match(/(?<![\w:])\d*\.?\d+(?![\w:])/g) ?? []).filter(
        (n) => !fixed.includes(n),
      );
      expect(numbers, r.alert).toEqual([]);
    }
    expect(expr('SentinelStuckBatches')).toBe(
      'job_status:sentinel_pipeline_stuck_batches:leader_max > 0 and on (job) ' +
        'job_check:sentinel_check_threshold_seconds:leader_max{check="stuck_batches"}',
    );
    expect(expr('SentinelErrorSpike')).toBe(
      'job:sentinel_pipeline_error_ratio:leader_max > on (job) ' +
        'job_check:sentinel_check_threshold_ratio:leader_max{check="error_spike"} and on (job) ' +
        '(job:sentinel_pipeline_bucket_rows:leader_max >= on (job) job:sentinel_check_min_rows:leader_max)',
    );
    expect(expr('SentinelErrorSpikeSource')).toBe(
      'job_source:sentinel_pipeline_error_ratio:leader_max > on (job, source) ' +
        'job_check_source:sentinel_check_threshold_ratio:leader_max{check="error_spike"} and on (job, source) ' +
        '(job_source:sentinel_pipeline_bucket_rows:leader_max >= on (job) group_left ' +
        'job:sentinel_check_min_rows:leader_max)',
    );
    expect(expr('SentinelDedupeSpike')).toBe(
      'job:sentinel_pipeline_dedupe_ratio:leader_max > on (job) ' +
        'job_check:sentinel_check_threshold_ratio:leader_max{check="dedupe_rate"} and on (job) ' +
        '(job:sentinel_pipeline_dedupe_bucket_rows:leader_max >= on (job) job:sentinel_check_min_rows:leader_max)',
    );
    expect(expr('SentinelDedupeSpikeSource')).toMatch(
      /^job_source:sentinel_pipeline_dedupe_ratio:leader_max > on \(job, source\) job_check_source:sentinel_check_thr/,
    );
    expect(expr('SentinelQueueBacklog')).toBe(
      'job:sentinel_pipeline_backlog_batches:leader_max > 0 and on (job) ' +
        'job_check:sentinel_check_threshold_seconds:leader_max{check="queue_backlog"}',
    );
    expect(expr('SentinelProcessingTimeSlow')).toMatch(
      /measurement="p95_seconds"\}\) > on \(job\) job_check:sentinel_che/,
    );
    expect(expr('SentinelSourceSilent')).toBe(
      'job_source:sentinel_pipeline_source_last_batch_age_seconds:leader_max > on (job, source) ' +
        'job_check_source:sentinel_check_threshold_seconds:leader_max{check="source_freshness"}',
    );
    expect(expr('SentinelSchemaCacheDown')).toMatch(/^job:sentinel_schema_cache_up:leader_max == 0 /);
    expect(expr('SentinelCheckFailing')).toBe('job_check:sentinel_check_status:leader_max == 3');
    // Any replica reporting 0 (a follower reports the lock database it polls).
    expect(expr('SentinelDatabaseUnreachable')).toBe('count by (job) (sentinel_database_up == 0) > 0');
    // Every replica exports its build info, whether or not it ever ran.
    expect(expr('SentinelMetricsAbsent')).toBe('absent(sentinel_build_info{job="sentinel"})');
    expect(expr('SentinelNotRunning')).toMatch(
      /^time\(\) - job:sentinel_last_run_timestamp_seconds:leader_max\{job="sentinel"\} > 900$/,
    );
    expect(expr('SentinelTargetDown')).toBe('up{job="sentinel"} == 0');
    expect(expr('SentinelNoLeader')).toMatch(/sum by \(job\) \(sentinel_leader.*\) < 1$/);
    expect(expr('SentinelSplitBrain')).toMatch(/sum by \(job\) \(sentinel_leader.*\) > 1$/);
    const rule = (alert: string): Rule => allRules().find((r) => r.alert === alert)!;
    // Nobody leading lasts one poll at most: 2 minutes means the lock cannot be taken.
    expect(rule('SentinelNoLeader').for).toBe('2m');
    expect(rule('SentinelNoLeader').annotations!.description).toMatch(/lock database .*unreachable/);
    expect(rule('SentinelDatabaseUnreachable').for).toBe('2m');
    expect(rule('SentinelDatabaseUnreachable').annotations!.description).toMatch(
      /follower could not reach the lock database/,
    );
  });

  it(
    "reads the last run's figures of the leader only: per-run " + 'metrics only in leader-selecting recording rules',
    () => {
      const LEADER = /\band on \(job, instance\) sentinel_leader == 1\b/;
      const perRun = new Set<string>(PER_RUN_METRICS);
      const recordings = allRules().filter((r) => r.record);
      let selecting = 0;
      for (const r of allRules()) {
        const refs = promqlMetrics(r.expr!).filter((ref) => perRun.has(ref.name));
        if (refs.length === 0) continue;
        expect(
          r.record,
          `${r.alert}: reads ${refs.map((x) => x.name).join(', ')} directly instead of a leader recording rule`,
        ).toBeDefined();
        // One leader selection per per-run selector.
        expect(r.expr!.replace(/\s+/g, ' ').split(LEADER).length - 1, r.record).toBe(refs.length);
        expect(r.record!, r.record).toMatch(/:leader_(max|sum)$/);
        selecting++;
      }
      expect(selecting).toBeGreaterThanOrEqual(12);
      // Every leader recording rule of a per-run metric is one of those.
      for (const r of recordings.filter((x) => /:leader_/.test(x.record!)))
        expect(r.expr!.replace(/\s+/g, ' '), r.record).toMatch(LEADER);
      // The leader's last run: from its start when it has not finished one.
      expect(
        allRules()
          .find((r) => r.record === 'job:sentinel_last_run_timestamp_seconds:leader_max')!
          .expr!.replace(/\s+/g, ' '),
      ).toMatch(
        new RegExp(
          'sentinel_last_run_timestamp_seconds or on \\(job, instance\\) process_start_time_seconds' +
            '\\) and on \\(job, instance\\) sentinel_leader == 1',
        ),
      );
    },
  );

  it('judges SentinelReplicaNotRunning by role: the leader by its last run, a follower by being up', () => {
    const r = allRules().find((x) => x.alert === 'SentinelReplicaNotRunning')!;
    const e = r.expr!.replace(/\s+/g, ' ');
    expect(e).toMatch(
      new RegExp(
        'sentinel_last_run_timestamp_seconds\\{job="sentinel"\\} or on \\(job, instance\\) process_' +
          'start_time_seconds\\{job="sentinel"\\}\\) > 900 and on \\(job, instance\\) sentinel_leader' +
          '\\{job="sentinel"\\} == 1, "role", "leader"',
      ),
    );
    expect(e).toMatch(
      new RegExp(
        'up\\{job="sentinel"\\} == 0 unless on \\(job, instance\\) last_over_time\\(sentinel_leader' +
          '\\{job="sentinel"\\}\\[1h\\]\\) == 1, "role", "follower"',
      ),
    );
  });

  it('describes replicas, exported thresholds and absolute runbook URLs in its header', () => {
    const text = readFileSync(join(ROOT, 'prometheus/sentinel-rules.yml'), 'utf8');
    const header = text.slice(0, text.indexOf('groups:'));
    expect(header).not.toMatch(/change the numbers here|Sentinel's defaults/);
    expect(header).toMatch(/sentinel_check_threshold_seconds/);
    expect(header).toMatch(/runbook_url.*absolute|absolute[\s\S]*runbook_url|runbook_url[\s\S]*absolute/);
    expect(header).toMatch(/only the leader runs the checks/);
    expect(header).not.toMatch(/exports the pipeline metrics of its own\s+# last run/);
    expect(header).toMatch(/SentinelNoLeader/);
  });
});

// ───────────────────────── pipeline-sql.json against the real views

const RANGE_FROM = `(now() - interval '7 days')`;
const RANGE_TO = 'now()';

function intervalSeconds(spec: string): number {
  const m = /^'?(\d+)(s|m|h|d)'?$/.exec(spec.trim());
  if (!m) throw new Error(`unsupported interval ${spec}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/**
 * Grafana's PostgreSQL macros, expanded as Grafana does for a 7-day range ending
 * now. An unknown macro is an error rather than SQL that only fails in Grafana.
 */
function expandGrafanaMacros(sql: string): string {
  const group = (col: string, interval: string): string =>
    `to_timestamp(floor(extract(epoch from ${col}) / ${intervalSeconds(interval)}) * ${intervalSeconds(interval)})`;
  const out = sql
    .replace(/\$__timeFilter\(\s*([^)]+?)\s*\)/g, (_, col: string) => `${col} between ${RANGE_FROM} and ${RANGE_TO}`)
    .replace(
      /\$__timeGroupAlias\(\s*([^,]+?)\s*,\s*([^,)]+?)\s*(?:,[^)]*)?\)/g,
      (_, c: string, i: string) => `${group(c, i)} as "time"`,
    )
    .replace(/\$__timeGroup\(\s*([^,]+?)\s*,\s*([^,)]+?)\s*(?:,[^)]*)?\)/g, (_, c: string, i: string) => group(c, i))
    .replace(/\$__time\(\s*([^)]+?)\s*\)/g, (_, col: string) => `${col} as "time"`)
    .replace(/\$__timeEpoch\(\s*([^)]+?)\s*\)/g, (_, col: string) => `extract(epoch from ${col}) as "time"`)
    .replace(/\$__timeFrom\(\)/g, RANGE_FROM)
    .replace(/\$__timeTo\(\)/g, RANGE_TO)
    .replace(
      /\$__unixEpochFilter\(\s*([^)]+?)\s*\)/g,
      (_, col: string) => `${col} between extract(epoch from ${RANGE_FROM}) and extract(epoch from ${RANGE_TO})`,
    );
  const left = /\$\w+|\$\{[^}]*\}/.exec(out);
  if (left) throw new Error(`unsupported Grafana macro or variable ${left[0]} in: ${sql}`);
  return out;
}

/** Per panel: the columns each query must return, in order. */
const EXPECTED_COLUMNS: Record<string, string[]> = {
  'Batches in flight': ['batch_count'],
  'Oldest in-flight batch': ['oldest_age_minutes'],
  'Failed batches in range': ['failed_batches'],
  'Error rate in range': ['error_rate_pct'],
  'Pipeline health': ['status', 'batch_count', 'oldest_batch_at', 'oldest_age_minutes', 'newest_batch_at'],
  'Batches per hour: completed vs failed': ['hour_bucket', 'completed_batches', 'failed_batches'],
  'Error rate per hour': ['time', 'error_rate_pct'],
  'Dedupe rate per hour': ['time', 'dedupe_rate_pct'],
  'Average timings per hour': ['time', 'avg_parse_ms', 'avg_db_ms', 'avg_total_ms'],
  'Rows per hour': ['time', 'inserted_rows', 'skipped_rows', 'error_rows'],
  'Hourly performance': [
    'hour_bucket',
    'total_batches',
    'completed_batches',
    'failed_batches',
    'avg_parse_ms',
    'avg_db_ms',
    'avg_total_ms',
    'total_rows',
    'inserted_rows',
    'skipped_rows',
    'error_rows',
    'dedupe_rate_pct',
    'error_rate_pct',
  ],
  'Top 10 error codes': ['error_code', 'occurrence_count', 'affected_batches', 'last_seen_at', 'sample_message'],
};

// pg type oids
const TIMESTAMPTZ = 1184;
const NUMERIC_TYPES = new Set([20, 21, 23, 700, 701, 1700]);

describe('pipeline-sql.json against the real ops views', () => {
  const db = useTestDatabase();
  const sqlPanels = queryPanels(loadDashboard('pipeline-sql.json'));

  it('expands the Grafana macros it uses', () => {
    expect(expandGrafanaMacros('select $__time(hour_bucket), x from t where $__timeFilter(hour_bucket)')).toBe(
      `select hour_bucket as "time", x from t where hour_bucket between ${RANGE_FROM} and ${RANGE_TO}`,
    );
    expect(expandGrafanaMacros("select $__timeGroupAlias(created_at, '1h'), count(*)")).toBe(
      `select to_timestamp(floor(extract(epoch from created_at) / 3600) * 3600) as "time", count(*)`,
    );
    expect(() => expandGrafanaMacros('select $__schema()')).toThrow(/unsupported/);
  });

  it('has an expectation for every panel', () => {
    expect(sqlPanels.map((p) => p.title).sort()).toEqual(Object.keys(EXPECTED_COLUMNS).sort());
  });

  it('reads only the ops views', () => {
    for (const p of sqlPanels) {
      for (const t of p.targets!) {
        const relations = [...t.rawSql!.matchAll(/\b(?:from|join)\s+([a-z_][\w.]*)/gi)].map((m) => m[1]);
        expect(relations.length, p.title).toBeGreaterThan(0);
        for (const r of relations)
          expect(['ops.v_batch_performance', 'ops.v_error_distribution', 'ops.v_pipeline_health'], p.title).toContain(
            r,
          );
      }
    }
  });

  it('runs every query on a seeded pipeline and gets the columns each panel uses', async () => {
    const { pool } = db();
    // Two whole UTC hours before the current one, so the hourly rows do not depend on the clock.
    const { rows: nowRows } = await pool.query<{ h0: Date }>(`select date_trunc('hour', now(), 'UTC') as h0`);
    const hour = (h: number, minutes: number): Date =>
      new Date(nowRows[0]!.h0.getTime() - h * 3_600_000 + minutes * 60_000);
    const rows = { total_rows: 100, inserted_rows: 70, skipped_rows: 10, error_rows: 20, parse_ms: 120, db_ms: 380 };
    const failed = await insertBatch(pool, {
      status: 'failed',
      ...rows,
      created_at: hour(2, 5),
      completed_at: hour(2, 8),
    });
    await insertBatch(pool, {
      status: 'completed',
      ...rows,
      error_rows: 0,
      inserted_rows: 90,
      created_at: hour(2, 20),
    });
    await insertBatch(pool, { status: 'completed', ...rows, created_at: hour(1, 5) });
    await insertBatch(pool, {
      status: 'processing',
      total_rows: 0,
      created_at: hour(1, 10),
      updated_at: minutesAgo(25),
    });
    await insertBatch(pool, { status: 'uploaded', total_rows: 0, created_at: hour(1, 15), updated_at: minutesAgo(3) });
    // Outside the 7-day range: must not show up in the time-filtered panels.
    await insertBatch(pool, { status: 'failed', ...rows, created_at: minutesAgo(10 * 24 * 60) });
    await insertRowErrors(pool, failed, [
      { error_code: 'E_DATE', error_message: 'bad date "2025-13-01"' },
      { error_code: 'E_DATE', error_message: 'bad date "2025-02-30"' },
      { error_code: 'E_AMOUNT', error_message: 'amount is not a number' },
    ]);

    const results: Record<string, { fields: { name: string; dataTypeID: number }[]; rows: Record<string, unknown>[] }> =
      {};
    for (const p of sqlPanels) {
      for (const t of p.targets!) {
        const sql = expandGrafanaMacros(t.rawSql!);
        const result = await pool.query(sql).catch((err: Error) => {
          throw new Error(`panel "${p.title}" ${t.refId}: ${err.message}\n${sql}`);
        });
        const columns = result.fields.map((f) => f.name);
        expect(columns, p.title).toEqual(EXPECTED_COLUMNS[p.title]);

        // Whatever the panel's options and overrides refer to by name is a column.
        const referenced = [
          ...(p.fieldConfig?.overrides ?? [])
            .filter((o) => o.matcher.id === 'byName')
            .map((o) => String(o.matcher.options)),
          ...(typeof p.options?.xField === 'string' ? [p.options.xField] : []),
        ];
        for (const name of referenced) expect(columns, `${p.title}: ${name}`).toContain(name);

        if (t.format === 'time_series') {
          expect(result.fields[0], p.title).toMatchObject({ name: 'time', dataTypeID: TIMESTAMPTZ });
          for (const f of result.fields.slice(1))
            expect(NUMERIC_TYPES, `${p.title}: ${f.name}`).toContain(f.dataTypeID);
        }
        results[p.title] = { fields: result.fields, rows: result.rows as Record<string, unknown>[] };
      }
    }

    // The seeded state is what the panels show.
    const num = (v: unknown): number => Number(v);
    expect(num(results['Batches in flight']!.rows[0]!.batch_count)).toBe(2);
    expect(num(results['Oldest in-flight batch']!.rows[0]!.oldest_age_minutes)).toBeGreaterThanOrEqual(24.9);
    expect(num(results['Failed batches in range']!.rows[0]!.failed_batches)).toBe(1);
    // 40 error rows of 300 in range (the 10-day-old batch is outside it).
    expect(num(results['Error rate in range']!.rows[0]!.error_rate_pct)).toBeCloseTo(13.33, 2);
    expect(results['Pipeline health']!.rows.map((r) => r.status)).toEqual(['uploaded', 'processing']);
    const hourly = results['Batches per hour: completed vs failed']!.rows;
    expect(hourly.map((r) => [r.hour_bucket, num(r.completed_batches), num(r.failed_batches)])).toEqual([
      [hour(2, 0), 1, 1],
      [hour(1, 0), 1, 0],
    ]);
    expect(results['Error rate per hour']!.rows.map((r) => num(r.error_rate_pct))).toEqual([10, 20]);
    expect(results['Dedupe rate per hour']!.rows.map((r) => num(r.dedupe_rate_pct))).toEqual([10, 10]);
    expect(results['Average timings per hour']!.rows.map((r) => num(r.avg_total_ms))).toEqual([500, 500]);
    expect(
      results['Top 10 error codes']!.rows.map((r) => [r.error_code, num(r.occurrence_count), r.sample_message]),
    ).toEqual([
      ['E_DATE', 2, 'bad date "2025-02-30"'],
      ['E_AMOUNT', 1, 'amount is not a number'],
    ]);
  });
});

// ───────────────────────── promtool, when installed

// CI provides promtool (.ci/run unpacks Debian's package) and fails without it; on a
// laptop without it these are skipped with a printed reason.
describe.runIf(havePromtool())('promtool', () => {
  const promtool = (...args: string[]) => runPromtool(args);

  it('accepts the rules file (promtool check rules)', () => {
    const r = promtool('check', 'rules', 'sentinel-rules.yml');
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.output, 'lint findings').not.toMatch(/WARNING|FAILED|duplicate/i);
    expect(r.status, r.output).toBe(0);
  });

  it("passes the rules' unit tests (promtool test rules)", () => {
    const r = promtool('test', 'rules', 'sentinel-rules.test.yml');
    expect(r.status, r.output).toBe(0);
  });

  it('parses every PromQL expression of the overview dashboard', () => {
    // As recording rules, with Grafana's interval variables given a value.
    const rules = overviewQueries()
      .filter((q) => !q.where.startsWith('variable'))
      .map((q, i) => ({
        record: `dashboard:expr:n${i}`,
        expr: q.expr.replace(/\$__(rate_)?interval|\$__range/g, '5m'),
      }));
    const dir = mkdtempSync(join(tmpdir(), 'sentinel-promql-'));
    try {
      const file = join(dir, 'dashboard-rules.yml');
      writeFileSync(file, stringifyYaml({ groups: [{ name: 'dashboard', rules }] }));
      const r = promtool('check', 'rules', file);
      expect(r.status, r.output).toBe(0);
      expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
