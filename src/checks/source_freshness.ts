import type { Queryable } from '../db/pool.js';
import { utcHour } from '../db/sql.js';
import type { Alert } from '../types.js';
import { formatDuration } from '../util/duration.js';
import { type CheckContext, type CheckOutput, checkSettings, defineCheck } from './types.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
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
 * The newest `created_at` of each source within its lookback (up to `now`), or null.
 * Read newest first in slices that double (the last hour, the hour before, then 2h,
 * 4h, ...), each one grouped scan of the UTC-hour index for the sources not found
 * yet: a source is settled by its first slice holding a batch of it, or once its
 * whole lookback is read. So 10,000 feeds cost what one does (the batches of the
 * slices read, plus a round trip per slice, at most ~17), not 10,000 statements,
 * nor 10,000 walks of a week of batches when many are silent. Feeds that are all on
 * time cost the last hour's batches; a silent one the longest lookback's, once.
 */
export async function newestBatches(
  db: Queryable,
  sources: Array<{ source: string; lookbackMs: number }>,
  now: Date,
): Promise<Map<string, Date | null>> {
  const newest = new Map<string, Date | null>();
  const longest = sources.reduce((max, s) => Math.max(max, s.lookbackMs), 0);
  let pending = sources;
  let to = now;
  for (let span = HOUR_MS; pending.length > 0; span *= 2) {
    const from = new Date(now.getTime() - Math.min(span, longest));
    const { rows } = await db.query<{ source: string; newest: Date }>(
      `select b.source, max(b.created_at) as newest
         from intake.simplicity_batches b
         join unnest($1::text[]) as wanted(source) on wanted.source = b.source
        where ${utcHour('b.created_at')} >= ${utcHour('$2::timestamptz')}
          and ${utcHour('b.created_at')} <= ${utcHour('$3::timestamptz')}
          and b.created_at >= $2::timestamptz and b.created_at <= $3::timestamptz
        group by b.source`,
      [pending.map((s) => s.source), from.toISOString(), to.toISOString()],
    );
    const found = new Map(rows.map((r) => [r.source, r.newest]));
    pending = pending.filter(({ source, lookbackMs }) => {
      const at = found.get(source);
      // A batch older than this source's own lookback is not looked for: "more than <lookback>".
      if (at !== undefined) newest.set(source, now.getTime() - at.getTime() <= lookbackMs ? at : null);
      else if (now.getTime() - lookbackMs >= from.getTime()) newest.set(source, null);
      return !newest.has(source);
    });
    if (span >= longest) break;
    to = from;
  }
  return newest;
}

/**
 * A silent feed: for each source with `sources.<name>.expected_every`, no batch
 * created within that long (strictly longer, on the database clock). The failure
 * the rate checks cannot see, since a feed that sends nothing has no bad rows.
 * Without any `expected_every` there is nothing to judge and the check is skipped.
 */
export const sourceFreshnessCheck = defineCheck({
  name: 'source_freshness',
  description: 'Sources with sources.<name>.expected_every that sent no batch within that long.',
  settings: checkSettings(10, {}),
  remediation:
    "The source sent nothing for longer than expected: check the vendor's delivery (SFTP, API, " +
    'schedule) and the upload job; tell the vendor if the feed has stopped.',
  perSource: true,
  needsDatabase: true,
  measurements: [],
  async run(ctx: CheckContext): Promise<CheckOutput> {
    const expected = Object.entries(ctx.config.sources)
      .flatMap(([source, s]) => (s.expected_every === undefined ? [] : [{ source, everyMs: s.expected_every }]))
      .sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
    if (expected.length === 0) return { skipped: 'no source has expected_every' };

    const now = ctx.now();
    const newestOf = await newestBatches(
      ctx.db,
      expected.map(({ source, everyMs }) => ({ source, lookbackMs: freshnessLookbackMs(everyMs) })),
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
});
