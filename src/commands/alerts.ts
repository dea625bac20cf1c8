import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import type { TrackedAlert } from '../alerting/decide.js';
import { createAlerting } from '../alerting/setup.js';
import { activeSilences, isSilenced } from '../alerting/silences.js';
import type { AlertStateStore, Silence } from '../alerting/store.js';
import { CHECK_NAMES, SOURCE_CHECKS } from '../checks/index.js';
import type { Environment } from '../config/env.js';
import { ConfigError, type ConfigFlags, prepareStateDir } from '../config/load.js';
import type { LogLevel } from '../log.js';
import { createRuntime } from '../runtime.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import { MAX_SPAN_MS } from '../util/limits.js';
import type { Redactor } from '../util/redact.js';
import { MAX_CHARS, oneLine } from '../util/text.js';

/**
 * `sentinel silence add|list|expire`, `sentinel ack`, `sentinel alerts` and
 * `sentinel notify test`. They work on this host's alert state and need no
 * database, so they still work while the database is down. With
 * `replicas.enabled` the state is the replicas' shared one in PostgreSQL
 * (src/alerting/pg-store.ts), so they need that database.
 */

type Flags = ConfigFlags & { logLevel?: LogLevel; json?: boolean };

/**
 * Everything printed passes through `redactor`, built like the report's: the
 * config's secrets and the notifiers'. Names, messages and reasons are data (from
 * monitored tables and from whoever added a silence): the human output shows each
 * masked, then escaped and cut ({@link display}); `--json` keeps them exact.
 */
async function context(flags: Flags) {
  const runtime = await createRuntime(flags, { requireDatabase: false });
  await prepareStateDir(runtime.config);
  const store = runtime.deployment.alertStore();
  opened.push(store);
  return { ...runtime, store };
}

/** Stores opened by the command running now, closed when it ends (connections, with replicas). */
const opened: AlertStateStore[] = [];

function closingStores<A extends unknown[]>(command: (...args: A) => Promise<number>): (...args: A) => Promise<number> {
  return async (...args) => {
    try {
      return await command(...args);
    } finally {
      await Promise.all(opened.splice(0).map((s) => s.close?.()));
    }
  };
}

/** One data value for a human line: masked, then escaped and cut (src/util/text.ts). */
function display(redactor: Redactor, value: string, max: number = MAX_CHARS.name): string {
  return oneLine(redactor.redact(value), max);
}

