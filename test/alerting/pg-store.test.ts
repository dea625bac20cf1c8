import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PgAlertStore } from '../../src/alerting/pg-store.js';
import { emptyState, type Silence, StateLockTimeout } from '../../src/alerting/store.js';
import { createTestDatabase, useTestDatabase } from '../helpers/db.js';
import { until, within } from '../helpers/wait.js';

/** The replicas' shared alert state (one row of sentinel.alert_state) on a real database. */

const db = useTestDatabase();
const stores: PgAlertStore[] = [];
function store(): PgAlertStore {
  const s = new PgAlertStore(db().url);
  stores.push(s);
  return s;
}
beforeEach(async () => {
  await db().pool.query('delete from sentinel.alert_state');
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

const silence = (id: string): Silence => ({
  id,
  check: 'stuck_batches',
  reason: 'test',
  createdBy: 'test',
  createdAt: '2025-01-04T10:00:00Z',
  endsAt: '2099-01-01T00:00:00Z',
});
/** Resolves once some session of this database waits for a lock (the other store's update, blocked). */
const someoneWaitsForALock = () =>
  until(async () => {
    const { rows } = await db().pool.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    );
    return rows[0]!.n > 0;
  }, 'the update to wait for the row lock');

describe('PgAlertStore', () => {
  it('reads an empty state before anything is stored, and creates the row on the first update', async () => {
    const s = store();
    expect(await s.read()).toEqual(emptyState());
    expect((await db().pool.query('select count(*)::int as n from sentinel.alert_state')).rows[0]).toEqual({ n: 0 });

    const returned = await s.update((state) => {
      state.silences.push(silence('s-1'));
      return 'done';
    });

    expect(returned).toBe('done');
    const { rows } = await db().pool.query<{ id: number; state: { silences: Silence[] }; updated_at: Date }>(
      'select id, state, updated_at from sentinel.alert_state',
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.id).toBe(1);
    expect(rows[0]!.state.silences.map((x) => x.id)).toEqual(['s-1']);
    expect(Math.abs(rows[0]!.updated_at.getTime() - Date.now())).toBeLessThan(60_000);
    expect((await store().read()).silences.map((x) => x.id)).toEqual(['s-1']);
  });

  it('serializes concurrent updates from two stores (two processes): no update is lost, and the first-ever row is created once', async () => {
    const a = store();
    const b = store();
    const each = 15;
    const updates = (s: PgAlertStore, name: string) =>
      Array.from({ length: each }, (_, i) =>
        s.update(async (state) => {
          const seen = state.silences.length;
          // Slow read-modify-write (a round trip): without serialization the other store would overwrite this.
          await db().pool.query('select 1');
          state.silences.push(silence(`${name}-${i}-after-${seen}`));
        }),
      );

    await Promise.all([...updates(a, 'a'), ...updates(b, 'b')]);

    const ids = (await a.read()).silences.map((x) => x.id);
    expect(ids).toHaveLength(2 * each);
    // Each update saw every update before it: the counts seen are 0..29, each once.
    expect(ids.map((id) => Number(id.split('-after-')[1])).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 2 * each }, (_, i) => i),
    );
  });

  it('withLock holds off update (and read/write inside it run in its transaction)', async () => {
    const a = store();
    const b = store();
    const order: string[] = [];
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const locked = a.withLock(async () => {
      const state = await a.read();
      entered();
      await someoneWaitsForALock();
      state.silences.push(silence('locked'));
      await a.write(state);
      order.push('withLock done');
    });
    await inside;
    const updated = b.update((state) => {
      order.push('update ran');
      state.silences.push(silence('update'));
    });
    await Promise.all([locked, updated]);

    expect(order).toEqual(['withLock done', 'update ran']);
    expect((await a.read()).silences.map((x) => x.id)).toEqual(['locked', 'update']);
  });

  it('gives up waiting after waitMs with StateLockTimeout, and an error inside update changes nothing', async () => {
    const a = store();
    await a.update((state) => void state.silences.push(silence('kept')));
    const holder = await db().pool.connect();
    try {
      await holder.query('begin');
      await holder.query('select state from sentinel.alert_state where id = 1 for update');
      const error = await within(
        a.update(() => undefined, { waitMs: 300 }).catch((e: unknown) => e),
        20_000,
        'the update behind a held row lock',
      );
      expect(error).toBeInstanceOf(StateLockTimeout);
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    await expect(
      a.update((state) => {
        state.silences = [];
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await a.read()).silences.map((x) => x.id)).toEqual(['kept']);
  });

  it('says to run sentinel migrate when the table is missing', async () => {
    const empty = await createTestDatabase({ template: 'empty' });
    const s = new PgAlertStore(empty.url);
    try {
      await expect(s.read()).rejects.toThrow(/sentinel\.alert_state does not exist: run `sentinel migrate`/);
      await expect(s.update(() => undefined)).rejects.toThrow(/run `sentinel migrate`/);
    } finally {
      await s.close();
      await empty.drop();
    }
  });
});
