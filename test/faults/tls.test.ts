import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPostgresServer, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { runCli } from '../helpers/cli.js';
import { requirePart } from '../helpers/parts.js';

/**
 * TLS to PostgreSQL as Supabase's connection strings use it, against a real
 * PostgreSQL with ssl=on and a CA made here with openssl: `sslmode=require` is
 * libpq's (encrypted, not verified) and prints no SECURITY WARNING; `verify-ca` and
 * `verify-full` verify against `sslrootcert`, `verify-full` also the host name; a
 * wrong CA or host is one clear line, and `require` against a server without TLS
 * fails instead of falling back to plaintext.
 */

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const run = requirePart('openssl', haveOpenssl(), 'apt-get install openssl');

describe.runIf(run)('TLS to PostgreSQL (real server, ssl=on, CA made with openssl)', () => {
  let dir: string;
  let server: EmbeddedPostgresServer;
  let ca: string;
  let otherCa: string;

  function openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sentinel-tls-'));
    chmodSync(dir, 0o755); // PostgreSQL runs as `postgres` when we are root: it reads the server key from here
    // A CA, a server certificate for DNS:localhost only (so 127.0.0.1 is a host-name mismatch), and an unrelated CA.
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=Sentinel test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    );
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
    );
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'san.ext',
      '-out',
      'server.crt',
    );
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=Someone else',
      '-keyout',
      'other.key',
      '-out',
      'other.crt',
    );
    const key = join(dir, 'server.key');
    chmodSync(key, 0o600);
    if (userInfo().uid === 0) {
      // PostgreSQL insists its key belongs to the user it runs as.
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(key, uid, gid);
    }
    ca = join(dir, 'ca.crt');
    otherCa = join(dir, 'other.crt');
    server = await startEmbeddedPostgres({
      postgresFlags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${join(dir, 'server.crt')}`, '-c', `ssl_key_file=${key}`],
    });
    const migrated = await runCli(
      ['migrate', '--with-intake'],
      { DATABASE_URL: withParams(server.url, { sslmode: 'require' }) },
      { timeoutMs: 120_000 },
    );
    expect(migrated.code, migrated.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function withParams(url: string, params: Record<string, string>, host?: string): string {
    const u = new URL(url);
    if (host) u.hostname = host;
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.toString();
  }

  async function nagios(url: string) {
    const r = await runCli(['--format', 'nagios'], { DATABASE_URL: url, SENTINEL_STATE_DIR: join(dir, 'state') });
    expect(r.stderr).not.toMatch(/SECURITY WARNING/);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stdout + r.stderr).not.toContain(new URL(server.url).password);
    return r;
  }

  it(
    "sslmode=require (Supabase's strings): encrypted, not " + 'verified, connects, and prints no SECURITY WARNING',
    async () => {
      const r = await nagios(withParams(server.url, { sslmode: 'require' }));
      expect(r.stdout).not.toContain('Database unreachable');
      expect(r.code).toBe(0);
    },
  );

  /** Whether a session made from `url` through connectionConfig() is encrypted (pg_stat_ssl), or the error it got. */
  async function sessionSsl(url: string): Promise<boolean | string> {
    const pg = (await import('pg')).default;
    const { connectionConfig } = await import('../../src/db/connect.js');
    const client = new pg.Client(connectionConfig(url));
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      return rows[0]!.ssl;
    } catch (err) {
      return (err as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
  }

  it('each sslmode means what libpq means (encrypted? verified? host name?)', async () => {
    expect(await sessionSsl(withParams(server.url, { sslmode: 'disable' }))).toBe(false);
    // prefer: encrypted when the server offers TLS, certificate not verified.
    expect(await sessionSsl(withParams(server.url, { sslmode: 'prefer' }))).toBe(true);
    // require with sslrootcert is verify-ca (libpq): the right CA passes at 127.0.0.1, a wrong one fails.
    expect(await sessionSsl(withParams(server.url, { sslmode: 'require', sslrootcert: ca }))).toBe(true);
    expect(await sessionSsl(withParams(server.url, { sslmode: 'require', sslrootcert: otherCa }))).toMatch(
      /certificate/,
    );
    // sslrootcert=system: the system's CAs, verify-full; they did not sign this server.
    expect(await sessionSsl(withParams(server.url, { sslrootcert: 'system' }, 'localhost'))).toMatch(/certificate/);
    expect(
      await sessionSsl(withParams(server.url, { sslmode: 'verify-full', sslrootcert: 'system' }, 'localhost')),
    ).toMatch(/certificate/);
  });

  it('the session made with sslmode=require really is encrypted', async () => {
    expect(await sessionSsl(withParams(server.url, { sslmode: 'require' }))).toBe(true);
  });

  it('sslmode=allow is refused at load in one line (node-postgres cannot try plaintext first)', async () => {
    const r = await runCli(['--json'], { DATABASE_URL: withParams(server.url, { sslmode: 'allow' }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      'sentinel: config error: DATABASE_URL: sslmode=allow is not supported (it tries plaintext first); use ' +
        'disable, prefer, require, verify-ca or verify-full\n',
    );
  });

  it('verify-full with the right CA and host name connects', async () => {
    const r = await nagios(withParams(server.url, { sslmode: 'verify-full', sslrootcert: ca }, 'localhost'));
    expect(r.code).toBe(0);
  });

  it('verify-ca with the right CA connects to 127.0.0.1 (no host-name check)', async () => {
    const r = await nagios(withParams(server.url, { sslmode: 'verify-ca', sslrootcert: ca }));
    expect(r.code).toBe(0);
  });

  it('verify-full with a CA that did not sign the server: one line, the certificate named, exit 2', async () => {
    const r = await nagios(withParams(server.url, { sslmode: 'verify-full', sslrootcert: otherCa }, 'localhost'));
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(
      new RegExp(
        '^SENTINEL CRITICAL - Database unreachable: (self[- ]signed certificate in certificate chai' +
          'n|unable to verify the first certificate|unable to get local issuer certificate)',
      ),
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('verify-full to a host name the certificate does not name: refused', async () => {
    const r = await nagios(withParams(server.url, { sslmode: 'verify-full', sslrootcert: ca }, '127.0.0.1'));
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(
      /^SENTINEL CRITICAL - Database unreachable: Hostname\/IP does not match certificate's altnames/,
    );
  });

  it('an unreadable sslrootcert or a bad sslmode is a config error naming the setting, exit 3', async () => {
    const missing = await runCli(['--json'], {
      DATABASE_URL: withParams(server.url, { sslmode: 'verify-full', sslrootcert: join(dir, 'nope.crt') }),
    });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toBe(
      `sentinel: config error: DATABASE_URL: cannot read sslrootcert ${join(dir, 'nope.crt')}: file not found\n`,
    );
    const bad = await runCli(['--json'], { DATABASE_URL: withParams(server.url, { sslmode: 'verify_full' }) });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toBe(
      'sentinel: config error: DATABASE_URL: sslmode must be one of disable, prefer, require, verify-ca, ' +
        'verify-full (got "verify_full")\n',
    );
  });

  it('sslmode=require against a server without TLS fails (no plaintext fallback)', async () => {
    const plain = await startEmbeddedPostgres();
    try {
      const r = await nagios(withParams(plain.url, { sslmode: 'require' }));
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stdout).toMatch(
        /^SENTINEL CRITICAL - Database unreachable: The server does not support SSL connections/,
      );
      // prefer cannot fall back to plaintext as libpq would: it fails the same way (documented).
      expect(await sessionSsl(withParams(plain.url, { sslmode: 'prefer' }))).toMatch(/does not support SSL/);
      expect(await sessionSsl(withParams(plain.url, { sslmode: 'disable' }))).toBe(false);
    } finally {
      await plain.stop();
    }
  }, 120_000);
});
