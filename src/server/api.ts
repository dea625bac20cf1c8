import pg from 'pg';
import { PROCESSING_STATUSES, pipelineIndex } from '../checks/statuses.js';
import { connectionConfig } from '../db/connect.js';
import { describeError, isConnectionError } from '../db/errors.js';
import { survivingSessionDeath } from '../db/pool.js';
import type { RunResult } from '../types.js';
import { errorLine } from '../util/errors.js';
import { cut } from '../util/text.js';
import { sentinelVersion } from '../util/version.js';
import type {
  AlertsResponse,
  ApiUnavailable,
  BatchPerformanceResponse,
  BatchPerformanceRow,
  ErrorDistributionResponse,
  ErrorDistributionRow,
  PipelineHealthResponse,
  PipelineHealthRow,
  SourcesResponse,
  StatusResponse,
} from './api-types.js';
import { databaseUnreachable } from './readiness.js';
import { API_PATHS, type ApiPath } from './routes.js';
import { sourcesAnswer } from './sources.js';

/**
 * The dashboard's JSON API (`/api/*`, contract in api-types.ts).
 *
 * - `/api/status`, `/api/alerts` and `/api/sources` answer from the last RunResult
 *   the loop fed in (its alerts and pipeline snapshot): no query, like `/metrics`.
 * - `/api/batch-performance`, `/api/error-distribution` and `/api/pipeline-health`
 *   read the ops views through a pool of their own (at most 2 connections,
 *   read-only transactions, `application_name` `sentinel-dashboard`,
 *   statement_timeout 5 s). Answers are cached per (path, validated parameters)
 *   for {@link DEFAULT_CACHE_TTL_MS} (5 s), and concurrent requests for the same
 *   key share one query: however many browsers refresh, the database sees at most
 *   one query per endpoint and parameter set every 5 s. Errors are not cached.
 */

export const DEFAULT_CACHE_TTL_MS = 5000;
export const HOURS_RANGE = { min: 1, max: 720, default: 24 } as const;
export const LIMIT_RANGE = { min: 1, max: 100, default: 10 } as const;
/** `/api/sources?limit=`: how many sources by rows (those an alert names are always listed). */
export const SOURCES_LIMIT_RANGE = { min: 1, max: 100, default: 20 } as const;
/**
 * Longest data strings in an answer, in characters (longer ones are cut with `…`):
 * error codes, statuses and messages come from the monitored tables, and a 1 MB
 * value must not make a 100 MB answer.
 */
export const MAX_API_CHARS = { code: 256, message: 1024 } as const;
/** The API's paths (from the route table, src/server/routes.ts), listed in its 404. */
export const API_ENDPOINTS: readonly ApiPath[] = Object.values(API_PATHS);
export type ApiEndpoint = ApiPath;

export interface ApiAnswer {
  status: number;
  body: unknown;
}

export interface DashboardApiOptions {
  /** The monitored database (read through the dashboard's own pool). */
  databaseUrl: string;
  environment: string;
  /** checks.stuck_batches.threshold_minutes */
  stuckThresholdMinutes: number;
  /** checks.error_spike.threshold_pct */
  errorThresholdPct: number;
  /** sources.<name>.error_spike_threshold_pct, by source (judged alone, outside the overall rate). */
  sourceErrorThresholds?: Readonly<Record<string, number>>;
  /** Masks secrets in error messages. */
  redact?: (text: string) => string;
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  cacheTtlMs?: number;
  /** Clock for the cache and the run's age (tests). */
  now?: () => number;
  version?: string;
}

/** What the loop tells the API: the last run and the replica role. */
export interface RunSource {
  last(): RunResult | undefined;
  role(): StatusResponse['role'];
}

export interface DashboardApi {
  handle(path: string, query: URLSearchParams, runs: RunSource): Promise<ApiAnswer>;
  /** Ends the pool. Idempotent. */
  close(): Promise<void>;
}

class BadRequest extends Error {}

/** A whole number in range, written as plain digits; anything else is a 400 naming the parameter. */
function wholeNumber(
  query: URLSearchParams,
  name: string,
  range: { min: number; max: number; default: number },
): number {
  const values = query.getAll(name);
  const problem = `${name}: expected a whole number from ${range.min} to ${range.max}`;
  if (values.length === 0) return range.default;
  if (values.length > 1) throw new BadRequest(`${name}: given more than once`);
  const text = values[0]!;
  if (!/^\d{1,6}$/.test(text)) throw new BadRequest(problem);
  const n = Number(text);
  if (n < range.min || n > range.max) throw new BadRequest(problem);
  return n;
}

