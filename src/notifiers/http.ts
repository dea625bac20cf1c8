import http from 'node:http';
import https from 'node:https';
import { Redactor } from '../util/redact.js';
import { sentinelVersion } from '../util/version.js';

/**
 * HTTP delivery shared by every notifier: one request with a timeout, a verdict
 * (accepted / retry / final) in Alertmanager's terms, retries with exponential
 * backoff and full jitter that honour Retry-After, and errors that never carry a
 * secret (webhook URLs are secrets: their token is in the path).
 *
 * Requests go through node:http(s), not fetch, because the verdict of a failure
 * depends on whether the whole request left this process: the ClientRequest's
 * `finish` event fires once the last byte of headers and body has been handed to
 * the operating system, which fetch does not tell. A failure before that (refused,
 * DNS, a connect timeout, a server that stopped reading a large body) cannot have
 * delivered anything and may be retried at once; a timeout or reset after it is
 * "delivery unknown": the provider may have acted on the request (see
 * DeliveryError.deliveryUnknown). Every request has a connection of its own (no
 * keep-alive), so a stale pooled connection is never mistaken for that case.
 */

/** Why a delivery failed, and whether trying again can help. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** The provider asked us to wait this long (429 Retry-After, Discord retry_after). */
    readonly retryAfterMs?: number,
    /**
     * The whole request was sent, then no answer came (a timeout, a reset, an
     * abort): the provider may have delivered the message. Trying again at once
     * may show it twice, unless the provider deduplicates (Notifier.idempotent).
     */
    readonly deliveryUnknown: boolean = false,
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
  /** Per-request timeout: connecting, sending and the whole answer. */
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
/** Answers are read up to this size (an error excerpt needs far less); the rest is dropped. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** What came back, before the verdict. */
interface RawAnswer {
  status: number;
  statusText: string;
  headers: Headers;
  body: string;
}

/**
 * Sends one request; resolves on 2xx, throws a classified DeliveryError otherwise, its message redacted of `secrets`
 * and URL passwords.
 */
export async function request(req: HttpRequest, signal?: AbortSignal): Promise<HttpResponse> {
  const redactor = new Redactor(req.secrets ?? []);
  // Every message is redacted: Node's own messages can quote the URL (with its
  // token, or user:password) and the label is the provider's text.
  const fail = (text: string, deliveryUnknown = false): DeliveryError =>
    new DeliveryError(redactor.redact(`${req.label}: ${text}`), true, undefined, undefined, deliveryUnknown);
  if (signal?.aborted) throw fail('delivery aborted');
  const res = await exchange(req, signal, fail);
  if (res.status >= 200 && res.status < 300) return { status: res.status, headers: res.headers, body: res.body };

  const extra = req.interpret?.(res.status, res.body, res.headers);
  const retryAfterMs = extra?.retryAfterMs ?? parseRetryAfter(res.headers.get('retry-after'));
  const retryable = res.status === 429 || res.status >= 500;
  // Redact before cutting: a secret cut in half by the excerpt would not be recognised.
  const excerpt = redactor.redact(oneLine(res.body)).slice(0, MAX_EXCERPT);
  const hint = extra?.hint ?? defaultHint(res.status);
  const message =
    `${req.label}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}` +
    `${excerpt ? `: ${excerpt}` : ''}${hint ? ` (${hint})` : ''}`;
  throw new DeliveryError(redactor.redact(message), retryable, res.status, retryAfterMs);
}

/**
 * One request on a connection of its own, bounded by `timeoutMs` and `signal`.
 * Resolves with any HTTP answer; a failure without one is a DeliveryError whose
 * wording and `deliveryUnknown` say whether the request had been sent whole.
 */
