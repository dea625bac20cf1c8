/**
 * Concise fixtures for the intake tables (docs/contract.md §1). Timestamps are explicit
 * wherever a test depends on them; pass Dates or ISO strings with an offset
 * (`'2025-01-04T10:15:00Z'`).
 *
 * ```ts
 * const id = await insertBatch(db.pool, { status: 'processing', updated_at: minutesAgo(15) });
 * await insertRowErrors(db.pool, id, [{ error_code: 'E_DATE', created_at: '2025-01-04T10:20:00Z' }]);
 * ```
 */
import type { Queryable } from '../../src/db/pool.js';

export type BatchStatus = 'uploaded' | 'processing' | 'validating' | 'inserting' | 'completed' | 'failed';

export const IN_FLIGHT_STATUSES = ['uploaded', 'processing', 'validating', 'inserting'] as const;
export const PROCESSING_STATUSES = ['processing', 'validating', 'inserting'] as const;

type Time = Date | string;

export interface BatchFixture {
  /** Default `vendor_a`. */
  source?: string;
  filename?: string | null;
  /** Default `completed`. */
  status?: BatchStatus;
  total_rows?: number;
  inserted_rows?: number;
  skipped_rows?: number;
  error_rows?: number;
  parse_ms?: number | null;
  db_ms?: number | null;
  error_threshold_percent?: number;
  rejection_reason?: string | null;
  /** Default now() (the database's). */
  created_at?: Time;
  started_at?: Time | null;
  completed_at?: Time | null;
  /**
   * Last status change. Default: the latest of completed_at, started_at and
   * created_at that is given, else now(), which is what the engine would have left.
   */
  updated_at?: Time;
}

const BATCH_COLUMNS = [
  'source',
  'filename',
  'status',
  'total_rows',
  'inserted_rows',
  'skipped_rows',
  'error_rows',
  'parse_ms',
  'db_ms',
  'error_threshold_percent',
  'rejection_reason',
  'created_at',
  'started_at',
  'completed_at',
  'updated_at',
] as const satisfies readonly (keyof BatchFixture)[];

/** Inserts one batch and returns its id. Unset columns take the table's defaults. */
export async function insertBatch(db: Queryable, batch: BatchFixture = {}): Promise<string> {
  const values: BatchFixture = {
    source: 'vendor_a',
    status: 'completed',
    ...batch,
  };
  values.updated_at ??= batch.completed_at ?? batch.started_at ?? batch.created_at ?? undefined;

  const columns: string[] = [];
  const params: unknown[] = [];
  for (const column of BATCH_COLUMNS) {
    const value = values[column];
    if (value === undefined) continue;
    columns.push(column);
    params.push(value);
  }
  const placeholders = params.map((_, i) => `$${i + 1}`).join(', ');
  const { rows } = await db.query<{ id: string }>(
    `insert into intake.simplicity_batches (${columns.join(', ')}) values (${placeholders}) returning id`,
    params,
  );
  const id = rows[0]?.id;
  if (!id) throw new Error('insertBatch: no id returned');
  return id;
}

/** Inserts several batches in order; returns their ids in the same order. */
export async function insertBatches(db: Queryable, batches: BatchFixture[]): Promise<string[]> {
  const ids: string[] = [];
  for (const b of batches) ids.push(await insertBatch(db, b));
  return ids;
}

export interface RowErrorFixture {
  error_code: string;
  error_message?: string | null;
  /** Default now() (the database's). */
  created_at?: Time;
  row_number?: number | null;
}

/** Inserts row errors for one batch, in order (ids ascend in array order); returns their ids. */
export async function insertRowErrors(db: Queryable, batchId: string, errors: RowErrorFixture[]): Promise<number[]> {
  if (errors.length === 0) return [];
  const params: unknown[] = [];
  const tuples = errors.map((e) => {
    params.push(batchId, e.row_number ?? null, e.error_code, e.error_message ?? null, e.created_at ?? null);
    const n = params.length;
    return `($${n - 4}::uuid, $${n - 3}::int, $${n - 2}, $${n - 1}, coalesce($${n}::timestamptz, now()))`;
  });
  const { rows } = await db.query<{ id: string | number }>(
    `insert into intake.row_errors (batch_id, row_number, error_code, error_message, created_at)
     values ${tuples.join(', ')} returning id`,
    params,
  );
  return rows.map((r) => Number(r.id));
}

/** A time `minutes` before `from` (default: now), for ages relative to the database's clock. */
export function minutesAgo(minutes: number, from: Date = new Date()): Date {
  return new Date(from.getTime() - minutes * 60_000);
}