function onlyParams(query: URLSearchParams, allowed: readonly string[]): void {
  const unknown = [...new Set([...query.keys()].filter((k) => !allowed.includes(k)))];
  if (unknown.length === 0) return;
  const list = unknown.map((k) => JSON.stringify(k)).join(', ');
  const accepted = allowed.length ? `accepted: ${allowed.join(', ')}` : 'this endpoint takes none';
  throw new BadRequest(`unknown query parameter${unknown.length > 1 ? 's' : ''} ${list} (${accepted})`);
}

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** One line, secrets masked, bounded; not escaped (JSON escapes what it must). */
function oneLine(text: string, redact: (t: string) => string): string {
  return errorLine(text, { redact, max: 300, escape: false });
}

export function createDashboardApi(options: DashboardApiOptions): DashboardApi {
  const now = options.now ?? Date.now;
  const ttl = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
  const redact = options.redact ?? ((t: string) => t);
  const version = options.version ?? sentinelVersion();
  const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
  let pool: pg.Pool | undefined;
  let closed = false;
  const cache = new Map<string, { at: number; answer: ApiAnswer }>();
  const inFlight = new Map<string, Promise<ApiAnswer>>();

  function getPool(): pg.Pool {
    if (closed) throw new Error('the dashboard API is closed');
    if (!pool) {
      pool = new pg.Pool({
        ...connectionConfig(options.databaseUrl),
        application_name: 'sentinel-dashboard',
        max: 2,
        connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
        idleTimeoutMillis: 30_000,
        statement_timeout: statementTimeoutMs,
        query_timeout: statementTimeoutMs + 2000,
        keepAlive: true,
        options: '-c default_transaction_read_only=on',
      });
      survivingSessionDeath(pool);
    }
    return pool;
  }

  async function query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    return (await getPool().query<R>(text, values)).rows;
  }

  async function batchPerformance(hours: number): Promise<BatchPerformanceResponse> {
    const rows = await query<Record<string, unknown>>(
      `select * from ops.v_batch_performance where hour_bucket >= now() - make_interval(hours => $1::int) ` +
        `order by hour_bucket desc`,
      [hours],
    );
    return {
      hours,
      error_threshold_pct: options.errorThresholdPct,
      rows: rows.map(
        (r): BatchPerformanceRow => ({
          hour_bucket: iso(r.hour_bucket),
          total_batches: num(r.total_batches),
          completed_batches: num(r.completed_batches),
          failed_batches: num(r.failed_batches),
          avg_parse_ms: numOrNull(r.avg_parse_ms),
          avg_db_ms: numOrNull(r.avg_db_ms),
          avg_total_ms: numOrNull(r.avg_total_ms),
          total_rows: num(r.total_rows),
          inserted_rows: num(r.inserted_rows),
          skipped_rows: num(r.skipped_rows),
          error_rows: num(r.error_rows),
          dedupe_rate_pct: numOrNull(r.dedupe_rate_pct),
          error_rate_pct: numOrNull(r.error_rate_pct),
        }),
      ),
    };
  }

  async function errorDistribution(limit: number): Promise<ErrorDistributionResponse> {
    const rows = await query<Record<string, unknown>>(
      `select * from ops.v_error_distribution order by occurrence_count desc, error_code limit $1::int`,
      [limit],
    );
    return {
      limit,
      rows: rows.map(
        (r): ErrorDistributionRow => ({
          error_code: cut(String(r.error_code), MAX_API_CHARS.code),
          occurrence_count: num(r.occurrence_count),
          affected_batches: num(r.affected_batches),
          sample_message:
            r.sample_message === null || r.sample_message === undefined
              ? null
              : cut(String(r.sample_message), MAX_API_CHARS.message),
          last_seen_at: iso(r.last_seen_at),
        }),
      ),
    };
  }

  async function pipelineHealth(): Promise<PipelineHealthResponse> {
    const threshold = options.stuckThresholdMinutes;
    // Stuck as the stuck_batches check counts it: a processing status whose oldest
    // batch changed status more than threshold_minutes ago (same clock: now()).
    const rows = await query<Record<string, unknown>>(
      `select h.*, (h.status = any($2::text[]) and ` +
        `h.oldest_batch_at < now() - make_interval(secs => $1::float8 * 60)) as stuck
         from ops.v_pipeline_health h`,
      [threshold, [...PROCESSING_STATUSES]],
    );
    return {
      threshold_minutes: threshold,
      rows: rows
        .map(
          (r): PipelineHealthRow => ({
            status: cut(String(r.status), MAX_API_CHARS.code),
            batch_count: num(r.batch_count),
            oldest_batch_at: iso(r.oldest_batch_at),
            oldest_age_minutes: num(r.oldest_age_minutes),
            newest_batch_at: iso(r.newest_batch_at),
            stuck: r.stuck === true,
          }),
        )
        .sort((a, b) => pipelineIndex(a.status) - pipelineIndex(b.status)),
    };
  }

  /**
   * The database as the API last found it. While it is unreachable (the API's own
   * query failed to connect, or the last run said so and nothing good was read since)
   * view endpoints answer 503 at once with the age of the last good data, and one
   * background query per cache period finds out when it is back: a dashboard left
   * open during an outage never stacks requests behind connect timeouts.
   */
  let outage: { reason: string } | undefined;
  let lastGoodAt: number | undefined;
  let lastProbeAt = Number.NEGATIVE_INFINITY;
  let probing = false;

  function unavailable(): ApiAnswer {
    const body: ApiUnavailable = {
      error: `database unreachable: ${outage?.reason ?? 'unknown'}`,
      last_good_at: lastGoodAt !== undefined ? new Date(lastGoodAt).toISOString() : null,
      last_good_age_seconds: lastGoodAt !== undefined ? Math.max(0, Math.round((now() - lastGoodAt) / 1000)) : null,
    };
    return { status: 503, body };
  }

  function probeInBackground(): void {
    if (probing || now() - lastProbeAt < ttl) return;
    probing = true;
    lastProbeAt = now();
    getPool()
      .query('select 1')
      .then(
        () => (outage = undefined),
        (err: unknown) => {
          if (!isConnectionError(err)) outage = undefined;
        },
      )
      .finally(() => (probing = false));
  }

  /** Cached, single-flight; a database error is a 503 (not cached). */
  async function cached(key: string, runs: RunSource, load: () => Promise<unknown>): Promise<ApiAnswer> {
    const last = runs.last();
    const runSaysDown = last ? databaseUnreachable(last) : undefined;
    if (
      !outage &&
      runSaysDown !== undefined &&
      (lastGoodAt === undefined || lastGoodAt < Date.parse(last!.timestamp))
    ) {
      outage = { reason: oneLine(runSaysDown, redact) };
      lastProbeAt = now();
    }
    if (outage) {
      probeInBackground();
      return unavailable();
    }
    const hit = cache.get(key);
    if (hit && now() - hit.at < ttl) return hit.answer;
    const pending = inFlight.get(key);
    if (pending) return pending;
    const promise = (async (): Promise<ApiAnswer> => {
      try {
        const answer = { status: 200, body: await load() };
        cache.set(key, { at: now(), answer });
        lastGoodAt = now();
        return answer;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (isConnectionError(err)) {
          outage = { reason: oneLine(describeError(err), redact) };
          lastProbeAt = now();
          return unavailable();
        }
        return { status: 503, body: { error: `database error: ${oneLine(message, redact)}` } };
      } finally {
        inFlight.delete(key);
      }
    })();
    inFlight.set(key, promise);
    return promise;
  }

  function status(runs: RunSource): StatusResponse {
    const last = runs.last();
    const finished = last ? Date.parse(last.timestamp) : NaN;
    return {
      environment: options.environment,
      overall_status: last?.overall_status ?? 'unknown',
      last_run_at: last ? last.timestamp : null,
      last_run_age_seconds: Number.isFinite(finished) ? Math.max(0, Math.round((now() - finished) / 1000)) : null,
      role: runs.role(),
      database_reachable: last ? databaseUnreachable(last) === undefined : null,
      version,
      metrics: last?.metrics ?? null,
    };
  }

  return {
    async handle(path, params, runs) {
      try {
        switch (path as ApiEndpoint) {
          case API_PATHS.status:
            onlyParams(params, []);
            return { status: 200, body: status(runs) };
          case API_PATHS.alerts: {
            onlyParams(params, []);
            const body: AlertsResponse = { alerts: runs.last()?.alerts ?? [] };
            return { status: 200, body };
          }
          case API_PATHS.batchPerformance: {
            onlyParams(params, ['hours']);
            const hours = wholeNumber(params, 'hours', HOURS_RANGE);
            return await cached(`${path}?hours=${hours}`, runs, () => batchPerformance(hours));
          }
          case API_PATHS.errorDistribution: {
            onlyParams(params, ['limit']);
            const limit = wholeNumber(params, 'limit', LIMIT_RANGE);
            return await cached(`${path}?limit=${limit}`, runs, () => errorDistribution(limit));
          }
          case API_PATHS.pipelineHealth:
            onlyParams(params, []);
            return await cached(path, runs, () => pipelineHealth());
          case API_PATHS.sources: {
            // From the last run's snapshot, like /api/alerts: no query however many browsers ask.
            onlyParams(params, ['limit']);
            const limit = wholeNumber(params, 'limit', SOURCES_LIMIT_RANGE);
            const thresholds = { overallPct: options.errorThresholdPct, own: options.sourceErrorThresholds ?? {} };
            const body: SourcesResponse = sourcesAnswer(runs.last(), thresholds, limit);
            return { status: 200, body };
          }
          default:
            return { status: 404, body: { error: 'not found', endpoints: API_ENDPOINTS } };
        }
      } catch (err) {
        if (err instanceof BadRequest) return { status: 400, body: { error: err.message } };
        throw err;
      }
    },
    async close() {
      closed = true;
      const p = pool;
      pool = undefined;
      if (p) await p.end().catch(() => undefined);
    },
  };
}
