import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nagiosThresholds, renderNagios, renderNagiosUnknown } from '../../src/report/nagios.js';
import type { Alert, PipelineSnapshot, RunResult } from '../../src/types.js';
import { overallStatus } from '../../src/types.js';
import { Redactor } from '../../src/util/redact.js';
import { runCli } from '../helpers/cli.js';
import { testConfig } from '../helpers/context.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { insertBatch } from '../helpers/fixtures.js';
import { hourlyFigures } from '../helpers/run-figures.js';

// ---------------------------------------------------------------------------
// A plugin-output parser written from the Nagios plugin API
// (https://nagios-plugins.org/doc/guidelines.html#AEN200), independent of the code
// under test: `TEXT | perfdata` on the first line; perfdata is a space-separated
// list of `'label'=value[UOM];[warn];[crit];[min];[max]`; a label holds no `=`; quotes
// around it are optional, required with spaces or `'`, and a literal quote is doubled; UOM is
// none, s/ms/us, %, B/KB/MB/TB or c; value, min and max are in [-0-9.]; warn and
// crit are ranges; trailing empty fields may be dropped.
// ---------------------------------------------------------------------------

interface Range {
  start: number;
  end: number;
  /** `@`: alert inside the range instead of outside. */
  inside: boolean;
}

interface Perf {
  label: string;
  value: number;
  uom: string;
  warn?: Range;
  crit?: Range;
  min?: number;
  max?: number;
}

const UOMS = ['', 's', 'ms', 'us', '%', 'B', 'KB', 'MB', 'TB', 'c'];
const NUMBER = /^-?(\d+(\.\d*)?|\.\d+)$/;

function parseNumber(text: string, what: string): number {
  if (!NUMBER.test(text)) throw new Error(`${what}: "${text}" is not in the class [-0-9.]`);
  return Number(text);
}

/** The threshold range format: `10`, `10:`, `~:10`, `10:20`, `@10:20`. */
function parseRange(text: string): Range {
  const inside = text.startsWith('@');
  const body = inside ? text.slice(1) : text;
  const colon = body.indexOf(':');
  if (colon < 0) return { start: 0, end: parseNumber(body, 'range end'), inside };
  const startText = body.slice(0, colon);
  const endText = body.slice(colon + 1);
  const start = startText === '~' ? -Infinity : parseNumber(startText, 'range start');
  const end = endText === '' ? Infinity : parseNumber(endText, 'range end');
  if (start > end) throw new Error(`range ${text}: start above end`);
  return { start, end, inside };
}

/** Whether `value` raises the alert the range describes. */
function alerts(range: Range, value: number): boolean {
  const outside = value < range.start || value > range.end;
  return range.inside ? !outside : outside;
}

function parsePerfdata(text: string): Perf[] {
  const out: Perf[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === ' ') {
      i++;
      continue;
    }
    let label = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted label');
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            label += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (text[i] === '=') throw new Error(`"=" inside the label near ${i}`);
        label += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== '=') {
        if (text[i] === ' ' || text[i] === "'") throw new Error(`unquoted label with a space or quote near ${i}`);
        label += text[i++];
      }
    }
    if (text[i] !== '=') throw new Error(`expected = after label ${label}`);
    i++;
    let token = '';
    while (i < text.length && text[i] !== ' ') token += text[i++];
    const [valueUom = '', warn = '', crit = '', min = '', max = '', ...rest] = token.split(';');
    if (rest.length > 0) throw new Error(`${label}: more than five fields`);
    const m = /^(-?[0-9.]+)([a-zA-Z%]*)$/.exec(valueUom);
    if (!m || !UOMS.includes(m[2]!)) throw new Error(`${label}: bad value/UOM "${valueUom}"`);
    out.push({
      label,
      value: parseNumber(m[1]!, `${label} value`),
      uom: m[2]!,
      ...(warn ? { warn: parseRange(warn) } : {}),
      ...(crit ? { crit: parseRange(crit) } : {}),
      ...(min ? { min: parseNumber(min, `${label} min`) } : {}),
      ...(max ? { max: parseNumber(max, `${label} max`) } : {}),
    });
  }
  return out;
}

