import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import { access, tokenMatches } from './access.js';
import { formatHostPort } from './listen.js';
import type { ReadinessVerdict } from './readiness.js';
import { endpointsOf, findRoute, ROUTE_METHODS } from './routes.js';

// Part of this module's interface since before access.ts existed.
export { isLoopbackHostHeader, tokenMatches } from './access.js';

/**
 * The HTTP side of `sentinel serve`: `/metrics`, `/healthz`, `/readyz`, and with
 * the dashboard (`sentinel serve`) the page (`/`, `/assets/*` from `dist/web`)
 * and its JSON API (`/api/*`, see api.ts). No framework. `/metrics`, `/healthz`
 * and `/readyz` never run a query; `/metrics` renders the registry the last run
 * filled, so a scrape answers in milliseconds whatever the database does.
 *
 * Access (the table: routes.ts; the rule: access.ts): the default address is
 * loopback. On any other address (`--listen 0.0.0.0:9464`) a bearer token is required (`--auth-token` /
 * `SENTINEL_DASHBOARD_TOKEN`) for `/api/*` and `/metrics` (Prometheus sends it
 * with `authorization: { credentials_file: … }`); `/healthz`, `/readyz` (probes),
 * `/` and `/assets/*` (the page holds no data; it asks for the token) stay open.
 * On loopback nothing needs a token, unless one is configured: then `/api/*` and
 * `/metrics` need it (`--metrics-without-token` keeps `/metrics` open for a
 * scraper that cannot send one). A request with two `Host` headers is a 400.
 * On loopback without a token, every request must name a loopback `Host`
 * (`localhost`, `*.localhost`, `127.x.x.x`, `[::1]`, any port), else 421: a web
 * page that rebinds its own domain to 127.0.0.1 (DNS rebinding) cannot read the API.
 * Everything is read-only (GET/HEAD) and carries the security headers below.
 * Static files are served from `<file>.gz` (written at build time, see
 * web/vite.config.ts) when the client accepts gzip.
 */

export interface MetricsSource {
  contentType: string;
  render(): Promise<string>;
}

export interface ServerOptions {
  host: string;
  port: number;
  metrics: MetricsSource;
  /**
   * The loop's verdict, read on each `/readyz` (served as JSON: `ready`, `role`
   * with replicas, `reason` when not ready).
   */
  readiness: () => ReadinessVerdict;
  logger?: Logger;
  /** The dashboard's JSON API (`/api/*`); absent: those paths are 404. */
  api?: { handle(path: string, query: URLSearchParams): Promise<{ status: number; body: unknown }> };
  /**
   * Serve the page (`/`, `/assets/*`) from this directory; default `dist/web` of
   * the package when `api` is given, none otherwise.
   */
  webRoot?: string;
  /**
   * The bearer token for `/api/*` and (off loopback) `/metrics`. Required when the
   * address is not loopback and `api` is given.
   */
  authToken?: string;
  /** Whether `host` is a loopback address; computed from `host` by default (tests override). */
  loopback?: boolean;
  /**
   * `sentinel serve --metrics-without-token`: `/metrics` stays open although a token
   * is set (a scraper that cannot send one). Without it, a configured token guards
   * `/metrics` too, on loopback as well (Prometheus sends `authorization` natively).
   */
  metricsWithoutToken?: boolean;
}

export interface RunningServer {
  /** `http://127.0.0.1:9464`, with the port actually bound (`--listen …:0`). */
  url: string;
  port: number;
  /**
   * Stops accepting connections, closes idle keep-alive ones, lets requests in
   * flight finish (cut after a grace period), then resolves. Idempotent.
   */
  close(): Promise<void>;
}

/** The address could not be bound: a setup problem, reported in one line (exit 3). */
export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenError';
  }
}

/** The page's scripts and styles come from this server only; no inline script runs. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

/** `dist/web` of the package (this file is dist/server/http.js or src/server/http.ts). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../dist/web', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.gz': 'application/gzip',
};

/** How many `Host` headers the request carried (rawHeaders keeps them all). */
function hostHeaders(req: IncomingMessage): number {
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') n++;
  return n;
}

