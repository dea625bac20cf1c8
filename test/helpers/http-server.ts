import { EventEmitter } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, beforeEach } from 'vitest';

/**
 * A local HTTP server standing in for a provider's API. It records every request
 * and answers from a script, so a test can check the request exactly as the
 * provider documents it and make the provider fail the way it really fails
 * (4xx, 5xx, 429 with Retry-After, a hang, a reset, a slow answer, a body read
 * only later). A request counts as received once its whole body was read.
 */

export interface RecordedHttpRequest {
  method: string;
  /** Path and query, e.g. `/api/webhooks/1/abc?wait=true`. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /**
   * The body's bytes as received (`body` is them read as UTF-8, which binary formats do not
   * survive). Always set by the server; optional only for requests a test builds by hand.
   */
  raw?: Buffer;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  /** Never answer (the connection stays open until the server closes). */
  hang?: boolean;
  /** Reset the connection instead of answering (after reading the whole request). */
  reset?: boolean;
  delayMs?: number;
  /** Answer only once this settles: a provider held for exactly as long as the test chooses. */
  until?: Promise<unknown>;
}

export type Responder = (req: RecordedHttpRequest) => Answer | undefined;

export interface TestHttpServer {
  url: string;
  requests: RecordedHttpRequest[];
  /** Connections accepted so far: one per attempt of a client without keep-alive, received or not. */
  readonly accepted: number;
  /** Answers for the next requests, in order; after them `fallback` answers. */
  queue(...answers: Answer[]): void;
  /** How to answer once the queue is empty (default 200 `{}`), or a function of the request. */
  fallback(answer: Answer | Responder): void;
  /**
   * A slow-accepting server: from now on each connection is read only `ms` after
   * it was accepted (until then the request waits unread in the kernel's
   * buffers); Infinity never reads it; undefined reads at once again.
   */
  readLater(ms: number | undefined): void;
  /** Resolves once `count` requests in all have been received (whole body read). */
  received(count: number): Promise<void>;
  close(): Promise<void>;
}

/** `port`: listen there (a test that brings a provider up after a refused attempt); a free one by default. */
export async function startHttpServer(options: { port?: number } = {}): Promise<TestHttpServer> {
  const requests: RecordedHttpRequest[] = [];
  let accepted = 0;
  const queued: Answer[] = [];
  const events = new EventEmitter();
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void, ms: number): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  let fallback: Answer | Responder = { status: 200, body: {} };
  let readDelayMs: number | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const recorded: RecordedHttpRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: raw.toString('utf8'),
        raw,
      };
      requests.push(recorded);
      events.emit('request');
      const answer = queued.shift() ??
        (typeof fallback === 'function' ? fallback(recorded) : fallback) ?? { status: 200, body: {} };
      if (answer.hang) return;
      if (answer.reset) {
        req.socket.resetAndDestroy();
        return;
      }
      const send = (): void => {
        const body =
          answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        const headers = {
          ...(typeof answer.body === 'object' && answer.body !== null ? { 'content-type': 'application/json' } : {}),
          ...answer.headers,
        };
        res.writeHead(answer.status, headers);
        res.end(body);
      };
      if (answer.until) {
        // The socket may be gone by then (the client gave up, or the server closed).
        void answer.until.then(() => {
          if (!res.destroyed) send();
        });
      } else if (answer.delayMs) later(send, answer.delayMs);
      else send();
    });
  });
  // Connections are accepted paused and handed to the HTTP server at once, or
  // (readLater) only after a while: the request waits unread in the kernel's
  // buffers, and is still read and handled if the client has given up meanwhile.
  const pending = new Set<net.Socket>();
  // Every connection, to destroy on close: the HTTP server never listened itself, so its
  // closeAllConnections() does not know them, and a client's idle keep-alive connection
  // would hold close() until the client's own timeout.
  const open = new Set<net.Socket>();
  const listener = net.createServer({ pauseOnConnect: true }, (socket) => {
    accepted++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    const handOver = (): void => {
      pending.delete(socket);
      server.emit('connection', socket);
      socket.resume();
    };
    if (readDelayMs === undefined) return handOver();
    pending.add(socket);
    if (readDelayMs !== Infinity) later(handOver, readDelayMs);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = listener.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get accepted() {
      return accepted;
    },
    queue: (...answers) => queued.push(...answers),
    fallback: (answer) => {
      fallback = answer;
    },
    readLater: (ms) => {
      readDelayMs = ms;
    },
    received: (count) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (requests.length < count) return;
          events.off('request', check);
          resolve();
        };
        events.on('request', check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        for (const socket of pending) socket.destroy();
        for (const socket of open) socket.destroy();
        server.closeAllConnections();
        server.close(() => listener.close(() => resolve()));
      }),
  };
}

/**
 * A fresh server for every test of the file (or describe block) that calls this,
 * answering `fallback` unless a test says otherwise, closed after the test. The
 * returned object always stands for the current test's server.
 */
export function useHttpServer(fallback: Answer | Responder): TestHttpServer {
  let current: TestHttpServer | undefined;
  const server = (): TestHttpServer => {
    if (!current) throw new Error('the test server only exists while a test runs');
    return current;
  };
  beforeEach(async () => {
    current = await startHttpServer();
    current.fallback(fallback);
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return {
    get url() {
      return server().url;
    },
    get requests() {
      return server().requests;
    },
    get accepted() {
      return server().accepted;
    },
    queue: (...answers) => server().queue(...answers),
    fallback: (answer) => server().fallback(answer),
    readLater: (ms) => server().readLater(ms),
    received: (count) => server().received(count),
    close: () => server().close(),
  };
}