interface PluginOutput {
  state: string;
  text: string;
  perf: Perf[];
}

/** First line only (Nagios reads the rest as long output); the first `|` starts the perfdata. */
function parsePluginOutput(output: string): PluginOutput {
  const line = output.split('\n')[0]!;
  const bar = line.indexOf('|');
  const head = bar < 0 ? line : line.slice(0, bar);
  const m = /^SENTINEL (OK|WARNING|CRITICAL|UNKNOWN) - (.+)$/.exec(head.trimEnd());
  if (!m) throw new Error(`not a Sentinel plugin line: ${line}`);
  return { state: m[1]!, text: m[2]!, perf: bar < 0 ? [] : parsePerfdata(line.slice(bar + 1)) };
}

const byLabel = (perf: Perf[], label: string): Perf | undefined => perf.find((p) => p.label === label);
const range = (end: number): Range => ({ start: 0, end, inside: false });

describe('the perfdata parser itself', () => {
  it('reads the plugin API examples, quoted labels, doubled quotes and ranges', () => {
    expect(parsePerfdata("time=0.1s;1;2;0 'a b''c d'=5%;@10:20;~:30 x=3c")).toEqual([
      { label: 'time', value: 0.1, uom: 's', warn: range(1), crit: range(2), min: 0 },
      {
        label: "a b'c d",
        value: 5,
        uom: '%',
        warn: { start: 10, end: 20, inside: true },
        crit: { start: -Infinity, end: 30, inside: false },
      },
      { label: 'x', value: 3, uom: 'c' },
    ]);
    expect(alerts(range(0), 0)).toBe(false);
    expect(alerts(range(0), 1)).toBe(true);
    expect(alerts(parseRange('10:'), 9)).toBe(true);
    expect(alerts(parseRange('@10:20'), 15)).toBe(true);
  });

  it('rejects what the API does not allow', () => {
    expect(() => parsePerfdata('a b=1')).toThrow(/unquoted label/);
    expect(() => parsePerfdata("'a=1")).toThrow(/inside the label/);
    expect(() => parsePerfdata("'a")).toThrow(/unterminated/);
    expect(() => parsePerfdata("'a=b'=1")).toThrow(/inside the label/);
    expect(() => parsePerfdata('a=1xyz')).toThrow(/bad value/);
    expect(() => parsePerfdata('a=1e3')).toThrow(/bad value/);
    expect(() => parsePerfdata('a=1;2;3;4;5;6')).toThrow(/five fields/);
  });
});

// ---------------------------------------------------------------------------
// The formatter on hand-made runs
// ---------------------------------------------------------------------------

const stuck: Alert = {
  check: 'stuck_batches',
  level: 'critical',
  message: '3 batches stuck > 10m: processing(2), validating(1)',
  details: {},
};
const spike: Alert = {
  check: 'error_spike',
  level: 'warning',
  message: 'Error rate 18.5% > 15.0% threshold',
  details: {},
};
const dedupe: Alert = {
  check: 'dedupe_rate',
  level: 'warning',
  message: 'Dedupe rate 62.0% > 50.0% threshold',
  details: {},
};
const failed: Alert = {
  check: 'error_spike',
  level: 'critical',
  message: 'Check failed: connect ECONNREFUSED 127.0.0.1:5432',
  details: {},
  failed: true,
};

const figures = hourlyFigures;

const pipeline: PipelineSnapshot = {
  taken_at: '2025-01-04T10:15:32.000Z',
  in_flight: [
    { status: 'uploaded', batch_count: 4, oldest_age_seconds: 60 },
    { status: 'processing', batch_count: 2, oldest_age_seconds: 900 },
    { status: 'validating', batch_count: 1, oldest_age_seconds: 700 },
  ],
  stuck: {
    threshold_minutes: 10,
    by_status: [
      { status: 'processing', batch_count: 2 },
      { status: 'validating', batch_count: 1 },
    ],
  },
  hourly: { min_rows: 100, overall: figures(185, 312), sources: [{ source: 'vendor_a', ...figures(185, 312) }] },
  finished_last_hour: { completed: 12, failed: 1 },
};

