import { ratePct } from '../checks/error_spike.js';
import type { Queryable } from '../db/pool.js';
import { createdSince, utcHour } from '../db/sql.js';
import type { RunRecord } from '../history/record.js';
import { round } from '../util/format.js';

/**
 * The guide's four SLOs ("Metrics & SLOs") over a window ending now, from the
 * intake tables (processing time, hourly error rate, dedupe rate) and from the run
 * history (schema-cache availability). Formulas: {@link FORMULAS}.
 */

export type SloName = 'processing_time' | 'error_rate' | 'schema_cache' | 'dedupe_rate';

/** One SLO's figures. Everything is null when the window holds no data for it. */
export interface SloResult {
  name: SloName;
  /** The SLI in percent (see FORMULAS), 2 decimals. */
  value: number | null;
  unit: '%';
  /** The objective, as people say it. */
  target: string;
  /** null when there is no data to judge. */
  met: boolean | null;
  /**
   * 100 × (1 − bad share / allowed bad share); negative once the budget is overspent. null without a budget or data.
   */
  error_budget_remaining_pct: number | null;
  /**
   * Recent bad share / allowed bad share: 1 spends the budget exactly by the window's end. null without a budget or
   * recent data.
   */
  burn_rate: number | null;
  detail: Record<string, unknown>;
}

export interface SloReport {
  /** ISO 8601 UTC bounds of the window (database clock). */
  from: string;
  to: string;
  days: number;
  environment: string;
  slos: SloResult[];
  /** True when every SLO with data is met. */
  all_met: boolean;
}

