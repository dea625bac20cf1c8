import { createHash } from 'node:crypto';
import { z } from 'zod';
import { anomalySourceSettings } from '../checks/anomalies.js';
import { CHECK_LIST, type RegisteredCheck } from '../checks/index.js';
import { notifierConfigSchema } from '../notifiers/index.js';
import { bounded, boundedDuration, DAY_MS, HOUR_MS, LIMITS, MAX_SPAN_MS, SECOND_MS } from '../util/limits.js';

/**
 * The configuration file's shape, with every default in one place. Objects are
 * strict: a misspelt key (`threshold_minute`) is an error naming its path, not a
 * silently ignored setting that leaves a threshold at its default.
 */

/** Every limit is in ../util/limits.ts; the comments there say why each is what it is. */

const environmentSchema = z
  .strictObject({
    database_url: z.string().min(1).optional(),
    // URLs are checked when their environment is resolved, with the same wording as
    // the environment variables; other environments may hold unresolved ${VAR}s.
    supabase_url: z.string().min(1).optional(),
    postgrest_url: z.string().min(1).optional(),
    /** The legacy service_role JWT (or, accepted as well, an sb_secret_ key). */
    service_role_key: z.string().min(1).optional(),
    /** A Supabase secret key (`sb_secret_…`); sent as `apikey` only. */
    secret_key: z.string().min(1).optional(),
  })
  .refine((env) => !(env.supabase_url && env.postgrest_url), {
    message: 'set supabase_url or postgrest_url, not both',
  })
  .refine((env) => !(env.secret_key && env.service_role_key), {
    message:
      'set secret_key or service_role_key, not both (secret_key for an sb_secret_ key, service_role_key for the ' +
      'legacy service_role JWT)',
  });

const alertingSchema = z.strictObject({
  /** Re-notify a still-firing, unacknowledged alert this often. */
  repeat_interval: boundedDuration(MAX_SPAN_MS).prefault('4h'),
  /** Healthy runs in a row before an alert resolves. */
  resolve_after_runs: bounded(1000, { min: 1, int: true }).default(2),
  /** Where alert state lives on this host; SENTINEL_STATE_DIR wins. */
  state_dir: z.string().min(1).optional(),
  /** Upper bound on the time one run spends delivering notifications (a timer: at most an hour). */
  delivery_timeout: boundedDuration(HOUR_MS).prefault('30s'),
  /** Undelivered notifications older than this are given up, loudly: a page a month late is noise. */
  max_outbox_age: boundedDuration(30 * DAY_MS).prefault('24h'),
});

/**
 * The advisory lock key replicas compete for when `replicas.lock_key` is not set:
 * the first 8 bytes of sha256('sentinel-leader') as a signed 64-bit integer. Fixed
 * forever, so that every version of Sentinel elects against the same lock.
 */
export const DEFAULT_LEADER_LOCK_KEY: bigint = createHash('sha256')
  .update('sentinel-leader')
  .digest()
  .readBigInt64BE(0);

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

/** A PostgreSQL bigint: a whole number, or a string of digits for values beyond 2^53. */
const lockKeySchema = z
  .union([z.int(), z.string().regex(/^-?\d{1,19}$/, 'expected a whole number')])
  .transform((value, ctx) => {
    const key = BigInt(value);
    if (key < INT8_MIN || key > INT8_MAX) {
      ctx.addIssue({ code: 'custom', message: 'must fit in a PostgreSQL bigint (-2^63 to 2^63-1)' });
      return z.NEVER;
    }
    return key;
  });

const replicasSchema = z.strictObject({
  /**
   * Several `sentinel serve` processes on one database: one leader (a PostgreSQL
   * advisory lock) runs the checks and notifies; alert state lives in PostgreSQL.
   */
  enabled: z.boolean().default(false),
  /**
   * Where the shared alert state (`sentinel.alert_state`) and the leader lock live;
   * default the monitored database. A postgres:// URL; its password is masked.
   */
  state_database_url: z
    .string()
    .min(1)
    .refine((url) => {
      try {
        return ['postgres:', 'postgresql:'].includes(new URL(url).protocol);
      } catch {
        return false;
      }
    }, 'expected a postgres:// or postgresql:// connection URL')
    .optional(),
  /** The advisory lock key the replicas compete for (a bigint). */
  lock_key: lockKeySchema.default(DEFAULT_LEADER_LOCK_KEY),
  /** How often a follower tries to take over; default min(5, --interval) seconds. */
  takeover_poll_seconds: bounded(3600, { unitMs: SECOND_MS }).optional(),
});