function run(alerts: Alert[], extra: Partial<RunResult> = {}): RunResult {
  const counted = alerts.filter((a) => !a.silenced);
  const critical = counted.filter((a) => a.level === 'critical').length;
  return {
    timestamp: '2025-01-04T10:15:32.123Z',
    environment: 'prod',
    overall_status: overallStatus(counted),
    alerts,
    checks: [
      { name: 'stuck_batches', outcome: 'ok', duration_ms: 3 },
      { name: 'error_spike', outcome: 'ok', duration_ms: 2 },
      {
        name: 'schema_cache',
        outcome: 'ok',
        duration_ms: 14,
        measurements: { latency_ms: 12.5, up: true, result: 'ok', reloads: 0 },
      },
    ],
    duration_ms: 31,
    metrics: {
      total_checks: 3,
      alerts_triggered: counted.length,
      critical_alerts: critical,
      warning_alerts: counted.length - critical,
      skipped_checks: 0,
      database_ms: 5.25,
    },
    pipeline,
    ...extra,
  };
}

const thresholds = nagiosThresholds(testConfig());

describe('--format nagios: the status line', () => {
  it('says OK with the number of checks that ran when healthy', () => {
    const out = parsePluginOutput(renderNagios(run([]), thresholds));
    expect(out.state).toBe('OK');
    expect(out.text).toBe('3 checks passed');
  });

  it('leads a degraded run with its first warning and counts the rest', () => {
    const out = parsePluginOutput(renderNagios(run([spike, dedupe]), thresholds));
    expect(out.state).toBe('WARNING');
    expect(out.text).toBe('Error rate 18.5% > 15.0% threshold (+1 more)');
  });

  it('leads a critical run with its first critical alert, even when a warning comes first in the report', () => {
    const out = parsePluginOutput(renderNagios(run([spike, stuck, dedupe]), thresholds));
    expect(out.state).toBe('CRITICAL');
    expect(out.text).toBe('3 batches stuck > 10m: processing(2), validating(1) (+2 more)');
  });

  it('shows a check that could not run as CRITICAL, without "(+0 more)" when it is alone', () => {
    const line = renderNagios(run([failed]), thresholds);
    expect(parsePluginOutput(line).state).toBe('CRITICAL');
    expect(line.startsWith('SENTINEL CRITICAL - Check failed: connect ECONNREFUSED 127.0.0.1:5432 | ')).toBe(true);
    expect(line).not.toContain('+0 more');
  });

  it('neither leads with nor counts silenced alerts', () => {
    const silencedStuck = { ...stuck, silenced: true };
    expect(parsePluginOutput(renderNagios(run([silencedStuck, spike]), thresholds))).toMatchObject({
      state: 'WARNING',
      text: 'Error rate 18.5% > 15.0% threshold',
    });
    expect(parsePluginOutput(renderNagios(run([silencedStuck]), thresholds))).toMatchObject({
      state: 'OK',
      text: '3 checks passed (1 silenced alert)',
    });
  });

  it('keeps the text on one line with no "|" (which would start the perfdata)', () => {
    const odd: Alert = { ...stuck, message: 'Check failed: a | b\nsecond line\r\nthird' };
    const line = renderNagios(run([odd]), thresholds);
    expect(line).not.toContain('\n');
    expect(line.split('|')).toHaveLength(2);
    // Newlines are shown escaped, as in every human output (src/util/text.ts).
    expect(parsePluginOutput(line).text).toBe('Check failed: a / b\\nsecond line\\r\\nthird');
  });

  it('masks secrets before replacing "|", so a secret containing one is still masked whole', () => {
    const secret = 'pa|ss-word-123';
    const redactor = new Redactor([secret]);
    const leaky: Alert = {
      ...stuck,
      message: `Check failed: password authentication failed for ${secret} at postgres://u:hunter22@db/x`,
    };
    const line = renderNagios(run([leaky]), { ...thresholds, redact: (t) => redactor.redact(t) });
    expect(line).not.toContain('ss-word-123');
    expect(line).not.toContain('hunter22');
    expect(parsePluginOutput(line).text).toBe(
      'Check failed: password authentication failed for *** at postgres://u:***@db/x',
    );
  });

  it('cuts a very long message', () => {
    const long: Alert = { ...stuck, message: `Check failed: ${'x'.repeat(1000)}` };
    expect(parsePluginOutput(renderNagios(run([long]), thresholds)).text.length).toBeLessThanOrEqual(240);
  });

  it('tells an alerting failure and undelivered notifications as long output, masked, one line each', () => {
    const redactor = new Redactor(['s3cret']);
    const line = renderNagios(
      run([stuck], {
        alerting_error: 'state file locked | by s3cret\nagain',
        notifications: [
          { notifier: 'ok', type: 'slack', sent: 1, pending: 0, failed: 0, errors: [] },
          { notifier: 'pager', type: 'pagerduty', sent: 0, pending: 1, failed: 0, errors: ['HTTP 503 from s3cret'] },
        ],
      }),
      { ...thresholds, redact: (t) => redactor.redact(t) },
    );
    const [first, ...long] = line.split('\n');
    expect(parsePluginOutput(first!).state).toBe('CRITICAL');
    expect(long).toEqual([
      'Alerting failed, nobody was notified by this run: state file locked / by ***\\nagain',
      'Notifications pager (pagerduty): 0 sent, 1 pending, 0 failed: HTTP 503 from ***',
    ]);
  });

  it('prints UNKNOWN on one line for Sentinel failing', () => {
    expect(renderNagiosUnknown('config error: checks.x: bad | worse\nmore')).toBe(
      'SENTINEL UNKNOWN - config error: checks.x: bad / worse\\nmore',
    );
  });
});

