/**
 * What kind of trouble a database error is. A run asks this after every failure so
 * that one root cause (the server gone, a session killed, a table locked) becomes
 * one finding instead of one per check.
 */

/** Socket and TLS failures: the server cannot be reached or spoken to at all. */
/** PostgreSQL error codes (SQLSTATE) Sentinel tells apart: a missing migration, a missing grant, a replica. */
export const SQLSTATE = {
  undefinedTable: '42P01',
  undefinedFunction: '42883',
  insufficientPrivilege: '42501',
  readOnlyTransaction: '25006',
} as const;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EPROTO',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * SQLSTATEs that mean "no usable session": connection exceptions (class 08),
 * authentication (class 28), a database that does not exist, the server shutting
 * down or terminating the session (57P01–57P03, a failover or pooler restart), too
 * many connections.
 */
function isSessionSqlState(code: string): boolean {
  return (
    code.startsWith('08') || code.startsWith('28') || code === '3D000' || code === '53300' || /^57P0[1-3]$/.test(code)
  );
}

/** Messages node-postgres uses for a connection that failed or died, without a code. */
const CONNECTION_MESSAGE_TIMEOUT =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|not queryable/;
const CONNECTION_MESSAGE_TLS =
  /server does not support SSL|self[- ]signed certificate|unable to verify the first certificate|socket hang up/;
const CONNECTION_MESSAGE = new RegExp(`${CONNECTION_MESSAGE_TIMEOUT.source}|${CONNECTION_MESSAGE_TLS.source}`, 'i');

/**
 * True when the error means the database could not be reached or the session died: the rest of the run will not fare
 * better.
 */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.some(isConnectionError);
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (
    typeof code === 'string' &&
    (NETWORK_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || isSessionSqlState(code))
  )
    return true;
  if (CONNECTION_MESSAGE.test(err.message)) return true;
  return err.cause !== undefined && err.cause !== err && isConnectionError(err.cause);
}

/**
 * The session died under a query that had been sent on an open connection (the
 * backend was terminated, the socket closed). A new connection may well work, unlike
 * a refused or timed-out connection attempt.
 */
export function isSessionLost(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return (
    code === '57P01' ||
    code === '57P02' ||
    code === 'ECONNRESET' ||
    /Connection terminated unexpectedly|not queryable/i.test(err.message)
  );
}

/** `canceling statement due to lock timeout` (55P03) or `… statement timeout` (57014). */
export function isStatementTimeout(err: unknown): boolean {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return code === '55P03' || code === '57014';
}

/** One line a person can act on, from whatever a driver threw. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = err.message || code || err.name;
    if (code === 'ECONNREFUSED') return `connection refused (${message.replace(/^connect ECONNREFUSED /, '')})`;
    if (code === 'ENOTFOUND') return `host not found (${message.replace(/^getaddrinfo ENOTFOUND /, '')})`;
    if (/Connection terminated due to connection timeout|timeout exceeded when trying to connect/i.test(message)) {
      return 'timed out connecting to the database';
    }
    return message.split('\n')[0]!;
  }
  return String(err);
}
