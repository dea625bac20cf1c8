import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Redactor } from '../../src/util/redact.js';
import { problemsOf } from '../helpers/config-errors.js';
import { useTempFiles } from '../helpers/temp-files.js';

/**
 * Supabase's API keys in the configuration: SUPABASE_SECRET_KEY / `secret_key` beside
 * SUPABASE_SERVICE_ROLE_KEY / `service_role_key`, which wins, what is refused (each in
 * one line that never shows the key), and that the key is masked in all output.
 */

const temp = useTempFiles('sentinel-keys-');
const { file } = temp;

const DB = 'postgres://sentinel:pw-123456@db.example:5432/app';
const SUPABASE = 'https://xyz.supabase.co';
/** Shaped like Supabase's keys: a prefix and a random part. */
const SECRET = `sb_secret_${randomBytes(24).toString('base64url')}`;
const OTHER_SECRET = `sb_secret_${randomBytes(24).toString('base64url')}`;
const PUBLISHABLE = `sb_publishable_${randomBytes(24).toString('base64url')}`;
/** A legacy key's shape: three base64url parts, the payload `{"role":"service_role"}`. */
const JWT = [
  Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url'),
  Buffer.from('{"role":"service_role","iss":"supabase"}').toString('base64url'),
  randomBytes(32).toString('base64url'),
].join('.');

/** Every problem is one line, names its setting and never shows a key. */
function expectOneLineWithoutKeys(problems: string[]): void {
  for (const p of problems) {
    expect(p).not.toContain('\n');
    for (const key of [SECRET, OTHER_SECRET, PUBLISHABLE, JWT]) expect(p).not.toContain(key);
    expect(p).not.toMatch(/sb_secret_[A-Za-z0-9]/);
  }
}

describe('Supabase API keys from the environment', () => {
  it('takes an sb_secret_ key from SUPABASE_SECRET_KEY and collects it as a secret', async () => {
    const config = await loadConfig({ env: { DATABASE_URL: DB, SUPABASE_URL: SUPABASE, SUPABASE_SECRET_KEY: SECRET } });
    expect(config.env).toMatchObject({ restUrl: `${SUPABASE}/rest/v1`, serviceRoleKey: SECRET });
    expect(config.secrets).toContain(SECRET);
  });

  it('still takes the legacy service_role JWT from SUPABASE_SERVICE_ROLE_KEY', async () => {
    const config = await loadConfig({
      env: { DATABASE_URL: DB, SUPABASE_URL: SUPABASE, SUPABASE_SERVICE_ROLE_KEY: JWT },
    });
    expect(config.env.serviceRoleKey).toBe(JWT);
    expect(config.secrets).toContain(JWT);
  });

  it('accepts either kind of key in either variable: the key itself decides the headers', async () => {
    const secretInOld = await loadConfig({
      env: { DATABASE_URL: DB, SUPABASE_URL: SUPABASE, SUPABASE_SERVICE_ROLE_KEY: SECRET },
    });
    expect(secretInOld.env.serviceRoleKey).toBe(SECRET);
    const jwtInNew = await loadConfig({ env: { DATABASE_URL: DB, SUPABASE_URL: SUPABASE, SUPABASE_SECRET_KEY: JWT } });
    expect(jwtInNew.env.serviceRoleKey).toBe(JWT);
  });

  it('refuses SUPABASE_SECRET_KEY and SUPABASE_SERVICE_ROLE_KEY together, in one line', async () => {
    const problems = await problemsOf(
      loadConfig({
        env: { DATABASE_URL: DB, SUPABASE_URL: SUPABASE, SUPABASE_SECRET_KEY: SECRET, SUPABASE_SERVICE_ROLE_KEY: JWT },
      }),
    );
    expect(problems).toEqual([
      'SUPABASE_SECRET_KEY and SUPABASE_SERVICE_ROLE_KEY are both set: set only one (SUPABASE_SECRET_KEY for an ' +
        'sb_secret_ key, SUPABASE_SERVICE_ROLE_KEY for the legacy service_role JWT)',
    ]);
    expectOneLineWithoutKeys(problems);
  });

  it('refuses a publishable key: it maps to the anon role, which cannot read the ops views', async () => {
    for (const variable of ['SUPABASE_SECRET_KEY', 'SUPABASE_SERVICE_ROLE_KEY']) {
      const problems = await problemsOf(
        loadConfig({ env: { DATABASE_URL: DB, SUPABASE_URL: SUPABASE, [variable]: PUBLISHABLE } }),
      );
      expect(problems).toEqual([
        `${variable}: this is a publishable key (sb_publishable_…), which maps to the anon role and cannot read the ` +
          'ops views: use a secret key (sb_secret_…, Project Settings → API Keys) or the legacy service_role JWT',
      ]);
      expectOneLineWithoutKeys(problems);
    }
  });

  it('refuses an sb_ key aimed at a plain PostgREST, whichever setting names it', async () => {
    const path = await file(
      'plain.yaml',
      'environments:\n  dev:\n    database_url: postgres://file/db\n    postgrest_url: http://rest.internal:3000\n',
    );
    const cases: [NodeJS.ProcessEnv, { postgrestUrl?: string; config?: string }, string][] = [
      [{ DATABASE_URL: DB, POSTGREST_URL: 'http://localhost:3000', SUPABASE_SECRET_KEY: SECRET }, {}, 'POSTGREST_URL'],
      [{ DATABASE_URL: DB, SUPABASE_SECRET_KEY: SECRET }, { postgrestUrl: 'http://localhost:3000' }, '--postgrest-url'],
      [{ SUPABASE_SECRET_KEY: SECRET }, { config: path }, 'environments.dev.postgrest_url'],
    ];
    for (const [env, flags, setting] of cases) {
      const problems = await problemsOf(loadConfig({ env, flags }));
      expect(problems).toEqual([
        `SUPABASE_SECRET_KEY: an sb_secret_ key works only through Supabase's API gateway (SUPABASE_URL), but ` +
          `${setting} points at a plain PostgREST, which only understands JWTs: use a JWT signed with its ` +
          'jwt-secret, or set SUPABASE_URL instead',
      ]);
      expectOneLineWithoutKeys(problems);
    }
  });

  it('lets a JWT through to a plain PostgREST, as before', async () => {
    const config = await loadConfig({
      env: { DATABASE_URL: DB, POSTGREST_URL: 'http://localhost:3000', SUPABASE_SERVICE_ROLE_KEY: JWT },
    });
    expect(config.env).toMatchObject({ restUrl: 'http://localhost:3000', serviceRoleKey: JWT });
  });

  it('says where a pasted line break is without showing the new key', async () => {
    const problems = await problemsOf(
      loadConfig({ env: { DATABASE_URL: DB, SUPABASE_URL: SUPABASE, SUPABASE_SECRET_KEY: `${SECRET}\n` } }),
    );
    expect(problems).toEqual([
      `SUPABASE_SECRET_KEY: contains a line break (character ${SECRET.length + 1} of ${SECRET.length + 1}): a key ` +
        'has no whitespace or control characters; copy it again without them',
    ]);
    expectOneLineWithoutKeys(problems);
  });
});