function who(environment: Environment): string {
  const sudo = environment.sudoUser;
  try {
    return sudo ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}

async function silenceAddCommand(
  flags: Flags & { check: string; source?: string; duration: string; reason: string; allEnvironments?: boolean },
): Promise<number> {
  const problems: string[] = [];
  if (!(CHECK_NAMES as readonly string[]).includes(flags.check))
    problems.push(`--check: "${flags.check}" is not a check (one of: ${CHECK_NAMES.join(', ')})`);
  else if (flags.source !== undefined && !flags.source.trim())
    problems.push('--source: give a source name (leave --source out to silence every source)');
  else if (flags.source !== undefined && !(SOURCE_CHECKS as readonly string[]).includes(flags.check)) {
    problems.push(
      `--source: ${flags.check} has no per-source alerts, so this silence would match nothing ` +
        `(only ${SOURCE_CHECKS.join(', ')} take --source)`,
    );
  }
  const ms = parseDuration(flags.duration);
  if (ms === undefined || ms <= 0)
    problems.push(`--duration: "${flags.duration}" is not a duration (e.g. 30m, 2h, 1h30m, 7d)`);
  else if (ms > MAX_SPAN_MS) problems.push(`--duration: must be at most ${formatDuration(MAX_SPAN_MS)}`);
  if (!flags.reason.trim()) problems.push('--reason: say why, for whoever is paged next');
  if (problems.length) throw new ConfigError(problems);
  const { config, environment, store, redactor } = await context(flags);
  const now = new Date();
  const silence: Silence = {
    id: `s-${randomBytes(4).toString('hex')}`,
    ...(flags.allEnvironments ? {} : { environment: config.env.name }),
    check: flags.check,
    ...(flags.source ? { source: flags.source } : {}),
    reason: flags.reason.trim(),
    createdBy: who(environment),
    createdAt: now.toISOString(),
    endsAt: new Date(now.getTime() + ms!).toISOString(),
  };
  await store.withLock(async () => {
    const state = await store.read();
    state.silences = state.silences.filter(
      (s) => !s.expiredAt && Date.parse(s.endsAt) > now.getTime() - 7 * 86_400_000,
    );
    state.silences.push(silence);
    await store.write(state);
  });
  const scope =
    `${flags.check}${flags.source ? ` for source ${display(redactor, flags.source)}` : ''}` +
    ` in ${display(redactor, silence.environment ?? 'every environment')}`;
  process.stdout.write(`Silenced ${scope} until ${silence.endsAt} (${formatDuration(ms!)}): ${silence.id}\n`);
  return 0;
}

async function silenceListCommand(flags: Flags & { all?: boolean }): Promise<number> {
  const { store, redactor } = await context(flags);
  const state = await store.read();
  const now = new Date();
  const shown = flags.all ? state.silences : activeSilences(state.silences, now);
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify(
        redactDeep(
          shown.map((s) => ({ ...s, active: activeSilences([s], now).length === 1 })),
          redactor,
        ),
      )}\n`,
    );
    return 0;
  }
  if (shown.length === 0) {
    process.stdout.write('No active silences.\n');
    return 0;
  }
  for (const s of shown) {
    const active = activeSilences([s], now).length === 1;
    const left = active
      ? `${formatDuration(Date.parse(s.endsAt) - now.getTime())} left`
      : s.expiredAt
        ? 'expired'
        : 'ended';
    const show = (value: string, max?: number): string => display(redactor, value, max);
    process.stdout.write(
      redactor.redact(
        `${show(s.id)}  ${show(s.check)}${s.source ? `/${show(s.source)}` : ''}  ${show(s.environment ?? '*')}` +
          `  until ${show(s.endsAt)} (${left})  by ${show(s.createdBy)}: ${show(s.reason, MAX_CHARS.message)}\n`,
      ),
    );
  }
  return 0;
}

async function silenceExpireCommand(flags: Flags & { id: string }): Promise<number> {
  const { store, redactor } = await context(flags);
  const found = await store.withLock(async () => {
    const state = await store.read();
    const silence = state.silences.find((s) => s.id === flags.id && !s.expiredAt);
    if (!silence) return false;
    silence.expiredAt = new Date().toISOString();
    await store.write(state);
    return true;
  });
  if (!found)
    throw new ConfigError([`silence ${flags.id}: no active silence with that id (see sentinel silence list)`]);
  process.stdout.write(`Expired ${display(redactor, flags.id)}: its alerts notify again from the next run.\n`);
  return 0;
}

async function ackCommand(flags: Flags & { id: string }): Promise<number> {
  if (!/^[0-9a-f]{4,8}$/.test(flags.id))
    throw new ConfigError([
      `ack: "${flags.id}" is not an alert id (4 to 8 hex characters, shown as "id" in the report)`,
    ]);
  const { environment, store, redactor } = await context(flags);
  const result = await store.withLock(async () => {
    const state = await store.read();
    const matches = Object.values(state.alerts).filter((a) => a.id.startsWith(flags.id));
    if (matches.length !== 1) return matches.length;
    const alert = matches[0]!;
    alert.acknowledged = { at: new Date().toISOString(), by: who(environment) };
    await store.write(state);
    return alert;
  });
  if (result === 0) throw new ConfigError([`ack: no firing alert with id ${flags.id} (see sentinel alerts)`]);
  if (typeof result === 'number')
    throw new ConfigError([`ack: ${flags.id} matches ${result} alerts: give more characters of the id`]);
  process.stdout.write(
    redactor.redact(
      `Acknowledged ${display(redactor, result.id)} [${display(redactor, result.environment)}] ` +
        `${display(redactor, result.check)}: ${display(redactor, result.message, MAX_CHARS.message)}\n` +
        `No repeats until it resolves; a rise in level still notifies.\n`,
    ),
  );
  return 0;
}

/** The silences among `silences` that match `alert` (the engine's rule, {@link isSilenced}, one silence at a time). */
function silencesOf(silences: Silence[], alert: TrackedAlert): Silence[] {
  return silences.filter((s) => isSilenced([s], alert.environment, alert));
}

/**
 * `value` with every string in it (keys too) redacted: JSON output is masked value
 * by value, so escaping cannot hide a secret.
 */
function redactDeep(value: unknown, redactor: Redactor): unknown {
  if (typeof value === 'string') return redactor.redact(value);
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, redactor));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redactor.redact(k), redactDeep(v, redactor)]));
  }
  return value;
}

/**
 * Each alert with the ids of the active silences that match it now (`silencedBy`)
 * and whether it was ever notified: an alert can have been notified and be silenced
 * since, or never have been notified although no silence covers it any more (it
 * notifies on the next run that sees it).
 */
async function listAlertsCommand(flags: Flags): Promise<number> {
  const { store, redactor } = await context(flags);
  const state = await store.read();
  const silences = activeSilences(state.silences, new Date());
  const alerts = Object.values(state.alerts)
    .sort((a, b) => a.firingSince.localeCompare(b.firingSince))
    .map((a) => ({ ...a, silencedBy: silencesOf(silences, a).map((s) => s.id) }));
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify(redactDeep({ alerts, outbox: state.outbox.length, dead: state.dead.length }, redactor))}\n`,
    );
    return 0;
  }
  const out: string[] = [];
  const show = (value: string, max?: number): string => display(redactor, value, max);
  if (alerts.length === 0) out.push('No firing alerts.');
  for (const a of alerts) {
    const marks = [
      a.silencedBy.length ? `silenced by ${show(a.silencedBy.join(', '), MAX_CHARS.message)}` : '',
      a.notifiedLevel ? '' : 'never notified',
      a.acknowledged ? `acknowledged by ${show(a.acknowledged.by)}` : '',
      a.healthyRuns ? `${a.healthyRuns} healthy run(s)` : '',
    ]
      .filter(Boolean)
      .join(', ');
    out.push(
      `${show(a.id)}  ${show(a.level).padEnd(8)} [${show(a.environment)}] ` +
        `${show(a.check)}${a.subject ? `/${show(a.subject)}` : ''}: ${show(a.message, MAX_CHARS.message)}` +
        `  (since ${show(a.firingSince)}${marks ? `; ${marks}` : ''})`,
    );
  }
  if (state.outbox.length) out.push(`${state.outbox.length} notification(s) waiting for delivery.`);
  if (state.dead.length)
    out.push(
      `${state.dead.length} notification(s) rejected for good; ` +
        `last: ${show(String(state.dead[state.dead.length - 1]!.lastError), MAX_CHARS.message)}`,
    );
  process.stdout.write(redactor.redact(out.map((line) => `${line}\n`).join('')));
  return 0;
}

