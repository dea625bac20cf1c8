import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import type { Alert } from '../types.js';
import { bounded, DAY_MS, LIMITS, MINUTE_MS, SECOND_MS } from '../util/limits.js';
import { displayUrl, Redactor } from '../util/redact.js';
import { oneLine } from '../util/text.js';
import { sentinelVersion } from '../util/version.js';
import { type CheckContext, type CheckOutput, checkSettings, defineCheck } from './types.js';

/**
 * Check 3 of the guide (docs/contract.md §5.3): is PostgREST's schema cache serving the ops
 * views? One plain GET through PostgREST, classified by status and PostgREST error
 * code. A broken or stale cache is reloaded with `NOTIFY pgrst, 'reload schema'`
 * (at most once per cooldown) and probed again; anything a reload cannot fix
 * (schema not exposed, database or PostgREST unreachable, bad key) is critical at once.
 */

/** The view the probe reads; the same one the guide's check queried. */
const VIEW = 'v_pipeline_health';
const SCHEMA = 'ops';
/** What PostgREST (12 and later) listens for. The guide's `'reload'` payload is ignored by PostgREST. */
const RELOAD_PAYLOAD = 'reload schema';
const ACTION = `NOTIFY pgrst, '${RELOAD_PAYLOAD}'`;
/** Error bodies are small; anything bigger is not PostgREST talking. */
const MAX_BODY_CHARS = 64 * 1024;
/** Above this, PostgREST may miss the NOTIFY (the queue is 8 GB by default). */
const QUEUE_USAGE_WARN = 0.5;

/** Codes a schema-cache reload can fix. PGRST002: the cache could not be loaded; PGRST2xx: it is stale. */
const RELOADABLE_CODES = new Set(['PGRST002', 'PGRST200', 'PGRST202', 'PGRST204', 'PGRST205']);
/** PostgREST cannot reach or use the database: a reload would be sent to a database it cannot read. */
const DB_UNREACHABLE_CODES = new Set(['PGRST000', 'PGRST001', 'PGRST003']);

/** PostgREST's error body (`{code, message, details, hint}`), as far as it was sent. */
interface PostgrestError {
  code?: string;
  message?: string;
  details?: unknown;
  hint?: unknown;
}

type Probe =
  | { kind: 'ok'; status: number; latencyMs: number }
  | {
      kind: 'http';
      status: number;
      latencyMs: number;
      error?: PostgrestError;
      bodyExcerpt?: string;
      foreign?: Foreign;
      location?: string;
    }
  | {
      kind: 'network';
      latencyMs: number;
      reason: 'timeout' | 'refused' | 'dns' | 'other';
      detail: string;
      /** How far it got: no connection, a connection but no answer, or an answer cut short. */
      stage: 'connect' | 'answer' | 'body';
    };

/** A 2xx that is not PostgREST's answer (a proxy's welcome page, a truncated body, …). */
interface Foreign {
  contentType: string;
  /** The first bytes, escaped and cut. */
  sample: string;
  /** What is wrong with it, e.g. `not JSON`. */
  why: string;
}

/** What the probe reads of an answer at most: PostgREST's answer for limit=1 is a few hundred bytes. */
const MAX_PROBE_BYTES = 64 * 1024;

type Failure = Exclude<Probe, { kind: 'ok' }>;

export const schemaCacheCheck = defineCheck({
  name: 'schema_cache',
  description:
    'Probes PostgREST for a stale schema cache (PGRST002, PGRST205), reloads it with NOTIFY and probes again.',
  settings: checkSettings(30, {
    auto_reload: z.boolean().default(true).describe("send NOTIFY pgrst, 'reload schema' when the cache is stale"),
    cooldown_minutes: bounded(DAY_MS / MINUTE_MS, { min: 0, unitMs: MINUTE_MS })
      .default(5)
      .describe('at most one NOTIFY per cooldown, across loop iterations and cron runs'),
    reprobe_attempts: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(5)
      .describe('probes after a reload before calling it unrecovered'),
    reprobe_interval_seconds: bounded(300, { unitMs: SECOND_MS }).default(2).describe('pause between those probes'),
    request_timeout_seconds: bounded(LIMITS.requestTimeoutSeconds, { unitMs: SECOND_MS })
      .default(5)
      .describe("one HTTP probe's timeout"),
    postgrest_role: z
      .string()
      .min(1)
      .default('authenticator')
      .describe('the role PostgREST logs in as; inspected when a reload does not help'),
  }),
  remediation:
    "Sentinel reloads the schema cache with NOTIFY pgrst, 'reload schema'; if that does not help, check the " +
    "exposed schemas, the PostgREST role's statement_timeout and migrations in progress.",
  perSource: false,
  // It talks to PostgREST: it still runs while the database is unreachable or locked.
  needsDatabase: false,
  measurements: [
    {
      key: 'latency_ms',
      meaning: 'latency of the last PostgREST probe, in milliseconds',
      perfdata: { label: 'schema_cache_latency', uom: 'ms' },
    },
    { key: 'result', meaning: 'outcome of the last probe (ok, PGRST002, PGRST205, timeout, ...)' },
    { key: 'up', meaning: 'whether PostgREST served the probe (after any reload)' },
    { key: 'reloads', meaning: "NOTIFY pgrst, 'reload schema' sent by this run" },
  ],
  async run(ctx: CheckContext): Promise<CheckOutput> {
    const restUrl = ctx.config.env.restUrl;
    // No parentheses: the report prints it as "Skipped: schema_cache (<reason>)".
    if (!restUrl) return { skipped: 'no PostgREST URL configured: set SUPABASE_URL or POSTGREST_URL' };
    return new SchemaCacheRun(ctx, restUrl).run();
  },
});

