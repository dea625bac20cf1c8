import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Route } from './routes.js';

/**
 * Who may read what, as one pure function of the request and the server's setup
 * (src/server/routes.ts names each route's rule). The server asks it for every
 * request; test/server/access.test.ts pins it row by row.
 */

/** What {@link access} needs to know about the server and the request. */
export interface AccessContext {
  /** Whether the server listens on a loopback address. */
  loopback: boolean;
  /** The configured bearer token (`--auth-token`, SENTINEL_DASHBOARD_TOKEN); undefined: none. */
  token: string | undefined;
  /** The request's `Host` header. */
  host: string | undefined;
  /** The token of the request's `Authorization: Bearer …`, if any. */
  bearer: string | undefined;
  /** `--metrics-without-token`: `/metrics` stays open although a token is set. */
  metricsWithoutToken?: boolean;
}

/** `allow`, 401 (a token is needed and missing or wrong) or 421 (a `Host` that is not loopback: DNS rebinding). */
export type AccessVerdict = 'allow' | 401 | 421;

/**
 * The verdict for `route` (undefined: a path no route serves, which is a 404 once
 * the `Host` check passed). On loopback without a token, the `Host` header is the
 * protection against DNS rebinding, so every request must name a loopback host.
 */
export function access(route: Route | undefined, ctx: AccessContext): AccessVerdict {
  if (ctx.loopback && ctx.token === undefined && !isLoopbackHostHeader(ctx.host)) return 421;
  if (route === undefined || !needsToken(route, ctx)) return 'allow';
  return ctx.bearer !== undefined && ctx.token !== undefined && tokenMatches(ctx.bearer, ctx.token) ? 'allow' : 401;
}

function needsToken(route: Route, ctx: AccessContext): boolean {
  switch (route.access) {
    case 'public':
      return false;
    case 'loopback-or-token':
      return !ctx.loopback || ctx.token !== undefined;
    case 'token-if-configured':
      return ctx.token !== undefined && !ctx.metricsWithoutToken;
  }
}

/** Compares in constant time (both sides hashed first, so lengths leak nothing either). */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Whether a `Host` header names this machine's loopback: `localhost`,
 * `*.localhost`, a 127.x.x.x address or `[::1]`, with any port. Absent or
 * anything else (a domain that may have been rebound to 127.0.0.1): false.
 */
export function isLoopbackHostHeader(header: string | undefined): boolean {
  if (header === undefined) return false;
  const m = /^(\[[^\]]*\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(header.trim().toLowerCase());
  if (!m) return false;
  const name = m[1]!;
  if (name === '[::1]') return true;
  if (name === 'localhost' || (name.endsWith('.localhost') && /^[a-z0-9.-]+$/.test(name))) return true;
  return isIP(name) === 4 && name.startsWith('127.');
}
