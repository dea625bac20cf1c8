/**
 * The ops views (docs/contract.md §2) and the intake trigger, against hand-computed fixtures.
 *
 * Every test runs in a transaction that is rolled back, so each sees only its own
 * fixtures, and now() is one fixed instant for fixtures and views alike. Numeric
 * columns are read as text: that pins the rounding ("4.10", not 4.1) and does not
 * depend on which pg type parsers another module installed.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { insertBatch, insertRowErrors } from '../helpers/fixtures.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

async function rolledBack<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    return await body(client);
  } finally {
    await client.query('rollback');
    client.release();
  }
}

async function txNow(client: pg.PoolClient): Promise<Date> {
  const { rows } = await client.query<{ now: Date }>('select now() as now');
  return rows[0]!.now;
}

const minutesBefore = (t: Date, minutes: number): Date => new Date(t.getTime() - minutes * 60_000);

describe('view columns', () => {
  it.each([
    [
      'ops.v_batch_performance',
      [
        ['hour_bucket', 'timestamp with time zone'],
        ['total_batches', 'bigint'],
        ['completed_batches', 'bigint'],
        ['failed_batches', 'bigint'],
        ['avg_parse_ms', 'numeric'],
        ['avg_db_ms', 'numeric'],
        ['avg_total_ms', 'numeric'],
        ['total_rows', 'bigint'],
        ['inserted_rows', 'bigint'],
        ['skipped_rows', 'bigint'],
        ['error_rows', 'bigint'],
        ['dedupe_rate_pct', 'numeric'],
        ['error_rate_pct', 'numeric'],
      ],
    ],
    [
      'ops.v_error_distribution',
      [
        ['error_code', 'text'],
        ['occurrence_count', 'bigint'],
        ['affected_batches', 'bigint'],
        ['sample_message', 'text'],
        ['last_seen_at', 'timestamp with time zone'],
      ],
    ],
    [
      'ops.v_pipeline_health',
      [
        ['status', 'text'],
        ['batch_count', 'bigint'],
        ['oldest_batch_at', 'timestamp with time zone'],
        ['oldest_age_minutes', 'numeric'],
        ['newest_batch_at', 'timestamp with time zone'],
      ],
    ],
  ])('%s has the contract columns, in order, with these types', async (view, expected) => {
    const [schema, name] = view.split('.');
    const { rows } = await db.pool.query<{ column_name: string; data_type: string }>(
      `select column_name, data_type from information_schema.columns
       where table_schema = $1 and table_name = $2 order by ordinal_position`,
      [schema, name],
    );
    expect(rows.map((r) => [r.column_name, r.data_type])).toEqual(expected);
  });

  it('every view and view column is documented with a comment', async () => {
    const { rows } = await db.pool.query<{ what: string }>(
      `select c.relname as what
       from pg_class c join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'ops'
       where c.relkind = 'v' and coalesce(obj_description(c.oid, 'pg_class'), '') = ''
       union all
       select c.relname || '.' || a.attname
       from pg_class c join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'ops'
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       where c.relkind = 'v' and coalesce(col_description(c.oid, a.attnum), '') = ''`,
    );
    expect(rows.map((r) => r.what)).toEqual([]);
  });

  it('every view is empty while the intake tables are', async () => {
    const { rows } = await db.pool.query<{ n: string }>(
      `select ((select count(*) from ops.v_batch_performance)
             + (select count(*) from ops.v_error_distribution)
             + (select count(*) from ops.v_pipeline_health))::text as n`,
    );
    expect(rows[0]?.n).toBe('0');
  });
});

describe('ops.v_batch_performance', () => {
  interface PerfRow {
    hour_bucket: string;
    total_batches: string;
    completed_batches: string;
    failed_batches: string;
    avg_parse_ms: string | null;
    avg_db_ms: string | null;
    avg_total_ms: string | null;
    total_rows: string;
    inserted_rows: string;
    skipped_rows: string;
    error_rows: string;
    dedupe_rate_pct: string | null;
    error_rate_pct: string | null;
  }

  async function performance(client: pg.PoolClient): Promise<PerfRow[]> {
    const { rows } = await client.query<Omit<PerfRow, 'hour_bucket'> & { hour_bucket: Date }>(
      `select hour_bucket,
              total_batches::text, completed_batches::text, failed_batches::text,
              avg_parse_ms::text, avg_db_ms::text, avg_total_ms::text,
              total_rows::text, inserted_rows::text, skipped_rows::text, error_rows::text,
              dedupe_rate_pct::text, error_rate_pct::text
       from ops.v_batch_performance order by hour_bucket`,
    );
    return rows.map((r) => ({ ...r, hour_bucket: r.hour_bucket.toISOString() }));
  }

  // Hand-computed expectations for the fixture below.
  //
  // 10:00Z: b1 + b2 + b3. b2 has no db_ms, b3 no timings at all.
  //   avg_parse (100, 50) = 75.0; avg_db (200) = 200.0; avg_total (b1 only: 300) = 300.0
  //   (counting b2's missing db_ms as 0 would give 175.0).
  //   rows 1000 + 200 + 0 = 1200; skipped 50 -> 4.1666 -> 4.17; errors 50 + 200 = 250 -> 20.8333 -> 20.83
  // 11:00Z: b4 + b6 + b7.
  //   avg_parse (10, 11, 11) = 10.666 -> 10.7; avg_db (11, 12) = 11.5; avg_total (21, 23) = 22.0
  //   rows 3; skipped 2 -> 66.666 -> 66.67; errors 1 -> 33.33
  // 12:00Z: b8 only, a batch with no rows: zero totals, null rates.
  // 13:00Z: nothing, so no row.
  // 14:00Z: b9, rows but no duplicates or errors: rates 0.00, not null.
  async function insertHourlyFixture(client: pg.PoolClient): Promise<void> {
    const base = { source: 'vendor_a' } as const;
    await insertBatch(client, {
      ...base,
      status: 'completed',
      created_at: '2025-01-04T10:00:00Z',
      total_rows: 1000,
      inserted_rows: 900,
      skipped_rows: 50,
      error_rows: 50,
      parse_ms: 100,
      db_ms: 200,
    }); // b1, first instant of the hour
    await insertBatch(client, {
      ...base,
      status: 'failed',
      created_at: '2025-01-04T10:59:59.999Z',
      total_rows: 200,
      error_rows: 200,
      parse_ms: 50,
      db_ms: null,
    }); // b2, last instant
    // b3
    await insertBatch(client, { ...base, status: 'processing', created_at: '2025-01-04T10:30:00Z', total_rows: 0 });
    await insertBatch(client, {
      ...base,
      status: 'completed',
      created_at: '2025-01-04T11:00:00Z',
      total_rows: 3,
      inserted_rows: 0,
      skipped_rows: 2,
      error_rows: 1,
      parse_ms: 10,
      db_ms: 11,
    }); // b4
    await insertBatch(client, {
      ...base,
      status: 'uploaded',
      created_at: '2025-01-04T11:10:00Z',
      parse_ms: 11,
      db_ms: 12,
    }); // b6
    await insertBatch(client, {
      ...base,
      status: 'validating',
      created_at: '2025-01-04T11:20:00Z',
      parse_ms: 11,
      db_ms: null,
    }); // b7
    await insertBatch(client, {
      ...base,
      status: 'completed',
      created_at: '2025-01-04T12:15:00Z',
      total_rows: 0,
      parse_ms: 5,
      db_ms: 5,
    }); // b8
    await insertBatch(client, {
      ...base,
      status: 'completed',
      created_at: '2025-01-04T14:45:00Z',
      total_rows: 10,
      inserted_rows: 10,
    }); // b9
  }

  const EXPECTED: PerfRow[] = [
    {
      hour_bucket: '2025-01-04T10:00:00.000Z',
      total_batches: '3',
      completed_batches: '1',
      failed_batches: '1',
      avg_parse_ms: '75.0',
      avg_db_ms: '200.0',
      avg_total_ms: '300.0',
      total_rows: '1200',
      inserted_rows: '900',
      skipped_rows: '50',
      error_rows: '250',
      dedupe_rate_pct: '4.17',
      error_rate_pct: '20.83',
    },
    {
      hour_bucket: '2025-01-04T11:00:00.000Z',
      total_batches: '3',
      completed_batches: '1',
      failed_batches: '0',
      avg_parse_ms: '10.7',
      avg_db_ms: '11.5',
      avg_total_ms: '22.0',
      total_rows: '3',
      inserted_rows: '0',
      skipped_rows: '2',
      error_rows: '1',
      dedupe_rate_pct: '66.67',
      error_rate_pct: '33.33',
    },
    {
      hour_bucket: '2025-01-04T12:00:00.000Z',
      total_batches: '1',
      completed_batches: '1',
      failed_batches: '0',
      avg_parse_ms: '5.0',
      avg_db_ms: '5.0',
      avg_total_ms: '10.0',
      total_rows: '0',
      inserted_rows: '0',
      skipped_rows: '0',
      error_rows: '0',
      dedupe_rate_pct: null,
      error_rate_pct: null,
    },
    {
      hour_bucket: '2025-01-04T14:00:00.000Z',
      total_batches: '1',
      completed_batches: '1',
      failed_batches: '0',
      avg_parse_ms: null,
      avg_db_ms: null,
      avg_total_ms: null,
      total_rows: '10',
      inserted_rows: '10',
      skipped_rows: '0',
      error_rows: '0',
      dedupe_rate_pct: '0.00',
      error_rate_pct: '0.00',
    },
  ];

  it(
    'rolls batches up per UTC hour: counts, averages that skip ' + 'unmeasured batches, sums and 2-decimal rates',
    async () => {
      const rows = await rolledBack(async (client) => {
        await insertHourlyFixture(client);
        return performance(client);
      });
      expect(rows).toEqual(EXPECTED);
    },
  );

  it('buckets by the UTC hour whatever the session time zone (a half-hour offset would split the hours)', async () => {
    const rows = await rolledBack(async (client) => {
      await client.query(`set local timezone = 'Asia/Kolkata'`);
      await insertHourlyFixture(client);
      return performance(client);
    });
    expect(rows).toEqual(EXPECTED);
  });

  it('gives null rates rather than a division by zero when an hour has only zero-row batches', async () => {
    const rows = await rolledBack(async (client) => {
      await insertBatch(client, { status: 'failed', created_at: '2025-01-04T08:05:00Z', total_rows: 0 });
      await insertBatch(client, { status: 'uploaded', created_at: '2025-01-04T08:55:00Z', total_rows: 0 });
      return performance(client);
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ hour_bucket: '2025-01-04T08:00:00.000Z', total_batches: '2', total_rows: '0' });
    expect(rows[0]?.dedupe_rate_pct).toBeNull();
    expect(rows[0]?.error_rate_pct).toBeNull();
  });
});

describe('ops.v_error_distribution', () => {
  it(
    'counts rows and distinct batches per code, samples the latest non-null message and reports when it was ' +
      'last seen',
    async () => {
      const rows = await rolledBack(async (client) => {
        const a = await insertBatch(client, { created_at: '2025-01-04T07:00:00Z' });
        const b = await insertBatch(client, { created_at: '2025-01-04T07:00:00Z' });
        const c = await insertBatch(client, { created_at: '2025-01-04T07:00:00Z' });
        // E_DATE: three rows over two batches; the last two share a timestamp, and the
        // later-inserted one (higher id) is the sample.
        await insertRowErrors(client, a, [
          { error_code: 'E_DATE', error_message: 'bad date 1', created_at: '2025-01-04T10:00:00Z', row_number: 1 },
          { error_code: 'E_DATE', error_message: 'bad date 2', created_at: '2025-01-04T10:05:00Z', row_number: 2 },
        ]);
        await insertRowErrors(client, b, [
          { error_code: 'E_DATE', error_message: 'bad date 3', created_at: '2025-01-04T10:05:00Z', row_number: 7 },
        ]);
        // E_REQUIRED: the latest row has no message; the sample is the latest that has one.
        await insertRowErrors(client, c, [
          { error_code: 'E_REQUIRED', error_message: 'missing field sku', created_at: '2025-01-04T11:00:00Z' },
          { error_code: 'E_REQUIRED', error_message: null, created_at: '2025-01-04T12:00:00Z' },
        ]);
        // E_OLD: inserted out of time order; recency is created_at, not insertion order.
        await insertRowErrors(client, a, [
          { error_code: 'E_OLD', error_message: 'newer', created_at: '2025-01-04T09:00:00Z' },
          { error_code: 'E_OLD', error_message: 'older', created_at: '2025-01-04T08:00:00Z' },
        ]);
        // E_SILENT: no message at all.
        await insertRowErrors(client, b, [{ error_code: 'E_SILENT', created_at: '2025-01-04T06:00:00Z' }]);

        const { rows } = await client.query<{
          error_code: string;
          occurrence_count: string;
          affected_batches: string;
          sample_message: string | null;
          last_seen_at: Date;
        }>(
          `select error_code, occurrence_count::text, affected_batches::text, sample_message, last_seen_at
         from ops.v_error_distribution order by error_code`,
        );
        return rows.map((r) => ({ ...r, last_seen_at: r.last_seen_at.toISOString() }));
      });

      expect(rows).toEqual([
        {
          error_code: 'E_DATE',
          occurrence_count: '3',
          affected_batches: '2',
          sample_message: 'bad date 3',
          last_seen_at: '2025-01-04T10:05:00.000Z',
        },
        {
          error_code: 'E_OLD',
          occurrence_count: '2',
          affected_batches: '1',
          sample_message: 'newer',
          last_seen_at: '2025-01-04T09:00:00.000Z',
        },
        {
          error_code: 'E_REQUIRED',
          occurrence_count: '2',
          affected_batches: '1',
          sample_message: 'missing field sku',
          last_seen_at: '2025-01-04T12:00:00.000Z',
        },
        {
          error_code: 'E_SILENT',
          occurrence_count: '1',
          affected_batches: '1',
          sample_message: null,
          last_seen_at: '2025-01-04T06:00:00.000Z',
        },
      ]);
    },
  );
});

describe('ops.v_pipeline_health', () => {
  it(
    'has one row per in-flight status with batches: count, oldest and newest updated_at, age in minutes to 1 ' +
      'decimal',
    async () => {
      const { now, rows } = await rolledBack(async (client) => {
        const now = await txNow(client);
        await insertBatch(client, {
          status: 'uploaded',
          created_at: minutesBefore(now, 40),
          updated_at: minutesBefore(now, 30),
        });
        await insertBatch(client, {
          status: 'uploaded',
          created_at: minutesBefore(now, 6),
          updated_at: minutesBefore(now, 5),
        });
        // 15.333 -> 15.3
        await insertBatch(client, { status: 'processing', updated_at: minutesBefore(now, 15 + 20 / 60) });
        await insertBatch(client, { status: 'processing', updated_at: minutesBefore(now, 12) });
        await insertBatch(client, { status: 'processing', updated_at: minutesBefore(now, 1) });
        // 12.666 -> 12.7
        await insertBatch(client, { status: 'validating', updated_at: minutesBefore(now, 12 + 40 / 60) });
        // Finished batches are not in flight, however old; nothing is inserting.
        await insertBatch(client, { status: 'completed', updated_at: minutesBefore(now, 600) });
        await insertBatch(client, { status: 'failed', updated_at: minutesBefore(now, 900) });

        const { rows } = await client.query<{
          status: string;
          batch_count: string;
          oldest_batch_at: Date;
          oldest_age_minutes: string;
          newest_batch_at: Date;
        }>(
          `select status, batch_count::text, oldest_batch_at, oldest_age_minutes::text, newest_batch_at
         from ops.v_pipeline_health
         order by array_position(array['uploaded', 'processing', 'validating', 'inserting'], status)`,
        );
        return { now, rows };
      });

      const at = (minutes: number): number => minutesBefore(now, minutes).getTime();
      expect(
        rows.map((r) => ({
          ...r,
          oldest_batch_at: r.oldest_batch_at.getTime(),
          newest_batch_at: r.newest_batch_at.getTime(),
        })),
      ).toEqual([
        {
          status: 'uploaded',
          batch_count: '2',
          oldest_batch_at: at(30),
          oldest_age_minutes: '30.0',
          newest_batch_at: at(5),
        },
        {
          status: 'processing',
          batch_count: '3',
          oldest_batch_at: at(15 + 20 / 60),
          oldest_age_minutes: '15.3',
          newest_batch_at: at(1),
        },
        {
          status: 'validating',
          batch_count: '1',
          oldest_batch_at: at(12 + 40 / 60),
          oldest_age_minutes: '12.7',
          newest_batch_at: at(12 + 40 / 60),
        },
      ]);
    },
  );

  it('is empty when only completed and failed batches exist', async () => {
    const rows = await rolledBack(async (client) => {
      const now = await txNow(client);
      await insertBatch(client, { status: 'completed', updated_at: minutesBefore(now, 60) });
      await insertBatch(client, { status: 'failed', updated_at: minutesBefore(now, 60) });
      return (await client.query('select * from ops.v_pipeline_health')).rows;
    });
    expect(rows).toEqual([]);
  });
});

describe('intake.simplicity_batches updated_at trigger', () => {
  const LONG_AGO = '2025-01-04T10:00:00.000Z';

  async function updatedAtAfter(client: pg.PoolClient, update: string): Promise<{ updated_at: string; now: string }> {
    const id = await insertBatch(client, { status: 'processing', created_at: LONG_AGO, updated_at: LONG_AGO });
    await client.query(`update intake.simplicity_batches set ${update} where id = $1`, [id]);
    const { rows } = await client.query<{ updated_at: Date; now: Date }>(
      'select updated_at, now() as now from intake.simplicity_batches where id = $1',
      [id],
    );
    return { updated_at: rows[0]!.updated_at.toISOString(), now: rows[0]!.now.toISOString() };
  }

  it('sets updated_at to now() when the status changes', async () => {
    const { updated_at, now } = await rolledBack((c) => updatedAtAfter(c, `status = 'validating'`));
    expect(updated_at).toBe(now);
    expect(updated_at).not.toBe(LONG_AGO);
  });

  it('leaves updated_at alone when other columns change', async () => {
    const { updated_at } = await rolledBack((c) => updatedAtAfter(c, `inserted_rows = 10, parse_ms = 5`));
    expect(updated_at).toBe(LONG_AGO);
  });

  it('leaves updated_at alone when the status is set to the value it already has', async () => {
    const { updated_at } = await rolledBack((c) => updatedAtAfter(c, `status = 'processing'`));
    expect(updated_at).toBe(LONG_AGO);
  });

  it('keeps an updated_at set explicitly, with or without a status change', async () => {
    const withStatus = await rolledBack((c) =>
      updatedAtAfter(c, `status = 'inserting', updated_at = '2025-01-04T11:00:00Z'`),
    );
    const withoutStatus = await rolledBack((c) => updatedAtAfter(c, `updated_at = '2025-01-04T12:00:00Z'`));
    expect(withStatus.updated_at).toBe('2025-01-04T11:00:00.000Z');
    expect(withoutStatus.updated_at).toBe('2025-01-04T12:00:00.000Z');
  });

  it('rejects a status outside the pipeline', async () => {
    await expect(rolledBack((c) => insertBatch(c, { status: 'exploded' as 'failed' }))).rejects.toThrow(
      /simplicity_batches_status_check/,
    );
  });
});
