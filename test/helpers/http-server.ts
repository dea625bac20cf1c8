import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach } from 'vitest';

/**
 * A local HTTP server standing in for a provider's API. It records every request
 * and answers from a script, so a test can check the request exactly as the
 * provider documents it and make the provider fail the way it really fails
 * (4xx, 5xx, 429 with Retry-After, a hang).
 */

export interface RecordedHttpRequest {
  method: string;
  /** Path and query, e.g. `/api/webhooks/1/abc?wait=true`. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  /** Never answer (the connection stays open until the server closes). */
  hang?: boolean;
  delayMs?: number;
}

export type Responder = (req: RecordedHttpRequest) => Answer | undefined;

export interface TestHttpServer {
  url: string;
  requests: RecordedHttpRequest[];
  /** Answers for the next requests, in order; after them `fallback` answers. */
  queue(...answers: Answer[]): void;
  /** How to answer once the queue is empty (default 200 `{}`), or a function of the request. */
  fallback(answer: Answer | Responder): void;
  close(): Promise<void>;
}

export async function startHttpServer(): Promise<TestHttpServer> {
  const requests: RecordedHttpRequest[] = [];
  const queued: Answer[] = [];
  let fallback: Answer | Responder = { status: 200, body: {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded: RecordedHttpRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(recorded);
      const answer = queued.shift() ?? (typeof fallback === 'function' ? fallback(recorded) : fallback) ?? { status: 200, body: {} };
      if (answer.hang) return;
      const send = (): void => {
        const body = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        const headers = { ...(typeof answer.body === 'object' && answer.body !== null ? { 'content-type': 'application/json' } : {}), ...answer.headers };
        res.writeHead(answer.status, headers);
        res.end(body);
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    queue: (...answers) => queued.push(...answers),
    fallback: (answer) => {
      fallback = answer;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
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
    queue: (...answers) => server().queue(...answers),
    fallback: (answer) => server().fallback(answer),
    close: () => server().close(),
  };
}