function exchange(
  req: HttpRequest,
  signal: AbortSignal | undefined,
  fail: (text: string, deliveryUnknown?: boolean) => DeliveryError,
): Promise<RawAnswer> {
  const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const seconds = `${Math.round(timeoutMs / 100) / 10}s`;
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return Promise.reject(fail('invalid URL'));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return Promise.reject(fail(`unsupported URL scheme ${url.protocol}`));
  // As fetch does: credentials belong in a header, not the URL (quoted redacted).
  if (url.username || url.password)
    return Promise.reject(fail(`a request cannot be sent to a URL that includes credentials: ${url.href}`));
  const body = req.body === undefined ? undefined : Buffer.from(req.body.toString(), 'utf8');
  const headers: Record<string, string> = { 'User-Agent': `sentinel/${sentinelVersion()}`, Accept: '*/*' };
  if (req.body instanceof URLSearchParams) headers['Content-Type'] = 'application/x-www-form-urlencoded;charset=UTF-8';
  else if (req.body !== undefined) headers['Content-Type'] = 'text/plain;charset=UTF-8';
  // The caller's spelling of a header replaces the default, whatever its case.
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    for (const key of Object.keys(headers)) if (key.toLowerCase() === name.toLowerCase()) delete headers[key];
    headers[name] = value;
  }
  if (body || (req.method ?? 'POST') !== 'GET') headers['Content-Length'] = String(body?.length ?? 0);

  return new Promise<RawAnswer>((resolve, reject) => {
    let sent = false;
    let answer: Omit<RawAnswer, 'body'> | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let client: http.ClientRequest | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (outcome: { error: DeliveryError } | { answer: RawAnswer }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      client?.destroy();
      if ('error' in outcome) reject(outcome.error);
      else resolve(outcome.answer);
    };
    // Once the status is in, a body cut short (timeout, abort, reset) does not
    // change the verdict: the status decides, with what was read of the body.
    const end = (whenNoAnswer: () => DeliveryError): void =>
      finish(
        answer ? { answer: { ...answer, body: Buffer.concat(chunks).toString('utf8') } } : { error: whenNoAnswer() },
      );
    const onAbort = (): void =>
      end(() =>
        sent ? fail('delivery unknown (delivery aborted after the request was sent)', true) : fail('delivery aborted'),
      );

    try {
      client = (url.protocol === 'https:' ? https : http).request(
        url,
        { method: req.method ?? 'POST', headers, agent: false },
        (res) => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value])
              responseHeaders.append(name, v);
          }
          answer = { status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: responseHeaders };
          res.on('data', (chunk: Buffer) => {
            if (size >= MAX_ANSWER_BYTES) return;
            chunks.push(chunk);
            size += chunk.length;
          });
          res.on('end', () => end(() => fail('no answer')));
          res.on('error', () => end(() => fail('no answer')));
          res.on('close', () => end(() => fail('no answer')));
        },
      );
    } catch (err) {
      // Refused before anything left (an invalid header, say): nothing was sent.
      finish({ error: fail(networkReason(err)) });
      return;
    }
    // The last byte of the request is with the operating system: from now on the
    // provider may act on it whatever happens to the answer.
    client.on('finish', () => {
      sent = true;
    });
    client.on('error', (err) =>
      end(() =>
        sent
          ? fail(`delivery unknown (${networkReason(err)} after the request was sent)`, true)
          : fail(networkReason(err)),
      ),
    );
    timer = setTimeout(
      () =>
        end(() =>
          sent
            ? fail(`delivery unknown (no answer within ${seconds} after the request was sent)`, true)
            : fail(`timed out after ${seconds} before the request was sent`),
        ),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    client.end(body);
  });
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
  /**
   * Whether a "delivery unknown" failure (sent whole, no answer) may be tried
   * again in this run: only when the receiver deduplicates (Notifier.idempotent).
   * Default false: the error is thrown at once, for the outbox to retry later.
   */
  retryUnknown?: boolean;
}

/**
 * Runs `attempt` until it succeeds, fails finally (4xx other than 429), fails
 * with delivery unknown (unless `retryUnknown`), runs out of attempts, or the
 * next wait would pass the deadline. The last error is thrown
 * with its retryAfterMs so the outbox can schedule the next try.
 */
export async function withRetry<T>(attempt: () => Promise<T>, policy: RetryPolicy, signal?: AbortSignal): Promise<T> {
  let last: DeliveryError | undefined;
  for (let i = 0; i < policy.attempts; i++) {
    try {
      return await attempt();
    } catch (err) {
      last =
        err instanceof DeliveryError ? err : new DeliveryError(err instanceof Error ? err.message : String(err), true);
      if (
        !last.retryable ||
        (last.deliveryUnknown && !policy.retryUnknown) ||
        signal?.aborted ||
        i === policy.attempts - 1
      )
        break;
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
  if (status >= 300 && status < 400) return 'redirects are not followed: set the URL it redirects to';
  if (status === 401 || status === 403) return 'the credentials were rejected: check the key or token';
  if (status === 404) return 'the endpoint does not exist: the webhook may have been deleted or the URL is wrong';
  if (status === 413) return 'the message is too large';
  if (status === 429) return 'rate limited';
  return undefined;
}

function networkReason(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code && /CERT|TLS|SSL|VERIFY|ISSUER/.test(code)) return `TLS error (${code})`;
  if (code === 'EPIPE') return 'connection closed';
  return e.cause?.message ?? e.message ?? String(err);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