/** One run of the check: the probe, the reload decision and the report. */
class SchemaCacheRun {
  private readonly settings: CheckContext['config']['checks']['schema_cache'];
  private readonly probeUrl: string;
  private readonly shownUrl: string;
  private readonly key: string | undefined;
  private readonly redactor: Redactor;
  /** Monotonic end of the check's budget (ms, performance.now()): the runner aborts here. */
  private readonly hardDeadline: number;
  /** Probing stops here, leaving time for the diagnosis and the report. */
  private readonly deadline: number;
  /** NOTIFYs sent by this run (0 or 1), for metrics. */
  private reloadsSent = 0;

  constructor(
    private readonly ctx: CheckContext,
    restUrl: string,
  ) {
    this.settings = ctx.config.checks.schema_cache;
    const root = restUrl.replace(/\/+$/, '');
    this.probeUrl = `${root}/${VIEW}?limit=1`;
    this.shownUrl = displayUrl(root);
    this.key = ctx.config.env.serviceRoleKey;
    this.redactor = new Redactor([...ctx.config.secrets, ...(this.key ? [this.key] : [])]);
    // Leave room inside the runner's timeout for the diagnosis queries and the report:
    // the runner aborts at exactly timeout_seconds and would replace our findings
    // with a bare "Check failed: timed out".
    const budgetMs = this.settings.timeout_seconds * 1000;
    this.hardDeadline = performance.now() + budgetMs;
    this.deadline = this.hardDeadline - Math.min(3000, budgetMs * 0.2);
  }

  async run(): Promise<Alert[]> {
    const first = await this.probe();
    if (first.kind === 'ok') {
      this.ctx.logger.debug(`schema_cache: PostgREST answered ${first.status} in ${first.latencyMs}ms`);
      return [];
    }
    if (first.kind === 'http' && isReloadable(first)) return this.reloadPath(first);
    return [this.notReloadable(first)];
  }

  // --- The probe -----------------------------------------------------------------

  /** One GET (see {@link probeOnce}), its outcome recorded for metrics. */
  private async probe(): Promise<Probe> {
    const probe = await this.probeOnce();
    this.measure(probe);
    return probe;
  }

  /**
   * Figures for metrics, replaced at every probe so they describe the last one:
   * `latency_ms`, `result` (`ok`, PostgREST's code such as `PGRST002`, `http_<status>`
   * without one, or `timeout` / `refused` / `dns` / `network_error`), `up` and `reloads`
   * (NOTIFYs sent by this run).
   */
  private measure(probe: Probe): void {
    const result =
      probe.kind === 'ok'
        ? 'ok'
        : probe.kind === 'http'
          ? probe.foreign
            ? 'not_postgrest'
            : (probe.error?.code ?? `http_${probe.status}`)
          : probe.reason === 'other'
            ? 'network_error'
            : probe.reason;
    this.ctx.measure?.('latency_ms', probe.latencyMs);
    this.ctx.measure?.('result', result);
    this.ctx.measure?.('up', probe.kind === 'ok');
    this.ctx.measure?.('reloads', this.reloadsSent);
  }

