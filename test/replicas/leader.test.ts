import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElection } from '../../src/replicas/leader.js';
import type { Logger } from '../../src/log.js';
import { useTestDatabase } from '../helpers/db.js';
import { waitFor } from '../helpers/processes.js';

/** The election in-process against a real database: one lock, verified, lost when its session ends. */

const db = useTestDatabase();
const elections: LeaderElection[] = [];
afterEach(async () => {
  await Promise.all(elections.splice(0).map((e) => e.close()));
});

function election(key = 4242n): { e: LeaderElection; lines: string[]; changes: boolean[] } {
  const lines: string[] = [];
  const changes: boolean[] = [];
  const logger: Logger = { debug: () => {}, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
  const e = new LeaderElection({ connectionString: db().url, lockKey: key, logger, onChange: (l) => changes.push(l) });
  elections.push(e);
  return { e, lines, changes };
}

describe('LeaderElection', () => {
  it('one of two is leader; the follower takes over once the leader closes', async () => {
    const a = election();
    const b = election();
    expect(await a.e.check()).toBe(true);
    expect(await b.e.check()).toBe(false);
    expect(await a.e.check()).toBe(true);
    expect(await a.e.stillLeader()).toBe(true);
    expect(a.lines).toEqual([expect.stringMatching(/^Became leader/)]);
    expect(b.lines).toEqual([expect.stringMatching(/^Standing by as follower/)]);
    // A follower says so once, not at every poll.
    await b.e.check();
    expect(b.lines).toHaveLength(1);

    await a.e.close();
    expect(a.changes).toEqual([true, false]);
    expect(await b.e.check()).toBe(true);
    expect(b.e.role).toBe('leader');
  });

  it('a bigint key beyond 2^53 is verified in pg_locks (classid/objid)', async () => {
    const a = election(-8070450532247928832n);
    expect(await a.e.check()).toBe(true);
    expect(await a.e.stillLeader()).toBe(true);
  });

  it('steps down at once when its backend is terminated, without a round trip, then competes again', async () => {
    const a = election();
    const b = election();
    expect(await a.e.check()).toBe(true);
    await db().pool.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'sentinel-leader' and datname = current_database() and pid in (select pid from pg_locks where locktype = 'advisory' and granted)`);
    await waitFor(() => !a.e.isLeader, 5000, 'the connection error to be noticed');
    expect(a.lines.at(-1)).toMatch(/^Lost leadership: the lock connection (failed|ended)/);
    expect(await a.e.stillLeader()).toBe(false);
    // The lock is free: exactly one of the two gets it.
    const results = [await b.e.check(), await a.e.check()];
    expect(results).toEqual([true, false]);
  });
});
