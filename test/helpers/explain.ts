import type pg from 'pg';
import type { Queryable } from '../../src/db/pool.js';

/**
 * The plans of the queries `body` sends through the Queryable it is handed: each
 * is EXPLAINed instead of run, one at a time in the order sent, on one connection
 * with sequential scans switched off (so a plan that still has one has no index to
 * use), inside a transaction that is rolled back. The queries get no rows back.
 */
export async function explainQueries(pool: pg.Pool, body: (db: Queryable) => Promise<unknown>): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('set local enable_seqscan = off');
    const plans: string[] = [];
    let queue: Promise<unknown> = Promise.resolve();
    const recorder = {
      query: (text: string, values?: unknown[]) => {
        const next = queue.then(async () => {
          const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain ${text}`, values);
          plans.push(rows.map((r) => r['QUERY PLAN']).join('\n'));
          return { rows: [], rowCount: 0, command: 'SELECT', oid: 0, fields: [] };
        });
        queue = next;
        return next;
      },
    };
    await body(recorder as unknown as Queryable);
    return plans;
  } finally {
    await client.query('rollback');
    client.release();
  }
}