async function notifyTestCommand(flags: Flags & { notifier?: string }): Promise<number> {
  const { config, redactor, logger, notifiers, store } = await context(flags);
  if (config.notifiers.length === 0)
    throw new ConfigError(['notify test: no notifiers configured (add a notifiers: list to the config file)']);
  if (flags.notifier && !config.notifiers.some((n) => n.name === flags.notifier)) {
    throw new ConfigError([
      `--notifier: no notifier named "${flags.notifier}" ` +
        `(configured: ${config.notifiers.map((n) => n.name).join(', ')})`,
    ]);
  }
  const engine = createAlerting(config, logger, redactor, { store, notifiers });
  const results = await engine.sendTest(config.env.name, flags.notifier);
  for (const r of results) {
    const name = `${display(redactor, r.notifier)} (${display(redactor, r.type)})`;
    process.stdout.write(
      redactor.redact(
        r.ok ? `✅ ${name}: delivered\n` : `❌ ${name}: ${display(redactor, String(r.error), MAX_CHARS.message)}\n`,
      ),
    );
  }
  return results.every((r) => r.ok) ? 0 : 1;
}

export const silenceAdd = closingStores(silenceAddCommand);
export const silenceList = closingStores(silenceListCommand);
export const silenceExpire = closingStores(silenceExpireCommand);
export const ack = closingStores(ackCommand);
export const listAlerts = closingStores(listAlertsCommand);
export const notifyTest = closingStores(notifyTestCommand);
