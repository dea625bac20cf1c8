import type {
  AlertsResponse,
  AnomaliesResponse,
  AnomalyMetric,
  BatchPerformanceResponse,
  ErrorDistributionResponse,
  PipelineHealthResponse,
  SourcesResponse,
  StatusResponse,
} from '../../src/server/api-types.js';
import { API_PATHS } from '../../src/server/routes.js';

export type {
  AlertsResponse,
  AnomaliesResponse,
  AnomalyHour,
  AnomalyMetric,
  BatchPerformanceResponse,
  BatchPerformanceRow,
  ErrorDistributionResponse,
  ErrorDistributionRow,
  PipelineHealthResponse,
  PipelineHealthRow,
  SourceRow,
  SourcesResponse,
  StatusResponse,
} from '../../src/server/api-types.js';

const TOKEN_KEY = 'sentinel.dashboardToken';

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}
export function setToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives only as long as the page */
  }
}

/** Why a request failed, as the page shows it. */
export class ApiFailure extends Error {
  constructor(
    /**
     * `network`: no HTTP answer; `unauthorized`: 401; `unavailable`: 503 (database
     * unreachable); `http`: anything else.
     */
    readonly kind: 'network' | 'unauthorized' | 'unavailable' | 'http',
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

const TIMEOUT_MS = 10_000;

export async function getJson<T>(path: string): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let res: Response;
  try {
    res = await fetch(path, { headers, signal: controller.signal, cache: 'no-store', credentials: 'omit' });
  } catch (err) {
    throw new ApiFailure(
      'network',
      controller.signal.aborted ? 'no answer within 10 s' : err instanceof Error ? err.message : String(err),
    );
  } finally {
    clearTimeout(timer);
  }
  if (res.ok) return (await res.json()) as T;
  let message = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: unknown };
    if (typeof body.error === 'string') message = body.error;
  } catch {
    /* not JSON */
  }
  if (res.status === 401) throw new ApiFailure('unauthorized', message, 401);
  if (res.status === 503) throw new ApiFailure('unavailable', message, 503);
  throw new ApiFailure('http', message, res.status);
}

export interface Snapshot {
  status: StatusResponse;
  alerts: AlertsResponse;
  performance: BatchPerformanceResponse;
  errors: ErrorDistributionResponse;
  pipeline: PipelineHealthResponse;
  sources: SourcesResponse;
  anomalies: AnomaliesResponse;
}

/** The "Unusual hours" card's choice: a source (as the API shows it; absent: the busiest) and a metric. */
export interface AnomalyPick {
  source?: string;
  metric: AnomalyMetric;
}

export function anomaliesPath(pick: AnomalyPick): string {
  const q = new URLSearchParams();
  if (pick.source !== undefined) q.set('source', pick.source);
  q.set('metric', pick.metric);
  return `${API_PATHS.anomalies}?${q.toString()}`;
}

export type Settled<T> = { ok: true; value: T } | { ok: false; error: ApiFailure };

async function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    return { ok: false, error: err instanceof ApiFailure ? err : new ApiFailure('http', String(err)) };
  }
}

export type Parts = { [K in keyof Snapshot]: Settled<Snapshot[K]> };

/**
 * Every endpoint at once; each part settles on its own so one failure does not blank
 * the page. `onPart` hears each answer as it arrives: status and alerts come from
 * memory and can be on screen before the view queries answer.
 */
export async function loadAll(
  hours: number,
  pick: AnomalyPick,
  onPart?: <K extends keyof Snapshot>(key: K, part: Settled<Snapshot[K]>) => void,
): Promise<Parts> {
  const part = async <K extends keyof Snapshot>(key: K, p: Promise<Snapshot[K]>): Promise<Settled<Snapshot[K]>> => {
    const settled = await settle(p);
    onPart?.(key, settled);
    return settled;
  };
  const [status, alerts, performance, errors, pipeline, sources, anomalies] = await Promise.all([
    part('status', getJson<StatusResponse>(API_PATHS.status)),
    part('alerts', getJson<AlertsResponse>(API_PATHS.alerts)),
    part('performance', getJson<BatchPerformanceResponse>(`${API_PATHS.batchPerformance}?hours=${hours}`)),
    part('errors', getJson<ErrorDistributionResponse>(`${API_PATHS.errorDistribution}?limit=10`)),
    part('pipeline', getJson<PipelineHealthResponse>(API_PATHS.pipelineHealth)),
    part('sources', getJson<SourcesResponse>(`${API_PATHS.sources}?limit=20`)),
    part('anomalies', getJson<AnomaliesResponse>(anomaliesPath(pick))),
  ]);
  return { status, alerts, performance, errors, pipeline, sources, anomalies };
}