  /**
   * One GET, no retries, bounded by request_timeout_seconds, the check's budget and
   * ctx.signal, saying how far it got: no connection, a connection and no answer, an
   * answer cut short. A 2xx counts only when it is PostgREST's answer (a JSON array);
   * a redirect is not followed. At most {@link MAX_PROBE_BYTES} of the answer are read.
   */
  private async probeOnce(): Promise<Probe> {
    const timeoutMs = Math.max(
      100,
      Math.min(this.settings.request_timeout_seconds * 1000, this.deadline - performance.now()),
    );
    const headers = probeHeaders(this.key);
    const started = performance.now();
    const outcome = await httpGet(this.probeUrl, headers, timeoutMs, this.ctx.signal);
    const latencyMs = Math.round(performance.now() - started);
    // Shutting down or the runner's own timeout: not a finding about PostgREST.
    if (this.ctx.signal.aborted) throw this.ctx.signal.reason ?? new Error('aborted');
    if (outcome.kind === 'failed') {
      const wait = seconds(timeoutMs);
      if (outcome.timedOut) {
        const detail =
          outcome.stage === 'connect'
            ? `no connection within ${wait}s`
            : outcome.stage === 'answer'
              ? `it accepted the connection but sent no answer within ${wait}s`
              : `it answered HTTP ${outcome.status ?? '?'} but did not finish the body within ${wait}s`;
        return { kind: 'network', latencyMs, reason: 'timeout', detail, stage: outcome.stage };
      }
      return { kind: 'network', latencyMs, stage: outcome.stage, ...this.networkReason(outcome.error, outcome.stage) };
    }
    const { status, contentType, body, truncated } = outcome;
    if (status >= 300 && status < 400) {
      return {
        kind: 'http',
        status,
        latencyMs,
        location: hostOfLocation(outcome.location, this.probeUrl),
        bodyExcerpt: '',
      };
    }
    if (status >= 200 && status < 300) {
      const foreign = notPostgrest(contentType, body, truncated);
      return foreign
        ? {
            kind: 'http',
            status,
            latencyMs,
            foreign: { ...foreign, sample: oneLine(this.redactor.redact(body.slice(0, 400)), 80) },
          }
        : { kind: 'ok', status, latencyMs };
    }
    const error = truncated ? undefined : parseError(body);
    return error
      ? { kind: 'http', status, latencyMs, error }
      : { kind: 'http', status, latencyMs, bodyExcerpt: oneLine(this.redactor.redact(body.slice(0, 400)), 200) };
  }

  private networkReason(
    err: unknown,
    stage: 'connect' | 'answer' | 'body',
  ): { reason: 'refused' | 'dns' | 'other'; detail: string } {
    const cause = (err as { cause?: unknown }).cause ?? err;
    const code = (cause as { code?: unknown }).code;
    const message = this.redactor.redact(cause instanceof Error ? cause.message : String(cause));
    if (code === 'ECONNREFUSED') return { reason: 'refused', detail: 'connection refused' };
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { reason: 'dns', detail: `host not found (${message})` };
    const when =
      stage === 'connect' ? '' : stage === 'answer' ? ' after the request was sent' : ' while reading the answer';
    return { reason: 'other', detail: `${typeof code === 'string' ? `${code}: ` : ''}${message}${when}` };
  }

  // --- Reloadable failures ---------------------------------------------------------

  private async reloadPath(first: Extract<Probe, { kind: 'http' }>): Promise<Alert[]> {
    const label = labelFor(first);
    const base = this.errorDetails(first);

    if (!this.settings.auto_reload) {
      return [
        this.alert(
          'critical',
          `${label.detected} - auto-reload disabled`,
          {
            ...base,
            action_taken: 'none: checks.schema_cache.auto_reload is false',
            recovered: false,
            diagnosis: await this.diagnose(first),
          },
          `Reload the schema cache by hand (${ACTION}) or enable checks.schema_cache.auto_reload.`,
        ),
      ];
    }

    const stateKey = `schema_cache.last_reload:${this.ctx.environment}:${this.shownUrl}`;
    const now = this.ctx.now();
    const lastReload = await this.lastReload(stateKey);
    const cooldownMs = this.settings.cooldown_minutes * 60_000;
    // A last reload "in the future" means the clock was set back since (or another
    // host's clock wrote it): the cooldown cannot be measured, so it is over rather
    // than stretched by however far the clock jumped.
    if (lastReload) {
      const sinceReloadMs = now.getTime() - lastReload.getTime();
      if (sinceReloadMs >= 0 && sinceReloadMs < cooldownMs)
        return [await this.duringCooldown(first, label, lastReload)];
    }

    try {
      await this.ctx.notify('pgrst', RELOAD_PAYLOAD);
      this.reloadsSent++;
      this.ctx.measure?.('reloads', this.reloadsSent);
    } catch (err) {
      if (this.ctx.signal.aborted) throw this.ctx.signal.reason ?? err;
      const reason = this.redactor.redact(err instanceof Error ? err.message : String(err));
      this.ctx.logger.warn(`schema_cache: ${label.detected}; could not send ${ACTION}: ${reason}`);
      return [
        this.alert(
          'critical',
          `${label.detected} - auto-reload failed`,
          {
            ...base,
            action_taken: `${ACTION} failed: ${reason}`,
            recovered: false,
            diagnosis: [
              `Could not send ${ACTION} over DATABASE_URL (${reason}): the database may be unreachable from Sentinel.`,
              ...(await this.diagnose(first)),
            ],
          },
          `Check that DATABASE_URL reaches the database, then reload the schema cache by hand: ${ACTION}.`,
        ),
      ];
    }
    try {
      await this.ctx.state.set(stateKey, now.toISOString());
    } catch (err) {
      // The reload went out; only the cooldown is lost (the next run may reload again).
      this.ctx.logger.warn(`schema_cache: could not record the reload time: ${this.describeDbError(err)}`);
    }
    this.ctx.logger.warn(`schema_cache: ${label.detected}; sent ${ACTION}, probing again`);

    const notifiedAt = performance.now();
    let attempts = 0;
    let last: Probe = first;
    while (attempts < this.settings.reprobe_attempts && this.fitsAnotherProbe()) {
      await this.ctx.sleep(this.settings.reprobe_interval_seconds * 1000, this.ctx.signal);
      attempts++;
      last = await this.probe();
      if (last.kind === 'ok') {
        return [
          this.alert(
            'warning',
            `${label.detected} - auto-reload triggered`,
            {
              ...base,
              action_taken: ACTION,
              recovered: true,
              attempts,
              recovered_after_ms: Math.round(performance.now() - notifiedAt),
            },
            `Sentinel reloaded the schema cache (${ACTION}). If this repeats, make migrations end with ${ACTION} ` +
              `and check the PostgREST role's statement_timeout.`,
          ),
        ];
      }
      if (last.kind !== 'http' || !isReloadable(last)) break; // a different problem now; reprobing will not help
    }

    return [
      this.alert(
        'critical',
        `${label.stem} persists after auto-reload`,
        {
          ...base,
          action_taken: ACTION,
          recovered: false,
          attempts,
          ...(last !== first ? { last_error: this.describeFailure(last as Failure) } : {}),
          diagnosis: await this.diagnose(last as Failure),
        },
        'Manual intervention needed: see details.diagnosis; check the Supabase dashboard for schema locks or ' +
          'migrations in progress, fix the cause, then ' +
          ACTION +
          '.',
      ),
    ];
  }

