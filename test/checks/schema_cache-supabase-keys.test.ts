import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { schemaCacheCheck, userAgent } from '../../src/checks/schema_cache.js';
import type { CheckOutput } from '../../src/checks/types.js';
import { loadConfig } from '../../src/config/load.js';
import type { Logger } from '../../src/log.js';
import type { Alert } from '../../src/types.js';
import { sentinelVersion } from '../../src/util/version.js';
import { testContext } from '../helpers/context.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import {
  answers,
  type FakeAnswer,
  type FakePostgrest,
  type RecordedRequest,
  startFakePostgrest,
} from '../helpers/fake-postgrest.js';

/**
 * The schema_cache probe through a local server that answers as Supabase's API gateway
 * documents for each kind of key (supabase.com/docs/guides/api/api-keys, "Understanding
 * API keys"; the knowledge-base article on 401 UNAUTHORIZED_MISSING_API_KEY):
 *
 * - a secret key (`sb_secret_…`) in `apikey` is accepted and maps to service_role;
 * - a secret key from a browser (the gateway matches on User-Agent) is always HTTP 401;
 * - a publishable or secret key in `Authorization: Bearer` is forwarded only when it equals
 *   the `apikey` header, and then PostgREST rejects it as not a JWT;
 * - no `apikey` (a secret key sent only as a Bearer token) is 401 with
 *   `sb-error-code: UNAUTHORIZED_MISSING_API_KEY`, "No API key found in request";
 * - a key the project does not know (deleted, another project's) is 401
 *   "Unregistered API key"; a legacy JWT it does not know is 401 "Invalid API key";
 * - a publishable key maps to the anon role, which may not read the ops schema: PostgREST
 *   answers 401 42501.
 *
 * The whole path is the real one: environment → loadConfig → the check → HTTP.
 */

const SECRET = `sb_secret_${randomBytes(24).toString('base64url')}`;
const DELETED_SECRET = `sb_secret_${randomBytes(24).toString('base64url')}`;
const PUBLISHABLE = `sb_publishable_${randomBytes(24).toString('base64url')}`;
const SERVICE_ROLE_JWT = [
  Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url'),
  Buffer.from('{"role":"service_role","iss":"supabase"}').toString('base64url'),
  randomBytes(32).toString('base64url'),
].join('.');
const WRONG_JWT = SERVICE_ROLE_JWT.replace(/\.[^.]+$/, `.${randomBytes(32).toString('base64url')}`);
const ALL_KEYS = [SECRET, DELETED_SECRET, PUBLISHABLE, SERVICE_ROLE_JWT, WRONG_JWT];

/** What browsers send: every one starts with Mozilla/5.0. */
const BROWSER_AGENT = /^Mozilla\/\d/;
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

function header(req: RecordedRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** PostgREST's answer to a Bearer value that is not a JWT (what the gateway forwards). */
const notAJwt = (): FakeAnswer => ({
  status: 401,
  body: { code: 'PGRST301', details: null, hint: null, message: 'Expected 3 parts in JWT; got 1' },
  headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"', 'Proxy-Status': 'PostgREST; error=PGRST301' },
});

/** The anon role on ops.v_pipeline_health: no USAGE on schema ops (the migration grants service_role only). */
const anonDenied = (): FakeAnswer => ({
  status: 401,
  body: { code: '42501', details: null, hint: null, message: 'permission denied for schema ops' },
  headers: { 'Proxy-Status': 'PostgREST; error=42501' },
});

interface Gateway {
  /** Keys the project knows. */
  secrets: Set<string>;
  publishable: Set<string>;
  jwts: Set<string>;
  /** A proxy in front that replaces the User-Agent (e.g. with a browser's). */
  rewriteAgent?: string;
  /** What service_role gets from PostgREST. */
  upstream: () => FakeAnswer;
}

/** Supabase's API gateway, as documented, in front of a PostgREST answering `upstream`. */
function gateway(g: Gateway): (req: RecordedRequest) => FakeAnswer {
  return (req) => {
    const apikey = header(req, 'apikey');
    const authorization = header(req, 'authorization');
    const agent = g.rewriteAgent ?? header(req, 'user-agent') ?? '';
    if (!apikey) return answers.gatewayMissingApiKey();
    const newKey = apikey.startsWith('sb_secret_') || apikey.startsWith('sb_publishable_');
    if (newKey) {
      const known = apikey.startsWith('sb_secret_') ? g.secrets : g.publishable;
      if (!known.has(apikey)) return answers.gatewayUnregisteredKey();
      if (apikey.startsWith('sb_secret_') && BROWSER_AGENT.test(agent)) return answers.gatewaySecretKeyInBrowser();
      if (authorization !== undefined) {
        // Forwarded only when it equals apikey, and then PostgREST finds it is not a JWT.
        return authorization === `Bearer ${apikey}` ? notAJwt() : answers.gateway401();
      }
      return apikey.startsWith('sb_secret_') ? g.upstream() : anonDenied();
    }
    if (!g.jwts.has(apikey)) return answers.gateway401();
    return g.upstream();
  };
}

let db: TestDb;
let fake: FakePostgrest;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  fake = await startFakePostgrest();
  fake.answerWith(
    gateway({
      secrets: new Set([SECRET]),
      publishable: new Set([PUBLISHABLE]),
      jwts: new Set([SERVICE_ROLE_JWT]),
      upstream: () => answers.ok([{ status: 'processing', batch_count: 2 }]),
    }),
  );
});
afterEach(async () => {
  await fake?.close();
});

