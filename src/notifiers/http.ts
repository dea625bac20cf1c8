import { Redactor } from '../util/redact.js';

/**
 * HTTP delivery shared by every notifier: one request with a timeout, a verdict
 * (accepted / retry / final) in Alertmanager's terms, retries with exponential
 * backoff and full jitter that honour Retry-After, and errors that never carry a
 * secret (webhook URLs are secrets: their token is in the path).
 */

/** Why a delivery failed, and whether trying again can help. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** The provider asked us to wait this long (429 Retry-After, Discord retry_after). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

export interface HttpRequest {
  url: string;
  method?: 'POST' | 'GET' | 'PUT';
  headers?: Record<string, string>;
  body?: string | URLSearchParams;
  /** Names the target in messages without its URL, e.g. `discord webhook`. */
  label: string;
  /** Secrets to mask in anything derived from the response. */
  secrets?: string[];
  /** Per-request timeout. */
  timeoutMs?: number;
  /**
   * Provider-specific reading of a failed response: extra hint text, or a
   * retry-after found in the body (Discord's `retry_after`, in seconds).
   */
  interpret?: (status: number, body: string, headers: Headers) => { hint?: string; retryAfterMs?: number } | undefined;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_EXCERPT = 300;

/** Sends one request; resolves on 2xx, throws a classified DeliveryError otherwise, its message redacted of `secrets` and URL passwords. */
export async function request(req: HttpRequest, signal?: AbortSignal): Promise<HttpResponse> {
  const redactor = new Redactor(req.secrets ?? []);
  const timeout = AbortSignal.timeout(req.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(req.url, { method: req.method ?? 'POST', headers: req.headers, body: req.body, signal: combined, redirect: 'error' });
  } catch (err) {
    // Every message is redacted: undici's own messages can quote the URL (with its
    // token, or user:password) and the label is the provider's text.
    if (signal?.aborted) throw new DeliveryError(redactor.redact(`${req.label}: delivery aborted`), true);
    if (timeout.aborted) throw new DeliveryError(redactor.redact(`${req.label}: no answer within ${Math.round((req.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 100) / 10}s`), true);
    throw new DeliveryError(redactor.redact(`${req.label}: ${networkReason(err)}`), true);
  }
  const body = await res.text().catch(() => '');
  if (res.status >= 200 && res.status < 300) return { status: res.status, headers: res.headers, body };

  const extra = req.interpret?.(res.status, body, res.headers);
  const retryAfterMs = extra?.retryAfterMs ?? parseRetryAfter(res.headers.get('retry-after'));
  const retryable = res.status === 429 || res.status >= 500;
  // Redact before cutting: a secret cut in half by the excerpt would not be recognised.
  const excerpt = redactor.redact(oneLine(body)).slice(0, MAX_EXCERPT);
  const hint = extra?.hint ?? defaultHint(res.status);
  const message = `${req.label}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${excerpt ? `: ${excerpt}` : ''}${hint ? ` (${hint})` : ''}`;
  throw new DeliveryError(redactor.redact(message), retryable, res.status, retryAfterMs);
}

export interface RetryPolicy {
  /** Attempts within one run, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** performance.now() value after which no new attempt starts. */
  deadline: number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** 0 ≤ x < 1; injectable so tests can pin the jitter. */
  random: () => number;
}

/**
 * Runs `attempt` until it succeeds, fails finally (4xx other than 429), runs out
 * of attempts, or the next wait would pass the deadline. The last error is thrown
 * with its retryAfterMs so the outbox can schedule the next try.
 */
export async function withRetry<T>(attempt: () => Promise<T>, policy: RetryPolicy, signal?: AbortSignal): Promise<T> {
  let last: DeliveryError | undefined;
  for (let i = 0; i < policy.attempts; i++) {
    try {
      return await attempt();
    } catch (err) {
      last = err instanceof DeliveryError ? err : new DeliveryError(err instanceof Error ? err.message : String(err), true);
      if (!last.retryable || signal?.aborted || i === policy.attempts - 1) break;
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** i) * policy.random();
      const wait = Math.max(backoff, last.retryAfterMs ?? 0);
      if (performance.now() + wait > policy.deadline) break;
      await policy.sleep(wait, signal);
    }
  }
  throw last ?? new DeliveryError('no attempt was made', true);
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** `discord.com`: a target named without the path or query, where webhook tokens live. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid URL';
  }
}

function defaultHint(status: number): string | undefined {
  if (status === 401 || status === 403) return 'the credentials were rejected: check the key or token';
  if (status === 404) return 'the endpoint does not exist: the webhook may have been deleted or the URL is wrong';
  if (status === 413) return 'the message is too large';
  if (status === 429) return 'rate limited';
  return undefined;
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code && /CERT|TLS|SSL/.test(code)) return `TLS error (${code})`;
  return cause?.message ?? (err instanceof Error ? err.message : String(err));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