describe('--format nagios: perfdata', () => {
  it('carries every figure of the run, each field as the plugin API defines it', () => {
    const perf = parsePluginOutput(renderNagios(run([stuck]), thresholds)).perf;
    expect(perf).toEqual([
      { label: 'stuck_batches', value: 3, uom: '', crit: range(0), min: 0 },
      { label: 'error_rate', value: 18.5, uom: '%', warn: range(15), min: 0, max: 100 },
      { label: 'dedupe_rate', value: 31.2, uom: '%', warn: range(50), min: 0, max: 100 },
      { label: 'in_flight', value: 7, uom: '', min: 0 },
      { label: 'alerts', value: 1, uom: '', min: 0 },
      { label: 'run_time', value: 0.031, uom: 's', min: 0 },
      { label: 'db_time', value: 5.25, uom: 'ms', min: 0 },
      { label: 'schema_cache_latency', value: 12.5, uom: 'ms', min: 0 },
    ]);
  });

  it('has thresholds that agree with the checks: one stuck batch is critical, 15.0% is not above 15', () => {
    const oneStuck: PipelineSnapshot = {
      ...pipeline,
      stuck: { threshold_minutes: 10, by_status: [{ status: 'processing', batch_count: 1 }] },
      hourly: { ...pipeline.hourly, overall: figures(150, 500) },
    };
    const perf = parsePluginOutput(renderNagios(run([stuck], { pipeline: oneStuck }), thresholds)).perf;
    const s = byLabel(perf, 'stuck_batches')!;
    expect(s.value).toBe(1);
    expect(alerts(s.crit!, s.value)).toBe(true);
    expect(alerts(s.crit!, 0)).toBe(false);
    const e = byLabel(perf, 'error_rate')!;
    expect(e.value).toBe(15);
    expect(alerts(e.warn!, e.value)).toBe(false);
    expect(alerts(e.warn!, 15.01)).toBe(true);
    const d = byLabel(perf, 'dedupe_rate')!;
    expect(d.value).toBe(50);
    expect(alerts(d.warn!, d.value)).toBe(false);
  });

  it('leaves out what the run does not have instead of inventing it', () => {
    const bare = run([], {
      pipeline: undefined,
      checks: [],
      metrics: { total_checks: 0, alerts_triggered: 0, critical_alerts: 0, warning_alerts: 0, skipped_checks: 0 },
    });
    expect(parsePluginOutput(renderNagios(bare, thresholds)).perf.map((p) => p.label)).toEqual(['alerts', 'run_time']);
    const noRows: PipelineSnapshot = { ...pipeline, hourly: { min_rows: 100, overall: figures(0, 0, 0), sources: [] } };
    const labels = parsePluginOutput(renderNagios(run([], { pipeline: noRows }), thresholds)).perf.map((p) => p.label);
    expect(labels).not.toContain('error_rate');
    expect(labels).not.toContain('dedupe_rate');
    expect(labels).toContain('stuck_batches');
  });

  it('shows no warn threshold for a disabled check', () => {
    const off = nagiosThresholds(
      testConfig({ checks: { error_spike: { enabled: false }, dedupe_rate: { enabled: false } } }),
    );
    const perf = parsePluginOutput(renderNagios(run([]), off)).perf;
    expect(byLabel(perf, 'error_rate')).toEqual({ label: 'error_rate', value: 18.5, uom: '%', min: 0, max: 100 });
    expect(byLabel(perf, 'dedupe_rate')).toEqual({ label: 'dedupe_rate', value: 31.2, uom: '%', min: 0, max: 100 });
  });

  it(
    "quotes per-source labels, doubles a quote in a source's name and " +
      "escapes its '=' (the plugin API allows none in a label)",
    () => {
      const name = "vendor x's=feed";
      const label = "vendor x's\\x3dfeed";
      const config = testConfig({
        checks: { error_spike: { threshold_pct: 20 } },
        sources: { [name]: { error_spike_threshold_pct: 25, dedupe_threshold_pct: 40 } },
      });
      const withSource: PipelineSnapshot = {
        ...pipeline,
        hourly: {
          ...pipeline.hourly,
          sources: [
            { source: name, ...figures(300, 450) },
            { source: 'vendor_a', ...figures(1, 1) },
          ],
        },
      };
      const line = renderNagios(run([], { pipeline: withSource }), nagiosThresholds(config));
      expect(line).toContain(`'error_rate vendor x''s\\x3dfeed'=30%;25;;0;100`);
      const perf = parsePluginOutput(line).perf;
      expect(byLabel(perf, 'error_rate')!.warn).toEqual(range(20));
      expect(byLabel(perf, `error_rate ${label}`)).toEqual({
        label: `error_rate ${label}`,
        value: 30,
        uom: '%',
        warn: range(25),
        min: 0,
        max: 100,
      });
      expect(byLabel(perf, `dedupe_rate ${label}`)).toEqual({
        label: `dedupe_rate ${label}`,
        value: 45,
        uom: '%',
        warn: range(40),
        min: 0,
        max: 100,
      });
      // Sources without their own threshold are part of the overall figure, not listed alone.
      expect(perf.some((p) => p.label.endsWith('vendor_a'))).toBe(false);
    },
  );

  it(
    'keeps hostile source names parseable: no "=", raw "|", newline or control character in a label, each label ' +
      'cut',
    () => {
      const names = [
        "a=b|c'd",
        '\x1b[2J\x1b[31mred',
        'line\r\nbreak\ttab',
        'rlo\u202egnp.exe',
        'c1\x9bdel\x7f',
        'x'.repeat(1_000_000),
      ];
      const sources = Object.fromEntries(names.map((n) => [n, { error_spike_threshold_pct: 25 }]));
      const hourly = names.map((source, i) => ({ source, ...figures(300 + i, 0) }));
      const line = renderNagios(
        run([], { pipeline: { ...pipeline, hourly: { ...pipeline.hourly, sources: hourly } } }),
        nagiosThresholds(testConfig({ sources })),
      );
      expect(line).not.toContain('\n');
      expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      expect(line.split('|')).toHaveLength(2);
      expect(line.length).toBeLessThan(2000);
      const perf = parsePluginOutput(line).perf;
      const labels = perf.filter((p) => p.label.startsWith('error_rate ')).map((p) => p.label);
      expect(labels).toEqual([
        "error_rate a\\x3db\\x7cc'd",
        'error_rate \\x1b[2J\\x1b[31mred',
        'error_rate line\\r\\nbreak\\ttab',
        'error_rate rlo\\u202egnp.exe',
        'error_rate c1\\x9bdel\\x7f',
        expect.stringMatching(/^error_rate x+…$/),
      ]);
      for (const l of labels) expect(l.length).toBeLessThanOrEqual(100);
      expect(perf.find((p) => p.label === "error_rate a\\x3db\\x7cc'd")).toMatchObject({ value: 30, warn: range(25) });
    },
  );

  describe('keeps every threshold whatever the per-source settings', () => {
    // vendor_x and vendor_y have rows in the hour; the snapshot's overall figures are 18.5 % and 31.2 %.
    const sources = [
      { source: 'vendor_x', ...figures(300, 450) },
      { source: 'vendor_y', ...figures(100, 200) },
    ];
    const withSources: PipelineSnapshot = { ...pipeline, hourly: { ...pipeline.hourly, sources } };
    const ownError = { error_spike_threshold_pct: 25 };
    const ownDedupe = { dedupe_threshold_pct: 40 };
    const cases: Array<{
      name: string;
      checks?: Record<string, unknown>;
      sources: Record<string, Record<string, number>>;
      /** What dedupe_rate recorded as `overall_rate_pct` (undefined: it failed or did not run). */
      judged?: number;
      errorWarn: number | undefined;
      dedupe: { value: number; warn?: number } | undefined;
      perSource: string[];
    }> = [
      {
        name: 'no source settings',
        sources: {},
        judged: 31.2,
        errorWarn: 15,
        dedupe: { value: 31.2, warn: 50 },
        perSource: [],
      },
      {
        name: 'one source with its own error threshold',
        sources: { vendor_x: ownError },
        judged: 40.5,
        errorWarn: 15,
        dedupe: { value: 40.5, warn: 50 },
        perSource: ['error_rate vendor_x'],
      },
      {
        name: 'one source with its own dedupe threshold',
        sources: { vendor_x: ownDedupe },
        judged: 12.5,
        errorWarn: 15,
        dedupe: { value: 12.5, warn: 50 },
        perSource: ['dedupe_rate vendor_x'],
      },
      {
        name: 'one source with both',
        sources: { vendor_x: { ...ownError, ...ownDedupe } },
        judged: 31.2,
        errorWarn: 15,
        dedupe: { value: 31.2, warn: 50 },
        perSource: ['error_rate vendor_x', 'dedupe_rate vendor_x'],
      },
      {
        name: 'one source with an error threshold, another with a dedupe threshold',
        sources: { vendor_x: ownError, vendor_y: ownDedupe },
        judged: 33,
        errorWarn: 15,
        dedupe: { value: 33, warn: 50 },
        perSource: ['error_rate vendor_x', 'dedupe_rate vendor_y'],
      },
      {
        name: 'the same sets, dedupe_rate failed: the snapshot figure is the judged one',
        sources: { vendor_x: { ...ownError, ...ownDedupe } },
        errorWarn: 15,
        dedupe: { value: 31.2, warn: 50 },
        perSource: ['error_rate vendor_x', 'dedupe_rate vendor_x'],
      },
      {
        name: 'different sets, dedupe_rate failed: no figure rather than one it did not judge',
        sources: { vendor_x: ownError },
        errorWarn: 15,
        dedupe: undefined,
        perSource: ['error_rate vendor_x'],
      },
      {
        name: 'error_spike disabled',
        checks: { error_spike: { enabled: false } },
        sources: { vendor_x: ownError },
        judged: 40.5,
        errorWarn: undefined,
        dedupe: { value: 40.5, warn: 50 },
        perSource: [],
      },
      {
        name: 'dedupe_rate disabled',
        checks: { dedupe_rate: { enabled: false } },
        sources: { vendor_x: ownError, vendor_y: ownDedupe },
        errorWarn: 15,
        dedupe: { value: 31.2 },
        perSource: ['error_rate vendor_x'],
      },
      {
        name: 'thresholds of their own',
        checks: { error_spike: { threshold_pct: 7.5 }, dedupe_rate: { threshold_pct: 35 } },
        sources: { vendor_y: ownError },
        judged: 20,
        errorWarn: 7.5,
        dedupe: { value: 20, warn: 35 },
        perSource: ['error_rate vendor_y'],
      },
    ];
    it.each(cases)('$name', ({ checks = {}, sources: own, judged, errorWarn, dedupe: expected, perSource }) => {
      const result = run([], { pipeline: withSources });
      if (judged !== undefined)
        result.checks.push({
          name: 'dedupe_rate',
          outcome: 'ok',
          duration_ms: 1,
          measurements: { overall_rate_pct: judged },
        });
      const perf = parsePluginOutput(renderNagios(result, nagiosThresholds(testConfig({ checks, sources: own })))).perf;
      expect(byLabel(perf, 'error_rate')).toEqual({
        label: 'error_rate',
        value: 18.5,
        uom: '%',
        ...(errorWarn !== undefined ? { warn: range(errorWarn) } : {}),
        min: 0,
        max: 100,
      });
      expect(byLabel(perf, 'dedupe_rate')).toEqual(
        expected && {
          label: 'dedupe_rate',
          value: expected.value,
          uom: '%',
          ...(expected.warn !== undefined ? { warn: range(expected.warn) } : {}),
          min: 0,
          max: 100,
        },
      );
      expect(perf.filter((p) => / vendor_/.test(p.label)).map((p) => p.label)).toEqual(perSource);
      // Each per-source entry carries the source's own threshold.
      for (const p of perf.filter((x) => / vendor_/.test(x.label)))
        expect(p.warn).toEqual(range(p.label.startsWith('error_rate') ? 25 : 40));
    });
  });
});