/** Everything the check logged, to prove no key is in it. */
function recordingLogger(lines: string[]): Logger {
  const keep = (m: string): void => void lines.push(m);
  return { debug: keep, info: keep, warn: keep, error: keep };
}

/** Loads the configuration from `env` (as Sentinel does) and runs the check once against the fake gateway. */
async function probe(env: NodeJS.ProcessEnv): Promise<{ output: CheckOutput; logged: string[] }> {
  const config = await loadConfig({ env: { DATABASE_URL: db.url, SUPABASE_URL: fake.url, ...env } });
  const ctx = testContext(db.pool, new Date('2026-01-05T10:00:00Z'), config);
  const logged: string[] = [];
  ctx.logger = recordingLogger(logged);
  return { output: await schemaCacheCheck.run(ctx), logged };
}

function onlyAlert(output: CheckOutput): Alert {
  if (!Array.isArray(output)) throw new Error(`expected alerts, got skipped: ${output.skipped}`);
  expect(output).toHaveLength(1);
  return output[0]!;
}

function expectNoKeyIn(text: string): void {
  for (const key of ALL_KEYS) expect(text).not.toContain(key);
  expect(text).not.toMatch(/sb_secret_[A-Za-z0-9]/);
}

describe('the headers each kind of key sends', () => {
  it('sends an sb_secret_ key in apikey only, never as a Bearer token, and passes the gateway', async () => {
    const { output, logged } = await probe({ SUPABASE_SECRET_KEY: SECRET });
    expect(output).toEqual([]);
    expect(fake.requests).toHaveLength(1);
    const [req] = fake.requests;
    expect(req!.path).toBe('/rest/v1/v_pipeline_health?limit=1');
    expect(header(req!, 'apikey')).toBe(SECRET);
    expect(req!.headers.authorization).toBeUndefined();
    expect(header(req!, 'accept-profile')).toBe('ops');
    expectNoKeyIn(logged.join('\n'));
  });

  it('sends an sb_secret_ key the same way when it sits in SUPABASE_SERVICE_ROLE_KEY', async () => {
    expect((await probe({ SUPABASE_SERVICE_ROLE_KEY: SECRET })).output).toEqual([]);
    expect(header(fake.requests[0]!, 'apikey')).toBe(SECRET);
    expect(fake.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('sends a legacy service_role JWT in both apikey and Authorization: Bearer, as before', async () => {
    expect((await probe({ SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_JWT })).output).toEqual([]);
    const [req] = fake.requests;
    expect(header(req!, 'apikey')).toBe(SERVICE_ROLE_JWT);
    expect(header(req!, 'authorization')).toBe(`Bearer ${SERVICE_ROLE_JWT}`);
  });

  it("sends Sentinel's own User-Agent, which is not a browser's", async () => {
    await probe({ SUPABASE_SECRET_KEY: SECRET });
    const agent = header(fake.requests[0]!, 'user-agent');
    expect(agent).toBe(`sentinel/${sentinelVersion()}`);
    expect(agent).toBe(userAgent());
    expect(agent).not.toMatch(BROWSER_AGENT);
    expect(agent).not.toMatch(/Mozilla|Chrome|Safari|Firefox|Gecko|AppleWebKit/);
  });
});

describe('the fake gateway answers as documented (a naive client, for reference)', () => {
  /** One GET with exactly these headers. */
  async function get(headers: Record<string, string>): Promise<{ status: number; body: unknown; code?: string }> {
    return new Promise((resolve, reject) => {
      const req = http.get(`${fake.url}/rest/v1/v_pipeline_health?limit=1`, { headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(text),
            ...(typeof res.headers['sb-error-code'] === 'string' ? { code: res.headers['sb-error-code'] } : {}),
          }),
        );
      });
      req.on('error', reject);
    });
  }

  it('refuses a secret key from a browser, a secret key as Bearer only, or both headers with it', async () => {
    expect(await get({ apikey: SECRET, 'User-Agent': CHROME })).toEqual({
      status: 401,
      body: { message: 'Forbidden use of secret API key in browser' },
    });
    expect(await get({ Authorization: `Bearer ${SECRET}`, 'User-Agent': 'curl/8.5.0' })).toMatchObject({
      status: 401,
      code: 'UNAUTHORIZED_MISSING_API_KEY',
      body: { message: 'No API key found in request' },
    });
    // What Sentinel sent before: both headers. The gateway forwards it and PostgREST says it is no JWT.
    expect(await get({ apikey: SECRET, Authorization: `Bearer ${SECRET}`, 'User-Agent': 'curl/8.5.0' })).toMatchObject({
      status: 401,
      body: { code: 'PGRST301' },
    });
  });

  it('answers a publishable key as the anon role, which may not read ops (why the config refuses it)', async () => {
    expect(await get({ apikey: PUBLISHABLE, 'User-Agent': 'curl/8.5.0' })).toMatchObject({
      status: 401,
      body: { code: '42501', message: 'permission denied for schema ops' },
    });
  });
});

