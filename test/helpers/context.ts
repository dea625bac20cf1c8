import type { CheckContext } from '../../src/checks/types.js';
import { type ConfigFile, configSchema, type SentinelConfig } from '../../src/config/schema.js';
import type { Queryable } from '../../src/db/pool.js';
import { silentLogger } from '../../src/log.js';
import { MemoryStateStore } from '../../src/state/store.js';
import type { LabelledMeasurement, Measurement } from '../../src/types.js';

/** A validated config as a user would write it, plus a resolved environment. */
export function testConfig(file: ConfigFile = {}, env: Partial<SentinelConfig['env']> = {}): SentinelConfig {
  const parsed = configSchema.parse(file);
  return {
    ...parsed,
    env: { name: 'test', databaseUrl: 'postgres://unused/unused', ...env },
    stateDir: '/nonexistent',
    secrets: [],
  };
}

/**
 * A check context on `db` at a pinned time; notify, sleep and measure are recorded,
 * not real: `notified` holds the NOTIFYs, `measured` what the check measured (last value per key),
 * `series` its labelled figures in the order recorded.
 */
export function testContext(
  db: Queryable,
  now: Date,
  config: SentinelConfig = testConfig(),
): CheckContext & {
  notified: Array<[string, string]>;
  measured: Record<string, Measurement>;
  series: LabelledMeasurement[];
} {
  const notified: Array<[string, string]> = [];
  const measured: Record<string, Measurement> = {};
  const series: LabelledMeasurement[] = [];
  return {
    db,
    config,
    environment: config.env.name,
    now: () => now,
    logger: silentLogger,
    signal: new AbortController().signal,
    state: new MemoryStateStore(),
    sleep: async () => {},
    notify: async (channel, payload) => {
      notified.push([channel, payload]);
    },
    measure: (key, value) => {
      measured[key] = value;
    },
    measureFor: (key, labels, value) => {
      series.push({ key, labels, value });
    },
    notified,
    measured,
    series,
  };
}
