import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/log.js';
import { PER_RUN_METRICS } from '../../src/metrics/registry.js';
import { type MonitorServer, startMonitorServer } from '../../src/server/index.js';
import type { RunResult } from '../../src/types.js';
import { Redactor } from '../../src/util/redact.js';

/**
 * The server of `sentinel serve` as the loop drives it with replicas: the election
 * sets the leader gauge, runs are observed, followers tick with the election's
 * problem. Scraped over real HTTP, in process (no database, no CLI).
 */

const lines: string[] = [];
const logger: Logger = {
  debug: () => {},
  info: (m) => lines.push(m),
  warn: (m) => lines.push(m),
  error: (m) => lines.push(m),
};
const redactor = new Redactor(['s3cr3t-pw']);

let server: MonitorServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  lines.length = 0;
});

const start = async (options: { leader?: boolean; replicas?: boolean } = {}): Promise<MonitorServer> =>
  (server = await startMonitorServer({
    listen: { host: '127.0.0.1', port: 0 },
    intervalMs: 60_000,
    logger,
    redactor,
    ...options,
  }));

/** A leader's run: one stuck batch, the stuck_batches alert, schema_cache skipped. */
function leaderRun(role: RunResult['role'] = 'leader'): RunResult {
  return {
    timestamp: new Date().toISOString(),
    environment: 'prod',
    overall_status: 'critical',
    alerts: [{ check: 'stuck_batches', level: 'critical', message: '1 batch stuck > 10m: processing(1)', details: {} }],
    checks: [
      { name: 'stuck_batches', outcome: 'alert', duration_ms: 7 },
      { name: 'schema_cache', outcome: 'skipped', duration_ms: 0, reason: 'no PostgREST URL configured' },
    ],
    duration_ms: 9,
    metrics: { total_checks: 1, alerts_triggered: 1, critical_alerts: 1, warning_alerts: 0, skipped_checks: 1 },
    notifications: [{ notifier: 'hook', type: 'webhook', sent: 1, pending: 0, failed: 0, errors: [] }],
    ...(role ? { role } : {}),
    pipeline: {
      taken_at: new Date().toISOString(),
      in_flight: [{ status: 'processing', batch_count: 1, oldest_age_seconds: 1500 }],
      stuck: { threshold_minutes: 10, by_status: [{ status: 'processing', batch_count: 1 }] },
      hourly: {
        min_rows: 100,
        overall: {
          hour_bucket: new Date().toISOString(),
          judged: false,
          total_rows: 0,
          error_rows: 0,
          skipped_rows: 0,
          error_rate_pct: null,
          dedupe_rate_pct: null,
        },
        sources: [],
      },
      finished_last_hour: { completed: 0, failed: 0 },
    },
  };
}

interface Sample {
  name: string;
  labels: string;
  value: number;
}
async function scrape(url: string): Promise<Sample[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(l)!;
      return { name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) };
    });
}
const one = (samples: Sample[], name: string, labels = ''): number | undefined =>
  samples.find((s) => s.name === name && s.labels === labels)?.value;
const names = (samples: Sample[]): Set<string> => new Set(samples.map((s) => s.name));
async function readyz(url: string): Promise<[number, unknown]> {
  const r = await fetch(`${url}/readyz`);
  return [r.status, await r.json()];
}