const sourceSchema = z.strictObject({
  error_spike_threshold_pct: z.number().min(0).max(100).optional(),
  /** Judged alone by dedupe_rate, left out of its overall rate. */
  dedupe_threshold_pct: z.number().min(0).max(100).optional(),
  /** source_freshness alerts when no batch arrived within this long (milliseconds once parsed). */
  expected_every: boundedDuration(MAX_SPAN_MS).optional(),
  /** The anomalies check's settings for this source (`enabled: false` leaves it out). */
  anomalies: anomalySourceSettings.optional(),
});

type CheckSections = {
  [C in RegisteredCheck as C['name']]: z.ZodPrefault<C['settings']>;
};

/** `checks.<name>` for every registered check: its settings, each section optional (all keys default). */
function checkSections(): CheckSections {
  return Object.fromEntries(CHECK_LIST.map((c) => [c.name, (c.settings as z.ZodType).prefault({})])) as CheckSections;
}

export const configSchema = z.strictObject({
  environments: z
    .record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'environment names use letters, digits, _ and -'), environmentSchema)
    .default({}),
  /** One section per check, each declared in its own file (src/checks/index.ts lists them). */
  checks: z.strictObject(checkSections()).prefault({}),
  sources: z.record(z.string().min(1), sourceSchema).default({}),
  /** Default statement_timeout for every check query, in milliseconds. */
  statement_timeout_ms: bounded(LIMITS.statementTimeoutMs, { min: 100, int: true, unitMs: 1 }).default(5000),
  /** How long to wait for a database connection before a check fails. */
  connect_timeout_seconds: bounded(120, { unitMs: SECOND_MS }).default(5),
  alerting: alertingSchema.prefault({}),
  replicas: replicasSchema.prefault({}),
  /** The run history (`sentinel slo` reads it): how long a run's record is kept. */
  history: z
    .strictObject({ retention_days: bounded(MAX_SPAN_MS / DAY_MS, { min: 1, int: true }).default(30) })
    .prefault({}),
  notifiers: z
    .array(notifierConfigSchema)
    .default([])
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((n, i) => {
        if (seen.has(n.name))
          ctx.addIssue({
            code: 'custom',
            path: [i, 'name'],
            message: `"${n.name}" is used by another notifier: names must be unique`,
          });
        seen.add(n.name);
      });
    }),
  /** Pinged after every completed run; `<url>/fail` when Sentinel itself fails. */
  heartbeat_url: z.url({ protocol: /^https?$/, message: 'expected an http:// or https:// URL' }).optional(),
  /**
   * `/metrics`: how many sources get series of their own (most rows first); the
   * rest are summed as `source="other"`.
   */
  metrics: z.strictObject({ max_sources: z.number().int().min(0).max(1000).default(50) }).prefault({}),
});

/** The file as written, before defaults. */
export type ConfigFile = z.input<typeof configSchema>;
/** The file after defaults and validation. */
export type FileConfig = z.output<typeof configSchema>;

/** Connection settings of the environment being checked, after precedence is applied. */
export interface ResolvedEnvironment {
  name: string;
  databaseUrl: string;
  /** PostgREST root (for Supabase: `SUPABASE_URL/rest/v1`), if configured. */
  restUrl?: string;
  /**
   * The API key the schema-cache probe sends (SUPABASE_SECRET_KEY or SUPABASE_SERVICE_ROLE_KEY):
   * an `sb_secret_…` key (sent as `apikey` only) or a legacy service_role JWT (`apikey` and Bearer).
   */
  serviceRoleKey?: string;
}

/** Everything a run needs: the validated file plus the resolved environment. */
export interface SentinelConfig extends FileConfig {
  env: ResolvedEnvironment;
  stateDir: string;
  /** What set `stateDir`, for messages (`SENTINEL_STATE_DIR`, `alerting.state_dir`, ...). */
  stateDirSetting?: string;
  /** Every secret value found in the configuration, for redaction of all output. */
  secrets: string[];
}
