import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS, judgeHour, METRICS, viewOf } from '../../src/anomalies/index.js';
import { configSchema } from '../../src/config/schema.js';
import { loadSeries, trainingStart } from '../../src/db/anomaly-series.js';
import { createLogger } from '../../src/log.js';
import { createDashboardApi, type DashboardApi } from '../../src/server/api.js';
import type { AnomaliesResponse, AnomalyJudgedHour, AnomalyUnjudgedHour } from '../../src/server/api-types.js';
import { type MonitorServer, startMonitorServer } from '../../src/server/index.js';
import { mulberry32 } from '../../src/util/random.js';
import { Redactor } from '../../src/util/redact.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';

/**
 * `GET /api/anomalies` against a real database seeded with five weeks of hourly batches from a
 * fixed seed: the last 7 days of one source × metric, each hour judged as the live check would.
 */

const HOUR = 3_600_000;
/** The API's clock: a Friday, half past ten UTC. The last complete hour is 09:00–10:00. */
const NOW = Date.parse('2026-11-20T10:30:00Z');
const LAST_HOUR = Date.parse('2026-11-20T09:00:00Z');
const FIRST_HOUR = LAST_HOUR - 167 * HOUR;
/** The incident: the busiest source sends 2 batches where it usually sends about 40 (Wednesday 15:00 UTC). */
const INCIDENT = Date.parse('2026-11-18T15:00:00Z');
const HOSTILE = `evil\u202e\u001b[31m${'x'.repeat(1024)}`;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

let db: TestDb;
const apis: DashboardApi[] = [];
const runs = { last: () => undefined, role: () => 'single' as const };

/** Busy in UTC working hours, quieter at night and at weekends. */
function usualBatches(hour: number): number {
  const d = new Date(hour);
  const weekend = d.getUTCDay() === 0 || d.getUTCDay() === 6;
  const day = d.getUTCHours() >= 8 && d.getUTCHours() < 20;
  return Math.round((day ? 40 : 12) * (weekend ? 0.6 : 1));
}

beforeAll(async () => {
  db = await createTestDatabase();
  const rnd = mulberry32(15);
  const rows: Array<[string, number]> = [];
  // Five weeks up to the last complete hour: the 7 days shown and four training weeks before them.
  for (let h = LAST_HOUR - 35 * 24 * HOUR; h <= LAST_HOUR; h += HOUR) {
    const noise = Math.round((rnd() - 0.5) * 6);
    const big = h === INCIDENT ? 2 : Math.max(1, usualBatches(h) + noise);
    for (let i = 0; i < big; i++) rows.push(['vendor_big', h + ((i * 53) % 60) * 60_000]);
    for (let i = 0; i < 3; i++) rows.push(['vendor_small', h + (10 + i) * 60_000]);
    // A feed added ten days ago: never two weeks of history at any hour shown.
    if (h >= LAST_HOUR - 10 * 24 * HOUR) rows.push(['vendor_new', h + 5 * 60_000]);
    if (h >= LAST_HOUR - 3 * 24 * HOUR && h % (6 * HOUR) === 0) rows.push([HOSTILE, h + 7 * 60_000]);
  }
  await db.pool.query(
    `insert into intake.simplicity_batches
       (source, filename, status, total_rows, inserted_rows, skipped_rows, error_rows,
        created_at, started_at, completed_at, updated_at)
     select s, 'f.csv', 'completed', 100, 95, 4, 1, t, t + interval '1 min', t + interval '3 min', t + interval '3 min'
       from unnest($1::text[], $2::timestamptz[]) as r (s, t)`,
    [rows.map((r) => r[0]), rows.map((r) => new Date(r[1]).toISOString())],
  );
}, 60_000);

afterEach(async () => {
  while (apis.length) await apis.pop()!.close();
});
afterAll(async () => {
  await db?.drop();
});

function api(config = configSchema.parse({})): DashboardApi {
  const a = createDashboardApi({
    databaseUrl: db.url,
    environment: 'test',
    stuckThresholdMinutes: 10,
    errorThresholdPct: 15,
    anomalyConfig: config,
    now: () => NOW,
  });
  apis.push(a);
  return a;
}

async function ask(a: DashboardApi, query: Record<string, string> | string) {
  const params = typeof query === 'string' ? new URLSearchParams(query) : new URLSearchParams(query);
  return a.handle('/api/anomalies', params, runs);
}

