/**
 * A full scrape of the real `sentinel serve` (the built CLI, a real database with
 * every check alerting, real HTTP) through real promtool:
 *
 * - `promtool check metrics` accepts it without a single lint finding (prom-client's
 *   default gauges named `_total` are dropped, hostile source names are escaped);
 * - the Prometheus rules, evaluated by `promtool test rules` over exactly that scrape,
 *   fire for the same checks as Sentinel's own alerts in the same run, and only those.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as stringifyYaml } from 'yaml';
import { CHECK_NAMES } from '../../src/checks/index.js';
import { CLI, cliEnv } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, insertRowErrors, minutesAgo } from '../helpers/fixtures.js';
import { until } from '../helpers/wait.js';
import { havePromtool, promtool } from './promtool.js';

const RULES = fileURLToPath(new URL('../../prometheus/sentinel-rules.yml', import.meta.url));

/** A source name as hostile as the monitored tables may hold: quotes, a newline, a bidi override. */
const HOSTILE_SOURCE = 'evil"feed\n\u202eeman';

const CONFIG = {
  sources: {
    vendor_x: { error_spike_threshold_pct: 25 },
    vendor_d: { dedupe_threshold_pct: 30 },
    vendor_stale: { expected_every: '1h' },
    vendor_new: { expected_every: '2h' },
    'quote"src': { expected_every: '1h' },
  },
};

interface Sample {
  name: string;
  /** The label text between the braces, exactly as exposed (already escaped). */
  labels: string;
  value: string;
}

function samples(text: string): Sample[] {
  return text.split('\n').flatMap((line) => {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    return m ? [{ name: m[1]!, labels: m[2] ?? '', value: m[3]! }] : [];
  });
}

