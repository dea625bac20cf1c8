import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgAlertStore } from '../../src/alerting/pg-store.js';
import { AlertStore } from '../../src/alerting/store.js';
import { PgRunHistory } from '../../src/history/pg-store.js';
import { FileRunHistory } from '../../src/history/store.js';
import { createRuntime } from '../../src/runtime.js';
import { useTestDatabase } from '../helpers/db.js';

/** The composition root: one choice of deployment, made from `replicas.enabled`. */
describe('createRuntime', () => {
  const db = useTestDatabase();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sentinel-runtime-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const runtimeWith = async (yaml: string, extra: NodeJS.ProcessEnv = {}) => {
    const path = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(path, yaml);
    const env = { DATABASE_URL: db().url, SENTINEL_STATE_DIR: dir, ...extra };
    return createRuntime({ config: path, logLevel: 'error' }, { env });
  };

  it('one process: state in files, no election', async () => {
    const runtime = await runtimeWith('{}\n', { NO_COLOR: '1', SENTINEL_DEBUG: '1' });
    expect(runtime.deployment.replicated).toBe(false);
    expect(runtime.deployment.alertStore()).toBeInstanceOf(AlertStore);
    expect(runtime.deployment.runHistory()).toBeInstanceOf(FileRunHistory);
    expect(await runtime.deployment.election(() => {})).toBeUndefined();
    // The process settings come from the same environment, read in src/config/env.ts.
    expect(runtime.environment).toMatchObject({ noColor: true, debug: true });
  });

  it('replicas: state in PostgreSQL and an election on the state database', async () => {
    const runtime = await runtimeWith('replicas:\n  enabled: true\n  lock_key: 4711\n', { PGOPTIONS: ' ' });
    const { deployment } = runtime;
    expect(deployment.replicated).toBe(true);
    const store = deployment.alertStore();
    const history = deployment.runHistory({ readOnly: true });
    const election = await deployment.election(() => {});
    try {
      expect(store).toBeInstanceOf(PgAlertStore);
      expect(history).toBeInstanceOf(PgRunHistory);
      // A real election against the test database: the only candidate leads.
      expect(await election!.check()).toBe(true);
      expect(runtime.environment.pgOptions).toBeUndefined();
    } finally {
      await Promise.allSettled([store.close?.(), history.close?.(), election?.close()]);
    }
  });
});
