import { z } from 'zod';
import { utcHour } from '../db/sql.js';
import type { Alert } from '../types.js';
import { plural } from '../util/format.js';
import { cut, MAX_CHARS, oneLine } from '../util/text.js';
import { type CheckContext, checkSettings, defineCheck } from './types.js';

/** How many new codes of one source are named in its alert; the rest are counted ("and 3 more"). */
const NAMED_CODES = 5;
/** An error code is an identifier: anything longer is cut (it is data from the monitored tables). */
const MAX_CODE_CHARS = 64;

interface NewCodeRow {
  source: string;
  error_code: string;
  occurrences: number;
  /** How many new codes the source has in all (the rows are the first {@link NAMED_CODES}). */
  new_codes: number;
  /** The latest message of the code in the window, cut in SQL (a message can be megabytes). */
  sample_message: string | null;
}

/** `b.created_at` in [from, to) through the UTC-hour index (the only created_at index kept on batches). */
const batchesBetween = (b: string, from: string, to: string): string =>
  `${utcHour(`${b}.created_at`)} >= ${utcHour(from)} and ${utcHour(`${b}.created_at`)} <= ${utcHour(to)}
     and ${b}.created_at >= ${from} and ${b}.created_at < ${to}`;

/**
 * Per source, the error codes of the batches of the recent window that the source's
 * batches of the `lookback_days` before never had: one query for every source. A row
 * error is dated by its batch (`created_at` of the batch: when the source sent it).
 * Everything goes through existing indexes: batches through the UTC-hour index, their
 * row errors through row_errors (batch_id), the sample by primary key. Whether a
 * (source, code) pair of the window was seen before is one probe that walks the
 * lookback newest first and stops at the first hit, so a code the source keeps
 * producing costs a few index lookups; only a code that is really new reads the
 * source's whole lookback (measured: 1M row errors over 8 days, 50 sources, 1203
 * pairs in the window, 3 of them new: 128 ms; a hash anti-join over the lookback
 * took 555 ms and grows with the table).
 */
const NEW_CODES_SQL = `
with recent as (
  select b.source, e.error_code, count(*)::int as occurrences, max(e.id) as sample_id
    from intake.simplicity_batches b
    join intake.row_errors e on e.batch_id = b.id
   where ${batchesBetween('b', '$2::timestamptz', '$1::timestamptz')}
   group by b.source, e.error_code
), fresh as (
  select r.*,
         row_number() over (partition by r.source order by r.occurrences desc, r.error_code) as rank,
         count(*) over (partition by r.source)::int as new_codes
    from recent r
    left join lateral (
      -- Newest batches first, stopping at the first one with the code: a code the
      -- source keeps producing is found within its last few batches.
      select 1 as seen
        from intake.simplicity_batches pb
        join intake.row_errors p on p.batch_id = pb.id and p.error_code = r.error_code
       where pb.source = r.source
         and ${batchesBetween('pb', '$3::timestamptz', '$2::timestamptz')}
       order by ${utcHour('pb.created_at')} desc
       limit 1
    ) before on true
   where before.seen is null
)
select f.source, left(f.error_code, ${MAX_CODE_CHARS + 1}) as error_code, f.occurrences, f.new_codes,
       left(s.error_message, ${MAX_CHARS.message + 1}) as sample_message
  from fresh f
  left join intake.row_errors s on s.id = f.sample_id
 where f.rank <= ${NAMED_CODES}
 order by f.source, f.rank`;

/**
 * An error code a source has not produced for `lookback_days`: a new kind of bad
 * row (a vendor changed its format, a new validation rule fires) that an error rate
 * under its threshold does not show. One warning per source.
 */
export const rowErrorCodesCheck = defineCheck({
  name: 'row_error_codes',
  description: 'Error codes a source produced in the last window_minutes and never in the lookback_days before.',
  settings: checkSettings(10, {
    window_minutes: z
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(60)
      .describe("the recent window judged (by batch created_at), as the other checks' last hour"),
    lookback_days: z
      .number()
      .int()
      .min(1)
      .max(90)
      .default(7)
      .describe('a code the source produced within this many days before the window is not new'),
  }),
  remediation:
    'A source sends rows failing in a way it did not before: look at the sample rows (intake.row_errors ' +
    "of the source's recent batches, ops.v_error_distribution) to see whether the vendor changed its " +
    'format or a new validation rule fires; tell the vendor or adjust the rule.',
  perSource: true,
  needsDatabase: true,
  measurements: [
    {
      key: 'new_codes',
      meaning: 'error codes new to their source in the window, summed over the sources',
      perfdata: { label: 'new_error_codes', uom: '' },
    },
  ],
  async run(ctx: CheckContext): Promise<Alert[]> {
    const cfg = ctx.config.checks.row_error_codes;
    const now = ctx.now();
    const windowStart = new Date(now.getTime() - cfg.window_minutes * 60_000);
    const lookbackStart = new Date(windowStart.getTime() - cfg.lookback_days * 86_400_000);
    const { rows } = await ctx.db.query<NewCodeRow>(NEW_CODES_SQL, [
      now.toISOString(),
      windowStart.toISOString(),
      lookbackStart.toISOString(),
    ]);

    const bySource = new Map<string, NewCodeRow[]>();
    for (const row of rows) bySource.set(row.source, [...(bySource.get(row.source) ?? []), row]);
    let total = 0;
    const alerts: Alert[] = [];
    for (const [source, codes] of bySource) {
      const count = codes[0]!.new_codes;
      total += count;
      alerts.push(alertFor(source, codes, count, cfg.lookback_days));
    }
    ctx.measure?.('new_codes', total);
    ctx.logger.debug(
      `row_error_codes: ${plural(total, 'new code', 'new codes')} in ${plural(bySource.size, 'source', 'sources')}`,
    );
    return alerts;
  },
});

/** The warning of one source: its new codes (the first few by count), one sample, all escaped and bounded. */
function alertFor(source: string, codes: NewCodeRow[], count: number, lookbackDays: number): Alert {
  const named = codes.map((c) => oneLine(c.error_code, MAX_CODE_CHARS)).join(', ');
  const more = count > codes.length ? ` and ${count - codes.length} more` : '';
  const sample = codes[0]!.sample_message;
  const sampleText = sample === null ? '' : `; sample: ${oneLine(sample, MAX_CHARS.message)}`;
  return {
    check: 'row_error_codes',
    level: 'warning',
    message:
      `New error code${count === 1 ? '' : 's'} for source ${oneLine(source, MAX_CHARS.name)} ` +
      `(not seen in ${plural(lookbackDays, 'day', 'days')}): ${named}${more}${sampleText}`,
    subject: source,
    details: {
      source: cut(source, MAX_CHARS.name),
      new_codes: count,
      codes: codes.map((c) => ({ error_code: cut(c.error_code, MAX_CODE_CHARS), occurrences: c.occurrences })),
      sample_message: sample === null ? null : cut(sample, MAX_CHARS.message),
      lookback_days: lookbackDays,
    },
  };
}
