import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { parse, toClientConfig } from 'pg-connection-string';
import { whyUnreadable } from '../util/errors.js';

/**
 * How every PostgreSQL connection of Sentinel reads its URL, with libpq's
 * meaning of `sslmode` (https://www.postgresql.org/docs/current/libpq-ssl.html),
 * the one Supabase's connection strings and every PostgreSQL tool assume:
 *
 * | sslmode | encrypted | server certificate verified | host name checked |
 * |---|---|---|---|
 * | `disable` | no | – | – |
 * | `prefer` (libpq's default) | yes, or fails: node-postgres cannot fall back to plaintext | no | no |
 * | `require` (Supabase's strings) | yes | no (with `sslrootcert`: yes, as `verify-ca`) | no |
 * | `verify-ca` | yes | against `sslrootcert` | no |
 * | `verify-full` | yes | against `sslrootcert`, or the system CAs with `sslrootcert=system` | yes |
 *
 * node-postgres 8 reads `require` as `verify-full` instead and prints an 8-line
 * "SECURITY WARNING" on every process start; with its libpq-compatible parsing
 * (`useLibpqCompat`) both the surprise and the warning go away. `sslmode=allow`
 * (plaintext first) is refused: node-postgres cannot try one and then the other.
 */

/** The sslmode values Sentinel accepts. */
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/**
 * node-postgres client settings for `url`, sslmode read as libpq does. Throws on a URL {@link connectionProblem}
 * refuses.
 */
export function connectionConfig(url: string): pg.ClientConfig {
  const parsed = new URL(url);
  const params = parsed.searchParams;
  // libpq 16: `sslrootcert=system` means the system's trusted CAs, and implies verify-full.
  const systemCas = params.get('sslrootcert') === 'system';
  if (systemCas) {
    params.delete('sslrootcert');
    if (!params.has('sslmode') || params.get('sslmode') !== 'verify-full') params.set('sslmode', 'verify-full');
  }
  const explicitCompat = params.has('uselibpqcompat');
  const config = toClientConfig(parse(parsed.toString(), explicitCompat ? {} : { useLibpqCompat: true }));
  return config as pg.ClientConfig;
}

/**
 * What is wrong with the TLS settings of a connection URL, in one line naming
 * `label` (never the URL: it holds the password), or undefined. Checked when the
 * configuration loads, so that a bad sslmode or an unreadable CA file is exit 3
 * and not a failing connection on every run.
 */
export function connectionProblem(url: string, label: string): string | undefined {
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return undefined; // the URL's own check reports it
  }
  const mode = params.get('sslmode');
  if (mode !== null && !(SSL_MODES as readonly string[]).includes(mode)) {
    return mode === 'allow'
      ? `${label}: sslmode=allow is not supported (it tries plaintext first); use disable, prefer, require, ` +
          `verify-ca or verify-full`
      : `${label}: sslmode must be one of ${SSL_MODES.join(', ')} (got "${mode.slice(0, 40)}")`;
  }
  const root = params.get('sslrootcert');
  if (root !== null && root !== 'system') {
    try {
      readFileSync(root);
    } catch (err) {
      const why = whyUnreadable(err, (code) => code ?? 'unreadable');
      return `${label}: cannot read sslrootcert ${root}: ${why}`;
    }
  }
  if (mode === 'verify-ca' && root === null) {
    return (
      `${label}: sslmode=verify-ca needs sslrootcert=/path/to/ca.crt (the CA that signed the server's ` +
      `certificate), or use verify-full`
    );
  }
  for (const file of ['sslcert', 'sslkey']) {
    const path = params.get(file);
    if (path === null) continue;
    try {
      readFileSync(path);
    } catch {
      return `${label}: cannot read ${file} ${path}`;
    }
  }
  return undefined;
}
