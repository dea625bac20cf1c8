import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/pool.js';
import { mulberry32 } from '../util/random.js';

/**
 * A few hours of Dragonfly ingestion with the incidents Sentinel exists to catch:
 * batches stuck in processing, one source's error spike, a healthy source, and
 * work waiting in the queue. Deterministic for a given `now` (a fixed-seed PRNG),
 * so the demo tells the same story every time.
 */

const MINUTE = 60_000;

interface BatchRow {
  id: string;
  source: string;
  filename: string;
  status: string;
  total_rows: number;
  inserted_rows: number;
  skipped_rows: number;
  error_rows: number;
  parse_ms: number | null;
  db_ms: number | null;
  error_threshold_percent: number;
  rejection_reason: string | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  updated_at: string;
}

interface RowErrorRow {
  batch_id: string;
  row_number: number;
  error_code: string;
  error_message: string;
  created_at: string;
}

export interface SimulationSummary {
  batches: number;
  /** Batches of the feed with weeks of history (the anomalies check's baseline). */
  historyBatches: number;
  rowErrors: number;
  stuck: number;
  sources: string[];
}

const ERROR_CODES: Array<[code: string, message: string, weight: number]> = [
  ['INVALID_DATE', 'Column "invoice_date" value "31/02/2025" is not a valid date', 8],
  ['MISSING_FIELD', 'Required field "account_id" is empty', 5],
  ['BAD_AMOUNT', 'Column "amount" value "12,5O" is not a number', 3],
  ['UNKNOWN_CURRENCY', 'Currency "XXX" is not in ISO 4217', 1],
];

export async function simulateIngestion(db: Queryable, now: Date): Promise<SimulationSummary> {
  const rand = mulberry32(20250104);
  const at = (minutesAgo: number): string => new Date(now.getTime() - minutesAgo * MINUTE).toISOString();
  const batches: BatchRow[] = [];
  const rowErrors: RowErrorRow[] = [];

  const finished = (source: string, minutesAgo: number, rows: number, errorPct: number, dupePct: number): void => {
    const errors = Math.round((rows * errorPct) / 100);
    const skipped = Math.round((rows * dupePct) / 100);
    const parse = Math.round(800 + rand() * 2500);
    const dbMs = Math.round(1500 + rand() * 6000);
    const failed = errorPct > 50;
    const id = randomUUID();
    batches.push({
      id,
      source,
      filename: `${source}_${at(minutesAgo).slice(0, 16).replace(/[-:T]/g, '')}.csv`,
      status: failed ? 'failed' : 'completed',
      total_rows: rows,
      inserted_rows: failed ? 0 : rows - errors - skipped,
      skipped_rows: skipped,
      error_rows: errors,
      parse_ms: parse,
      db_ms: dbMs,
      error_threshold_percent: 10,
      rejection_reason: failed ? `Error rate ${errorPct}% above the batch threshold` : null,
      created_at: at(minutesAgo),
      started_at: at(minutesAgo - 0.2),
      completed_at: at(minutesAgo - 0.2 - (parse + dbMs) / MINUTE),
      updated_at: at(minutesAgo - 0.2 - (parse + dbMs) / MINUTE),
    });
    // A sample of the rejected rows, as the engine records them.
    for (let i = 0; i < Math.min(errors, 25); i++) {
      const [code, message] = pickWeighted(rand);
      rowErrors.push({
        batch_id: id,
        row_number: 1 + Math.floor(rand() * rows),
        error_code: code,
        error_message: message,
        created_at: at(minutesAgo - 0.1),
      });
    }
  };

  const inFlight = (
    source: string,
    status: string,
    createdMinutesAgo: number,
    updatedMinutesAgo: number,
    rows: number,
  ): void => {
    batches.push({
      id: randomUUID(),
      source,
      filename: `${source}_inflight_${batches.length}.csv`,
      status,
      total_rows: rows,
      inserted_rows: 0,
      skipped_rows: 0,
      error_rows: 0,
      parse_ms: status === 'uploaded' ? null : 1200,
      db_ms: null,
      error_threshold_percent: 10,
      rejection_reason: null,
      created_at: at(createdMinutesAgo),
      started_at: status === 'uploaded' ? null : at(createdMinutesAgo - 0.5),
      completed_at: null,
      updated_at: at(updatedMinutesAgo),
    });
  };

  // Six hours of history, a file every 10-15 minutes per source.
  for (let m = 360; m >= 2; m -= 10) {
    // vendor_a: the healthy feed (1-3% errors, 10-30% duplicates: the guide's normal range).
    finished('vendor_a', m + rand() * 3, 800 + Math.round(rand() * 400), 1 + rand() * 2, 10 + rand() * 20);
    // vendor_b: healthy too, smaller files.
    if (m % 20 === 0) finished('vendor_b', m + rand() * 3, 300 + Math.round(rand() * 200), 2 + rand() * 2, 15);
    // vendor_x: fine until 90 minutes ago, then a bad export starts failing a third of its rows.
    if (m % 15 < 10) finished('vendor_x', m + rand() * 2, 500, m <= 90 ? 28 + rand() * 6 : 4 + rand() * 3, 12);
  }

  // Stuck: workers died holding these (the guide's example: processing(2), validating(1)).
  inFlight('vendor_b', 'processing', 40, 25, 450);
  inFlight('vendor_a', 'processing', 22, 15.3, 1100);
  inFlight('vendor_a', 'validating', 20, 12.7, 950);
  // Moving normally.
  inFlight('vendor_a', 'inserting', 4, 1, 1000);
  inFlight('vendor_b', 'uploaded', 1, 1, 400);

  await db.query(
    `insert into intake.simplicity_batches
       select * from json_populate_recordset(null::intake.simplicity_batches, $1::json)`,
    [JSON.stringify(batches)],
  );
  await db.query(
    `insert into intake.row_errors (batch_id, row_number, error_code, error_message, created_at)
       select batch_id, row_number, error_code, error_message, created_at
         from json_populate_recordset(null::intake.row_errors, $1::json)`,
    [JSON.stringify(rowErrors)],
  );
  const historyBatches = await simulateHistory(db, now);
  return {
    batches: batches.length,
    historyBatches,
    rowErrors: rowErrors.length,
    stuck: 3,
    sources: ['vendor_a', 'vendor_b', 'vendor_x', HISTORY_SOURCE],
  };
}

