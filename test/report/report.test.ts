import { describe, expect, it } from 'vitest';
import { renderHuman } from '../../src/report/human.js';
import { renderJson } from '../../src/report/json.js';
import { exitCodeFor } from '../../src/run.js';
import type { Alert, RunResult } from '../../src/types.js';
import { overallStatus } from '../../src/types.js';

const stuck: Alert = {
  check: 'stuck_batches',
  level: 'critical',
  message: '3 batches stuck > 10m: processing(2), validating(1)',
  details: { stuck_batches: [{ status: 'processing', batch_count: 2, oldest_age_minutes: 15.3 }] },
  remediation: 'Check the worker logs',
};
const spike: Alert = {
  check: 'error_spike',
  level: 'warning',
  message: 'Error rate 18.5% > 15.0% threshold',
  details: { error_rate_pct: 18.5 },
};

function result(alerts: Alert[]): RunResult {
  const critical = alerts.filter((a) => a.level === 'critical').length;
  return {
    timestamp: '2025-01-04T10:15:32.123Z',
    environment: 'prod',
    overall_status: overallStatus(alerts),
    alerts,
    checks: [
      { name: 'stuck_batches', outcome: 'ok', duration_ms: 3 },
      { name: 'error_spike', outcome: 'ok', duration_ms: 2 },
      { name: 'schema_cache', outcome: 'skipped', duration_ms: 0, reason: 'no PostgREST URL configured' },
    ],
    duration_ms: 5,
    metrics: {
      total_checks: 2,
      alerts_triggered: alerts.length,
      critical_alerts: critical,
      warning_alerts: alerts.length - critical,
      skipped_checks: 1,
    },
  };
}

describe('overall status and exit codes', () => {
  it.each([
    [[], 'healthy', 0],
    [[spike], 'degraded', 1],
    [[spike, stuck], 'critical', 2],
    [[stuck], 'critical', 2],
  ] as const)('%# -> %s, exit %d', (alerts, status, code) => {
    expect(overallStatus([...alerts])).toBe(status);
    expect(exitCodeFor(status)).toBe(code);
  });
});

describe('JSON report', () => {
  it("keeps the guide's fields in the guide's shape on one line", () => {
    const text = renderJson(result([]));
    expect(text).not.toContain('\n');
    const parsed = JSON.parse(text);
    expect(Object.keys(parsed).slice(0, 5)).toEqual([
      'timestamp',
      'environment',
      'overall_status',
      'alerts',
      'metrics',
    ]);
    expect(parsed).toMatchObject({
      timestamp: '2025-01-04T10:15:32.123Z',
      environment: 'prod',
      overall_status: 'healthy',
      alerts: [],
      metrics: { total_checks: 2, alerts_triggered: 0, critical_alerts: 0, warning_alerts: 0 },
    });
  });

  it('indents with pretty and carries alert fields', () => {
    const text = renderJson(result([stuck]), { pretty: true });
    expect(text.split('\n').length).toBeGreaterThan(10);
    expect(JSON.parse(text).alerts[0]).toEqual({ ...stuck });
  });
});

describe('human report', () => {
  it('prints the healthy banner of the guide', () => {
    const text = renderHuman(result([]));
    const lines = text.split('\n');
    expect(lines[0]).toBe('='.repeat(80));
    expect(lines[1]).toBe('✅ HEALTH CHECK COMPLETE - Status: HEALTHY');
    expect(lines[2]).toBe('Environment: prod');
    expect(lines[3]).toBe('Timestamp: 2025-01-04T10:15:32.123Z');
    expect(text).toContain('✅ No alerts - all systems operational');
    expect(text).toContain('Metrics: {\n  "total_checks": 2,');
    expect(text).toContain('Skipped: schema_cache (no PostgREST URL configured)');
  });

  it('lists each alert with level, check, message, details and remediation', () => {
    const text = renderHuman(result([stuck, spike]));
    expect(text).toContain('Status: CRITICAL');
    expect(text).toContain('CRITICAL [stuck_batches] 3 batches stuck > 10m: processing(2), validating(1)');
    expect(text).toContain('     stuck batches:\n       - 2 batches in processing, oldest 15 min\n');
    expect(text).toContain('→ Check the worker logs');
    expect(text).toContain('WARNING  [error_spike] Error rate 18.5% > 15.0% threshold');
  });

  it('shows under each alert the lines notifications carry: the sources behind a spike, the stuck batches', () => {
    const overall: Alert = {
      check: 'error_spike',
      level: 'warning',
      message: 'Error rate 29.0% > 15.0% threshold',
      details: {
        error_rate_pct: 29,
        threshold_pct: 15,
        hour_bucket: '2025-01-04T10:00:00Z',
        top_sources: [
          { source: 'vendor_a', error_rate_pct: 41.24, error_rows: 120, total_rows: 291 },
          { source: 'vendor_b', error_rate_pct: 20.33, error_rows: 61, total_rows: 300 },
        ],
        sources_in_bucket: 4,
      },
    };
    const batches: Alert = {
      ...stuck,
      details: {
        total_stuck: 7,
        oldest_batches: Array.from({ length: 7 }, (_, i) => ({
          id: `b-${i}`,
          source: `vendor_${i}`,
          status: 'validating',
          age_minutes: 20 - i,
        })),
      },
    };
    const text = renderHuman(result([batches, overall]));
    expect(text).toContain(
      [
        '     error rate: 29 %',
        '     threshold: 15 %',
        '     hour bucket: 2025-01-04 10:00 UTC',
        '     top sources:',
        '       - vendor_a 41.24 % (120 of 291 rows)',
        '       - vendor_b 20.33 % (61 of 300 rows)',
        '     sources in bucket: 4',
      ].join('\n'),
    );
    expect(text).toContain(
      [
        '     total stuck: 7',
        '     oldest batches:',
        '       - b-0 (vendor_0, validating, 20 min)',
        '       - b-1 (vendor_1, validating, 19 min)',
        '       - b-2 (vendor_2, validating, 18 min)',
        '       - b-3 (vendor_3, validating, 17 min)',
        '       - b-4 (vendor_4, validating, 16 min)',
        '       … and 2 more',
      ].join('\n'),
    );
    expect(text).not.toMatch(/\[\{|\{"/);
  });

  it('masks secrets in details before cutting them', () => {
    const secret = 'pw-0123456789';
    const leaky: Alert = { ...spike, details: { error: `${'e'.repeat(495)}${secret}` } };
    const text = renderHuman(result([leaky]), { redact: (t) => t.replaceAll(secret, '***') });
    expect(text).toContain(`     error: ${'e'.repeat(495)}***\n`);
  });

  it('uses no ANSI escapes unless asked to', () => {
    expect(renderHuman(result([stuck]))).not.toContain('\u001b[');
    expect(renderHuman(result([stuck]), { color: true })).toContain('\u001b[31m');
  });
});

describe('pct1', () => {
  it('rounds half up on the decimal value, as a person reads it', async () => {
    const { pct1 } = await import('../../src/util/format.js');
    expect(pct1(32.15)).toBe('32.2');
    expect(pct1(18.5)).toBe('18.5');
    expect(pct1(15)).toBe('15.0');
    expect(pct1(0.04)).toBe('0.0');
  });
});
