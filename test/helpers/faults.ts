/**
 * Fault injection for test/faults/: things Sentinel talks to, made to misbehave
 * for real.
 *
 * - {@link startTcpProxy}: a TCP proxy in front of PostgreSQL that can refuse new
 *   connections, be blackholed (accepts, forwards nothing: a paused or partitioned
 *   server) or cut every open connection.
 * - {@link startPasswordRejecter}: speaks enough of the PostgreSQL protocol to ask
 *   for a password and reject it as PostgreSQL does (28P01), counting the logins.
 * - {@link spawnSentinel}: the built CLI as a long-running child whose output a
 *   test waits on line by line (never on fixed sleeps).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import type pg from 'pg';
import { CLI, cliEnv } from './cli.js';

export interface TcpProxy {
  /** `127.0.0.1:<port>`: put it in a postgres URL instead of the real server's. */
  host: string;
  port: number;
  /** Connections accepted so far (each is a login attempt for PostgreSQL). */
  accepted: () => number;
  /** Accept connections and forward nothing either way (a paused or partitioned server). */
  blackhole(): void;
  /** Forward again (already blackholed connections stay silent). */
  restore(): void;
  /** Close every open connection abruptly (RST), like a server or pooler restart. */
  cutAll(): void;
  close(): Promise<void>;
}

/** A proxy from 127.0.0.1:<random> to `target` (host:port). */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let silent = false;
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    accepted++;
    sockets.add(client);
    client.on('error', () => {});
    client.on('close', () => sockets.delete(client));
    if (silent) return; // accepted, never answered
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    client.on('data', (d) => {
      if (!silent) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!silent) client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    accepted: () => accepted,
    blackhole: () => {
      silent = true;
    },
    restore: () => {
      silent = false;
    },
    cutAll: () => {
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The same URL with host and port replaced (the proxy's). */
export function throughProxy(url: string, proxy: { host: string; port: number }): string {
  const u = new URL(url);
  u.hostname = proxy.host;
  u.port = String(proxy.port);
  return u.toString();
}

export interface PasswordRejecter {
  port: number;
  /** Password messages received: each one is a failed login a pooler would count. */
  logins: () => number;
  close(): Promise<void>;
}

/**
 * A server that answers like PostgreSQL with a wrong password: declines TLS,
 * asks for a cleartext password and rejects it with FATAL 28P01.
 */
export async function startPasswordRejecter(): Promise<PasswordRejecter> {
  let logins = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    let buffer = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          buffer = buffer.subarray(length);
          if (code === 80877103) {
            socket.write('N'); // SSLRequest: no TLS here
            continue;
          }
          started = true;
          socket.write(message('R', int32(3))); // AuthenticationCleartextPassword
          continue;
        }
        if (buffer.length < 5) return;
        const length = buffer.readInt32BE(1);
        if (buffer.length < 1 + length) return;
        const type = String.fromCharCode(buffer[0]!);
        buffer = buffer.subarray(1 + length);
        if (type === 'p') {
          logins++;
          const fields = ['SFATAL', 'VFATAL', 'C28P01', 'Mpassword authentication failed for user "sentinel"'];
          socket.end(message('E', Buffer.concat([...fields.map((f) => Buffer.from(`${f}\0`)), Buffer.from([0])])));
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    logins: () => logins,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function message(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
}

export interface RunningSentinel {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the `occurrence`-th (default first) stderr line matching `pattern`. */
  waitForLog(pattern: RegExp, occurrence?: number, timeoutMs?: number): Promise<string>;
  /** How many stderr lines match `pattern` so far. */
  countLog(pattern: RegExp): number;
  /** Resolves once stdout has at least `count` complete lines; returns them. */
  waitForStdoutLines(count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with how the child ended. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL if still running (afterEach). */
  kill(): void;
}

/**
 * Starts `node dist/cli.js ...args` with a scrubbed environment plus `env`. Waits are
 * event-driven: each output chunk re-checks the waiters; the timeouts are guards
 * against a hang, far above what any run needs.
 */
export function spawnSentinel(args: string[], env: Record<string, string | undefined>): RunningSentinel {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  const poke = (): void => {
    for (const w of waiters) w();
  };
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    poke();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    poke();
  });
  let exited = false;
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      exited = true;
      poke();
      resolve({ code, signal });
    }),
  );
  const waitUntil = <T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const found = probe();
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (exited) {
          done();
          reject(new Error(`sentinel exited before ${what}; stderr:\n${stderr.slice(-3000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr:\n${stderr.slice(-3000)}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForLog: (pattern, occurrence = 1, timeoutMs = 60_000) =>
      waitUntil(
        () => stderr.split('\n').filter((line) => pattern.test(line))[occurrence - 1],
        `log line #${occurrence} matching ${String(pattern)}`,
        timeoutMs,
      ),
    countLog: (pattern) => stderr.split('\n').filter((line) => pattern.test(line)).length,
    waitForStdoutLines: (count, timeoutMs = 60_000) =>
      waitUntil(
        () => {
          const lines = stdout.split('\n').slice(0, -1);
          return lines.length >= count ? lines : undefined;
        },
        `${count} report lines on stdout`,
        timeoutMs,
      ),
    ended,
    kill: () => {
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/** Terminates every backend of `application_name` (Sentinel's sessions are `sentinel`); returns how many. */
export async function terminateBackends(
  admin: pg.Pool | pg.Client,
  database: string,
  applicationName = 'sentinel',
): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
      where datname = $1 and application_name = $2 and pid <> pg_backend_pid()`,
    [database, applicationName],
  );
  return rows[0]!.n;
}

/** The JSON report lines a `--json` loop printed so far. */
export function reportsOf<T>(r: RunningSentinel): T[] {
  return r
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as T);
}
