import type { Alert } from '../types.js';
import { plural, trimNumber } from '../util/format.js';
import { cut, MAX_CHARS } from '../util/text.js';
import { type CheckContext, checkSettings, defineCheck, thresholdMinutes } from './types.js';

/** How many of the oldest waiting batches are named in the details. */
const OLDEST_LIMIT = 5;

interface WaitingRow {
  id: string;
  source: string;
  age_minutes: number;
  total_waiting: number;
}

/**
 * Batches waiting in `uploaded` (no worker has picked them up) longer than
 * `threshold_minutes`: the workers are down, too few or busy elsewhere. `updated_at`
 * is the time of the last status change, so for an uploaded batch its upload time.
 * `status = 'uploaded'` lets the planner use the in-flight partial index on
 * `(status, updated_at)`: the cost does not grow with history.
 */
export const queueBacklogCheck = defineCheck({
  name: 'queue_backlog',
  description: 'Batches waiting in uploaded (no worker picked them up) longer than threshold_minutes.',
  settings: checkSettings(10, {
    threshold_minutes: thresholdMinutes(30).describe('a batch waiting in uploaded longer than this alerts'),
  }),
  remediation:
    'Batches are uploaded but no worker picks them up: check that the workers are running, connected ' +
    'and not all busy; scale them out if the queue keeps growing.',
  perSource: false,
  needsDatabase: true,
  measurements: [],
  async run(ctx: CheckContext): Promise<Alert[]> {
    const threshold = ctx.config.checks.queue_backlog.threshold_minutes;
    // count(*) over () is computed before the limit: the total, next to the oldest few.
    const { rows } = await ctx.db.query<WaitingRow>(
      `select id::text, source,
              round((extract(epoch from ($1::timestamptz - updated_at)) / 60)::numeric, 1)::float8 as age_minutes,
              count(*) over ()::int as total_waiting
         from intake.simplicity_batches
        where status = 'uploaded'
          and updated_at < $1::timestamptz - make_interval(secs => $2::float8 * 60)
        order by updated_at, id
        limit ${OLDEST_LIMIT}`,
      [ctx.now().toISOString(), threshold],
    );
    const first = rows[0];
    if (!first) return [];
    return [
      {
        check: 'queue_backlog',
        level: 'warning',
        // Exactly the contract's text (docs/contract.md §8); the waiting batches are in the details.
        message: `${plural(first.total_waiting, 'batch')} waiting > ${trimNumber(threshold)}m in uploaded`,
        details: {
          total_waiting: first.total_waiting,
          threshold_minutes: threshold,
          oldest_age_minutes: first.age_minutes,
          oldest_batches: rows.map(({ id, source, age_minutes }) => ({
            id,
            source: cut(source, MAX_CHARS.name),
            age_minutes,
          })),
        },
      },
    ];
  },
});