describe('Supabase API keys in the config file', () => {
  it('reads environments.<name>.secret_key, ${VAR} substituted, and collects it as a secret', async () => {
    const path = await file(
      'secret.yaml',
      `environments:\n  prod:\n    database_url: ${DB}\n    supabase_url: ${SUPABASE}\n` +
        `    secret_key: \${PROD_SECRET}\n`,
    );
    const config = await loadConfig({ env: { SENTINEL_CONFIG: path, SUPABASE_MODE: 'prod', PROD_SECRET: SECRET } });
    expect(config.env).toMatchObject({ name: 'prod', serviceRoleKey: SECRET });
    expect(config.secrets).toContain(SECRET);
  });

  it('refuses secret_key and service_role_key in one environment, naming it', async () => {
    const path = await file(
      'both.yaml',
      `environments:\n  prod:\n    database_url: ${DB}\n    supabase_url: ${SUPABASE}\n    secret_key: ${SECRET}\n` +
        `    service_role_key: ${JWT}\n`,
    );
    const problems = await problemsOf(loadConfig({ env: { SENTINEL_CONFIG: path, SUPABASE_MODE: 'prod' } }));
    expect(problems).toEqual([
      'environments.prod: set secret_key or service_role_key, not both (secret_key for an sb_secret_ key, ' +
        'service_role_key for the legacy service_role JWT)',
    ]);
    expectOneLineWithoutKeys(problems);
  });

  it('refuses a publishable secret_key, naming the setting', async () => {
    const path = await file(
      'publishable.yaml',
      `environments:\n  prod:\n    database_url: ${DB}\n    supabase_url: ${SUPABASE}\n` +
        `    secret_key: ${PUBLISHABLE}\n`,
    );
    const problems = await problemsOf(loadConfig({ env: { SENTINEL_CONFIG: path, SUPABASE_MODE: 'prod' } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^environments\.prod\.secret_key: this is a publishable key \(sb_publishable_…\)/);
    expectOneLineWithoutKeys(problems);
  });

  it('lets the environment beat the file, as for every other setting', async () => {
    const path = await file(
      'precedence.yaml',
      `environments:\n  dev:\n    database_url: ${DB}\n    supabase_url: ${SUPABASE}\n` +
        `    secret_key: ${OTHER_SECRET}\n`,
    );
    const viaSecret = await loadConfig({ env: { SENTINEL_CONFIG: path, SUPABASE_SECRET_KEY: SECRET } });
    expect(viaSecret.env.serviceRoleKey).toBe(SECRET);
    const viaServiceRole = await loadConfig({ env: { SENTINEL_CONFIG: path, SUPABASE_SERVICE_ROLE_KEY: JWT } });
    expect(viaServiceRole.env.serviceRoleKey).toBe(JWT);
    // The file's key is still masked: it is in the file, and the file is output's business too.
    expect(viaServiceRole.secrets).toEqual(expect.arrayContaining([JWT, OTHER_SECRET]));
  });
});

describe('redaction of secret keys', () => {
  it('masks the configured key wherever it appears', async () => {
    const config = await loadConfig({ env: { DATABASE_URL: DB, SUPABASE_URL: SUPABASE, SUPABASE_SECRET_KEY: SECRET } });
    const redactor = new Redactor(config.secrets);
    expect(redactor.redact(`apikey: ${SECRET} refused`)).toBe('apikey: *** refused');
  });

  it('masks any sb_secret_ value, even one Sentinel was never given (a gateway echoing another key)', () => {
    const redactor = new Redactor([SECRET]);
    const text = redactor.redact(`{"message":"Unregistered API key ${OTHER_SECRET}","hint":"key=${SECRET}"}`);
    expect(text).toBe('{"message":"Unregistered API key sb_secret_***","hint":"key=***"}');
    expect(text).not.toContain(OTHER_SECRET.slice('sb_secret_'.length));
  });
});
