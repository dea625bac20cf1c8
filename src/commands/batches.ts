import { userInfo } from 'node:os';
import { PROCESSING_STATUSES } from '../checks/statuses.js';
import type { Environment } from '../config/env.js';
import { ConfigError, type ConfigFlags } from '../config/load.js';
import { describeError } from '../db/errors.js';
import { createPool, createWritePool, endPool } from '../db/pool.js';
import type { LogLevel } from '../log.js';
import { failStuck, findStuck, listAudit, RemediationError, type StuckBatch } from '../remediation/stuck.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import { plural, trimNumber } from '../util/format.js';
import { MAX_SPAN_MS } from '../util/limits.js';
import type { Redactor } from '../util/redact.js';
import { MAX_CHARS, oneLine, tableLines } from '../util/text.js';

/**
 * `sentinel batches stuck | fail-stuck | audit`: the guide's remediation step
 * ("fail stuck batches by hand with an UPDATE"), done safely. `stuck` and the dry
 * run read on the read-only pool; only `fail-stuck --yes` writes, on its own
 * connection, in one transaction (src/remediation/stuck.ts). Usage and database
 * errors are one line on stderr and exit 3; nothing else changes the exit code.
 * Sources, reasons and users are data: the human output shows them escaped and
 * cut (src/util/text.ts), masked first; `--json` keeps them exact.
 */

type Flags = ConfigFlags & { logLevel?: LogLevel; json?: boolean };

const MAX_REASON = 500;
const MIN_OLDER_THAN_MS = 60_000;

/** `sentinel batches stuck`: the stuck batches by the stuck_batches check's threshold. Exit 0 either way. */
export async function batchesStuck(flags: Flags): Promise<number> {
  return withDatabase(flags, async ({ config, redactor, url }) => {
    const threshold = config.checks.stuck_batches.threshold_minutes;
    const batches = await readOnly(url, config.statement_timeout_ms, (db) =>
      findStuck(db, { olderThanMinutes: threshold }),
    );
    if (flags.json) return print(redactor, JSON.stringify(batches));
    if (batches.length === 0) return print(redactor, `No batches stuck > ${trimNumber(threshold)}m.`);
    return print(redactor, [
      `${plural(batches.length, 'batch')} stuck > ${trimNumber(threshold)}m ` +
        `(in ${PROCESSING_STATUSES.join(', ')}; ages on the database clock):`,
      ...table(batches, redactor),
      `To fail them: sentinel batches fail-stuck --older-than ${trimNumber(threshold)}m --reason "..." ` +
        `(a dry run; add --yes to apply)`,
    ]);
  });
}

/**
 * `sentinel batches fail-stuck --older-than 30m --reason "..." [--source S] [--yes]`.
 * Without --yes: what would change, nothing written. With --yes: the batches still
 * stuck at that moment are failed and audited in one transaction.
 */
export async function batchesFailStuck(
  flags: Flags & { olderThan: string; reason: string; source?: string; yes?: boolean },
): Promise<number> {
  const ms = parseDuration(flags.olderThan);
  const reason = flags.reason.trim();
  const problems: string[] = [];
  if (ms === undefined) problems.push(`--older-than: "${flags.olderThan}" is not a duration (e.g. 30m, 2h, 1h30m)`);
  else if (ms < MIN_OLDER_THAN_MS)
    problems.push(`--older-than: ${flags.olderThan} is under 1m: a batch that young is still being worked on`);
  else if (ms > MAX_SPAN_MS) problems.push(`--older-than: must be at most ${formatDuration(MAX_SPAN_MS)}`);
  if (!reason) problems.push('--reason: say why, for the audit record and whoever looks at these batches next');
  else if (reason.length > MAX_REASON) problems.push(`--reason: ${reason.length} characters, at most ${MAX_REASON}`);
  if (flags.source !== undefined && !flags.source.trim())
    problems.push('--source: give a source name (leave --source out for every source)');
  if (problems.length) throw new ConfigError(problems);

  const filter = { olderThanMinutes: ms! / 60_000, ...(flags.source ? { source: flags.source.trim() } : {}) };
  return withDatabase(flags, async ({ config, environment, redactor, url }) => {
    const show = (text: string, max: number = MAX_CHARS.name): string => oneLine(redactor.redact(text), max);
    const scope = `stuck > ${formatDuration(ms!)}${filter.source ? ` from ${show(filter.source)}` : ''}`;
    if (!flags.yes) {
      const batches = await readOnly(url, config.statement_timeout_ms, (db) => findStuck(db, filter));
      if (flags.json)
        return print(
          redactor,
          JSON.stringify({
            dry_run: true,
            older_than_minutes: filter.olderThanMinutes,
            source: filter.source ?? null,
            reason,
            batches,
          }),
        );
      if (batches.length === 0) return print(redactor, `No batches ${scope}: nothing to fail.`);
      return print(redactor, [
        `Dry run: ${plural(batches.length, 'batch')} ${scope} would be set to failed, ` +
          `reason "${show(reason, MAX_CHARS.message)}":`,
        ...table(batches, redactor),
        'Nothing was changed. Add --yes to apply: only batches still stuck at that moment are failed, ' +
          'and the change is audited (sentinel batches audit).',
      ]);
    }

    const pool = createWritePool(url, { max: 1, statementTimeoutMs: 30_000 });
    try {
      const client = await pool.connect();
      try {
        const result = await failStuck(client, {
          ...filter,
          reason,
          osUser: osUser(environment),
          environment: config.env.name,
        });
        if (flags.json) {
          return print(
            redactor,
            JSON.stringify({
              dry_run: false,
              older_than_minutes: filter.olderThanMinutes,
              source: filter.source ?? null,
              reason,
              db_role: result.dbRole,
              audit_id: result.auditId,
              batches: result.batches,
            }),
          );
        }
        if (result.batches.length === 0)
          return print(redactor, `No batches ${scope}: nothing failed, no audit record written.`);
        return print(redactor, [
          `Failed ${plural(result.batches.length, 'batch')} ${scope}, reason "${show(reason, MAX_CHARS.message)}" ` +
            `(audit record ${result.auditId}, role ${show(result.dbRole)}):`,
          ...table(
            result.batches.map((b) => ({ ...b, status: `${oneLine(b.status_before, MAX_CHARS.cell)} → failed` })),
            redactor,
          ),
        ]);
      } finally {
        client.release();
      }
    } finally {
      await endPool(pool);
    }
  });
}

