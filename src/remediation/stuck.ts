import type pg from 'pg';
import { PROCESSING_STATUSES } from '../checks/statuses.js';
import type { Queryable } from '../db/pool.js';

/**
 * Stuck batches, and failing them safely: the guide's manual `UPDATE ... set
 * status = 'failed'` done as one transaction that re-checks every batch at the
 * moment it is changed and records who did it and why (supabase/migrations/*_sentinel_state.sql,
 * `sentinel.batch_audit`). Ages are on the database clock (`now()`).
 */

/** A batch held in a processing status longer than the threshold. */
export interface StuckBatch {
  id: string;
  source: string;
  status: string;
  age_minutes: number;
}

export interface StuckFilter {
  olderThanMinutes: number;
  /** Only this source's batches. */
  source?: string;
}

/** A batch that `failStuck` set to `failed`: its status before, and its age then. */
export interface FailedBatch {
  id: string;
  source: string;
  status_before: string;
  age_minutes: number;
}

export interface FailStuckOptions extends StuckFilter {
  reason: string;
  osUser: string;
  environment: string;
}

export interface FailStuckResult {
  /** The database role that made the change (`current_user`). */
  dbRole: string;
  batches: FailedBatch[];
  /** The audit record's id; null when nothing matched (no record is written). */
  auditId: number | null;
}

export interface AuditRecord {
  id: number;
  at: Date;
  os_user: string | null;
  db_role: string;
  reason: string;
  older_than_minutes: number;
  source: string | null;
  environment: string | null;
  batch_ids: string[];
}

/** A remediation could not run; the message is one line meant for the user. Nothing was changed. */
export class RemediationError extends Error {
  override name = 'RemediationError';
}

/** How long `failStuck` waits for a batch a worker holds locked before giving up. */
const LOCK_TIMEOUT_MS = 10_000;

// $1 statuses, $2 minutes, $3 source or null. Shared by the listing and the UPDATE,
// so that the dry run shows exactly what --yes would change at that moment.
const STUCK = `b.status = any($1::text[])
  and b.updated_at < now() - make_interval(secs => $2::float8 * 60)
  and ($3::text is null or b.source = $3::text)`;
const AGE = (column: string) => `round((extract(epoch from (now() - ${column})) / 60)::numeric, 1)::float8`;

function filterParams(filter: StuckFilter): unknown[] {
  return [[...PROCESSING_STATUSES], filter.olderThanMinutes, filter.source ?? null];
}

/** The stuck batches, oldest first. */
export async function findStuck(db: Queryable, filter: StuckFilter): Promise<StuckBatch[]> {
  const { rows } = await db
    .query<StuckBatch>(
      `select b.id::text, b.source, b.status, ${AGE('b.updated_at')} as age_minutes
         from intake.simplicity_batches b
        where ${STUCK}
        order by b.updated_at, b.id`,
      filterParams(filter),
    )
    .catch(privilegeError('SELECT', 'intake.simplicity_batches', db));
  return rows;
}

/**
 * Fails the batches that are stuck at this moment and records the audit row, in
 * one transaction on `client` (a writable connection).
 *
 * The batches are locked in id order (`for update`): under READ COMMITTED a row
 * that another transaction changed while we waited for its lock is re-read and
 * re-checked, so a batch that finished meanwhile, or that a concurrent
 * `fail-stuck` already failed, drops out instead of being overwritten. Two runs at
 * once lock in the same order and cannot deadlock; each batch is failed once.
 */
export async function failStuck(client: pg.ClientBase, options: FailStuckOptions): Promise<FailStuckResult> {
  await client.query('begin');
  try {
    await client.query(`set local lock_timeout = ${LOCK_TIMEOUT_MS}`);
    const { rows: who } = await client.query<{ role: string }>('select current_user::text as role');
    const dbRole = who[0]!.role;
    const { rows: failed } = await client
      .query<FailedBatch>(
        `with target as (
           select b.id, b.status, b.updated_at
             from intake.simplicity_batches b
            where ${STUCK}
            order by b.id
              for update
         )
         update intake.simplicity_batches b
            set status = 'failed', rejection_reason = $4, completed_at = now()
           from target t
          where b.id = t.id
         returning b.id::text, b.source, t.status as status_before, ${AGE('t.updated_at')} as age_minutes`,
        [...filterParams(options), options.reason],
      )
      .catch(privilegeError('UPDATE', 'intake.simplicity_batches', dbRole));
    failed.sort((a, b) => b.age_minutes - a.age_minutes || (a.id < b.id ? -1 : 1));
    let auditId: number | null = null;
    if (failed.length > 0) {
      const { rows } = await client
        .query<{ id: number }>(
          `insert into sentinel.batch_audit
             (os_user, db_role, reason, older_than_minutes, source, batch_ids, environment)
           values ($1, current_user, $2, $3, $4, $5::uuid[], $6)
           returning id`,
          [
            options.osUser,
            options.reason,
            options.olderThanMinutes,
            options.source ?? null,
            failed.map((b) => b.id),
            options.environment,
          ],
        )
        .catch(privilegeError('INSERT into', 'sentinel.batch_audit', dbRole));
      auditId = Number(rows[0]!.id);
    }
    await client.query('commit');
    return { dbRole, batches: failed, auditId };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

/** The newest audit records first. */
export async function listAudit(db: Queryable, limit: number): Promise<AuditRecord[]> {
  const { rows } = await db
    .query<AuditRecord>(
      // float8: numbers whatever pg type parsers the caller installed.
      `select id::float8 as id, at, os_user, db_role, reason,
              older_than_minutes::float8 as older_than_minutes, source, environment,
              batch_ids::text[] as batch_ids
         from sentinel.batch_audit
        order by id desc
        limit $1`,
      [limit],
    )
    .catch(privilegeError('SELECT', 'sentinel.batch_audit', db));
  return rows;
}

/**
 * Turns the database's refusals into one line that says what to do: a missing
 * privilege (SQLSTATE 42501) names the role, the privilege and the table; a missing
 * audit table (42P01) asks for `sentinel migrate`; a batch locked too long (55P03)
 * asks for a retry. Anything else is rethrown as it is.
 */
function privilegeError(privilege: string, table: string, role: string | Queryable): (err: unknown) => Promise<never> {
  return async (err) => {
    const code = (err as { code?: unknown }).code;
    const detail = err instanceof Error ? err.message : String(err);
    if (code === '42501') {
      const name = typeof role === 'string' ? role : await currentUser(role);
      const verb = privilege.split(' ')[0]!;
      throw new RemediationError(
        `role "${name}" may not ${privilege} ${table} (${detail}); grant it ${verb} or run as a role that has ` +
          `it${verb === 'SELECT' ? '' : '. Nothing was changed'}`,
        { cause: err },
      );
    }
    if (code === '42P01' && detail.includes('batch_audit')) {
      throw new RemediationError(`${table} does not exist: run \`sentinel migrate\` first. Nothing was changed`, {
        cause: err,
      });
    }
    if (code === '55P03') {
      throw new RemediationError(
        `a stuck batch stayed locked by another transaction for ${LOCK_TIMEOUT_MS / 1000}s (a worker updating ` +
          `it?). Nothing was changed; run it again`,
        { cause: err },
      );
    }
    throw err;
  };
}

async function currentUser(db: Queryable): Promise<string> {
  try {
    const { rows } = await db.query<{ role: string }>('select current_user::text as role');
    return rows[0]?.role ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