/** 127.0.0.0/8, ::1, `localhost` (and IPv4-mapped loopback). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** Whether `Accept-Encoding` accepts gzip (`gzip` or `x-gzip` without `q=0`). */
function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (name?.trim() !== 'gzip' && name?.trim() !== 'x-gzip') return false;
    const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return q === undefined || Number(q) > 0;
  });
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
function bearerOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
/** Requests in flight when closing get this long to finish before their sockets are cut. */
const CLOSE_GRACE_MS = 2000;

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this host',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
};

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { host, metrics, readiness, logger, api } = options;
  const loopback = options.loopback ?? isLoopbackHost(host);
  const token = options.authToken;
  if (api && !loopback && !token) {
    throw new ListenError(
      `listening on ${formatHostPort(host, options.port)} (not loopback) needs a bearer token: ` +
        `set SENTINEL_DASHBOARD_TOKEN or --auth-token`,
    );
  }
  const webRoot = options.webRoot ?? (api ? DEFAULT_WEB_ROOT : undefined);
  const has = { dashboard: api !== undefined, webRoot: webRoot !== undefined };
  const endpoints = endpointsOf(has);
  const metricsWithoutToken = options.metricsWithoutToken ?? false;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger?.warn(
        `HTTP ${req.method ?? '?'} ${pathOf(req)} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      if (!res.headersSent) send(req, res, 500, json({ error: 'internal error' }));
      else res.destroy();
    });
  });
  // A scrape is one small request: slow or stalled clients are cut early.
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req);
    // Node keeps the first of several Host headers and drops the rest: a request that
    // names two hosts is ambiguous to every proxy in front (request smuggling), so it is refused.
    if (hostHeaders(req) > 1) return send(req, res, 400, json({ error: 'more than one Host header' }));
    const route = findRoute(path, has);
    const bearer = bearerOf(req);
    const verdict = access(route, { loopback, token, host: req.headers.host, bearer, metricsWithoutToken });
    if (verdict === 421) {
      return send(
        req,
        res,
        421,
        json({ error: 'this server only answers requests for localhost, 127.0.0.1 or [::1] (Host header refused)' }),
      );
    }
    if (route === undefined) {
      // The list only to whoever could use it: not to a request without the token.
      const authorized = token === undefined || (bearer !== undefined && tokenMatches(bearer, token));
      return send(req, res, 404, json(authorized ? { error: 'not found', endpoints } : { error: 'not found' }));
    }
    if (!ROUTE_METHODS.includes(req.method ?? '')) {
      return send(req, res, 405, json({ error: 'method not allowed', allow: ROUTE_METHODS }), {
        Allow: ROUTE_METHODS.join(', '),
      });
    }
    if (verdict === 401) {
      const error =
        bearer === undefined
          ? 'a bearer token is required (Authorization: Bearer <token>)'
          : 'the bearer token is not valid';
      return send(req, res, 401, json({ error }), {
        'WWW-Authenticate': `Bearer realm="sentinel"${bearer === undefined ? '' : ', error="invalid_token"'}`,
      });
    }
    switch (route.serves) {
      case 'api': {
        const answer = await api!.handle(path, queryOf(req));
        return send(req, res, answer.status, json(answer.body));
      }
      case 'page':
        return serveFile(req, res, webRoot!, 'index.html');
      case 'asset':
        return serveFile(req, res, webRoot!, path.slice(1));
      case 'metrics':
        return send(req, res, 200, { type: metrics.contentType, body: await metrics.render() });
      case 'health':
        return send(req, res, 200, { type: 'text/plain; charset=utf-8', body: 'ok\n' });
      case 'readiness': {
        // One JSON line either way; `role` only with replicas enabled.
        const verdict = readiness();
        const role = verdict.role ? { role: verdict.role } : {};
        return verdict.ready
          ? send(req, res, 200, json({ ready: true, ...role }))
          : send(req, res, 503, json({ ready: false, ...role, reason: verdict.reason }));
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why = (err.code && LISTEN_ERRORS[err.code]) ?? err.message;
      reject(new ListenError(`cannot listen on ${formatHostPort(host, options.port)}: ${why}`));
    };
    server.once('error', onError);
    server.listen({ host, port: options.port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger?.warn(`HTTP server error: ${err.message}`));

  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${formatHostPort(host, port)}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/**
 * One file of the built page. The request path is checked segment by segment (no
 * `..`, no `.` segments, no backslashes or NULs, after percent-decoding) and the
 * resolved file must lie inside `root`. Hashed assets are cached for a year,
 * index.html never without revalidation.
 */
async function serveFile(req: IncomingMessage, res: ServerResponse, root: string, relative: string): Promise<void> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(relative);
  } catch {
    return send(req, res, 400, json({ error: 'bad path' }));
  }
  const segments = decoded.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))) {
    return send(req, res, 404, json({ error: 'not found' }));
  }
  const base = resolve(root);
  const file = resolve(join(base, ...segments));
  if (!file.startsWith(base + sep)) return send(req, res, 404, json({ error: 'not found' }));
  try {
    await stat(join(base, 'index.html'));
  } catch {
    return send(
      req,
      res,
      404,
      json({ error: `the dashboard page is not built (${base} is missing): run npm run build` }),
    );
  }
  try {
    const info = await stat(file);
    if (!info.isFile()) return send(req, res, 404, json({ error: 'not found' }));
  } catch {
    return send(req, res, 404, json({ error: 'not found' }));
  }
  // The build writes `<file>.gz` next to each compressible file; fall back to the file itself.
  let body: Buffer | undefined;
  const extra: Record<string, string> = {
    'Cache-Control': relative === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable',
    Vary: 'Accept-Encoding',
  };
  if (acceptsGzip(req)) {
    try {
      body = await readFile(`${file}.gz`);
      extra['Content-Encoding'] = 'gzip';
    } catch {
      body = undefined;
    }
  }
  try {
    body ??= await readFile(file);
  } catch {
    return send(req, res, 404, json({ error: 'not found' }));
  }
  const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  return send(req, res, 200, { type, body }, extra);
}

function queryOf(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (q === -1) return new URLSearchParams();
  const hash = url.indexOf('#', q);
  return new URLSearchParams(url.slice(q + 1, hash === -1 ? undefined : hash));
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

interface Body {
  type: string;
  body: string | Buffer;
}

function json(value: unknown): Body {
  // `<`, `>` and `&` as \u escapes: still the same JSON, but never markup, whoever sniffs it.
  const text = JSON.stringify(value).replace(/[<>&]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return { type: 'application/json; charset=utf-8', body: `${text}\n` };
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  { type, body }: Body,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    ...SECURITY_HEADERS,
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