  /** A reload was sent recently: no second NOTIFY, one more look, then report. */
  private async duringCooldown(
    first: Extract<Probe, { kind: 'http' }>,
    label: { stem: string; detected: string },
    lastReload: Date,
  ): Promise<Alert> {
    const sentAt = lastReload.toISOString();
    const action = `none: ${ACTION} already sent at ${sentAt} (cooldown ${this.settings.cooldown_minutes}m)`;
    let again: Probe = first;
    if (this.fitsAnotherProbe()) {
      await this.ctx.sleep(this.settings.reprobe_interval_seconds * 1000, this.ctx.signal);
      again = await this.probe();
    }
    if (again.kind === 'ok') {
      return this.alert(
        'warning',
        `${label.detected} - recovered during reload cooldown`,
        {
          ...this.errorDetails(first),
          action_taken: action,
          recovered: true,
          last_reload_at: sentAt,
        },
        `The schema cache recovered after the reload sent at ${sentAt}. If this repeats, look for migrations that ` +
          `do not reload the cache.`,
      );
    }
    return this.alert(
      'critical',
      `${label.stem} persists - reload already sent at ${sentAt}`,
      {
        ...this.errorDetails(first),
        action_taken: action,
        recovered: false,
        last_reload_at: sentAt,
        ...(again !== first ? { last_error: this.describeFailure(again) } : {}),
        diagnosis: await this.diagnose(again),
      },
      'The reload did not help: see details.diagnosis; check the Supabase dashboard for schema locks or ' +
        'migrations in progress, fix the cause, then ' +
        ACTION +
        '.',
    );
  }

  /** The probed view as printed: `shownUrl` ends with '/' when the REST root has no path. */
  private viewUrl(): string {
    return `${this.shownUrl.replace(/\/+$/, '')}/${VIEW}`;
  }

  private fitsAnotherProbe(): boolean {
    const needed =
      this.settings.reprobe_interval_seconds * 1000 + Math.min(this.settings.request_timeout_seconds * 1000, 1000);
    return performance.now() + needed <= this.deadline;
  }

  private async lastReload(key: string): Promise<Date | undefined> {
    let value: unknown;
    try {
      value = await this.ctx.state.get<unknown>(key);
    } catch (err) {
      // Unreadable state must not stop monitoring; the worst case is one extra reload.
      this.ctx.logger.warn(`schema_cache: could not read the last reload time: ${this.describeDbError(err)}`);
      return undefined;
    }
    if (typeof value !== 'string') return undefined;
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }

  // --- Failures a reload cannot fix ------------------------------------------------

