import type { Alert } from '../types.js';
import { plural, trimNumber } from '../util/format.js';
import { cut, MAX_CHARS } from '../util/text.js';
import { PROCESSING_STATUSES, pipelineIndex } from './statuses.js';
import { type CheckContext, checkSettings, defineCheck, thresholdMinutes } from './types.js';

/** How many of the oldest stuck batches are named in the details. */
const OLDEST_LIMIT = 5;

interface StatusRow {
  status: string;
  batch_count: number;
  oldest_age_minutes: number;
}

interface BatchRow {
  id: string;
  source: string;
  status: string;
  age_minutes: number;
}

/**
 * Batches held in a processing status longer than `threshold_minutes`. Only the
 * stuck batches are counted (not every batch in that status), and the query reads
 * the in-flight partial index, so its cost does not grow with history.
 */
export const stuckBatchesCheck = defineCheck({
  name: 'stuck_batches',
  description:
    'Batches held in a processing status (processing, validating, inserting) longer than ' + 'threshold_minutes.',
  settings: checkSettings(10, {
    threshold_minutes: thresholdMinutes(10).describe('a batch in a processing status longer than this is stuck'),
  }),
  remediation:
    'Check the worker logs for exceptions and database connectivity; restart the workers if needed; ' +
    'fail batches that cannot finish with a rejection reason.',
  perSource: false,
  needsDatabase: true,
  measurements: [],
  async run(ctx: CheckContext): Promise<Alert[]> {
    const threshold = ctx.config.checks.stuck_batches.threshold_minutes;
    const now = ctx.now();
    const params = [now.toISOString(), threshold, [...PROCESSING_STATUSES]];
    const where = `status = any($3::text[]) and updated_at < $1::timestamptz - make_interval(secs => $2::float8 * 60)`;

    const byStatus = await ctx.db.query<StatusRow>(
      `select status, count(*)::int as batch_count,
              round((extract(epoch from ($1::timestamptz - min(updated_at))) / 60)::numeric, 1)::float8
                as oldest_age_minutes
         from intake.simplicity_batches
        where ${where}
        group by status`,
      params,
    );
    if (byStatus.rows.length === 0) return [];

    const oldest = await ctx.db.query<BatchRow>(
      `select id::text, source, status,
              round((extract(epoch from ($1::timestamptz - updated_at)) / 60)::numeric, 1)::float8 as age_minutes
         from intake.simplicity_batches
        where ${where}
        order by updated_at, id
        limit ${OLDEST_LIMIT}`,
      params,
    );

    const rows = [...byStatus.rows].sort((a, b) => pipelineIndex(a.status) - pipelineIndex(b.status));
    const total = rows.reduce((n, r) => n + r.batch_count, 0);
    const breakdown = rows.map((r) => `${r.status}(${r.batch_count})`).join(', ');
    return [
      {
        check: 'stuck_batches',
        level: 'critical',
        // Exactly the contract's text (docs/contract.md §5.1); the batches to look at are in the details.
        message: `${plural(total, 'batch')} stuck > ${trimNumber(threshold)}m: ${breakdown}`,
        details: {
          stuck_batches: rows.map((r) => ({
            status: r.status,
            batch_count: r.batch_count,
            oldest_age_minutes: r.oldest_age_minutes,
          })),
          total_stuck: total,
          threshold_minutes: threshold,
          // Sources are data from the monitored tables: cut like every detail (escaped where shown).
          oldest_batches: oldest.rows.map((b) => ({ ...b, source: cut(b.source, MAX_CHARS.name) })),
        },
      },
    ];
  },
});
