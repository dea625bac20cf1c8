import { isIP } from 'node:net';

/**
 * `--listen HOST:PORT` and `--metrics-port N`. Kept free of heavy imports: the CLI
 * validates these while parsing flags, before any command module loads.
 */

export interface ListenAddress {
  /** An IPv4 address, a host name, or an IPv6 address without brackets. */
  host: string;
  /** 0 asks the system for a free port (tests); the chosen one is logged. */
  port: number;
}

export const DEFAULT_LISTEN: ListenAddress = { host: '127.0.0.1', port: 9464 };

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * A port number: digits only, 0–65535 (0 = any free port). Throws a one-line reason (the caller names the flag and
 * value).
 */
export function parsePort(value: string): number {
  const text = value.trim();
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n > 65535)
    throw new Error(`the port must be a number from 1 to 65535 (0 picks a free one), not "${value}"`);
  return n;
}

/**
 * `127.0.0.1:9464`, `localhost:9464`, `0.0.0.0:9464`, `[::1]:9464`. IPv6 needs the
 * brackets: `::1:9464` could be read two ways. Throws a one-line reason.
 */
export function parseListen(value: string): ListenAddress {
  const text = value.trim();
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
  if (bracketed) {
    const host = bracketed[1]!;
    if (isIP(host) !== 6) throw new Error(`"${host}" is not an IPv6 address (expected [IPv6]:PORT, e.g. [::1]:9464)`);
    return { host, port: parsePort(bracketed[2]!) };
  }
  const colons = text.split(':').length - 1;
  if (colons > 1) throw new Error('put an IPv6 address in brackets, e.g. [::1]:9464');
  if (colons === 0) throw new Error('expected HOST:PORT, e.g. 127.0.0.1:9464');
  const [host, port] = text.split(':') as [string, string];
  if (host === '') throw new Error('the host is missing (expected HOST:PORT, e.g. 127.0.0.1:9464)');
  if (isIP(host) !== 4 && !HOST_NAME.test(host))
    throw new Error(`"${host}" is not a host name or IPv4 address (expected HOST:PORT, e.g. 127.0.0.1:9464)`);
  return { host, port: parsePort(port) };
}

/** `127.0.0.1:9464` or `[::1]:9464`, as it is written on the command line and in URLs. */
export function formatHostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}
