import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/postgrest/server.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { type RunningSentinel, spawnSentinel } from '../helpers/faults.js';

/**
 * `sentinel serve` taking hostile and ambiguous requests on a raw socket: two Host
 * headers are refused (400), and a configured token guards `/metrics` too unless
 * `--metrics-without-token` says otherwise; probes stay open.
 */

const TOKEN = 'fault-suite-token-5d1f0c2b';
let db: TestDb;
let dir: string;
const running: RunningSentinel[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'sentinel-faults-http-'));
});
afterEach(() => {
  for (const r of running.splice(0)) r.kill();
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(extra: string[] = [], env: Record<string, string> = {}): Promise<number> {
  const port = await freePort();
  const s = spawnSentinel(['serve', '--listen', `127.0.0.1:${port}`, '--interval', '60', ...extra], {
    DATABASE_URL: db.url,
    SENTINEL_STATE_DIR: join(dir, `state-${port}`),
    ...env,
  });
  running.push(s);
  await s.waitForLog(/Listening on http:\/\/127\.0\.0\.1:\d+/);
  return port;
}

/** Sends `request` as typed and resolves with the status line and the whole answer. */
function raw(port: number, request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.end(request);
  });
}

describe('sentinel serve: strict HTTP', () => {
  it('refuses a request with two Host headers (400), whichever comes first', async () => {
    const port = await serve();
    const one = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(one.status).toBe(200);
    for (const hosts of [
      ['127.0.0.1', 'attacker.example'],
      ['attacker.example', 'localhost'],
      ['localhost', 'localhost'],
    ]) {
      const two = await raw(
        port,
        `GET /metrics HTTP/1.1\r\nHost: ${hosts[0]}\r\nhost: ${hosts[1]}\r\nConnection: close\r\n\r\n`,
      );
      expect(two.status, hosts.join(' + ')).toBe(400);
      expect(two.text).toContain('more than one Host header');
    }
  });

  it('with a token, /metrics needs it too (Prometheus sends it); /healthz and /readyz stay open', async () => {
    const port = await serve([], { SENTINEL_DASHBOARD_TOKEN: TOKEN });
    const head = (path: string, auth?: string): string =>
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `${auth ? `Authorization: Bearer ${auth}\r\n` : ''}Connection: close\r\n\r\n`;
    expect((await raw(port, head('/metrics'))).status).toBe(401);
    expect((await raw(port, head('/metrics', 'wrong-token-000000000'))).status).toBe(401);
    const ok = await raw(port, head('/metrics', TOKEN));
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('sentinel_build_info');
    expect((await raw(port, head('/healthz'))).status).toBe(200);
    expect([200, 503]).toContain((await raw(port, head('/readyz'))).status);
  });

  it(
    '--metrics-without-token keeps /metrics open for a scraper ' + 'that cannot send one; /api/* still needs it',
    async () => {
      const port = await serve(['--metrics-without-token'], { SENTINEL_DASHBOARD_TOKEN: TOKEN });
      expect((await raw(port, 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')).status).toBe(
        200,
      );
      expect((await raw(port, 'GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')).status).toBe(
        401,
      );
    },
  );
});
