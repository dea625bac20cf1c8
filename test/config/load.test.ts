import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { problemsOf } from '../helpers/config-errors.js';
import { useTempFiles } from '../helpers/temp-files.js';

const temp = useTempFiles('sentinel-config-');
const { file } = temp;

const DB = 'postgres://sentinel:pw-123456@db.example:5432/app';

describe('loadConfig', () => {
  it('applies the documented defaults when only DATABASE_URL is set', async () => {
    const config = await loadConfig({ env: { DATABASE_URL: DB } });
    expect(config.env).toEqual({ name: 'dev', databaseUrl: DB, restUrl: undefined, serviceRoleKey: undefined });
    expect(config.checks.stuck_batches.threshold_minutes).toBe(10);
    expect(config.checks.error_spike).toMatchObject({ threshold_pct: 15, min_rows: 100 });
    expect(config.checks.schema_cache.auto_reload).toBe(true);
  });

  it('refuses to run without a database instead of falling back to a demo', async () => {
    const problems = await problemsOf(loadConfig({ env: {} }));
    expect(problems).toEqual([
      'no database configured for environment "dev": set DATABASE_URL or environments.dev.database_url in the ' +
        'config file',
    ]);
  });

  it('picks the environment from SUPABASE_MODE and substitutes ${VAR} from the environment', async () => {
    const path = await file(
      'envs.yaml',
      `environments:
  prod:
    database_url: \${PROD_DATABASE_URL}
    supabase_url: https://xyz.supabase.co/
    service_role_key: \${PROD_KEY}
  dev:
    database_url: postgres://localhost/dev
`,
    );
    const config = await loadConfig({
      env: { SENTINEL_CONFIG: path, SUPABASE_MODE: 'prod', PROD_DATABASE_URL: DB, PROD_KEY: 'service-key-abcdef' },
    });
    expect(config.env).toEqual({
      name: 'prod',
      databaseUrl: DB,
      restUrl: 'https://xyz.supabase.co/rest/v1',
      serviceRoleKey: 'service-key-abcdef',
    });
    expect(config.secrets).toEqual(expect.arrayContaining(['pw-123456', 'service-key-abcdef']));
  });

  it('lets flags beat environment variables and environment variables beat the file', async () => {
    const path = await file(
      'precedence.yaml',
      `environments:\n  dev:\n    database_url: postgres://file/db\n    postgrest_url: ` +
        `http://file:3000\nchecks:\n  stuck_batches: { threshold_minutes: 20 }\n`,
    );
    const fromEnv = await loadConfig({
      flags: { config: path },
      env: { DATABASE_URL: 'postgres://env/db', POSTGREST_URL: 'http://env:3000/' },
    });
    expect(fromEnv.env.databaseUrl).toBe('postgres://env/db');
    expect(fromEnv.env.restUrl).toBe('http://env:3000');
    expect(fromEnv.checks.stuck_batches.threshold_minutes).toBe(20);
    const fromFlags = await loadConfig({
      flags: { config: path, databaseUrl: 'postgres://flag/db', postgrestUrl: 'http://flag:3000' },
      env: { DATABASE_URL: 'postgres://env/db', POSTGREST_URL: 'http://env:3000' },
    });
    expect(fromFlags.env.databaseUrl).toBe('postgres://flag/db');
    expect(fromFlags.env.restUrl).toBe('http://flag:3000');
    const fromFile = await loadConfig({ flags: { config: path }, env: {} });
    expect(fromFile.env.databaseUrl).toBe('postgres://file/db');
  });

  it('reports every bad setting at once, each by its path', async () => {
    const path = await file(
      'bad.yaml',
      `checks:
  stuck_batches: { threshold_minutes: "ten" }
  error_spike: { threshold_pct: 150, min_rows: 0 }
  stuck_batch: {}
sources:
  vendor_x: { error_spike_threshold_pct: -1 }
`,
    );
    const problems = await problemsOf(loadConfig({ flags: { config: path }, env: { DATABASE_URL: DB } }));
    expect(problems).toEqual(
      expect.arrayContaining([
        'checks.stuck_batches.threshold_minutes: expected a number',
        'checks.error_spike.threshold_pct: must be at most 100',
        'checks.error_spike.min_rows: must be at least 1',
        'checks.stuck_batch: unknown setting',
        'sources.vendor_x.error_spike_threshold_pct: must be at least 0',
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it('names a missing ${VAR} by the setting that needs it', async () => {
    const path = await file('missing-var.yaml', 'environments:\n  prod:\n    database_url: ${NOT_SET_ANYWHERE}\n');
    const problems = await problemsOf(loadConfig({ flags: { config: path, env: 'prod' }, env: {} }));
    expect(problems[0]).toBe('environments.prod.database_url: environment variable NOT_SET_ANYWHERE is not set');
  });

  it('says which environments exist when the chosen one is not in the file', async () => {
    const path = await file('only-prod.yaml', 'environments:\n  prod:\n    database_url: postgres://x/y\n');
    const problems = await problemsOf(loadConfig({ flags: { config: path }, env: { SUPABASE_MODE: 'staging' } }));
    expect(problems).toEqual([
      'no database configured for environment "staging" (the config file defines: prod): set DATABASE_URL or ' +
        'environments.staging.database_url in the config file',
    ]);
  });

  it('rejects a malformed database URL without echoing its password', async () => {
    const problems = await problemsOf(loadConfig({ env: { DATABASE_URL: 'mysql://u:topsecretpw@h/db' } }));
    expect(problems).toEqual(['DATABASE_URL: expected a postgres:// or postgresql:// connection URL']);
    expect(problems.join('\n')).not.toContain('topsecretpw');
  });

  it('reports an unreadable file and invalid YAML with a location', async () => {
    expect(
      await problemsOf(loadConfig({ flags: { config: join(temp.dir(), 'nope.yaml') }, env: { DATABASE_URL: DB } })),
    ).toEqual([`--config: cannot read config file ${join(temp.dir(), 'nope.yaml')}: file not found`]);
    const path = await file('broken.yaml', 'checks:\n  stuck_batches: [unclosed\n');
    const [problem] = await problemsOf(loadConfig({ flags: { config: path }, env: { DATABASE_URL: DB } }));
    expect(problem).toMatch(/broken\.yaml: invalid YAML at line \d+, column \d+/);
  });

  it('refuses both POSTGREST_URL and SUPABASE_URL in the environment', async () => {
    const problems = await problemsOf(
      loadConfig({ env: { DATABASE_URL: DB, POSTGREST_URL: 'http://a', SUPABASE_URL: 'https://b' } }),
    );
    expect(problems[0]).toMatch(/POSTGREST_URL and SUPABASE_URL are both set/);
  });

  it('keeps state in SENTINEL_STATE_DIR when set', async () => {
    const config = await loadConfig({ env: { DATABASE_URL: DB, SENTINEL_STATE_DIR: join(temp.dir(), 'state') } });
    expect(config.stateDir).toBe(join(temp.dir(), 'state'));
  });

  it('ignores unset ${VAR}s of environments other than the one being checked', async () => {
    const path = await file(
      'spec-example.yaml',
      `environments:
  prod:
    database_url: \${PROD_DATABASE_URL}
    supabase_url: https://xyz.supabase.co
    service_role_key: \${PROD_SERVICE_ROLE_KEY}
  dev:
    database_url: postgres://localhost/dev
`,
    );
    const config = await loadConfig({ flags: { config: path }, env: {} });
    expect(config.env.databaseUrl).toBe('postgres://localhost/dev');
    const problems = await problemsOf(loadConfig({ flags: { config: path, env: 'prod' }, env: {} }));
    expect(problems).toEqual([
      'environments.prod.database_url: environment variable PROD_DATABASE_URL is not set',
      'environments.prod.service_role_key: environment variable PROD_SERVICE_ROLE_KEY is not set',
    ]);
  });

  it('reports file errors without a follow-on "no database" line', async () => {
    const path = await file('bad-only.yaml', 'checks:\n  stuck_batches: { threshold_minutes: "x" }\n');
    expect(await problemsOf(loadConfig({ flags: { config: path }, env: {} }))).toEqual([
      'checks.stuck_batches.threshold_minutes: expected a number',
    ]);
  });

  it('resolves a relative state_dir against the config file, not the working directory', async () => {
    const path = await file('relative.yaml', 'alerting:\n  state_dir: ./state\n');
    const config = await loadConfig({ flags: { config: path }, env: { DATABASE_URL: DB } });
    expect(config.stateDir).toBe(join(temp.dir(), 'state'));
  });

  it('treats every value under a secret-looking key as secret, nested ones included', async () => {
    const path = await file(
      'secrets.yaml',
      `notifiers:
  - { name: hook, type: webhook, url: "https://h.example/x", headers: { X-Token: nested-token-123 } }
heartbeat_url: https://hc-ping.com/uuid-abcdef-123
`,
    );
    const config = await loadConfig({ flags: { config: path }, env: { DATABASE_URL: DB } });
    expect(config.secrets).toEqual(expect.arrayContaining(['nested-token-123', 'https://hc-ping.com/uuid-abcdef-123']));
  });
});

describe('replicas settings', () => {
  it('defaults to off, with a fixed bigint lock key derived from sentinel-leader', async () => {
    const config = await loadConfig({ env: { DATABASE_URL: DB } });
    expect(config.replicas.enabled).toBe(false);
    expect(config.replicas.state_database_url).toBeUndefined();
    expect(config.replicas.takeover_poll_seconds).toBeUndefined();
    expect(typeof config.replicas.lock_key).toBe('bigint');
    // sha256('sentinel-leader'), first 8 bytes, signed: fixed forever.
    const { createHash } = await import('node:crypto');
    expect(config.replicas.lock_key).toBe(createHash('sha256').update('sentinel-leader').digest().readBigInt64BE(0));
  });

  it(
    'resolves ${VAR} in state_database_url and masks its ' + 'password; takes a lock key beyond 2^53 as a string',
    async () => {
      const path = await file(
        'replicas.yaml',
        `replicas:\n  enabled: true\n  state_database_url: \${STATE_DB}\n  lock_key: "9007199254740993"\n  ` +
          `takeover_poll_seconds: 2\n`,
      );
      const config = await loadConfig({
        flags: { config: path },
        env: { DATABASE_URL: DB, STATE_DB: 'postgres://state:state-pw-98765@state.example/sentinel' },
      });
      expect(config.replicas).toEqual({
        enabled: true,
        state_database_url: 'postgres://state:state-pw-98765@state.example/sentinel',
        lock_key: 9007199254740993n,
        takeover_poll_seconds: 2,
      });
      expect(config.secrets).toContain('state-pw-98765');
    },
  );

  it('rejects a state_database_url that is not a postgres URL, a lock key out of range and unknown keys', async () => {
    const path = await file(
      'bad-replicas.yaml',
      `replicas:\n  enabled: yes-please\n  state_database_url: https://example.com\n  lock_key: ` +
        `"99999999999999999999"\n  poll: 1\n`,
    );
    const problems = await problemsOf(loadConfig({ flags: { config: path }, env: { DATABASE_URL: DB } }));
    expect(problems).toEqual(
      expect.arrayContaining([
        'replicas.enabled: expected a boolean',
        'replicas.state_database_url: expected a postgres:// or postgresql:// connection URL',
        'replicas.poll: unknown setting',
      ]),
    );
    expect(problems.some((p) => p.startsWith('replicas.lock_key:'))).toBe(true);
  });
});
