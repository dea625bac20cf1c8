import { formatDuration } from '../util/duration.js';
import type { Queryable } from './pool.js';

/** The schemas whose tables Sentinel reads: a lock on one of them stalls the checks. */
export const WATCHED_SCHEMAS = ['intake', 'ops', 'sentinel'] as const;

/** One session holding (or queued for) a lock that stops Sentinel's reads. */
export interface LockHolder {
  /** `intake.simplicity_batches`. */
  relation: string;
  pid: number;
  mode: string;
  /** False: queued for the lock itself (every later reader queues behind it). */
  granted: boolean;
  /** Who keeps a queued request waiting (pg_blocking_pids). */
  blocked_by: number[];
  user: string | null;
  application: string | null;
  /** `active`, `idle in transaction`, … */
  state: string | null;
  /** The session's current or last statement, cut to 200 characters. */
  query: string | null;
  /** Since the holder's transaction began (else its statement), in seconds. */
  held_seconds: number | null;
}

/**
 * Who is locking Sentinel out, asked of pg_locks right after a statement of ours
 * timed out. A plain SELECT waits only for an ACCESS EXCLUSIVE lock (LOCK TABLE,
 * ALTER TABLE, TRUNCATE, VACUUM FULL, REINDEX without CONCURRENTLY …): granted ones
 * are the blockers, queued ones block every reader that arrives after them, so both
 * are reported, granted first, the longest held first. pg_locks and
 * pg_stat_activity are not themselves blocked by locks on user tables.
 */
export async function findLockHolders(db: Queryable): Promise<LockHolder[]> {
  const { rows } = await db.query<LockHolder>(
    `select format('%I.%I', n.nspname, c.relname) as relation,
            l.pid,
            l.mode,
            l.granted,
            case when l.granted then '{}'::int[] else pg_blocking_pids(l.pid) end as blocked_by,
            a.usename::text as user,
            a.application_name as application,
            a.state,
            left(a.query, 200) as query,
            round(extract(epoch from now() - coalesce(a.xact_start, a.query_start))::numeric, 1)::float8 as held_seconds
       from pg_locks l
       join pg_class c on c.oid = l.relation
       join pg_namespace n on n.oid = c.relnamespace
       left join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'relation'
        and l.database = (select oid from pg_database where datname = current_database())
        and l.mode = 'AccessExclusiveLock'
        and n.nspname = any($1::text[])
        and l.pid <> pg_backend_pid()
      order by l.granted desc, held_seconds desc nulls last, l.pid
      limit 10`,
    [[...WATCHED_SCHEMAS]],
  );
  return rows;
}

/**
 * One line for a person: which relation, which pid, what mode, running what, for
 * how long. `intake.simplicity_batches is locked by pid 4242 (AccessExclusiveLock,
 * user app, idle in transaction for 1m12s, last statement "lock table …")`.
 */
export function describeLockHolder(h: LockHolder): string {
  const held = h.held_seconds !== null ? ` for ${formatDuration(h.held_seconds * 1000)}` : '';
  const who = [h.user ? `user ${h.user}` : undefined, h.application ? `application ${h.application}` : undefined]
    .filter(Boolean)
    .join(', ');
  const running = h.query ? `, ${h.state === 'active' ? 'running' : 'last statement'} "${oneLine(h.query)}"` : '';
  const state = h.state ? `${h.state}${held}` : held.trim();
  const facts = [h.mode, who, state].filter((s) => s && s.length > 0).join(', ');
  if (h.granted) return `${h.relation} is locked by pid ${h.pid} (${facts}${running})`;
  const behind = h.blocked_by.length > 0 ? `, itself waiting for pid ${h.blocked_by.join(', ')}` : '';
  const context = [who, state].filter(Boolean).join(', ');
  return (
    `${h.relation} has pid ${h.pid} queued for ${h.mode}${behind}: ` +
    `every reader waits behind it (${context}${running})`
  );
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
