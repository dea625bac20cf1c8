import pg from 'pg';

/** Shared by the global setup and the per-file helpers: admin connections and names. */

/** Runs `body` on a short-lived admin connection to `url`, always closing it. */
export async function withAdmin<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: url,
    application_name: 'sentinel-tests',
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The URL of database `db` on the same server, same credentials, as `serverUrl`. */
export function databaseUrl(serverUrl: string, db: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(db)}`;
  return url.toString();
}

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
