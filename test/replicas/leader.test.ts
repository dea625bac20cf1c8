import net from 'node:net';
import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/log.js';
import {
  deadSessionSettings,
  LeaderElection,
  type LeaderElectionOptions,
  leaderConnection,
} from '../../src/replicas/leader.js';
import { useTestDatabase } from '../helpers/db.js';
import { waitFor } from '../helpers/processes.js';
import { within } from '../helpers/wait.js';

/** The election in-process against a real database: one lock, verified, lost when its session ends. */

const db = useTestDatabase();
const elections: LeaderElection[] = [];
afterEach(async () => {
  await Promise.all(elections.splice(0).map((e) => e.close()));
});

function election(
  key = 4242n,
  options: Partial<LeaderElectionOptions> = {},
): { e: LeaderElection; lines: string[]; changes: boolean[] } {
  const lines: string[] = [];
  const changes: boolean[] = [];
  const logger: Logger = {
    debug: () => {},
    info: (m) => lines.push(m),
    warn: (m) => lines.push(m),
    error: (m) => lines.push(m),
  };
  const e = new LeaderElection({
    connectionString: db().url,
    lockKey: key,
    logger,
    onChange: (l) => changes.push(l),
    ...options,
  });
  elections.push(e);
  return { e, lines, changes };
}

/** The election's own lock connection (private), to look at its session from the inside. */
function lockClient(e: LeaderElection): pg.Client {
  const client = (e as unknown as { client?: pg.Client }).client;
  if (!client) throw new Error('the election has no lock connection');
  return client;
}

/**
 * A TCP proxy in front of PostgreSQL that can "cut" the connections it carries:
 * after `cut()` it stops forwarding on them in both directions but keeps both
 * sockets open, so PostgreSQL sees a live but silent client (its kernel still
 * acknowledges keepalives, as a host behind a broken NAT or a frozen VM may) and
 * keeps the backend, with its advisory lock. New connections are forwarded again,
 * as when the network comes back.
 */
async function startCuttableProxy(target: { host: string; port: number }) {
  const links: Array<{ client: net.Socket; server: net.Socket; cut: boolean }> = [];
  // Half-open allowed: a FIN is passed on or swallowed by us, never answered by Node.
  const proxy = net.createServer({ allowHalfOpen: true }, (client) => {
    const server = net.connect({ port: target.port, host: target.host, allowHalfOpen: true });
    const link = { client, server, cut: false };
    links.push(link);
    client.on('data', (d) => void (link.cut || server.write(d)));
    server.on('data', (d) => void (link.cut || client.write(d)));
    // A FIN from either side is not passed on once cut (the peer never learns).
    client.on('end', () => void (link.cut || server.end()));
    server.on('end', () => void (link.cut || client.end()));
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as net.AddressInfo).port;
  return {
    port,
    cut(): void {
      for (const link of links) link.cut = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const { client, server } of links) {
          client.destroy();
          server.destroy();
        }
        proxy.close(() => resolve());
      }),
  };
}