/** `sentinel batches audit [--limit N]`: who failed which batches, newest first. */
export async function batchesAudit(flags: Flags & { limit?: number }): Promise<number> {
  return withDatabase(flags, async ({ config, redactor, url }) => {
    const records = await readOnly(url, config.statement_timeout_ms, (db) => listAudit(db, flags.limit ?? 20));
    if (flags.json) return print(redactor, JSON.stringify(records.map((r) => ({ ...r, at: r.at.toISOString() }))));
    if (records.length === 0) return print(redactor, 'No batches failed by sentinel batches fail-stuck yet.');
    const show = (text: string, max: number = MAX_CHARS.name): string => oneLine(redactor.redact(text), max);
    return print(
      redactor,
      records.flatMap((r) => [
        `#${r.id}  ${r.at.toISOString()}  ${show(r.os_user ?? '?')} / ${show(r.db_role)}  ` +
          `[${show(r.environment ?? '?')}]  ${plural(r.batch_ids.length, 'batch')} stuck > ` +
          `${formatDuration(r.older_than_minutes * 60_000)}${r.source ? ` from ${show(r.source)}` : ''}: ` +
          `"${show(r.reason, MAX_CHARS.message)}"`,
        `    ${show(r.batch_ids.join(', '), MAX_CHARS.log)}`,
      ]),
    );
  });
}

interface Session {
  config: Runtime['config'];
  environment: Environment;
  redactor: Redactor;
  url: string;
}

/** Config, then `body`; a database refusal or an unreachable database becomes one redacted line and exit 3. */
async function withDatabase(flags: Flags, body: (s: Session) => Promise<number>): Promise<number> {
  const { config, environment, redactor } = await createRuntime(flags);
  try {
    return await body({ config, environment, redactor, url: config.env.databaseUrl });
  } catch (err) {
    const message = err instanceof RemediationError ? err.message : `database error: ${describeError(err)}`;
    process.stderr.write(`sentinel: ${oneLine(redactor.redact(message))}\n`);
    return 3;
  }
}

async function readOnly<T>(
  url: string,
  statementTimeoutMs: number,
  body: (db: ReturnType<typeof createPool>) => Promise<T>,
): Promise<T> {
  const pool = createPool(url, { max: 1, statementTimeoutMs });
  try {
    return await body(pool);
  } finally {
    await endPool(pool);
  }
}

/** The batches as a table; cells are masked, then escaped and cut before the columns are measured. */
function table(batches: StuckBatch[], redactor: Redactor): string[] {
  const rows = [
    ['ID', 'SOURCE', 'STATUS', 'AGE'],
    ...batches.map((b) =>
      [b.id, b.source, b.status, formatDuration(b.age_minutes * 60_000)].map((cell) => redactor.redact(cell)),
    ),
  ];
  return tableLines(rows, { indent: '  ' });
}

function print(redactor: Redactor, lines: string | string[]): number {
  const text = typeof lines === 'string' ? lines : lines.join('\n');
  process.stdout.write(`${redactor.redact(text)}\n`);
  return 0;
}

/** Who ran it, for the audit record: the person behind sudo if any, else the OS user. */
function osUser(environment: Environment): string {
  try {
    return environment.sudoUser || userInfo().username;
  } catch {
    return environment.user || 'unknown';
  }
}
