import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the one route of Supabase's API gateway that supabase-js's
 * database calls use: `createClient(url, key)` sends every query to
 * `<url>/rest/v1/<relation>`, and on Supabase the gateway forwards `/rest/v1/*`
 * to PostgREST with the prefix removed. This forwards exactly that to a bare
 * PostgREST (method, path after the prefix, query, headers and body unchanged)
 * and answers 404 for anything else, so a test would see supabase-js reaching
 * for another service (auth, realtime, storage). It checks no keys: PostgREST
 * itself verifies the JWT, as it does behind Supabase's gateway.
 */
export interface RestGateway {
  /** The URL to give `createClient` in place of a project URL. */
  url: string;
  /** Path and query of every request received, in order. */
  paths: string[];
  close(): Promise<void>;
}

export async function startRestGateway(postgrestUrl: string): Promise<RestGateway> {
  const target = new URL(postgrestUrl);
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    paths.push(path);
    if (!path.startsWith('/rest/v1/')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `no route for ${path}` }));
      return;
    }
    const headers = { ...req.headers, host: target.host };
    const upstream = http.request(
      {
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: path.slice('/rest/v1'.length),
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `PostgREST unreachable: ${err.message}` }));
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    paths,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