export interface SloInputs {
  db: Queryable;
  /** The database's clock. */
  now: Date;
  days: number;
  environment: string;
  /** Hours with fewer rows are not judged (checks.error_spike.min_rows). */
  minRows: number;
  /** The error_spike alert threshold, for counting hours above it. */
  alertThresholdPct: number;
  /** Runs recorded in the window (the history store's read). */
  runs: RunRecord[];
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** The objectives, from the guide's table. */
export const OBJECTIVES = {
  /** Seconds a batch may take from started_at to completed_at. */
  processingSeconds: 300,
  /** Share of batches allowed to take longer. */
  processingBadShare: 0.05,
  /** An hour is good when its error rate is below this. */
  hourlyErrorPct: 5,
  /** Share of judged hours allowed to be bad. */
  errorBadHourShare: 0.01,
  /** Share of schema-cache probes allowed to fail. */
  schemaCacheFailShare: 0.001,
  dedupeLowPct: 10,
  dedupeHighPct: 30,
  dedupeInvestigatePct: 50,
  /** The error-rate burn rate looks at this many most recent hour buckets. */
  burnHours: 6,
} as const;

/** One line per SLO, printed under the table and in docs/slo.md. */
export const FORMULAS: Record<SloName, string> = {
  processing_time:
    'processing_time: value = share of batches completed in the window (completed_at in it, started_at set) with ' +
    'completed_at - started_at <= 5m; met at >= 95%; budget left = 100 x (1 - slow share / 5%); burn = slow ' +
    'share of the last hour / 5%',
  error_rate:
    'error_rate: value = share of UTC hours (created_at in the window, at least min_rows rows) whose error rate ' +
    '100 x error_rows / total_rows is < 5%; met at >= 99%; budget left = 100 x (1 - bad-hour share / 1%); burn ' +
    '= bad-hour share of the last 6 hours / 1%',
  schema_cache:
    'schema_cache: value = share of recorded schema-cache probes in the window that found PostgREST healthy (a ' +
    'probe that needed a reload counts as failed); met at >= 99.9%; budget left = 100 x (1 - failed share / ' +
    '0.1%); burn = failed share of the last hour / 0.1%',
  dedupe_rate:
    'dedupe_rate: value = 100 x skipped_rows / total_rows of the batches created in the window; met when 10% <= ' +
    'value <= 30%; no error budget; hours above 50% are counted for investigation',
};

export async function computeSlos(inputs: SloInputs): Promise<SloReport> {
  const from = new Date(inputs.now.getTime() - inputs.days * DAY_MS);
  const [processing, hours] = await Promise.all([
    queryProcessing(inputs.db, from, inputs.now),
    queryHours(inputs.db, from, inputs.now),
  ]);
  const slos = [
    processingSlo(processing),
    errorRateSlo(hours, inputs),
    schemaCacheSlo(inputs.runs, inputs.now),
    dedupeSlo(hours, inputs.minRows),
  ];
  return {
    from: from.toISOString(),
    to: inputs.now.toISOString(),
    days: inputs.days,
    environment: inputs.environment,
    slos,
    all_met: slos.every((s) => s.met !== false),
  };
}

/** 100 × (1 − bad / allowed), 2 decimals. */
function budgetLeft(badShare: number, allowed: number): number {
  return round(100 * (1 - badShare / allowed), 2);
}

function burn(badShare: number | null, allowed: number): number | null {
  return badShare === null ? null : round(badShare / allowed, 2);
}

const share = (part: number, total: number): number | null => (total > 0 ? part / total : null);
const pct = (part: number, total: number): number | null => (total > 0 ? round((100 * part) / total, 2) : null);

interface ProcessingRow {
  total: number;
  slow: number;
  total_last_hour: number;
  slow_last_hour: number;
  p50_minutes: number | null;
  p95_minutes: number | null;
  max_minutes: number | null;
}

/**
 * Batches completed in the window. completed_at has no index, so the scan is
 * bounded by created_at through the UTC-hour index: a batch completed in the window
 * was created at most a day before it starts (as in the pipeline snapshot).
 */
async function queryProcessing(db: Queryable, from: Date, now: Date): Promise<ProcessingRow> {
  const { rows } = await db.query<ProcessingRow>(
    `with done as (
       select extract(epoch from completed_at - started_at)::float8 as seconds, completed_at
         from intake.simplicity_batches
        where ${createdSince("$1::timestamptz - interval '24 hours'")}
          and status = 'completed' and started_at is not null
          and completed_at >= $1::timestamptz and completed_at <= $2::timestamptz
     )
     select count(*)::int as total,
            count(*) filter (where seconds > $3)::int as slow,
            count(*) filter (where completed_at > $2::timestamptz - interval '1 hour')::int as total_last_hour,
            count(*) filter (where completed_at > $2::timestamptz - interval '1 hour'
                               and seconds > $3)::int as slow_last_hour,
            (percentile_cont(0.5) within group (order by seconds) / 60)::float8 as p50_minutes,
            (percentile_cont(0.95) within group (order by seconds) / 60)::float8 as p95_minutes,
            (max(seconds) / 60)::float8 as max_minutes
       from done`,
    [from.toISOString(), now.toISOString(), OBJECTIVES.processingSeconds],
  );
  return rows[0]!;
}

function processingSlo(r: ProcessingRow): SloResult {
  const allowed = OBJECTIVES.processingBadShare;
  const slowShare = share(r.slow, r.total);
  const minutes = (m: number | null): number | null => (m === null ? null : round(m, 2));
  return {
    name: 'processing_time',
    value: pct(r.total - r.slow, r.total),
    unit: '%',
    target: '>= 95% of batches within 5m (p95 < 5m)',
    met: slowShare === null ? null : slowShare <= allowed,
    error_budget_remaining_pct: slowShare === null ? null : budgetLeft(slowShare, allowed),
    burn_rate: burn(share(r.slow_last_hour, r.total_last_hour), allowed),
    detail: {
      batches: r.total,
      slow_batches: r.slow,
      p50_minutes: minutes(r.p50_minutes),
      p95_minutes: minutes(r.p95_minutes),
      max_minutes: minutes(r.max_minutes),
      batches_last_hour: r.total_last_hour,
      slow_batches_last_hour: r.slow_last_hour,
    },
  };
}

interface HourRow {
  hour: Date;
  total_rows: number;
  error_rows: number;
  skipped_rows: number;
}

/** Row sums per UTC hour of created_at in the window, through the hour index. */
async function queryHours(db: Queryable, from: Date, now: Date): Promise<HourRow[]> {
  const { rows } = await db.query<HourRow>(
    `select ${utcHour('created_at')} as hour,
            coalesce(sum(total_rows), 0)::float8 as total_rows,
            coalesce(sum(error_rows), 0)::float8 as error_rows,
            coalesce(sum(skipped_rows), 0)::float8 as skipped_rows
       from intake.simplicity_batches
      where ${utcHour('created_at')} >= ${utcHour('$1::timestamptz')}
        and ${utcHour('created_at')} <= ${utcHour('$2::timestamptz')}
        and created_at >= $1::timestamptz and created_at <= $2::timestamptz
      group by 1
      order by 1`,
    [from.toISOString(), now.toISOString()],
  );
  return rows;
}

function errorRateSlo(hours: HourRow[], inputs: SloInputs): SloResult {
  const allowed = OBJECTIVES.errorBadHourShare;
  const judged = hours.filter((h) => h.total_rows >= inputs.minRows);
  // The hour's error_rate_pct exactly as ops.v_batch_performance shows it.
  const isBad = (h: HourRow): boolean => ratePct(h.error_rows, h.total_rows) >= OBJECTIVES.hourlyErrorPct;
  const bad = judged.filter(isBad).length;
  const badShare = share(bad, judged.length);
  const recentFrom = Math.floor(inputs.now.getTime() / HOUR_MS) * HOUR_MS - (OBJECTIVES.burnHours - 1) * HOUR_MS;
  const recent = judged.filter((h) => h.hour.getTime() >= recentFrom);
  const total = hours.reduce((n, h) => n + h.total_rows, 0);
  const errors = hours.reduce((n, h) => n + h.error_rows, 0);
  return {
    name: 'error_rate',
    value: pct(judged.length - bad, judged.length),
    unit: '%',
    target: '>= 99% of hours < 5% errors',
    met: badShare === null ? null : badShare <= allowed,
    error_budget_remaining_pct: badShare === null ? null : budgetLeft(badShare, allowed),
    burn_rate: burn(share(recent.filter(isBad).length, recent.length), allowed),
    detail: {
      hours_judged: judged.length,
      bad_hours: bad,
      hours_below_min_rows: hours.length - judged.length,
      min_rows: inputs.minRows,
      overall_error_rate_pct: total > 0 ? ratePct(errors, total) : null,
      alert_threshold_pct: inputs.alertThresholdPct,
      hours_above_alert_threshold: judged.filter((h) => ratePct(h.error_rows, h.total_rows) > inputs.alertThresholdPct)
        .length,
      total_rows: total,
      error_rows: errors,
    },
  };
}

function schemaCacheSlo(runs: RunRecord[], now: Date): SloResult {
  const allowed = OBJECTIVES.schemaCacheFailShare;
  const probes = runs.filter((r) => r.schema_cache?.probed);
  const failed = probes.filter((r) => r.schema_cache.ok !== true);
  const failedShare = share(failed.length, probes.length);
  const lastHour = probes.filter((r) => Date.parse(r.timestamp) > now.getTime() - HOUR_MS);
  const codes: Record<string, number> = {};
  for (const r of failed) {
    const code = r.schema_cache.code ?? 'unknown';
    codes[code] = (codes[code] ?? 0) + 1;
  }
  return {
    name: 'schema_cache',
    value: pct(probes.length - failed.length, probes.length),
    unit: '%',
    target: '>= 99.9% of probes ok',
    met: failedShare === null ? null : failedShare <= allowed,
    error_budget_remaining_pct: failedShare === null ? null : budgetLeft(failedShare, allowed),
    burn_rate: burn(share(lastHour.filter((r) => r.schema_cache.ok !== true).length, lastHour.length), allowed),
    detail: {
      runs: runs.length,
      probes: probes.length,
      failed_probes: failed.length,
      failures_by_code: codes,
      probes_last_hour: lastHour.length,
      ...(probes.length === 0
        ? { note: runs.length === 0 ? 'no runs recorded' : 'no probes recorded (PostgREST not configured?)' }
        : {}),
    },
  };
}

function dedupeSlo(hours: HourRow[], minRows: number): SloResult {
  const total = hours.reduce((n, h) => n + h.total_rows, 0);
  const skipped = hours.reduce((n, h) => n + h.skipped_rows, 0);
  const value = total > 0 ? ratePct(skipped, total) : null;
  const judged = hours.filter((h) => h.total_rows >= minRows);
  const high = judged.filter((h) => ratePct(h.skipped_rows, h.total_rows) > OBJECTIVES.dedupeInvestigatePct).length;
  return {
    name: 'dedupe_rate',
    value,
    unit: '%',
    target: '10-30% (investigate > 50%)',
    met: value === null ? null : value >= OBJECTIVES.dedupeLowPct && value <= OBJECTIVES.dedupeHighPct,
    error_budget_remaining_pct: null,
    burn_rate: null,
    detail: {
      total_rows: total,
      skipped_rows: skipped,
      hours_judged: judged.length,
      hours_above_investigate: high,
      hours_above_investigate_pct: pct(high, judged.length),
      investigate_pct: OBJECTIVES.dedupeInvestigatePct,
    },
  };
}