  private notReloadable(failure: Failure): Alert {
    if (failure.kind === 'network') {
      const details = {
        url: this.shownUrl,
        error: failure.detail,
        stage: failure.stage,
        latency_ms: failure.latencyMs,
      };
      // Say what was seen: a PostgREST that took the request and went quiet is slow
      // (often a slow or locked database behind it), not unreachable.
      if (failure.stage !== 'connect') {
        return this.alert(
          'critical',
          `PostgREST at ${this.shownUrl} did not answer: ${failure.detail}`,
          details,
          'PostgREST took the request but did not answer in time: look for a slow or locked database behind it ' +
            '(a database alert of this run names a lock), an exhausted connection pool (PGRST003) or an ' +
            'overloaded PostgREST; raise checks.schema_cache.request_timeout_seconds if it is only slow.',
        );
      }
      return this.alert(
        'critical',
        `PostgREST unreachable at ${this.shownUrl}: ${failure.detail}`,
        details,
        'Check that PostgREST (Supabase: the project) is running and reachable from this host, and that ' +
          'SUPABASE_URL / POSTGREST_URL is right.',
      );
    }
    if (failure.foreign) {
      const f = failure.foreign;
      return this.alert(
        'critical',
        `PostgREST probe got HTTP ${failure.status} ${f.contentType || 'without a content type'} that is not ` +
          `PostgREST's answer (${f.why}): "${f.sample}"`,
        {
          url: this.shownUrl,
          status: failure.status,
          content_type: f.contentType,
          body_sample: f.sample,
          why: f.why,
          latency_ms: failure.latencyMs,
        },
        `Something other than PostgREST answers at ${this.shownUrl} (a proxy, a load balancer's default page, a ` +
          `maintenance page): point SUPABASE_URL / POSTGREST_URL at PostgREST and check the proxy's upstream.`,
      );
    }
    if (failure.location !== undefined) {
      const target = failure.location ? ` to ${failure.location}` : '';
      return this.alert(
        'critical',
        `PostgREST probe was redirected (HTTP ${failure.status}${target}); Sentinel does not follow redirects`,
        {
          url: this.shownUrl,
          status: failure.status,
          location_host: failure.location,
          latency_ms: failure.latencyMs,
        },
        'Point SUPABASE_URL / POSTGREST_URL at the final address (https:// instead of http://, the right host), ' +
          'so the key is never sent on to another host.',
      );
    }
    const details = this.errorDetails(failure);
    const code = failure.error?.code;
    if (code === 'PGRST106') {
      return this.alert(
        'critical',
        `Schema '${SCHEMA}' is not exposed by PostgREST (PGRST106)`,
        details,
        `Add ${SCHEMA} to PostgREST's db-schemas (Supabase: Settings → API → Exposed schemas), then ${ACTION}.`,
      );
    }
    if (code && (DB_UNREACHABLE_CODES.has(code) || code.startsWith('08'))) {
      const what = code === 'PGRST003' ? 'timed out waiting for a database connection' : 'cannot reach the database';
      return this.alert(
        'critical',
        `PostgREST ${what} (${code})`,
        details,
        'Check the database is up and accepting connections, and the connection pool usage (Supabase dashboard); ' +
          'PostgREST reconnects by itself once it can.',
      );
    }
    if (failure.status === 401 || failure.status === 403) {
      const privilege = code === '42501';
      return this.alert(
        'critical',
        `PostgREST rejected the request: HTTP ${failure.status}${code ? ` ${code}` : ''}` +
          `${privilege ? ' (permission denied)' : ''}`,
        details,
        privilege
          ? `The key's role may not read ${SCHEMA}.${VIEW}: grant usage on schema ${SCHEMA} and select on its ` +
              `views to the API roles.`
          : keyRemediation(this.key, failure.error),
      );
    }
    return this.alert(
      'critical',
      `Unexpected PostgREST response: HTTP ${failure.status}${code ? ` ${code}` : ''}`,
      details,
      `Query ${this.viewUrl()} by hand and check the PostgREST logs.`,
    );
  }

  // --- Diagnosis -----------------------------------------------------------------

