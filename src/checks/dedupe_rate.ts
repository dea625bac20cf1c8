import { z } from 'zod';
import type { Alert } from '../types.js';
import { isoSeconds, pct1, trimNumber } from '../util/format.js';
import { chooseBucket, type Hours, ownThresholds, queryHourlyRows, ratePct, sumHours } from './error_spike.js';
import { type CheckContext, checkSettings, defineCheck } from './types.js';

/** Sources judged on their own (`sources.<name>.dedupe_threshold_pct`), with that threshold. */
export function ownDedupeThresholds(config: CheckContext['config']): Map<string, number> {
  return ownThresholds(config, 'dedupe_threshold_pct');
}

/**
 * Hourly dedupe rate (rows skipped as duplicates / total rows) over a threshold:
 * the guide's "10–30 % normal, investigate > 50 %". The same hour bucket and
 * `checks.error_spike.min_rows` as error_spike (and as the dedupe ratio the metrics
 * show); sources with their own `dedupe_threshold_pct` are judged alone and left
 * out of the overall rate. Reads two hours of batches through the UTC-hour index.
 */
export const dedupeRateCheck = defineCheck({
  name: 'dedupe_rate',
  description:
    "Skipped (duplicate) rows over threshold_pct of the hour's rows; bucket and min_rows as " + 'error_spike.',
  settings: checkSettings(10, {
    threshold_pct: z.number().min(0).max(100).default(50).describe('skipped rows in percent above which it alerts'),
  }),
  remediation:
    'Check whether a file was uploaded twice or a vendor is resending old data (compare filenames ' +
    'and row counts of the hour); give a source that is always high its own threshold ' +
    '(sources.<name>.dedupe_threshold_pct).',
  perSource: true,
  needsDatabase: true,
  measurements: [
    {
      key: 'overall_rate_pct',
      meaning:
        'the overall dedupe rate in percent (without the sources judged alone) of the hour bucket judged, ' +
        'or of the current hour when neither has min_rows rows: the figure threshold_pct applies to',
    },
  ],
  async run(ctx: CheckContext): Promise<Alert[]> {
    const threshold = ctx.config.checks.dedupe_rate.threshold_pct;
    const minRows = ctx.config.checks.error_spike.min_rows;
    const { window, rows } = await queryHourlyRows(ctx.db, ctx.now());
    const ownThreshold = ownDedupeThresholds(ctx.config);

    const { overall, perSource } = sumHours(rows, ownThreshold);

    // The figure the overall threshold applies to, for Nagios perfdata and /metrics: the pipeline
    // snapshot's overall ratios leave out the sources with their own error threshold instead.
    const shown = chooseBucket(overall.current, overall.previous, window.currentStart, minRows) ?? overall.current;
    if (shown.total_rows > 0) ctx.measure?.('overall_rate_pct', ratePct(shown.skipped_rows, shown.total_rows));

    const alerts: Alert[] = [];
    const judge = (hours: Hours, limit: number, source?: string): void => {
      const bucket = chooseBucket(hours.current, hours.previous, window.currentStart, minRows);
      if (!bucket) return;
      const rate = ratePct(bucket.skipped_rows, bucket.total_rows);
      if (rate <= limit) return;
      // One decimal as in the guide, unless that would print "50.0% > 50.0%".
      const shown = (n: number): string => (pct1(rate) === pct1(limit) ? n.toFixed(2) : pct1(n));
      alerts.push({
        check: 'dedupe_rate',
        level: 'warning',
        message: `Dedupe rate ${shown(rate)}% > ${shown(limit)}% threshold${source ? ` for source ${source}` : ''}`,
        subject: source,
        details: {
          dedupe_rate_pct: rate,
          threshold_pct: limit,
          hour_bucket: isoSeconds(bucket.hour_bucket),
          skipped_rows: bucket.skipped_rows,
          total_rows: bucket.total_rows,
          ...(source ? { source } : {}),
          min_rows: minRows,
        },
      });
    };

    judge(overall, threshold);
    for (const source of [...perSource.keys()].filter((s) => ownThreshold.has(s)).sort()) {
      judge(perSource.get(source)!, ownThreshold.get(source)!, source);
    }
    ctx.logger.debug(
      `dedupe_rate: judged ${rows.length} source-hour rows, threshold overall ${trimNumber(threshold)}%`,
    );
    return alerts;
  },
});
