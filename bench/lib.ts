import { join } from 'node:path';
import pg from 'pg';
import { quantile, REPO_ROOT } from './lib-proc.js';

/** A path inside the repository, from its root. */
export function repoPath(relative: string): string {
  return join(REPO_ROOT, relative);
}

// ---------------------------------------------------------------------------
// Statistics

/**
 * Median, p95 and minimum of timed repetitions, in milliseconds. Quantiles interpolate
 * between closest ranks, as the process and API figures of bench/lib-proc.ts do.
 */
export interface Stats {
  medianMs: number;
  p95Ms: number;
  minMs: number;
  reps: number;
}

export function stats(samplesMs: number[]): Stats {
  if (samplesMs.length === 0) throw new Error('no samples');
  return {
    medianMs: round3(quantile(samplesMs, 0.5)),
    p95Ms: round3(quantile(samplesMs, 0.95)),
    minMs: round3(Math.min(...samplesMs)),
    reps: samplesMs.length,
  };
}

export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** Runs `fn` and returns its result with the wall time it took, in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

// ---------------------------------------------------------------------------
// Formatting

/** `1.23`, `12.3`, `1234`: three significant figures or more, never exponent notation. */
export function fmtMs(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

export function fmtRatio(ratio: number): string {
  return ratio >= 100 ? `${ratio.toFixed(0)}x` : ratio >= 10 ? `${ratio.toFixed(1)}x` : `${ratio.toFixed(2)}x`;
}

/** Plain-text table with aligned columns; numbers are expected as already formatted strings. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

// ---------------------------------------------------------------------------
// Databases

/** `url` with its database name replaced. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Runs `body` with a connected client and closes it afterwards. */
export async function withClient<T>(
  url: string,
  body: (client: pg.Client) => Promise<T>,
  config: pg.ClientConfig = {},
): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'sentinel-bench', ...config });
  client.on('error', () => {
    /* a failing query rejects as well; that is where it is reported */
  });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, (c) => c.query(`drop database if exists ${quoteIdent(name)} with (force)`));
}

export async function createDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, (c) => c.query(`create database ${quoteIdent(name)}`));
}

/** The database's comment (where the bench records what data it holds), or undefined when it does not exist. */
export async function databaseComment(adminUrl: string, name: string): Promise<string | null | undefined> {
  return withClient(adminUrl, async (c) => {
    const { rows } = await c.query<{ comment: string | null }>(
      `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
      [name],
    );
    return rows.length === 0 ? undefined : rows[0]!.comment;
  });
}

export async function setDatabaseComment(adminUrl: string, name: string, comment: string): Promise<void> {
  const literal = `'${comment.replaceAll("'", "''")}'`;
  await withClient(adminUrl, (c) => c.query(`comment on database ${quoteIdent(name)} is ${literal}`));
}