/** The feed with four weeks of history, silent since the last complete hour began. */
export const HISTORY_SOURCE = 'vendor_c';

/**
 * Four weeks of `vendor_c`, 18–22 batches every hour of every day (1–2 % rejected, 15 % duplicates,
 * about a minute each), up to the start of the last complete UTC hour, then nothing: the anomalies
 * check finds that hour far below vendor_c's own band for it. One statement; deterministic for `now`.
 */
async function simulateHistory(db: Queryable, now: Date): Promise<number> {
  const { rowCount } = await db.query(
    `insert into intake.simplicity_batches
       (source, filename, status, total_rows, inserted_rows, skipped_rows, error_rows, parse_ms, db_ms,
        error_threshold_percent, created_at, started_at, completed_at, updated_at)
     select $1, $1 || '_' || to_char(c.at at time zone 'UTC', 'YYYYMMDDHH24MISS') || '.csv', 'completed',
            400, 400 - 60 - e.errors, 60, e.errors, 900, 1800 + (i * 131) % 2000, 10,
            c.at, c.at + interval '10 s', c.at + interval '10 s' + make_interval(secs => 50 + (i * 37) % 40),
            c.at + interval '10 s' + make_interval(secs => 50 + (i * 37) % 40)
       from generate_series(date_trunc('hour', $2::timestamptz) - interval '4 weeks 1 hour',
                            date_trunc('hour', $2::timestamptz) - interval '2 hours', interval '1 hour') as h (hour)
      cross join lateral generate_series(1, 18 + (extract(epoch from h.hour)::bigint / 3600 * 7919) % 5) as i
      cross join lateral (select h.hour + make_interval(secs => (i * 173) % 3500) as at) c
      cross join lateral (select 4 + (i * 13) % 5 as errors) e`,
    [HISTORY_SOURCE, now.toISOString()],
  );
  return rowCount ?? 0;
}

function pickWeighted(rand: () => number): [string, string] {
  const total = ERROR_CODES.reduce((n, [, , w]) => n + w, 0);
  let r = rand() * total;
  for (const [code, message, weight] of ERROR_CODES) {
    r -= weight;
    if (r < 0) return [code, message];
  }
  const [code, message] = ERROR_CODES[0]!;
  return [code, message];
}
