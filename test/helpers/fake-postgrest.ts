import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type pg from 'pg';

/**
 * A local HTTP server that answers like PostgREST 13/14 does (status codes, JSON
 * error bodies `{code, details, hint, message}` with PostgREST's own texts, the
 * `Proxy-Status` header), so the schema-cache check can be driven through every
 * documented failure. Answers are scripted per request; with {@link FakePostgrest.listenForReload}
 * it recovers only when `NOTIFY pgrst, 'reload schema'` really reaches the database,
 * exactly as PostgREST would (other payloads, such as the guide's `'reload'`, are ignored).
 */

export interface FakeAnswer {
  status: number;
  /** JSON-encoded unless a string. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Accept the request but never answer (a hung PostgREST or proxy). */
  hang?: boolean;
  /** Answer after this many milliseconds. */
  delayMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingHttpHeaders;
}

function pgrstError(
  status: number,
  code: string,
  message: string,
  details: string | null = null,
  hint: string | null = null,
): FakeAnswer {
  return {
    status,
    body: { code, details, hint, message },
    headers: { 'Proxy-Status': `PostgREST; error=${code}` },
  };
}

/** PostgREST's answers, texts as in its source (src/PostgREST/Error.hs) and docs (references/errors.rst). */
export const answers = {
  ok: (rows: unknown[] = []): FakeAnswer => ({
    status: 200,
    body: rows,
    headers: { 'Content-Range': rows.length ? `0-${rows.length - 1}/*` : '*/*' },
  }),
  /** The connection to the database failed. */
  pgrst000: (): FakeAnswer =>
    pgrstError(
      503,
      'PGRST000',
      'Database connection error. Retrying the connection.',
      'connection to server at "127.0.0.1", port 5432 failed: Connection refused\n\tIs the server running on ' +
        'that host and accepting TCP/IP connections?\n',
    ),
  /** An internal database client error. */
  pgrst001: (): FakeAnswer =>
    pgrstError(503, 'PGRST001', 'Database client error. Retrying the connection.', 'no connection to the server\n'),
  /** The schema cache could not be loaded. */
  pgrst002: (): FakeAnswer => ({
    ...pgrstError(503, 'PGRST002', 'Could not query the database for the schema cache. Retrying.'),
    headers: { 'Proxy-Status': 'PostgREST; error=PGRST002', 'Retry-After': '0' },
  }),
  /** No connection free in the pool within db-pool-acquisition-timeout. */
  pgrst003: (): FakeAnswer => pgrstError(504, 'PGRST003', 'Timed out acquiring connection from connection pool.'),
  /** Accept-Profile names a schema that is not in db-schemas. */
  pgrst106: (schema = 'ops', exposed = ['public', 'graphql_public']): FakeAnswer =>
    pgrstError(
      406,
      'PGRST106',
      `Invalid schema: ${schema}`,
      null,
      `Only the following schemas are exposed: ${exposed.join(', ')}`,
    ),
  pgrst200: (parent = 'v_pipeline_health', child = 'simplicity_batches', schema = 'ops'): FakeAnswer =>
    pgrstError(
      400,
      'PGRST200',
      `Could not find a relationship between '${parent}' and '${child}' in the schema cache`,
      `Searched for a foreign key relationship between '${parent}' and '${child}' in the schema '${schema}', but ` +
        `no matches were found.`,
    ),
  pgrst202: (fn = 'ops.reload_views'): FakeAnswer =>
    pgrstError(
      404,
      'PGRST202',
      `Could not find the function ${fn} without parameters in the schema cache`,
      `Searched for the function ${fn} without parameters, but no matches were found in the schema cache.`,
    ),
  pgrst204: (column = 'status', relation = 'v_pipeline_health'): FakeAnswer =>
    pgrstError(400, 'PGRST204', `Could not find the '${column}' column of '${relation}' in the schema cache`),
  /** The table or view is not in the schema cache (PostgREST 13+). */
  pgrst205: (table = 'ops.v_pipeline_health', hint: string | null = null): FakeAnswer =>
    pgrstError(404, 'PGRST205', `Could not find the table '${table}' in the schema cache`, null, hint),
  /** A JWT that does not verify with the server's secret. */
  pgrst301: (): FakeAnswer => ({
    ...pgrstError(401, 'PGRST301', 'No suitable key or wrong key type', 'None of the keys was able to decode the JWT'),
    headers: {
      'WWW-Authenticate': 'Bearer error="invalid_token", error_description="No suitable key or wrong key type"',
      'Proxy-Status': 'PostgREST; error=PGRST301',
    },
  }),
  /** No JWT and no anonymous role. */
  pgrst302: (): FakeAnswer => ({
    ...pgrstError(401, 'PGRST302', 'Anonymous access is disabled'),
    headers: { 'WWW-Authenticate': 'Bearer', 'Proxy-Status': 'PostgREST; error=PGRST302' },
  }),
  pgrst303: (): FakeAnswer => ({
    ...pgrstError(401, 'PGRST303', 'JWT expired'),
    headers: {
      'WWW-Authenticate': 'Bearer error="invalid_token", error_description="JWT expired"',
      'Proxy-Status': 'PostgREST; error=PGRST303',
    },
  }),
  /** The role may not read the view (an authenticated request gets 403). */
  permissionDenied: (view = 'v_pipeline_health'): FakeAnswer =>
    pgrstError(403, '42501', `permission denied for view ${view}`),
  /** PostgREST 12's answer for a relation it cannot find (verified against the 12.0.2 binary). */
  undefinedTable12: (relation = 'ops.v_pipeline_health'): FakeAnswer =>
    pgrstError(404, '42P01', `relation "${relation}" does not exist`),
  /** An API gateway in front (Kong on Supabase) rejecting the key: no PostgREST code. */
  gateway401: (): FakeAnswer => ({
    status: 401,
    body: { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' },
  }),
  /**
   * Supabase's gateway on an `sb_secret_`/`sb_publishable_` key it does not know (deleted,
   * or another project's): 401 with a `{message, hint}` body and no PostgREST code.
   */
  gatewayUnregisteredKey: (): FakeAnswer => ({
    status: 401,
    body: {
      message: 'Unregistered API key',
      hint: 'Double check the provided API key as it is not registered for this project.',
    },
  }),
  /** Supabase's gateway on a secret key from a browser User-Agent: always 401 (API keys guide). */
  gatewaySecretKeyInBrowser: (): FakeAnswer => ({
    status: 401,
    body: { message: 'Forbidden use of secret API key in browser' },
  }),
  /** Supabase's gateway with no `apikey` header (e.g. a secret key sent only as a Bearer token). */
  gatewayMissingApiKey: (): FakeAnswer => ({
    status: 401,
    body: { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' },
    headers: { 'sb-error-code': 'UNAUTHORIZED_MISSING_API_KEY' },
  }),
  hang: (): FakeAnswer => ({ status: 0, hang: true }),
};

export interface FakePostgrest {
  url: string;
  port: number;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Payloads of the NOTIFYs on channel pgrst seen by {@link listenForReload}, in order. */
  notifications: string[];
  /** Answers for the next requests, one each, before falling back to the default. */
  enqueue(...answers: FakeAnswer[]): void;
  /** The answer once the queue is empty. */
  setDefault(answer: FakeAnswer): void;
  /**
   * Answers computed from each request (after the queue), e.g. a gateway that looks at
   * the key; undefined falls through to the default.
   */
  answerWith(decide: ((request: RecordedRequest) => FakeAnswer | undefined) | undefined): void;
  /**
   * Answer `broken` until a schema reload arrives, then `healthy` (200 by default),
   * like a PostgREST whose cache a reload fixes. `reload()` or a NOTIFY seen by
   * {@link listenForReload} counts as the reload.
   */
  brokenUntilReload(broken: FakeAnswer, healthy?: FakeAnswer): void;
  /** Marks the schema cache reloaded, as PostgREST does on `NOTIFY pgrst, 'reload schema'`. */
  reload(): void;
  /** How many reloads were honoured (PostgREST-style payloads only). */
  readonly reloads: number;
  /**
   * LISTENs on `pgrst` over `client` (a dedicated connection) and reloads on
   * `'reload schema'` or an empty payload, ignoring anything else, as PostgREST does.
   */
  listenForReload(client: pg.Client): Promise<void>;
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1 on a free port. */
export async function startFakePostgrest(initial: FakeAnswer = answers.ok()): Promise<FakePostgrest> {
  const requests: RecordedRequest[] = [];
  const notifications: string[] = [];
  const queue: FakeAnswer[] = [];
  const sockets = new Set<Socket>();
  let fallback = initial;
  let decider: ((request: RecordedRequest) => FakeAnswer | undefined) | undefined;
  let untilReload: { broken: FakeAnswer; healthy: FakeAnswer } | undefined;
  let reloaded = false;
  let reloads = 0;

  const respond = (res: ServerResponse, answer: FakeAnswer): void => {
    if (answer.hang) return;
    const send = (): void => {
      const body =
        answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      res.writeHead(answer.status, {
        'Content-Type': 'application/json; charset=utf-8',
        Server: 'postgrest/14.0 (fake)',
        ...answer.headers,
      });
      res.end(body);
    };
    if (answer.delayMs) setTimeout(send, answer.delayMs);
    else send();
  };

  const server: Server = createServer((req, res) => {
    const recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers };
    requests.push(recorded);
    req.resume();
    const next = queue.shift() ?? decider?.(recorded);
    if (next) return respond(res, next);
    if (untilReload) return respond(res, reloaded ? untilReload.healthy : untilReload.broken);
    respond(res, fallback);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const fake: FakePostgrest = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    notifications,
    enqueue: (...more) => void queue.push(...more),
    setDefault: (answer) => {
      fallback = answer;
      untilReload = undefined;
    },
    answerWith: (decide) => {
      decider = decide;
    },
    brokenUntilReload: (broken, healthy = answers.ok()) => {
      untilReload = { broken, healthy };
      reloaded = false;
    },
    reload: () => {
      reloads++;
      reloaded = true;
    },
    get reloads() {
      return reloads;
    },
    listenForReload: async (client) => {
      client.on('notification', (msg) => {
        if (msg.channel !== 'pgrst') return;
        const payload = msg.payload ?? '';
        notifications.push(payload);
        if (payload === '' || payload === 'reload schema') fake.reload();
      });
      await client.query('listen pgrst');
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return fake;
}
