import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import {
  type RunningPostgrest,
  serviceRoleKey,
  setupPostgrestRoles,
  startPostgrest,
} from '../../src/postgrest/server.js';

/** A real PostgREST 12.0.2 serving `public,ops` of a test database, with roles of its own. */
export interface OpsPostgrest {
  rest: RunningPostgrest;
  /** A JWT for the service role (the only role that reads ops, as on Supabase). */
  serviceKey: string;
  /** A JWT for the anon role, which may not read ops. */
  anonKey: string;
  stop: () => Promise<void>;
}

/**
 * Roles with a random suffix (authenticator, anon, service role; tests share a server), ops readable by
 * the service role only, PostgREST started on the database at `url`.
 */
export async function startOpsPostgrest(pool: pg.Pool, url: string): Promise<OpsPostgrest> {
  const suffix = randomBytes(4).toString('hex');
  const roles = {
    authenticator: `sentinel_auth_${suffix}`,
    anon: `sentinel_anon_${suffix}`,
    serviceRole: `sentinel_svc_${suffix}`,
  };
  const password = randomBytes(12).toString('hex');
  const jwtSecret = randomBytes(32).toString('hex');
  await setupPostgrestRoles(pool, { ...roles, password });
  await pool.query(`revoke select on all tables in schema ops from ${roles.anon}`);
  const uri = new URL(url);
  uri.username = roles.authenticator;
  uri.password = password;
  const rest = await startPostgrest({ dbUri: uri.toString(), schemas: 'public,ops', anonRole: roles.anon, jwtSecret });
  return {
    rest,
    serviceKey: serviceRoleKey(jwtSecret, roles.serviceRole),
    anonKey: serviceRoleKey(jwtSecret, roles.anon),
    stop: () => rest.stop(),
  };
}