// ---------------------------------------------------------------------------
// End to end: the built CLI against a real database
// ---------------------------------------------------------------------------

describe('sentinel --format nagios', () => {
  let db: TestDb;
  let stateDir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    stateDir = await mkdtemp(join(tmpdir(), 'sentinel-nagios-state-'));
  });
  afterAll(async () => {
    await db?.drop();
    await rm(stateDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await db.pool.query('truncate intake.simplicity_batches cascade');
  });
  const env = (extra: Record<string, string | undefined> = {}) => ({
    DATABASE_URL: db.url,
    SENTINEL_STATE_DIR: stateDir,
    ...extra,
  });
  const minutesAgo = (m: number): Date => new Date(Date.now() - m * 60_000);

  it('exits 2 with one parseable CRITICAL line on a stuck batch, and logs nothing below errors', async () => {
    await insertBatch(db.pool, {
      source: 'vendor_a',
      status: 'processing',
      created_at: minutesAgo(30),
      updated_at: minutesAgo(25),
    });
    await insertBatch(db.pool, {
      source: 'vendor_b',
      status: 'uploaded',
      created_at: minutesAgo(2),
      updated_at: minutesAgo(2),
    });
    const r = await runCli(['--format', 'nagios'], env());
    expect(r.code).toBe(2);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const out = parsePluginOutput(r.stdout);
    expect(out.state).toBe('CRITICAL');
    expect(out.text).toMatch(/^1 batch stuck > 10m: processing\(1\)( \(\+\d+ more\))?$/);
    expect(byLabel(out.perf, 'stuck_batches')).toEqual({
      label: 'stuck_batches',
      value: 1,
      uom: '',
      crit: range(0),
      min: 0,
    });
    expect(byLabel(out.perf, 'in_flight')).toEqual({ label: 'in_flight', value: 2, uom: '', min: 0 });
    expect(byLabel(out.perf, 'alerts')!.value).toBeGreaterThanOrEqual(1);
    expect(byLabel(out.perf, 'run_time')!.uom).toBe('s');
    expect(byLabel(out.perf, 'db_time')!.uom).toBe('ms');
    // Nothing on stderr: plugin runners show it in the same output.
    expect(r.stderr).toBe('');
  });

  it('exits 0 with an OK line when healthy, and --format json is --json', async () => {
    const ok = await runCli(['--format', 'nagios', '--log-level', 'info'], env());
    expect(ok.code).toBe(0);
    expect(parsePluginOutput(ok.stdout).state).toBe('OK');
    expect(parsePluginOutput(ok.stdout).text).toMatch(/^\d+ checks passed$/);
    // An explicit --log-level is kept.
    expect(ok.stderr).toMatch(/\| INFO/);
    const json = await runCli(['--format', 'json'], env());
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).overall_status).toBe('healthy');
  });

  it('prints UNKNOWN on stdout and exits 3 when Sentinel cannot run (bad config, no database)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sentinel-nagios-config-'));
    try {
      const path = join(dir, 'bad.yaml');
      await writeFile(
        path,
        'checks:\n  error_spike: { threshold_pct: "high" }\n  stuck_batches: { threshold_minutes: -1 }\n',
      );
      const r = await runCli(['--format', 'nagios', '--config', path], env());
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/^SENTINEL UNKNOWN - config error: checks\.\S+: .+ \(\+1 more\)\nconfig error: .+\n$/);
      // Said once: on stdout only (test/cli/nagios-once.test.ts counts it).
      expect(r.stderr).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const none = await runCli(['--format', 'nagios'], { SENTINEL_STATE_DIR: stateDir, DATABASE_URL: undefined });
    expect(none.code).toBe(3);
    expect(none.stdout).toMatch(/^SENTINEL UNKNOWN - .+\n$/);
  });

  it('keeps the dedupe_rate warn when a source has its own error threshold, with the figure judged', async () => {
    const now = new Date();
    const batch = (source: string, total: number, skipped: number, errors = 0) =>
      insertBatch(db.pool, {
        source,
        status: 'completed',
        total_rows: total,
        skipped_rows: skipped,
        error_rows: errors,
        inserted_rows: total - skipped - errors,
        created_at: now,
        updated_at: now,
      });
    // vendor_x is judged alone on errors, so the snapshot's overall figures leave it out;
    // dedupe_rate judges it within the overall rate: (600 + 100) / (1000 + 1000) = 35 %.
    await batch('vendor_x', 1000, 600, 10);
    await batch('vendor_a', 1000, 100, 10);
    const dir = await mkdtemp(join(tmpdir(), 'sentinel-nagios-dedupe-'));
    try {
      const path = join(dir, 'config.yaml');
      await writeFile(path, 'sources:\n  vendor_x: { error_spike_threshold_pct: 25 }\n');
      const r = await runCli(['--format', 'nagios', '-c', path], env());
      const perf = parsePluginOutput(r.stdout).perf;
      expect(byLabel(perf, 'dedupe_rate')).toEqual({
        label: 'dedupe_rate',
        value: 35,
        uom: '%',
        warn: range(50),
        min: 0,
        max: 100,
      });
      expect(byLabel(perf, 'error_rate')).toMatchObject({ value: 1, warn: range(15) });
      expect(byLabel(perf, 'error_rate vendor_x')).toMatchObject({ value: 1, warn: range(25) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects --loop, --json alongside it and an unknown format with a one-line error, exit 3', async () => {
    const loop = await runCli(['--format', 'nagios', '--loop'], env());
    expect(loop.code).toBe(3);
    expect(loop.stderr).toBe('');
    expect(loop.stdout).toBe(
      'SENTINEL UNKNOWN - --format nagios cannot be used with --loop: a Nagios check is one run, one line and an ' +
        'exit code (see sentinel --help)\n',
    );
    const both = await runCli(['--json', '--format', 'nagios'], env());
    expect(both.code).toBe(3);
    expect(both.stdout).toBe('SENTINEL UNKNOWN - --json cannot be used with --format nagios (see sentinel --help)\n');
    const unknown = await runCli(['--format', 'xml'], env());
    expect(unknown.code).toBe(3);
    expect(unknown.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/'xml'.*human, json, nagios/);
    expect(unknown.stdout).toBe('');
  });
});