describe.runIf(havePromtool())('a full scrape of sentinel serve with every check alerting', () => {
  const db = useTestDatabase();
  let stateDir: string;
  let child: ChildProcess | undefined;
  let scrape = '';
  let stderr = '';

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'sentinel-scrape-'));
    const { pool } = db();
    // Each rate in both the current and the previous UTC hour: the judged bucket has the
    // same rates whatever the minute.
    const hourly = async (source: string, total: number, errors: number, skipped: number): Promise<string> => {
      const ids: string[] = [];
      for (const m of [0.5, 61]) {
        const id = await insertBatch(pool, {
          source,
          total_rows: total,
          error_rows: errors,
          skipped_rows: skipped,
          inserted_rows: total - errors - skipped,
          created_at: minutesAgo(m),
        });
        ids.push(id);
      }
      return ids[0]!; // the one of the last minute
    };
    // Overall (without vendor_x) 250/1300 rejected; overall dedupe (without vendor_d) 700/1300.
    const recent = await hourly('vendor_a', 1000, 250, 700);
    await hourly('vendor_x', 200, 100, 0); // 50 % > its own 25 %
    await hourly('vendor_d', 200, 0, 100); // 50 % > its own 30 %
    await hourly(HOSTILE_SOURCE, 100, 0, 0);
    await insertRowErrors(pool, recent, [
      { error_code: 'E_NEW', error_message: 'never seen before' },
      { error_code: 'E"x\n\u202e', error_message: 'hostile code' },
    ]);
    // Stuck in two statuses, one from the hostile source; one batch waiting too long.
    await insertBatch(pool, { status: 'processing', created_at: minutesAgo(30), updated_at: minutesAgo(25) });
    await insertBatch(pool, {
      source: HOSTILE_SOURCE,
      status: 'validating',
      created_at: minutesAgo(50),
      updated_at: minutesAgo(40),
    });
    await insertBatch(pool, { status: 'uploaded', created_at: minutesAgo(45), updated_at: minutesAgo(45) });
    // Slow: 15 minutes of processing, completed 5 minutes ago (p95 over one batch).
    await insertBatch(pool, {
      total_rows: 0,
      created_at: minutesAgo(21),
      started_at: minutesAgo(20),
      completed_at: minutesAgo(5),
    });
    // vendor_stale sent its last batch 3 hours ago (expected hourly); vendor_new never did.
    await insertBatch(pool, { source: 'vendor_stale', total_rows: 0, created_at: minutesAgo(180) });
    // vendor_hist: 60 batches an hour for three weeks (no rows, so no rate check sees them), none since
    // the start of the last complete hour: its volume there is far below its own band (anomalies).
    await pool.query(
      `insert into intake.simplicity_batches (source, status, total_rows, created_at, updated_at)
       select 'vendor_hist', 'completed', 0, h.hour + make_interval(secs => i * 59),
              h.hour + make_interval(secs => i * 59)
         from generate_series(date_trunc('hour', now()) - interval '3 weeks 1 hour',
                              date_trunc('hour', now()) - interval '2 hours', interval '1 hour') as h (hour)
        cross join generate_series(1, 60) as i`,
    );

    const config = join(stateDir, 'sentinel.yml');
    await writeFile(config, stringifyYaml(CONFIG));
    child = spawn(
      process.execPath,
      [CLI, 'serve', '--listen', '127.0.0.1:0', '--interval', '3600', '--config', config],
      {
        env: cliEnv({ DATABASE_URL: db().url, SENTINEL_STATE_DIR: stateDir }),
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await until(() => /Listening on (http:\/\/\S+)/.exec(stderr)?.[1], '"Listening on"', {
      detail: () => stderr,
    });
    // The first run has finished once its timestamp is exported.
    scrape = await until(
      async () => {
        const text = await (await fetch(`${url}/metrics`)).text();
        return /^sentinel_last_run_timestamp_seconds /m.test(text) ? text : undefined;
      },
      'the first run in /metrics',
      { timeoutMs: 60_000, intervalMs: 100, detail: () => stderr },
    );
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('close', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(stateDir, { recursive: true, force: true });
  });

  it('exports every check alerting, the thresholds per source and escaped hostile names', () => {
    const all = samples(scrape);
    const firing = (check: string): number =>
      all
        .filter((s) => s.name === 'sentinel_alerts_firing' && s.labels.includes(`check="${check}"`))
        .reduce((n, s) => n + Number(s.value), 0);
    for (const check of CHECK_NAMES.filter((c) => c !== 'schema_cache'))
      expect(firing(check), `${check} alerts; stderr: ${stderr}`).toBeGreaterThan(0);
    expect(scrape).toMatch(/^sentinel_check_threshold_ratio\{check="error_spike",source="vendor_x"\} 0\.25$/m);
    expect(scrape).toMatch(/^sentinel_check_threshold_seconds\{check="source_freshness",source="quote\\"src"\} 3600$/m);
    expect(scrape).toMatch(/^sentinel_pipeline_backlog_batches 1$/m);
    expect(scrape).toMatch(/^sentinel_check_measurement\{check="processing_time",measurement="p95_seconds"\} 900$/m);
    // The hostile name: escaped like every human output (no raw newline or bidi character), then quoted.
    expect(scrape).toContain('source="evil\\"feed\\\\n\\\\u202eeman"');
    expect(scrape).not.toMatch(/\u202e/);
    expect(scrape).not.toMatch(/^nodejs_active_\w+_total/m);
  });

  it('passes promtool check metrics without a single finding', () => {
    const r = promtool(['check', 'metrics'], { input: scrape });
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('fires the Prometheus rules for exactly the checks that alerted in the same run', () => {
    const all = samples(scrape);
    // Sentinel's own verdict: the checks with alerts in this run.
    const alerting = new Set(
      all
        .filter((s) => s.name === 'sentinel_alerts_firing' && Number(s.value) > 0)
        .map((s) => /check="([^"]+)"/.exec(s.labels)![1]!),
    );
    // The scrape as a leader's series over 15 minutes, as Prometheus would store it.
    const input = all
      .filter((s) => s.name.startsWith('sentinel_') && Number.isFinite(Number(s.value)))
      .map((s) => ({
        series: `${s.name}{job="sentinel",instance="a:9464"${s.labels ? `,${s.labels}` : ''}}`,
        values: `${s.value}x15`,
      }));
    const expected = [
      ['SentinelAnomalyCritical', 'anomalies', 1],
      ['SentinelDedupeSpike', 'dedupe_rate', 1],
      ['SentinelDedupeSpikeSource', 'dedupe_rate', 1],
      ['SentinelErrorSpike', 'error_spike', 1],
      ['SentinelErrorSpikeSource', 'error_spike', 1],
      ['SentinelNewErrorCodes', 'row_error_codes', 1],
      ['SentinelProcessingTimeSlow', 'processing_time', 1],
      ['SentinelQueueBacklog', 'queue_backlog', 1],
      ['SentinelSourceSilent', 'source_freshness', 3],
      ['SentinelStuckBatches', 'stuck_batches', 2],
    ] as const;
    expect(new Set(expected.map(([, check]) => check))).toEqual(alerting);
    const unitTest = {
      rule_files: [RULES],
      evaluation_interval: '1m',
      group_eval_order: ['sentinel.recording', 'sentinel.checks', 'sentinel.meta'],
      tests: [
        {
          name: 'the rules over a real scrape',
          interval: '1m',
          input_series: input,
          promql_expr_test: [
            {
              expr: 'count by (alertname, check) (ALERTS{alertstate="firing", check!=""})',
              eval_time: '10m',
              exp_samples: expected.map(([alertname, check, n]) => ({
                labels: `{alertname="${alertname}", check="${check}"}`,
                value: n,
              })),
            },
          ],
        },
      ],
    };
    return (async () => {
      const file = join(stateDir, 'scrape.test.yml');
      await writeFile(file, stringifyYaml(unitTest));
      const r = promtool(['test', 'rules', file]);
      expect(r.status, r.output).toBe(0);
    })();
  });
});