  /**
   * Why a reload did not help, from what SQL can see (each question asked on its own,
   * so one failing query does not hide the other answers), plus the usual causes SQL
   * cannot see. Read-only.
   */
  private async diagnose(failure: Failure): Promise<string[]> {
    const findings: string[] = [];
    const role = this.settings.postgrest_role;
    const limitMs = Math.max(500, Math.min(2500, this.hardDeadline - performance.now() - 200));
    const q = async <R extends Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<R[]> =>
      (await withTimeout(this.ctx.db.query<R>(sql, values), limitMs)).rows;

    const [view, timeouts, schemas, queue, locks] = await Promise.allSettled([
      // The catalogs, not to_regclass(): that one fails outright for a monitoring role
      // without USAGE on the schema.
      q<{ view_exists: boolean; role_exists: boolean }>(
        `select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                         where n.nspname = $1 and c.relname = $2) as view_exists,
                exists (select 1 from pg_roles where rolname = $3) as role_exists`,
        [SCHEMA, VIEW, role],
      ),
      q<{ scope: string; value: string }>(
        `select case when s.setrole = 0 then 'database' when s.setdatabase = 0 then 'role'
                     else 'role_in_database' end as scope,
                substr(c, length('statement_timeout=') + 1) as value
           from pg_db_role_setting s
           cross join lateral unnest(s.setconfig) as c
          where c like 'statement_timeout=%' and c <> 'statement_timeout=0'
            and ((s.setrole = (select oid from pg_roles where rolname = $1)
                  and s.setdatabase in (0, (select oid from pg_database where datname = current_database())))
              or (s.setrole = 0 and s.setdatabase = (select oid from pg_database where datname = current_database())))
          order by s.setdatabase desc, s.setrole desc`,
        [role],
      ),
      q<{ value: string }>(
        `select substr(c, length('pgrst.db_schemas=') + 1) as value
           from pg_db_role_setting s
           cross join lateral unnest(s.setconfig) as c
          where c like 'pgrst.db_schemas=%'
            and s.setrole = (select oid from pg_roles where rolname = $1)
            and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
          order by s.setdatabase desc
          limit 1`,
        [role],
      ),
      q<{ usage: number }>(`select pg_notification_queue_usage()::float8 as usage`),
      q<{ waiting: number }>(
        `select count(*)::int as waiting from pg_stat_activity where usename = $1 and wait_event_type = 'Lock'`,
        [role],
      ),
    ]);

    const failures = [view, timeouts, schemas, queue, locks].filter(
      (r): r is PromiseRejectedResult => r.status === 'rejected',
    );
    if (failures.length === 5) {
      findings.push(
        `Database unreachable from Sentinel (${this.describeDbError(failures[0]!.reason)}): nothing could be ` +
          `checked in SQL.`,
      );
    } else {
      if (view.status === 'fulfilled') {
        if (view.value[0]?.role_exists === false) {
          findings.push(
            `Role ${role} does not exist in this cluster: set checks.schema_cache.postgrest_role to the role ` +
              `PostgREST logs in as, so its settings can be inspected.`,
          );
        }
        if (view.value[0]?.view_exists === false) {
          findings.push(
            `${SCHEMA}.${VIEW} does not exist in the database: apply the ops migration (sentinel migrate or ` +
              `supabase db push).`,
          );
        } else if (failure.kind === 'http' && isMissingRelation(failure)) {
          findings.push(
            `${SCHEMA}.${VIEW} exists in the database, yet PostgREST does not find it: check the exposed schemas ` +
              `and that PostgREST serves this database.`,
          );
        }
      } else findings.push(`Could not check whether ${SCHEMA}.${VIEW} exists: ${this.describeDbError(view.reason)}`);

      if (timeouts.status === 'fulfilled') {
        for (const t of timeouts.value) {
          const where =
            t.scope === 'database'
              ? 'on this database (all roles)'
              : t.scope === 'role'
                ? `on role ${role}`
                : `on role ${role} in this database`;
          const fix =
            t.scope === 'database'
              ? 'ALTER DATABASE ... RESET statement_timeout'
              : `ALTER ROLE ${role}${t.scope === 'role_in_database' ? ' IN DATABASE ...' : ''} RESET statement_timeout`;
          findings.push(
            `statement_timeout = ${t.value} is set ${where}: PostgREST's schema-cache query runs as ${role} and ` +
              `fails when it takes longer (PGRST002). Raise it or remove it (${fix}), then ${ACTION}.`,
          );
        }
      } else findings.push(`Could not read the settings of role ${role}: ${this.describeDbError(timeouts.reason)}`);

      if (schemas.status === 'fulfilled' && schemas.value[0]) {
        const list = schemas.value[0].value;
        const exposed = list.split(',').map((s) => s.trim().replace(/^"|"$/g, ''));
        findings.push(
          exposed.includes(SCHEMA)
            ? `pgrst.db_schemas on role ${role} is '${list}' and includes ${SCHEMA}.`
            : `pgrst.db_schemas on role ${role} is '${list}' and does not include ${SCHEMA}: add it (ALTER ROLE ` +
                `${role} SET pgrst.db_schemas = '${list}, ${SCHEMA}'), then NOTIFY pgrst, 'reload config'.`,
        );
      }

      if (queue.status === 'fulfilled') {
        const usage = queue.value[0]?.usage ?? 0;
        if (usage > QUEUE_USAGE_WARN) {
          findings.push(
            `Notification queue nearly full (${Math.round(usage * 100)}% used): PostgREST may not receive the ` +
              `NOTIFY. Look for a session that LISTENs but never reads (pg_stat_activity).`,
          );
        }
      } else findings.push(`Could not read the notification queue usage: ${this.describeDbError(queue.reason)}`);

      if (locks.status === 'fulfilled' && (locks.value[0]?.waiting ?? 0) > 0) {
        findings.push(
          `${locks.value[0]!.waiting} session(s) of ${role} are waiting on a lock: a migration or long ` +
            `transaction holds the catalog; PostgREST reloads once it ends.`,
        );
      }
    }

    findings.push(
      `Make sure ${SCHEMA} is an exposed schema: db-schemas in the PostgREST config (Supabase: Settings → API → ` +
        `Exposed schemas).`,
      'Check the PostgREST logs for the reason the schema cache did not load, and the Supabase dashboard for ' +
        'schema locks or migrations in progress.',
    );
    return findings;
  }

