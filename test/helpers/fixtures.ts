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

/**
 * Hourly history for the anomaly detector, in one statement: for each source, each hour in [from, to)
 * gets 30 batches 08–18 UTC and 10 at night, plus 0–2 by week (so the weeks are not identical), 200 rows a
 * batch with 1 % rejected and 10 % skipped, each completed after 60–119 s. Deterministic.
 */
export async function insertHourlyHistory(
  db: Queryable,
  sources: readonly string[],
  from: Date,
  to: Date,
): Promise<void> {
  await db.query(
    `insert into intake.simplicity_batches
       (source, status, total_rows, inserted_rows, skipped_rows, error_rows, created_at, started_at, completed_at,
        updated_at)
     select s.source, 'completed', 200, 178, 20, 2, c.at, c.at + interval '5 s',
            c.at + interval '5 s' + make_interval(secs => 60 + (i * 37) % 60),
            c.at + interval '5 s' + make_interval(secs => 60 + (i * 37) % 60)
       from unnest($1::text[]) as s (source)
      cross join generate_series($2::timestamptz, $3::timestamptz - interval '1 hour', interval '1 hour') as h (hour)
      cross join lateral generate_series(
              1, (case when extract(hour from h.hour at time zone 'UTC') between 8 and 18 then 30 else 10 end)
                 + (extract(epoch from h.hour)::bigint / 604800) % 3) as i
      cross join lateral (select h.hour + make_interval(secs => (i * 97) % 3540) as at) c`,
    [[...sources], from.toISOString(), to.toISOString()],
  );
}

/** Deletes all but the first `keep` batches of `source` created in the hour starting at `hour`. */
export async function thinHour(db: Queryable, source: string, hour: Date, keep: number): Promise<void> {
  await db.query(
    `delete from intake.simplicity_batches b
      where b.source = $1 and b.created_at >= $2::timestamptz and b.created_at < $2::timestamptz + interval '1 hour'
        and b.id not in (select x.id from intake.simplicity_batches x
                          where x.source = $1 and x.created_at >= $2::timestamptz
                            and x.created_at < $2::timestamptz + interval '1 hour'
                          order by x.created_at limit $3)`,
    [source, hour.toISOString(), keep],
  );
}
