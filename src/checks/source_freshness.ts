import type { Check, CheckContext, CheckOutput } from './types.js';
import type { Alert } from '../types.js';
import type { Queryable } from '../db/pool.js';
import { utcHour } from '../db/sql.js';
import { formatDuration } from '../util/duration.js';

const MINUTE_MS = 60_000;
/** The shortest lookback: a week of batches, read through the UTC-hour index. */
const MIN_LOOKBACK_MS = 7 * 86_400_000;

/** How far back to look for a source's newest batch: max(7 days, 10 × expected_every). */
export function freshnessLookbackMs(expectedEveryMs: number): number {
  return Math.max(MIN_LOOKBACK_MS, 10 * expectedEveryMs);
}

/** `3h12m`, `45m`, `1d4h`: a silence to the minute (to the second under a minute). */
function formatSilence(ms: number): string {
  const unit = ms >= MINUTE_MS ? MINUTE_MS : 1000;
  return formatDuration(Math.floor(ms / unit) * unit);
}

/**
 * The newest `created_at` of each source in [its `from`, now], or null, in one
 * statement (10,000 sources are one round trip, not 10,000). For each source the
 * inner query walks the UTC-hour index newest first and stops at the first hour
 * holding a batch of the source; the outer one takes the newest batch of that hour.
 * A feed that is on time costs an hour's batches; a silent one the lookback's, bounded.
 */
async function newestBatches(db: Queryable, sources: Array<{ source: string; from: Date }>, now: Date): Promise<Map<string, Date | null>> {
  const range = `source = s.source
       and ${utcHour('created_at')} >= ${utcHour('s.since')} and ${utcHour('created_at')} <= ${utcHour('$3::timestamptz')}
       and created_at >= s.since and created_at <= $3::timestamptz`;
  const { rows } = await db.query<{ source: string; newest: Date | null }>(
    `select s.source,
            (select max(created_at)
               from intake.simplicity_batches
              where ${range}
                and ${utcHour('created_at')} = (select ${utcHour('created_at')} from intake.simplicity_batches
                                                 where ${range}
                                                 order by 1 desc
                                                 limit 1)) as newest
       from unnest($1::text[], $2::timestamptz[]) as s(source, since)`,
    [sources.map((s) => s.source), sources.map((s) => s.from.toISOString()), now.toISOString()],
  );
  return new Map(rows.map((r) => [r.source, r.newest]));
}

/**
 * A silent feed: for each source with `sources.<name>.expected_every`, no batch
 * created within that long (strictly longer, on the database clock). The failure
 * the rate checks cannot see, since a feed that sends nothing has no bad rows.
 * Without any `expected_every` there is nothing to judge and the check is skipped.
 */
export const sourceFreshnessCheck = {
  name: 'source_freshness',
  async run(ctx: CheckContext): Promise<CheckOutput> {
    const expected = Object.entries(ctx.config.sources)
      .flatMap(([source, s]) => (s.expected_every === undefined ? [] : [{ source, everyMs: s.expected_every }]))
      .sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
    if (expected.length === 0) return { skipped: 'no source has expected_every' };

    const now = ctx.now();
    const newestOf = await newestBatches(
      ctx.db,
      expected.map(({ source, everyMs }) => ({ source, from: new Date(now.getTime() - freshnessLookbackMs(everyMs)) })),
      now,
    );
    const alerts: Alert[] = [];
    for (const { source, everyMs } of expected) {
      const lookbackMs = freshnessLookbackMs(everyMs);
      const newest = newestOf.get(source) ?? null;
      const silentMs = newest === null ? undefined : now.getTime() - newest.getTime();
      if (silentMs !== undefined && silentMs <= everyMs) continue;
      const every = formatDuration(everyMs);
      const silence = silentMs === undefined ? `more than ${formatDuration(lookbackMs)}` : formatSilence(silentMs);
      alerts.push({
        check: 'source_freshness',
        level: 'warning',
        message: `No batches from ${source} for ${silence} (expected every ${every})`,
        subject: source,
        details: {
          source,
          expected_every: every,
          expected_every_minutes: everyMs / MINUTE_MS,
          last_batch_at: newest?.toISOString() ?? null,
          silent_minutes: silentMs === undefined ? null : Math.round(silentMs / 6000) / 10,
          lookback: formatDuration(lookbackMs),
        },
      });
    }
    return alerts;
  },
} satisfies Check;
