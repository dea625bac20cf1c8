import { z } from 'zod';
import {
  anomalyDetails,
  anomalyMessage,
  type Cache,
  type DetectorOptions,
  HOUR_MS,
  judgeHour,
  METRICS,
  type Metric,
  type Verdict,
  viewOf,
} from '../anomalies/index.js';
import { floorHour } from '../anomalies/time.js';
import { loadSeries, trainingStart } from '../db/anomaly-series.js';
import { SQLSTATE } from '../db/errors.js';
import type { Alert } from '../types.js';
import { type CheckContext, type CheckOutput, checkSettings, defineCheck } from './types.js';

/** Most weeks of history a baseline may learn from: half a year keeps a live read to a few thousand rows a source. */
export const MAX_TRAINING_WEEKS = 26;
/** Widest band: beyond 50 normal-equivalent deviations the detector's scores are capped. */
export const MAX_SENSITIVITY = 50;

const metricList = z
  .array(z.enum(METRICS))
  .min(1, 'list at least one metric (or set enabled: false)')
  .refine((list) => new Set(list).size === list.length, 'lists a metric twice');
const trainingWeeks = z.int().min(1).max(MAX_TRAINING_WEEKS, `must be at most ${MAX_TRAINING_WEEKS} weeks`);
const sensitivity = z
  .number()
  .min(1, 'must be at least 1 (a band of one standard deviation already alerts one hour in three)')
  .max(MAX_SENSITIVITY, `must be at most ${MAX_SENSITIVITY}`);

const minNotAboveTraining = (s: { training_weeks?: number; min_training_weeks?: number }): boolean =>
  s.training_weeks === undefined || s.min_training_weeks === undefined || s.min_training_weeks <= s.training_weeks;
const MIN_ABOVE_TRAINING = {
  message: 'min_training_weeks must not exceed training_weeks',
  path: ['min_training_weeks'],
};

/** `checks.anomalies`. */
const settings = checkSettings(30, {
  metrics: metricList.default([...METRICS]).describe(`which metrics to judge: ${METRICS.join(', ')}`),
  training_weeks: trainingWeeks.default(4).describe('weeks of the same hour of the week the baseline learns from'),
  min_training_weeks: trainingWeeks
    .default(2)
    .describe('an hour with fewer weeks of history is not judged (the check is skipped while none has enough)'),
  sensitivity: sensitivity
    .default(3)
    .describe('band half-width in normal-equivalent standard deviations: warning outside it, critical at twice it'),
}).refine(minNotAboveTraining, MIN_ABOVE_TRAINING);

/** `sources.<name>.anomalies`: any of the check's settings for one source (`enabled: false` leaves it out). */
export const anomalySourceSettings = z
  .strictObject({
    enabled: z.boolean().optional(),
    metrics: metricList.optional(),
    training_weeks: trainingWeeks.optional(),
    min_training_weeks: trainingWeeks.optional(),
    sensitivity: sensitivity.optional(),
  })
  .refine(minNotAboveTraining, MIN_ABOVE_TRAINING);

type AnomalyConfig = Pick<CheckContext['config'], 'checks' | 'sources'>;

/** What the detector does for one source: the check's settings with the source's own on top. */
export interface SourceAnomalySettings {
  enabled: boolean;
  metrics: Metric[];
  options: DetectorOptions;
}

/**
 * The settings for `source`: `sources.<name>.anomalies` over `checks.anomalies`. A source that sets
 * `training_weeks` below the global `min_training_weeks` gets its min lowered to its own weeks.
 */
export function anomalySettingsFor(config: AnomalyConfig, source: string): SourceAnomalySettings {
  const global = config.checks.anomalies;
  const own = Object.hasOwn(config.sources, source) ? config.sources[source]?.anomalies : undefined;
  const training = own?.training_weeks ?? global.training_weeks;
  return {
    enabled: global.enabled && (own?.enabled ?? true),
    metrics: [...(own?.metrics ?? global.metrics)],
    options: {
      training_weeks: training,
      min_training_weeks: Math.min(training, own?.min_training_weeks ?? global.min_training_weeks),
      sensitivity: own?.sensitivity ?? global.sensitivity,
    },
  };
}

/** The longest training and every metric any source may be judged on: what one read must cover. */
export function anomalyReadPlan(config: AnomalyConfig): { trainingWeeks: number; metrics: Metric[] } {
  const metrics = new Set<Metric>(config.checks.anomalies.metrics);
  for (const s of Object.values(config.sources)) {
    if (s.anomalies?.enabled === false) continue;
    for (const m of s.anomalies?.metrics ?? []) metrics.add(m);
  }
  return { trainingWeeks: longestTrainingWeeks(config), metrics: METRICS.filter((m) => metrics.has(m)) };
}

/**
 * The longest `training_weeks` of `checks.anomalies` and every `sources.<name>.anomalies`: the weeks a
 * read for any source must cover (the live check, the backtest, the dashboard). A source left out
 * counts too: reading more weeks than a source needs changes none of its verdicts.
 */
export function longestTrainingWeeks(config: AnomalyConfig): number {
  let weeks = config.checks.anomalies.training_weeks;
  for (const s of Object.values(config.sources)) weeks = Math.max(weeks, s.anomalies?.training_weeks ?? 0);
  return weeks;
}

/** `sentinel_anomaly_level`: the verdict as a number (0 ok, 1 warning, 2 critical). */
export const LEVEL_VALUE = { ok: 0, warning: 1, critical: 2 } as const;

