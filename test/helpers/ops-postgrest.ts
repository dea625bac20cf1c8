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

/** The roles of one real PostgREST on a test database, and how to reach it as them. */
export interface OpsRoles {
  /** Names with a random suffix: tests share a server. */
  roles: { authenticator: string; anon: string; serviceRole: string };
  jwtSecret: string;
  /** Creates the roles; ops readable by the service role only (as on Supabase). */
  create(pool: pg.Pool): Promise<void>;
  /** The authenticator's connection URL to the database at `url`. */
  dbUri(url: string): string;
  /** A JWT for `role`, signed with this PostgREST's secret. */
  jwt(role: string): string;
}

export function opsRoles(): OpsRoles {
  const suffix = randomBytes(4).toString('hex');
  const roles = {
    authenticator: `sentinel_auth_${suffix}`,
    anon: `sentinel_anon_${suffix}`,
    serviceRole: `sentinel_svc_${suffix}`,
  };
  const password = randomBytes(12).toString('hex');
  const jwtSecret = randomBytes(32).toString('hex');
  return {
    roles,
    jwtSecret,
    async create(pool) {
      await setupPostgrestRoles(pool, { ...roles, password });
      await pool.query(`revoke select on all tables in schema ops from ${roles.anon}`);
    },
    dbUri(url) {
      const uri = new URL(url);
      uri.username = roles.authenticator;
      uri.password = password;
      return uri.toString();
    },
    jwt: (role) => serviceRoleKey(jwtSecret, role),
  };
}

/** {@link opsRoles} created, and PostgREST started on the database at `url` serving `public,ops`. */
export async function startOpsPostgrest(pool: pg.Pool, url: string): Promise<OpsPostgrest> {
  const ops = opsRoles();
  await ops.create(pool);
  const rest = await startPostgrest({
    dbUri: ops.dbUri(url),
    schemas: 'public,ops',
    anonRole: ops.roles.anon,
    jwtSecret: ops.jwtSecret,
  });
  return {
    rest,
    serviceKey: ops.jwt(ops.roles.serviceRole),
    anonKey: ops.jwt(ops.roles.anon),
    stop: () => rest.stop(),
  };
}