const judged = (h: AnomaliesResponse['hours'][number]): h is AnomalyJudgedHour => 'level' in h;

describe('GET /api/anomalies', () => {
  it('answers the busiest source and volume by default: 168 hours, the incident marked, a normal one not', async () => {
    const res = await ask(api(), {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const body = res.body as AnomaliesResponse;
    expect(body).toMatchObject({
      source: 'vendor_big',
      metric: 'volume',
      metrics: ['volume', 'error_rate', 'dedupe_rate', 'processing_time'],
      from: iso(FIRST_HOUR),
      to: iso(LAST_HOUR + HOUR),
      sensitivity: 3,
      training_weeks: 4,
      min_training_weeks: 2,
      enabled: true,
      sources_total: 4,
    });
    expect(body.sources.slice(0, 3)).toEqual(['vendor_big', 'vendor_small', 'vendor_new']);
    expect(body.hours).toHaveLength(168);
    expect(body.hours[0]!.hour_start).toBe(iso(FIRST_HOUR));
    expect(body.hours[167]!.hour_start).toBe(iso(LAST_HOUR));

    const at = (ms: number) => body.hours.find((h) => h.hour_start === iso(ms))!;
    const incident = at(INCIDENT);
    expect(judged(incident) && incident.level).toBe('critical');
    expect(incident).toMatchObject({ observed: 2 });
    if (!judged(incident)) throw new Error('the incident hour was not judged');
    expect(incident.lower).toBeGreaterThan(2);
    expect(incident.score).toBeLessThan(-6);
    // The same hour a day earlier: inside its band.
    const normal = at(INCIDENT - 24 * HOUR);
    expect(judged(normal) && normal.level).toBe('ok');
    if (!judged(normal)) throw new Error('the normal hour was not judged');
    expect(normal.observed).toBeGreaterThanOrEqual(normal.lower);
    expect(normal.observed).toBeLessThanOrEqual(normal.upper);
    // Four weeks of history everywhere: every hour judged, few unusual besides the incident.
    expect(body.not_judged).toBe(0);
    expect(body.unusual).toBe(body.hours.filter((h) => judged(h) && h.level !== 'ok').length);
    expect(body.unusual).toBeGreaterThanOrEqual(1);
    expect(body.unusual).toBeLessThanOrEqual(5);
  });

  it('judges the chosen source and metric with its own settings', async () => {
    const config = configSchema.parse({
      sources: { vendor_small: { anomalies: { sensitivity: 5, metrics: ['volume'] } } },
    });
    const res = await ask(api(config), { source: 'vendor_small', metric: 'error_rate' });
    expect(res.status).toBe(200);
    const body = res.body as AnomaliesResponse;
    expect(body).toMatchObject({ source: 'vendor_small', metric: 'error_rate', sensitivity: 5, enabled: false });
    const h = body.hours[100]!;
    expect(judged(h) && h.observed).toBe(1);
    expect(judged(h) && h.level).toBe('ok');
    const time = (await ask(api(config), { source: 'vendor_big', metric: 'processing_time' }))
      .body as AnomaliesResponse;
    expect(time).toMatchObject({ metric: 'processing_time', sensitivity: 3, enabled: true });
    // The incident hour's two batches took 2 minutes, as always.
    const slow = time.hours.find((x) => x.hour_start === iso(INCIDENT))!;
    expect(judged(slow) && slow.level).toBe('ok');
    expect(slow.observed).toBeCloseTo(2, 0);
  });

  it('says of each hour what the live check said when that hour was the last complete one', async () => {
    const hours = [INCIDENT, INCIDENT - 24 * HOUR, FIRST_HOUR, FIRST_HOUR + 100 * HOUR, LAST_HOUR];
    for (const metric of METRICS) {
      for (const source of ['vendor_big', 'vendor_new']) {
        const body = (await ask(api(), { source, metric })).body as AnomaliesResponse;
        for (const hour of hours) {
          // The live check's own read and judgement at that hour (src/checks/anomalies.ts).
          const { series } = await loadSeries(db.pool, {
            from: trainingStart(hour, DEFAULT_OPTIONS),
            to: hour + HOUR,
            metrics: [...METRICS],
          });
          const s = series.find((x) => x.source === source)!;
          const live = judgeHour(viewOf(s, hour + HOUR), metric, hour, DEFAULT_OPTIONS, new Map());
          const shown = body.hours.find((h) => h.hour_start === iso(hour))!;
          const {
            source: _s,
            metric: _m,
            judged: _j,
            evidence: _e,
            ...expected
          } = live as typeof live & {
            evidence?: number;
          };
          expect(shown, `${source} ${metric} ${iso(hour)}`).toMatchObject(
            live.judged ? expected : { hour_start: live.hour_start, reason: live.reason },
          );
        }
      }
    }
  });

  it('says "history" for every hour of a source with less than min_training_weeks of it', async () => {
    const res = await ask(api(), { source: 'vendor_new' });
    expect(res.status).toBe(200);
    const body = res.body as AnomaliesResponse;
    expect(body.hours).toHaveLength(168);
    expect(body.not_judged).toBe(168);
    expect(body.unusual).toBe(0);
    for (const h of body.hours) {
      expect(judged(h)).toBe(false);
      expect((h as AnomalyUnjudgedHour).reason).toContain('history');
      expect(h.observed).toBe(1);
    }
  });

  it('rejects an unknown metric with one line naming the allowed ones (400)', async () => {
    const res = await ask(api(), { metric: 'latency' });
    expect(res.status).toBe(400);
    const { error } = res.body as { error: string };
    expect(error).toBe('metric: expected one of volume, error_rate, dedupe_rate, processing_time (got "latency")');
    expect((await ask(api(), 'metric=volume&metric=error_rate')).status).toBe(400);
    expect((await ask(api(), { hours: '24' })).status).toBe(400);
  });

  it('answers 404 for an unknown source, naming it escaped', async () => {
    const res = await ask(api(), { source: `nope\u202e\u001b[2J` });
    expect(res.status).toBe(404);
    const { error } = res.body as { error: string };
    expect(error).toMatch(/^unknown source "nope\\u202e\\x1b\[2J": no batch from the 4 weeks before the last 7 days/);
    expect(error).not.toMatch(/[\u0000-\u001f\u202e]/);
    expect(error.split('\n')).toHaveLength(1);
  });

  it('lists a hostile source name escaped and cut, and answers for it by that form', async () => {
    const body = (await ask(api(), {})).body as AnomaliesResponse;
    const shown = body.sources.find((s) => s.startsWith('evil'))!;
    expect(shown.length).toBeLessThanOrEqual(256);
    expect(shown.startsWith('evil\\u202e\\x1b[31mxxx')).toBe(true);
    expect(shown.endsWith('…')).toBe(true);
    expect(shown).not.toMatch(/[\u0000-\u001f\u202e]/);
    const res = await ask(api(), { source: shown });
    expect(res.status).toBe(200);
    expect((res.body as AnomaliesResponse).source).toBe(shown);
    // Its exact name works as well.
    expect(((await ask(api(), { source: HOSTILE })).body as AnomaliesResponse).source).toBe(shown);
  });

  it('answers an empty window with no source', async () => {
    const empty = createDashboardApi({
      databaseUrl: db.url,
      environment: 'test',
      stuckThresholdMinutes: 10,
      errorThresholdPct: 15,
      now: () => Date.parse('2020-01-01T00:30:00Z'),
    });
    apis.push(empty);
    const res = await ask(empty, {});
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ source: null, hours: [], sources: [], sources_total: 0 });
    expect((await ask(empty, { source: 'vendor_big' })).status).toBe(404);
  });
});

describe('GET /api/anomalies through sentinel serve', () => {
  let server: MonitorServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('is routed, and answers JSON', async () => {
    server = await startMonitorServer({
      listen: { host: '127.0.0.1', port: 0 },
      intervalMs: 60_000,
      logger: createLogger({ level: 'error', write: () => {} }),
      redactor: new Redactor(),
      dashboard: { databaseUrl: db.url, environment: 'test', stuckThresholdMinutes: 10, errorThresholdPct: 15 },
    });
    const bad = await fetch(`${server.url}/api/anomalies?metric=nope`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/json');
    const ok = await fetch(`${server.url}/api/anomalies`);
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as AnomaliesResponse;
    expect(body.metric).toBe('volume');
    expect(body.hours).toHaveLength(168);
  });
});