describe('what the user sees for the gateway 401 answers', () => {
  it('a deleted (rotated-out) secret key: "Unregistered API key", and where to check the key', async () => {
    const { output, logged } = await probe({ SUPABASE_SECRET_KEY: DELETED_SECRET });
    const alert = onlyAlert(output);
    expect(alert).toMatchObject({
      level: 'critical',
      message: 'PostgREST rejected the request: HTTP 401',
      details: { status: 401, code: null, error: 'Unregistered API key' },
    });
    expect(alert.remediation).toBe(
      'Check the secret key (SUPABASE_SECRET_KEY, or SUPABASE_SERVICE_ROLE_KEY if it is set there): it must be an ' +
        "active sb_secret_ key of this project (Project Settings → API Keys); a deleted key or another project's " +
        'answers "Unregistered API key".',
    );
    expect(fake.requests[0]!.headers.authorization).toBeUndefined();
    expectNoKeyIn(JSON.stringify(alert));
    expectNoKeyIn(logged.join('\n'));
  });

  it('a secret key taken for a browser (a proxy rewrote the User-Agent): says so and names the agent', async () => {
    fake.answerWith(
      gateway({
        secrets: new Set([SECRET]),
        publishable: new Set(),
        jwts: new Set(),
        rewriteAgent: CHROME,
        upstream: () => answers.ok(),
      }),
    );
    const alert = onlyAlert((await probe({ SUPABASE_SECRET_KEY: SECRET })).output);
    expect(alert).toMatchObject({
      message: 'PostgREST rejected the request: HTTP 401',
      details: { status: 401, error: 'Forbidden use of secret API key in browser' },
    });
    expect(alert.remediation).toBe(
      "Supabase's gateway took the request for a browser's and refuses secret keys from browsers: Sentinel sends " +
        `User-Agent sentinel/${sentinelVersion()}; check that no proxy between Sentinel and Supabase replaces it.`,
    );
    expectNoKeyIn(JSON.stringify(alert));
  });

  it('a legacy JWT the project does not know: "Invalid API key", and the service-role key named', async () => {
    const alert = onlyAlert((await probe({ SUPABASE_SERVICE_ROLE_KEY: WRONG_JWT })).output);
    expect(alert).toMatchObject({
      message: 'PostgREST rejected the request: HTTP 401',
      details: { status: 401, code: null, error: 'Invalid API key' },
    });
    expect(alert.remediation).toMatch(
      /^Check the service-role key \(SUPABASE_SERVICE_ROLE_KEY, or SUPABASE_SECRET_KEY/,
    );
    expect(alert.remediation).toContain('secret key (sb_secret_…, Project Settings → API Keys)');
    expectNoKeyIn(JSON.stringify(alert));
  });

  it('no key at all: "No API key found in request", and the two variables to set', async () => {
    const alert = onlyAlert((await probe({})).output);
    expect(alert).toMatchObject({ details: { status: 401, error: 'No API key found in request' } });
    expect(alert.remediation).toBe(
      'No API key is configured: set SUPABASE_SECRET_KEY (a secret key, sb_secret_…, from Project Settings → API ' +
        'Keys) or SUPABASE_SERVICE_ROLE_KEY (the legacy service_role JWT).',
    );
  });

  it('masks sb_secret_ values the gateway echoes back, the configured key and any other', async () => {
    fake.answerWith(() => ({
      status: 401,
      body: { message: `Unregistered API key ${DELETED_SECRET}`, hint: `You sent ${SECRET}` },
    }));
    const { output, logged } = await probe({ SUPABASE_SECRET_KEY: SECRET });
    const alert = onlyAlert(output);
    expect(alert.details).toMatchObject({ error: 'Unregistered API key sb_secret_***', hint: 'You sent ***' });
    expectNoKeyIn(JSON.stringify(alert));
    expectNoKeyIn(logged.join('\n'));
  });

  it('masks an sb_secret_ value inside a body that is not JSON (a proxy page)', async () => {
    fake.answerWith(() => ({
      status: 401,
      body: `<html>denied for apikey=${DELETED_SECRET}</html>`,
      headers: { 'Content-Type': 'text/html' },
    }));
    const alert = onlyAlert((await probe({ SUPABASE_SECRET_KEY: SECRET })).output);
    expect(alert.details).toMatchObject({ error: '<html>denied for apikey=sb_secret_***</html>' });
    expectNoKeyIn(JSON.stringify(alert));
  });
});