/** Where to look first, per metric (docs/runbooks.md#anomalies has more). */
const METRIC_HINT: Record<Metric, string> = {
  volume: "Low: the vendor's delivery and the upload job; high: a resend or backfill.",
  error_rate: "Look at the hour's batches and ops.v_error_distribution for the codes behind it.",
  dedupe_rate: 'Low: a broken dedupe key; high: a resend of old data.',
  processing_time: "Look at parse_ms and db_ms of the hour's batches, and at locks and load on the database.",
};

/** The alert of an anomalous verdict (details exactly as docs/contract.md §10 lists them). */
export function anomalyAlert(v: Extract<Verdict, { judged: true }>): Alert {
  return {
    check: 'anomalies',
    level: v.level === 'critical' ? 'critical' : 'warning',
    message: anomalyMessage(v),
    subject: `${v.source} ${v.metric}`,
    // The exact command for a name a shell takes as it is; the generic hint (the check's) otherwise.
    ...(/^[\w.@-]{1,80}$/.test(v.source)
      ? {
          remediation:
            `Compare with this source's usual week: \`sentinel anomalies baseline --source ${v.source} --metric ` +
            `${v.metric}\`. ${METRIC_HINT[v.metric]} A change that is the new normal stops alerting once it fills ` +
            'the training weeks.',
        }
      : {}),
    details: { ...anomalyDetails(v) },
  };
}

/**
 * Each source's volume, error rate, dedupe rate and processing time in the last complete UTC hour,
 * judged against that source's own hour-of-week baseline (src/anomalies, docs/anomalies.md): the
 * figures read from the hourly rollup, training weeks and all, in one statement.
 */
export const anomaliesCheck = defineCheck({
  name: 'anomalies',
  description:
    "A source's volume, error rate, dedupe rate or p95 processing time in the last complete hour outside " +
    'its own usual band for that hour of the week.',
  settings,
  remediation:
    'Compare with the same hour last week (`sentinel anomalies baseline --source <name> --metric <metric>`); ' +
    "ask the vendor about a change in volume, or look at the hour's batches for errors and slow stages. " +
    'A change that is the new normal stops alerting once it is in the training weeks.',
  perSource: true,
  needsDatabase: true,
  measurements: [
    { key: 'sources_judged', meaning: 'sources with at least one metric judged in the last complete hour' },
    { key: 'hours_read', meaning: 'source-hours read from the hourly rollup for the judgement (its cost)' },
    {
      key: 'max_abs_score',
      meaning: 'the largest |score| of the hour over every source and metric judged (≥ sensitivity: an alert)',
    },
  ],
  async run(ctx: CheckContext): Promise<CheckOutput> {
    const hour = floorHour(ctx.now().getTime()) - HOUR_MS;
    const plan = anomalyReadPlan(ctx.config);
    let loaded: Awaited<ReturnType<typeof loadSeries>>;
    try {
      loaded = await loadSeries(ctx.db, {
        from: trainingStart(hour, { training_weeks: plan.trainingWeeks }),
        to: hour + HOUR_MS,
        metrics: plan.metrics,
      });
    } catch (err) {
      // Sentinel upgraded before `sentinel migrate` ran, or a role that may not read schema sentinel: a
      // setup step to do, said once per run, not a failed check paging every run.
      const code = (err as { code?: string }).code;
      if (code === SQLSTATE.undefinedTable || code === SQLSTATE.undefinedFunction)
        return {
          skipped: 'the hourly rollup is missing: run `sentinel migrate` to create sentinel.hourly_source_stats',
        };
      if (code === SQLSTATE.insufficientPrivilege)
        return {
          skipped:
            'this role may not read the hourly rollup: grant usage on schema sentinel and select on ' +
            "sentinel's hourly_source_* tables to the role Sentinel connects as",
        };
      throw err;
    }
    const { series, rows } = loaded;
    ctx.measure?.('hours_read', rows);
    if (series.length === 0)
      return { skipped: `no history: no batch in the ${plan.trainingWeeks} weeks before the last complete hour` };

    const cache: Cache = new Map();
    const alerts: Alert[] = [];
    let judgedSources = 0;
    let maxScore = 0;
    let historyReason: string | undefined;
    let considered = 0;
    for (const s of series) {
      const own = anomalySettingsFor(ctx.config, s.source);
      if (!own.enabled) continue;
      considered++;
      const view = viewOf(s, hour + HOUR_MS);
      let judged = false;
      for (const metric of own.metrics) {
        const v = judgeHour(view, metric, hour, own.options, cache);
        if (!v.judged) {
          if (v.reason.includes('history')) historyReason ??= `${v.source}: ${v.reason}`;
          continue;
        }
        judged = true;
        ctx.measureFor?.('score', { source: v.source, metric: v.metric }, v.score);
        ctx.measureFor?.('sensitivity', { source: v.source, metric: v.metric }, own.options.sensitivity);
        ctx.measureFor?.('level', { source: v.source, metric: v.metric }, LEVEL_VALUE[v.level]);
        maxScore = Math.max(maxScore, Math.abs(v.score));
        if (v.level !== 'ok') alerts.push(anomalyAlert(v));
      }
      if (judged) judgedSources++;
    }
    ctx.measure?.('sources_judged', judgedSources);
    if (considered === 0) return { skipped: 'every source with batches has sources.<name>.anomalies.enabled: false' };
    if (judgedSources === 0 && historyReason !== undefined) {
      return {
        skipped:
          `not enough history yet (${historyReason}); ` +
          'judging starts once a source has min_training_weeks of history at the hour',
      };
    }
    ctx.measure?.('max_abs_score', Math.round(maxScore * 100) / 100);
    return alerts;
  },
});