const settingsOf = async (client: pg.Client, names: string[]): Promise<Record<string, string>> => {
  const { rows } = await client.query<{ name: string; setting: string }>(
    'select name, setting from pg_settings where name = any($1)',
    [names],
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
};

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
    await db().pool.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'sentinel-leader' and datname = current_database() and pid in (select pid from pg_locks where locktype = 'advisory' and granted)`,
    );
    await waitFor(() => !a.e.isLeader, 5000, 'the connection error to be noticed');
    expect(a.lines.at(-1)).toMatch(/^Lost leadership: the lock connection (failed|ended)/);
    expect(await a.e.stillLeader()).toBe(false);
    // The lock is free: exactly one of the two gets it.
    const results = [await b.e.check(), await a.e.check()];
    expect(results).toEqual([true, false]);
  });
});

describe('LeaderElection after a network cut (the orphaned lock session)', () => {
  it('the lock connection asks PostgreSQL to drop it soon after its client is gone, and leaves idle_session_timeout alone', async () => {
    const a = election(4242n, { deadSessionTimeoutMs: 6000 });
    expect(await a.e.check()).toBe(true);
    const client = lockClient(a.e);
    // SHOW reads the live socket options of this TCP session.
    expect((await client.query('show tcp_keepalives_idle')).rows[0]).toEqual({ tcp_keepalives_idle: '3' });
    expect(
      await settingsOf(client, [
        'tcp_keepalives_idle',
        'tcp_keepalives_interval',
        'tcp_keepalives_count',
        'tcp_user_timeout',
        'idle_session_timeout',
      ]),
    ).toEqual({
      tcp_keepalives_idle: '3',
      tcp_keepalives_interval: '1',
      tcp_keepalives_count: '3',
      tcp_user_timeout: '6000',
      // Not set: the lock session is idle between runs and must stay.
      idle_session_timeout: '0',
    });
    const { rows } = await client.query<{ application_name: string }>(
      'select application_name from pg_stat_activity where pid = pg_backend_pid()',
    );
    expect(rows[0]!.application_name).toBe('sentinel-leader');
    expect(a.e.backendPid).toBe((await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
  });

  it('keepalive settings: about the timeout in total, never below 5 s; operator options in the URL are kept', async () => {
    const total = (s: Record<string, number>) =>
      s.tcp_keepalives_idle! + s.tcp_keepalives_interval! * s.tcp_keepalives_count!;
    expect(deadSessionSettings(1000)).toEqual({
      tcp_keepalives_idle: 2,
      tcp_keepalives_interval: 1,
      tcp_keepalives_count: 3,
      tcp_user_timeout: 5000,
    });
    for (const ms of [5000, 10_000, 60_000, 300_000, 3_600_000]) {
      const s = deadSessionSettings(ms);
      expect(total(s)).toBeLessThanOrEqual(ms / 1000);
      expect(total(s)).toBeGreaterThanOrEqual(ms / 1000 - 3);
      expect(s.tcp_user_timeout).toBe(ms);
    }
    const withOptions = `${db().url}?options=${encodeURIComponent('-c search_path=ops,public')}`;
    const target = leaderConnection(withOptions, 5000);
    expect(target.connectionString).not.toContain('options=');
    expect(target.options).toBe(
      '-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 -c tcp_user_timeout=5000 -c search_path=ops,public',
    );
    const a = election(4243n, { connectionString: withOptions });
    expect(await a.e.check()).toBe(true);
    expect(await settingsOf(lockClient(a.e), ['search_path', 'tcp_user_timeout'])).toEqual({
      search_path: 'ops,public',
      tcp_user_timeout: '10000',
    });
  });

  it('a leader cut off without PostgreSQL noticing terminates its old backend on reconnect, and a follower takes over within its poll', async () => {
    const url = new URL(db().url);
    const proxy = await startCuttableProxy({ host: url.hostname, port: Number(url.port || 5432) });
    try {
      const viaProxy = new URL(db().url);
      viaProxy.port = String(proxy.port);
      const a = election(4244n, { connectionString: viaProxy.toString(), queryTimeoutMs: 500 });
      const b = election(4244n);
      expect(await a.e.check()).toBe(true);
      expect(await b.e.check()).toBe(false);
      const orphan = a.e.backendPid!;

      proxy.cut();
      // Without the fix nobody could take over: PostgreSQL keeps the silent session and its lock.
      expect(await b.e.check()).toBe(false);

      // The polls of the two replicas, in the order that matters. The leader's next poll:
      // its verification times out, it reconnects, terminates its old backend and stands
      // aside. (A hang here, e.g. on the old socket, fails the test instead of stalling it.)
      expect(await within(a.e.check(), 20_000, "the leader's poll after the cut")).toBe(false);
      // The follower's next poll takes the lock: no waiting for keepalives (10 s by default).
      expect(await b.e.check()).toBe(true);
      expect(a.lines).toContain(
        `Terminated this process's previous lock session (backend pid ${orphan}), which PostgreSQL still kept after the connection was lost, so the leader lock is free`,
      );
      expect(a.lines.some((l) => /^Lost leadership: the lock connection failed/.test(l))).toBe(true);
      expect([a.e.isLeader, b.e.isLeader]).toEqual([false, true]);
      // The orphan is gone; exactly one session holds the lock, the follower's.
      const gone = await db().pool.query('select 1 from pg_stat_activity where pid = $1', [orphan]);
      expect(gone.rowCount).toBe(0);
      const holders = await db().pool.query<{ pid: number }>(
        `select pid from pg_locks where locktype = 'advisory' and granted and objid = 4244 and database = (select oid from pg_database where datname = current_database())`,
      );
      expect(holders.rows.map((r) => r.pid)).toEqual([b.e.backendPid]);
      // The deposed process competes again and stands by.
      expect(await a.e.check()).toBe(false);
    } finally {
      await Promise.all(elections.splice(0).map((e) => e.close()));
      await proxy.close();
    }
  }, 20_000);

  it('behind a pooler that refuses startup options (PgBouncer), it connects without them and says so', async () => {
    const url = new URL(db().url);
    const refused: string[] = [];
    // Answers a startup packet carrying `options` as PgBouncer does; forwards anything else to PostgreSQL.
    const pooler = net.createServer((client) => {
      let buffered = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        buffered = Buffer.concat([buffered, d]);
        if (buffered.length < 4 || buffered.length < buffered.readInt32BE(0)) return;
        client.off('data', onData);
        if (buffered.subarray(8).toString('latin1').split('\0').includes('options')) {
          refused.push('options');
          const fields = Buffer.from('SFATAL\0VFATAL\0C08P01\0Munsupported startup parameter: options\0\0', 'latin1');
          const head = Buffer.alloc(5);
          head.write('E', 0, 'latin1');
          head.writeInt32BE(fields.length + 4, 1);
          client.end(Buffer.concat([head, fields]));
          return;
        }
        const server = net.connect(Number(url.port || 5432), url.hostname);
        server.write(buffered);
        client.pipe(server).pipe(client);
        client.on('error', () => server.destroy());
        server.on('error', () => client.destroy());
      };
      client.on('data', onData);
    });
    await new Promise<void>((r) => pooler.listen(0, '127.0.0.1', r));
    try {
      const viaPooler = new URL(db().url);
      viaPooler.port = String((pooler.address() as net.AddressInfo).port);
      const a = election(4246n, { connectionString: viaPooler.toString() });
      expect(await a.e.check()).toBe(true);
      expect(refused).toEqual(['options']);
      expect(a.lines[0]).toMatch(
        /^The lock database refused the keepalive settings in the startup options \(unsupported startup parameter: options\): connecting without them/,
      );
      expect(await settingsOf(lockClient(a.e), ['tcp_user_timeout'])).toEqual({ tcp_user_timeout: '0' });
      // Remembered: it does not try (and warn) again on every reconnect.
      await a.e.close();
      expect(await a.e.check()).toBe(true);
      expect(refused).toEqual(['options']);
      expect(a.lines.filter((l) => l.startsWith('The lock database refused'))).toHaveLength(1);
    } finally {
      await Promise.all(elections.splice(0).map((e) => e.close()));
      await new Promise<void>((r) => pooler.close(() => r()));
    }
  });

  it('never terminates a backend it does not own: after a clean close nothing is terminated', async () => {
    const a = election(4245n);
    const b = election(4245n);
    expect(await a.e.check()).toBe(true);
    const pidA = a.e.backendPid!;
    expect(await b.e.check()).toBe(false);
    const pidB = b.e.backendPid!;
    // A loses its session the ordinary way (an administrator ends it): nothing for it to terminate later.
    await db().pool.query('select pg_terminate_backend($1)', [pidA]);
    await waitFor(() => !a.e.isLeader, 5000, 'A to notice');
    expect(await b.e.check()).toBe(true);
    expect(await a.e.check()).toBe(false);
    expect(await a.e.check()).toBe(false);
    // B's session (the leader's) was never touched by A.
    expect(b.e.backendPid).toBe(pidB);
    expect(await b.e.stillLeader()).toBe(true);
    expect(a.lines.filter((l) => l.startsWith('Terminated'))).toEqual([]);
  });
});
