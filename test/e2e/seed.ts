/**
 * The dashboard's two states, seeded on the database's clock: used by the e2e tests
 * (test/e2e/dashboard.test.ts) and by `npm run bench:dashboard` (bench/dashboard.ts),
 * so both look at the same pages.
 */

/** Anything with pg's `query(text, values)`: a pool or a client. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

export type DashboardState = 'healthy' | 'incident';

/** A source with its own error threshold in the incident (config `sources.<name>`). */
export const OWN_THRESHOLD_SOURCE = 'vendor_x';
/** A 256-character source name: the page must wrap it, not widen. */
export const LONG_SOURCE = `feed_${'very_long_source_name_'.repeat(12)}`.slice(0, 256);
/** A 1 KB error message without spaces, with markup: shown as text and wrapped. */
export const HOSTILE_MESSAGE = [
  '<script>alert(1)</script>',
  'x'.repeat(400),
  '<img src=x onerror=alert(2)>',
  'Y'.repeat(560),
].join('');

/** A source with five weeks of hourly history: the "Unusual hours" card's default (the busiest). */
export const HISTORY_SOURCE = 'vendor_seasonal';
/** Hours before the current one of the history source's surge: the card's marked anomaly. */
export const SURGE_HOURS_AGO = 30;
/** Its batches in that hour (usually 8 to 40). */
export const SURGE_BATCHES = 150;

/**
 * Five weeks of {@link HISTORY_SOURCE} up to the last complete hour (the 7 days the card shows and
 * four training weeks): 40 batches an hour in UTC working hours, 14 at night, 60 % of that at
 * weekends, give or take 2 (a fixed pattern, no randomness), and one surge of
 * {@link SURGE_BATCHES} batches {@link SURGE_HOURS_AGO} hours ago. No row errors. The current hour
 * gets its usual batches up to now, without rows (so the rates the checks judge for the other sources
 * are as before): should the hour end between the seed and a run, the hour the live anomalies check
 * then judges is this one, complete or nearly (batches come at minutes 5 to 55), and usual too.
 */
export async function seedHistory(client: Queryable): Promise<void> {
  await client.query(
    `insert into intake.simplicity_batches
       (source, filename, status, total_rows, inserted_rows, skipped_rows, error_rows, parse_ms, db_ms,
        created_at, started_at, completed_at, updated_at)
     select $1, 'seasonal.csv', 'completed', r.total, r.total * 96 / 100, r.total * 4 / 100, 0, 200, 300,
            t, t + interval '1 min', t + interval '3 min', t + interval '3 min'
       from generate_series(0, 35 * 24) as h,
            lateral (select case when h = 0 then 0 else 100 end as total) r,
            lateral (select date_trunc('hour', now()) - make_interval(hours => h) as hs) a,
            lateral (select case when h = $2::int then $3::int
                                 else round((case when extract(hour from hs at time zone 'UTC') between 8 and 19
                                                  then 40 else 14 end)
                                            * (case when extract(isodow from hs at time zone 'UTC') in (6, 7)
                                                    then 0.6 else 1 end))::int + (h * 7) % 5 - 2
                            end as n) b,
            generate_series(1, b.n) as i,
            lateral (select hs + make_interval(mins => (i * 7) % 50 + 5) as t) c
      where c.t <= now()`,
    [HISTORY_SOURCE, SURGE_HOURS_AGO, SURGE_BATCHES],
  );
}

/**
 * Intake rows for a state, on the database's clock. Healthy: three sources with a
 * 1 % error rate over the last 24 hours, and {@link seedHistory}'s five weeks of a fourth.
 * Incident, on top: a batch stuck in `validating`, two sources driving an overall error spike in the current hour, a
 * source over its own threshold, a queue backlog in `uploaded`, and row errors with
 * long hostile messages.
 */