  /** First line of an error's message, secrets masked. */
  private describeDbError(err: unknown): string {
    const e = err as { message?: string; code?: string };
    const text = e?.message || e?.code || String(err);
    return this.redactor.redact(text.split('\n')[0]!);
  }

  // --- Shapes --------------------------------------------------------------------

  private errorDetails(failure: Failure): Record<string, unknown> {
    if (failure.kind === 'network') return { url: this.shownUrl, error: failure.detail, latency_ms: failure.latencyMs };
    const e = failure.error;
    const details: Record<string, unknown> = {
      url: this.shownUrl,
      status: failure.status,
      code: e?.code ?? null,
      error:
        e?.message !== undefined ? this.redactor.redact(e.message) : (failure.bodyExcerpt ?? `HTTP ${failure.status}`),
      latency_ms: failure.latencyMs,
    };
    if (e?.details != null) details.error_details = this.redactor.redact(String(e.details));
    if (e?.hint != null) details.hint = this.redactor.redact(String(e.hint));
    return details;
  }

  private describeFailure(failure: Failure): Record<string, unknown> {
    const { url: _url, ...rest } = this.errorDetails(failure);
    return rest;
  }

  private alert(level: Alert['level'], message: string, details: Record<string, unknown>, remediation: string): Alert {
    return { check: 'schema_cache', level, message, details, remediation };
  }
}

function parseError(text: string): PostgrestError | undefined {
  if (text.length === 0 || text.length > MAX_BODY_CHARS) return undefined;
  try {
    const body: unknown = JSON.parse(text);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
    const b = body as Record<string, unknown>;
    if (typeof b.code !== 'string' && typeof b.message !== 'string') return undefined;
    return {
      ...(typeof b.code === 'string' ? { code: b.code } : {}),
      ...(typeof b.message === 'string' ? { message: b.message } : {}),
      details: b.details,
      hint: b.hint,
    };
  } catch {
    return undefined;
  }
}

/**
 * PostgREST 12 does not consult its schema cache to read a table or view: a
 * relation it cannot find comes back from PostgreSQL as 404 `42P01`. Newer
 * versions answer PGRST205 for the same request.
 */
function isMissingRelation(p: Extract<Probe, { kind: 'http' }>): boolean {
  return p.error?.code === 'PGRST205' || (p.status === 404 && p.error?.code === '42P01');
}

function isReloadable(p: Extract<Probe, { kind: 'http' }>): boolean {
  const code = p.error?.code;
  return (code !== undefined && RELOADABLE_CODES.has(code)) || isMissingRelation(p);
}

/**
 * How messages name the problem: `stem` reads "PGRST002 persists ...", `detected`
 * reads "PGRST002 detected - auto-reload triggered" (the guide's wording).
 */
function labelFor(p: Extract<Probe, { kind: 'http' }>): { stem: string; detected: string } {
  const code = p.error?.code ?? `HTTP ${p.status}`;
  if (code === 'PGRST002') return { stem: 'PGRST002', detected: 'PGRST002 detected' };
  const stem = code === '42P01' ? `${SCHEMA}.${VIEW} not found (42P01)` : `Stale schema cache (${code})`;
  return { stem, detected: stem };
}

/** Supabase's secret keys: not JWTs, sent in `apikey` only. */
const SECRET_KEY_PREFIX = 'sb_secret_';

/**
 * Sentinel's User-Agent: a name and a version, nothing a browser sends (Supabase's
 * gateway refuses a secret key from a browser User-Agent with HTTP 401).
 */
export function userAgent(): string {
  return `sentinel/${sentinelVersion()}`;
}

/**
 * The probe's headers. A secret key (`sb_secret_…`) goes in `apikey` only: it is not
 * a JWT, and the gateway forwards a Bearer value to PostgREST, which rejects it. A
 * legacy service_role JWT goes in both, as Supabase's own clients send it (a plain
 * PostgREST reads only `Authorization`). The configuration has already refused a
 * publishable key and an `sb_` key aimed at a plain PostgREST.
 */
export function probeHeaders(key: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    Accept: 'application/json',
    'Accept-Profile': SCHEMA,
    'User-Agent': userAgent(),
  };
  if (!key) return headers;
  headers.apikey = key;
  if (!key.startsWith(SECRET_KEY_PREFIX)) headers.Authorization = `Bearer ${key}`;
  return headers;
}

