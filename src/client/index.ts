import type { BatchPerformanceRow, ErrorDistributionRow } from '../server/api-types.js';

/**
 * Typed readers of the ops views for the team's own dashboard, over a
 * supabase-js client (`createClient(url, serviceRoleKey)`), exactly as the
 * product guide's snippet reads them:
 *
 * ```ts
 * import { createClient } from '@supabase/supabase-js';
 * import { getBatchPerformance } from '@dragonfly-sre/sentinel/client';
 * const rows = await getBatchPerformance(createClient(url, key), 24);
 * ```
 *
 * The client is typed structurally ({@link SupabaseLike}), so this module needs
 * no dependency at runtime. The ops views are readable by `service_role` only
 * (see the migration): use the service-role key, on a server, never in a browser.
 * A PostgREST error (`{ error }`) is thrown as an {@link OpsQueryError}.
 */

/** The response of a supabase-js query: data or error. */
export interface PostgrestResponseLike<T> {
  data: T[] | null;
  error: { message: string; code?: string; details?: string | null; hint?: string | null } | null;
}

/** The part of a supabase-js query builder these functions use; awaiting it runs the query. */
export interface QueryLike<T> extends PromiseLike<PostgrestResponseLike<T>> {
  order(column: string, options?: { ascending?: boolean }): QueryLike<T>;
  limit(count: number): QueryLike<T>;
}

/** The part of a supabase-js client these functions use. */
export interface SupabaseLike {
  schema(schema: string): {
    from(relation: string): {
      select(columns?: string): QueryLike<Record<string, unknown>>;
    };
  };
}

export type { BatchPerformanceRow, ErrorDistributionRow };

/** One row of `ops.v_pipeline_health`, as PostgREST returns it. */
export interface PipelineHealthViewRow {
  status: string;
  batch_count: number;
  oldest_batch_at: string;
  oldest_age_minutes: number;
  newest_batch_at: string;
}

export class OpsQueryError extends Error {
  constructor(
    readonly view: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'OpsQueryError';
  }
}

async function rows<T>(view: string, query: PromiseLike<PostgrestResponseLike<Record<string, unknown>>>): Promise<T[]> {
  const { data, error } = await query;
  if (error) {
    const hint = error.hint ? ` (hint: ${error.hint})` : '';
    throw new OpsQueryError(
      view,
      error.code,
      `reading ops.${view} failed: ${error.message}${error.code ? ` [${error.code}]` : ''}${hint}`,
    );
  }
  return (data ?? []) as T[];
}

function positiveInteger(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new RangeError(`${name}: expected a whole number from 1 to ${max}, not ${String(value)}`);
}

const nums = <T extends Record<string, unknown>>(row: T, keys: readonly string[]): T => {
  const out: Record<string, unknown> = { ...row };
  // PostgREST returns numeric columns as JSON numbers and bigint counts as numbers too;
  // be lenient with strings (a proxy or an older version).
  for (const k of keys) if (typeof out[k] === 'string') out[k] = Number(out[k]);
  return out as T;
};

const BATCH_NUMERIC = [
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
] as const;

/**
 * The newest `hours` hourly rows of `ops.v_batch_performance`, exactly as the
 * product guide's snippet reads them (`order(hour_bucket desc).limit(hours)`).
 * Hours without batches have no row, so with sparse data the rows reach further
 * back than `hours` hours; `/api/batch-performance` filters by time instead.
 */
export async function getBatchPerformance(supabase: SupabaseLike, hours = 24): Promise<BatchPerformanceRow[]> {
  positiveInteger('hours', hours, 720);
  const data = await rows<BatchPerformanceRow>(
    'v_batch_performance',
    supabase
      .schema('ops')
      .from('v_batch_performance')
      .select('*')
      .order('hour_bucket', { ascending: false })
      .limit(hours),
  );
  return data.map(
    (r) => nums(r as unknown as Record<string, unknown>, BATCH_NUMERIC) as unknown as BatchPerformanceRow,
  );
}

/** The `limit` most frequent error codes of `ops.v_error_distribution`. */
export async function getErrorDistribution(supabase: SupabaseLike, limit = 10): Promise<ErrorDistributionRow[]> {
  positiveInteger('limit', limit, 100);
  const data = await rows<ErrorDistributionRow>(
    'v_error_distribution',
    supabase
      .schema('ops')
      .from('v_error_distribution')
      .select('*')
      .order('occurrence_count', { ascending: false })
      .limit(limit),
  );
  return data.map(
    (r) =>
      nums(r as unknown as Record<string, unknown>, [
        'occurrence_count',
        'affected_batches',
      ]) as unknown as ErrorDistributionRow,
  );
}

/** `ops.v_pipeline_health`: batches per in-flight status, in pipeline order. */
export async function getPipelineHealth(supabase: SupabaseLike): Promise<PipelineHealthViewRow[]> {
  const data = await rows<PipelineHealthViewRow>(
    'v_pipeline_health',
    supabase.schema('ops').from('v_pipeline_health').select('*'),
  );
  const order = ['uploaded', 'processing', 'validating', 'inserting'];
  return data
    .map(
      (r) =>
        nums(r as unknown as Record<string, unknown>, [
          'batch_count',
          'oldest_age_minutes',
        ]) as unknown as PipelineHealthViewRow,
    )
    .sort((a, b) => order.indexOf(a.status) - order.indexOf(b.status));
}