describe('startMonitorServer with replicas', () => {
  it('a leader exports its runs; once demoted it exports none of them, and /readyz says which it is', async () => {
    const s = await start({ leader: false });
    expect(await readyz(s.url)).toEqual([503, { ready: false, role: 'follower', reason: 'no run has finished yet' }]);

    // The election makes it leader (onChange), then it runs.
    s.metrics.setLeader(true);
    s.observe(leaderRun(), 25);
    let m = await scrape(s.url);
    expect(one(m, 'sentinel_leader')).toBe(1);
    expect(one(m, 'sentinel_pipeline_stuck_batches', '{status="processing"}')).toBe(1);
    expect(one(m, 'sentinel_alerts_firing', '{check="stuck_batches",level="critical"}')).toBe(1);
    expect(one(m, 'sentinel_check_status', '{check="stuck_batches"}')).toBe(2);
    expect(one(m, 'sentinel_check_duration_seconds', '{check="stuck_batches"}')).toBe(0.007);
    // Skipped: a status, no duration.
    expect(one(m, 'sentinel_check_status', '{check="schema_cache"}')).toBe(-1);
    expect(one(m, 'sentinel_check_duration_seconds', '{check="schema_cache"}')).toBeUndefined();
    expect(one(m, 'sentinel_database_up')).toBe(1);
    expect(await readyz(s.url)).toEqual([200, { ready: true, role: 'leader' }]);

    // The lock database goes away: the election demotes it, then it ticks as a follower.
    s.metrics.setLeader(false);
    s.standby('connect ECONNREFUSED 10.1.2.3:5432 (password s3cr3t-pw)');
    m = await scrape(s.url);
    expect(one(m, 'sentinel_leader')).toBe(0);
    expect(one(m, 'sentinel_database_up')).toBe(0);
    for (const name of PER_RUN_METRICS) expect(names(m).has(name), name).toBe(false);
    expect(one(m, 'sentinel_runs_total', '{status="critical"}')).toBe(1);
    expect(one(m, 'sentinel_notifications_total', '{notifier="hook",type="webhook",result="sent"}')).toBe(1);
    expect(one(m, 'sentinel_last_run_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    const [status, body] = await readyz(s.url);
    expect(status).toBe(503);
    expect(body).toEqual({
      ready: false,
      role: 'follower',
      reason: 'lock database unreachable: connect ECONNREFUSED 10.1.2.3:5432 (password ***)',
    });

    // It reaches the lock database again, another replica leads: a ready standby.
    s.standby();
    m = await scrape(s.url);
    expect(one(m, 'sentinel_database_up')).toBe(1);
    expect(one(m, 'sentinel_leader')).toBe(0);
    expect(names(m).has('sentinel_pipeline_stuck_batches')).toBe(false);
    expect(await readyz(s.url)).toEqual([200, { ready: true, role: 'follower' }]);
  });

  it('a run during which leadership was lost is not exported (the new leader reports it)', async () => {
    const s = await start({ leader: false });
    s.metrics.setLeader(true);
    s.observe(leaderRun());
    // Lost during the next run: the election's onChange, then the run comes back as a follower's.
    s.metrics.setLeader(false);
    s.observe({ ...leaderRun('follower'), overall_status: 'degraded' }, 30);
    const m = await scrape(s.url);
    expect(one(m, 'sentinel_leader')).toBe(0);
    for (const name of PER_RUN_METRICS) expect(names(m).has(name), name).toBe(false);
    // Neither counted nor timed: it was neither recorded nor notified.
    expect(one(m, 'sentinel_runs_total', '{status="degraded"}')).toBe(0);
    expect(one(m, 'sentinel_run_duration_seconds_count')).toBe(1);
    expect(await readyz(s.url)).toEqual([200, { ready: true, role: 'follower' }]);
  });

  it('an old leader that the election has not told yet is demoted by its first follower tick', async () => {
    const s = await start({ leader: false });
    s.metrics.setLeader(true);
    s.observe(leaderRun());
    s.standby('Connection terminated unexpectedly');
    const m = await scrape(s.url);
    expect(one(m, 'sentinel_leader')).toBe(0);
    expect(one(m, 'sentinel_database_up')).toBe(0);
    expect(names(m).has('sentinel_pipeline_stuck_batches')).toBe(false);
    expect(await readyz(s.url)).toEqual([
      503,
      { ready: false, role: 'follower', reason: 'lock database unreachable: Connection terminated unexpectedly' },
    ]);
  });
});

describe('startMonitorServer without replicas', () => {
  it('leads from the start and says no role', async () => {
    const s = await start();
    expect(await readyz(s.url)).toEqual([503, { ready: false, reason: 'no run has finished yet' }]);
    s.observe(leaderRun(undefined));
    const m = await scrape(s.url);
    expect(one(m, 'sentinel_leader')).toBe(1);
    expect(one(m, 'sentinel_pipeline_stuck_batches', '{status="processing"}')).toBe(1);
    expect(await readyz(s.url)).toEqual([200, { ready: true }]);
  });

  it('can be told it runs replicas explicitly', async () => {
    const s = await start({ leader: true, replicas: true });
    s.observe(leaderRun());
    expect(await readyz(s.url)).toEqual([200, { ready: true, role: 'leader' }]);
  });
});
