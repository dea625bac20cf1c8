import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { formatHostPort } from './listen.js';
import type { ReadinessVerdict } from './readiness.js';

/**
 * The HTTP side of `sentinel serve`: `/metrics`, `/healthz`, `/readyz`, nothing
 * else. No framework: three read-only endpoints over state the loop already
 * holds. A request never runs a query; `/metrics` renders the registry the last
 * run filled, so a scrape answers in milliseconds whatever the database does.
 *
 * Nothing served is secret (figures, check names, a redacted reason), but the
 * default address is loopback all the same: exposing it is a deliberate
 * `--listen 0.0.0.0:9464`.
 */

export interface MetricsSource {
  contentType: string;
  render(): Promise<string>;
}

export interface ServerOptions {
  host: string;
  port: number;
  metrics: MetricsSource;
  /** The loop's verdict, read on each `/readyz` (served as JSON: `ready`, `role` with replicas, `reason` when not ready). */
  readiness: () => ReadinessVerdict;
  logger?: Logger;
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

const ENDPOINTS = ['/metrics', '/healthz', '/readyz'] as const;
type Endpoint = (typeof ENDPOINTS)[number];
const METHODS = ['GET', 'HEAD'];
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
  const { host, metrics, readiness, logger } = options;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger?.warn(`HTTP ${req.method ?? '?'} ${pathOf(req)} failed: ${err instanceof Error ? err.message : String(err)}`);
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
    if (!(ENDPOINTS as readonly string[]).includes(path)) {
      return send(req, res, 404, json({ error: 'not found', endpoints: ENDPOINTS }));
    }
    if (!METHODS.includes(req.method ?? '')) {
      return send(req, res, 405, json({ error: 'method not allowed', allow: METHODS }), { Allow: METHODS.join(', ') });
    }
    switch (path as Endpoint) {
      case '/metrics':
        return send(req, res, 200, { type: metrics.contentType, body: await metrics.render() });
      case '/healthz':
        return send(req, res, 200, { type: 'text/plain; charset=utf-8', body: 'ok\n' });
      case '/readyz': {
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

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

interface Body {
  type: string;
  body: string;
}

function json(value: unknown): Body {
  return { type: 'application/json; charset=utf-8', body: JSON.stringify(value) + '\n' };
}

function send(req: IncomingMessage, res: ServerResponse, status: number, { type, body }: Body, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