/** What to check when the key was refused (HTTP 401/403 without a permission error). */
function keyRemediation(key: string | undefined, error: PostgrestError | undefined): string {
  if (!key) {
    return (
      'No API key is configured: set SUPABASE_SECRET_KEY (a secret key, sb_secret_…, from Project Settings → API ' +
      'Keys) or SUPABASE_SERVICE_ROLE_KEY (the legacy service_role JWT).'
    );
  }
  if (key.startsWith(SECRET_KEY_PREFIX)) {
    if (/browser/i.test(error?.message ?? '')) {
      return (
        `Supabase's gateway took the request for a browser's and refuses secret keys from browsers: Sentinel sends ` +
        `User-Agent ${userAgent()}; check that no proxy between Sentinel and Supabase replaces it.`
      );
    }
    return (
      'Check the secret key (SUPABASE_SECRET_KEY, or SUPABASE_SERVICE_ROLE_KEY if it is set there): it must be an ' +
      "active sb_secret_ key of this project (Project Settings → API Keys); a deleted key or another project's " +
      'answers "Unregistered API key".'
    );
  }
  return (
    'Check the service-role key (SUPABASE_SERVICE_ROLE_KEY, or SUPABASE_SECRET_KEY if it is set there): it must be ' +
    'a valid service_role JWT for this project; or use a secret key (sb_secret_…, Project Settings → API Keys) in ' +
    'SUPABASE_SECRET_KEY instead.'
  );
}

/** Milliseconds as seconds with at most one decimal: 300 -> "0.3". */
function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${seconds(ms)}s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

type GetOutcome =
  | { kind: 'answer'; status: number; contentType: string; body: string; truncated: boolean; location?: string }
  | { kind: 'failed'; stage: 'connect' | 'answer' | 'body'; timedOut: boolean; status?: number; error?: unknown };

/**
 * A GET on a connection of its own that tells how far it got. Reads at most
 * {@link MAX_PROBE_BYTES} of the body (the rest is dropped, `truncated`), follows
 * no redirect, never rejects.
 */
function httpGet(
  target: string,
  headers: Record<string, string>,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<GetOutcome> {
  return new Promise((resolve) => {
    let stage: 'connect' | 'answer' | 'body' = 'connect';
    let status: number | undefined;
    let settled = false;
    let req: http.ClientRequest | undefined;
    const finish = (outcome: GetOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req?.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => finish({ kind: 'failed', stage, timedOut: false, error: signal.reason });
    const timer = setTimeout(
      () => finish({ kind: 'failed', stage, timedOut: true, ...(status !== undefined ? { status } : {}) }),
      timeoutMs,
    );
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const url = new URL(target);
      req = (url.protocol === 'https:' ? https : http).request(url, { method: 'GET', headers, agent: false }, (res) => {
        stage = 'body';
        status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        let truncated = false;
        const answer = (): void =>
          finish({
            kind: 'answer',
            status: status!,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString('utf8'),
            truncated,
            ...(typeof res.headers.location === 'string' ? { location: res.headers.location } : {}),
          });
        res.on('data', (chunk: Buffer) => {
          if (size + chunk.length > MAX_PROBE_BYTES) {
            chunks.push(chunk.subarray(0, MAX_PROBE_BYTES - size));
            truncated = true;
            answer();
            return;
          }
          chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', answer);
        res.on('error', (error) => finish({ kind: 'failed', stage: 'body', timedOut: false, status: status!, error }));
      });
      req.on('socket', (socket) => {
        // A reused or already connected socket has connected.
        if (!socket.connecting) stage = 'answer';
        else
          socket.once(
            url.protocol === 'https:' ? 'secureConnect' : 'connect',
            () => (stage = stage === 'connect' ? 'answer' : stage),
          );
      });
      req.on('error', (error) => finish({ kind: 'failed', stage, timedOut: false, error }));
      req.end();
    } catch (error) {
      finish({ kind: 'failed', stage: 'connect', timedOut: false, error });
    }
  });
}

/** Why a 2xx is not PostgREST's answer to `…/v_pipeline_health?limit=1`, or undefined when it is. */
function notPostgrest(
  contentType: string,
  body: string,
  truncated: boolean,
): { contentType: string; why: string } | undefined {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (truncated) return { contentType: type, why: `more than ${MAX_PROBE_BYTES / 1024} KiB for one row` };
  if (type !== 'application/json' && !type.endsWith('+json')) return { contentType: type, why: 'not JSON' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { contentType: type, why: body.trim() === '' ? 'an empty body' : 'invalid or truncated JSON' };
  }
  if (!Array.isArray(parsed)) return { contentType: type, why: 'JSON but not an array of rows' };
  return undefined;
}

/** The host of a redirect's target (never its path or query, where tokens live). */
function hostOfLocation(location: string | undefined, base: string): string {
  if (!location) return '';
  try {
    return new URL(location, base).host;
  } catch {
    return 'an invalid location';
  }
}