export async function seedDashboard(client: Queryable, state: DashboardState): Promise<void> {
  // 24 hours of normal traffic: one completed batch per source and hour, 1 % errors.
  await client.query(
    `insert into intake.simplicity_batches
       (source, filename, status, total_rows, inserted_rows, skipped_rows, error_rows, parse_ms, db_ms,
        created_at, started_at, completed_at, updated_at)
     select s.source, s.source || '-' || h || '.csv', 'completed', 200, 190, 8, 2, 300 + h * 7, 500 + h * 3,
            t, t + interval '1 min', t + interval '3 min', t + interval '3 min'
       from unnest(array['vendor_a', 'vendor_b', 'vendor_c']) as s(source),
            generate_series(1, 24) as h,
            lateral (select date_trunc('hour', now()) - make_interval(hours => h) + interval '10 min' as t) x`,
  );
  await client.query(
    `insert into intake.row_errors (batch_id, row_number, error_code, error_message, created_at)
     select b.id, g, case when g % 2 = 0 then 'E_DATE' else 'E_REQUIRED' end,
            case when g % 2 = 0 then 'invalid date "31/02/2025"' else 'missing required column "amount"' end,
            b.created_at + interval '2 min'
       from intake.simplicity_batches b, generate_series(1, 2) g`,
  );
  await seedHistory(client);
  if (state === 'healthy') return;

  // Now, in the current hour (at least one minute into it, never in the previous one).
  const recent = `greatest(date_trunc('hour', now()), now() - interval '1 min')`;
  const spike = [
    { source: 'vendor_a', total: 400, errors: 160 },
    { source: LONG_SOURCE, total: 300, errors: 90 },
    { source: 'vendor_b', total: 500, errors: 10 },
    { source: OWN_THRESHOLD_SOURCE, total: 200, errors: 80 },
  ];
  for (const s of spike) {
    await client.query(
      `insert into intake.simplicity_batches
         (source, filename, status, total_rows, inserted_rows, skipped_rows, error_rows, created_at, updated_at)
       values ($1, 'spike.csv', 'failed', $2::int, $2::int - $3::int, 0, $3::int, ${recent}, ${recent})`,
      [s.source, s.total, s.errors],
    );
  }
  // The long name three hours ago too: the "Unusual hours" picker lists it (a new feed, not judged yet).
  await client.query(
    `insert into intake.simplicity_batches
       (source, filename, status, total_rows, inserted_rows, skipped_rows, error_rows, created_at, started_at,
        completed_at, updated_at)
     select $1, 'early.csv', 'completed', 100, 100, 0, 0, t, t, t + interval '1 min', t + interval '1 min'
       from (select date_trunc('hour', now()) - interval '3 hours' + interval '10 min' as t) x`,
    [LONG_SOURCE],
  );
  // Stuck in validating for 35 minutes (no rows counted yet: it must not change the hour's rates).
  await client.query(
    `insert into intake.simplicity_batches (source, filename, status, created_at, started_at, updated_at)
     values ('vendor_b', 'stuck.csv', 'validating', now() - interval '50 min', now() - interval '45 min',
             now() - interval '35 min')`,
  );
  // A queue backlog: three uploads waiting for 45 to 55 minutes.
  await client.query(
    `insert into intake.simplicity_batches (source, filename, status, created_at, updated_at)
     select 'vendor_c', 'waiting-' || g || '.csv', 'uploaded', now() - make_interval(mins => 40 + g * 5),
            now() - make_interval(mins => 40 + g * 5)
       from generate_series(1, 3) g`,
  );
  // Long hostile messages on the spike's row errors.
  await client.query(
    `insert into intake.row_errors (batch_id, row_number, error_code, error_message, created_at)
     select b.id, g, 'E_HOSTILE_' || repeat('Z', 60), $1, now() - interval '30 s'
       from intake.simplicity_batches b, generate_series(1, 3) g
      where b.filename = 'spike.csv'`,
    [HOSTILE_MESSAGE],
  );
}

/** The incident's config file: one source judged on its own threshold. */
export const INCIDENT_CONFIG = `sources:\n  ${OWN_THRESHOLD_SOURCE}:\n    error_spike_threshold_pct: 25\n`;
