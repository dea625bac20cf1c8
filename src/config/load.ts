import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Document, isMap, isScalar, LineCounter, parseDocument, visit, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { connectionProblem } from '../db/connect.js';
import { ensureDirectory, StateDirError } from '../state/dir.js';
import { whyUnreadable } from '../util/errors.js';
import { MAX_CONFIG_BYTES } from '../util/limits.js';
import { secretsOfUrl } from '../util/redact.js';
import { configSchema, type FileConfig, type ResolvedEnvironment, type SentinelConfig } from './schema.js';

/**
 * Every problem found in the configuration, each naming its path
 * (`checks.error_spike.threshold_pct: expected a number`). Sentinel reports them
 * all at once and exits 3, so one edit fixes a file instead of one per run.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0] : `${problems.length} configuration problems: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Settings given on the command line; they win over everything else. */
export interface ConfigFlags {
  config?: string;
  env?: string;
  databaseUrl?: string;
  postgrestUrl?: string;
}

export interface LoadOptions {
  flags?: ConfigFlags;
  /**
   * False for commands that only touch local alert state (silence, ack, notify):
   * they must work while the database is down, which is when they are needed.
   */
  requireDatabase?: boolean;
  /** The process environment (injected for tests). */
  env?: NodeJS.ProcessEnv;
}

const DB_PROTOCOLS = new Set(['postgres:', 'postgresql:']);
const ENV_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * Loads the configuration: defaults, then the YAML file (with `${VAR}` taken from
 * the environment), then environment variables, then flags. Validates everything
 * and throws one ConfigError listing every problem.
 */
export async function loadConfig(options: LoadOptions = {}): Promise<SentinelConfig> {
  const flags = options.flags ?? {};
  const env = options.env ?? process.env;
  const problems: string[] = [];

  const envName = flags.env ?? nonEmpty(env.SUPABASE_MODE) ?? 'dev';
  const envLabel = flags.env ? '--env' : 'SUPABASE_MODE';
  if (!ENV_NAME.test(envName)) {
    problems.push(`${envLabel}: "${envName}" is not an environment name (letters, digits, _ and - only)`);
  }

  const path = flags.config ?? nonEmpty(env.SENTINEL_CONFIG);
  let raw: unknown = {};
  if (path) {
    const label = flags.config ? '--config' : 'SENTINEL_CONFIG';
    raw = await readConfigFile(path, label, env, envName, problems);
  }

  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) problems.push(...formatIssues(parsed.error.issues));
  // A file with errors says nothing reliable about the environment: report what is
  // wrong with it rather than follow-on complaints ("no database configured").
  if (problems.length > 0) throw new ConfigError(problems);
  const file: FileConfig = parsed.data!;

  const resolved = resolveEnvironment(envName, file, flags, env, options.requireDatabase === false ? [] : problems) ?? {
    name: envName,
    databaseUrl: '',
  };
  const stateUrlProblem = file.replicas.state_database_url
    ? connectionProblem(file.replicas.state_database_url, 'replicas.state_database_url')
    : undefined;
  if (stateUrlProblem) problems.push(stateUrlProblem);
  if (problems.length > 0) throw new ConfigError(problems);

  // A relative state_dir in the file is relative to the file, not to wherever cron starts.
  const fromFile =
    file.alerting.state_dir && path
      ? resolve(dirname(resolve(path)), file.alerting.state_dir)
      : file.alerting.state_dir;
  const stateDir = resolve(
    nonEmpty(env.SENTINEL_STATE_DIR) ??
      fromFile ??
      join(nonEmpty(env.XDG_STATE_HOME) ?? join(homedir(), '.local', 'state'), 'sentinel'),
  );
  const stateDirSetting = nonEmpty(env.SENTINEL_STATE_DIR)
    ? 'SENTINEL_STATE_DIR'
    : fromFile
      ? 'alerting.state_dir'
      : `state directory (${nonEmpty(env.XDG_STATE_HOME) ? 'from XDG_STATE_HOME' : 'the default'}; set ` +
        `SENTINEL_STATE_DIR to choose one)`;
  return { ...file, env: resolved, stateDir, stateDirSetting, secrets: collectSecrets(resolved, raw) };
}

/**
 * Creates the state directory if needed, once at startup, for the commands that keep
 * state (a run, the loop, serve, silences): a directory that cannot be created or
 * written is a ConfigError naming its setting, at once, not a hang or a failure
 * halfway through the first run.
 */
export async function prepareStateDir(config: Pick<SentinelConfig, 'stateDir' | 'stateDirSetting'>): Promise<void> {
  try {
    await ensureDirectory(config.stateDir);
  } catch (err) {
    if (err instanceof StateDirError)
      throw new ConfigError([`${config.stateDirSetting ?? 'state directory'}: ${err.message}`]);
    throw err;
  }
}

async function readConfigFile(
  path: string,
  label: string,
  env: NodeJS.ProcessEnv,
  envName: string,
  problems: string[],
): Promise<unknown> {
  let text: string;
  try {
    const read = await readBounded(path);
    if (read.tooBig) {
      const size = read.bytes === undefined ? '' : ` (${read.bytes} bytes)`;
      problems.push(
        `${label}: config file ${path} is larger than the limit of ${MAX_CONFIG_BYTES / 1024 / 1024} MiB${size}`,
      );
      return {};
    }
    text = read.text;
  } catch (err) {
    const why = whyUnreadable(err, () => (err as Error).message);
    problems.push(`${label}: cannot read config file ${path}: ${why}`);
    return {};
  }
  let doc: unknown;
  try {
    doc = parseYamlText(text);
  } catch (err) {
    const where =
      err instanceof YAMLParseError && err.linePos
        ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}`
        : '';
    const reason = err instanceof YAMLParseError ? err.code.toLowerCase().replace(/_/g, ' ') : 'invalid YAML';
    problems.push(`${path}: invalid YAML${where} (${reason})`);
    return {};
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    problems.push(`${path}: expected a mapping of settings at the top level`);
    return {};
  }
  // Variables of environments other than the one being checked may be unset (a dev
  // box has no PROD_* secrets): those references are left as they are.
  const required = (p: string[]): boolean => !(p[0] === 'environments' && p.length > 1 && p[1] !== envName);
  return substituteEnv(doc, [], env, problems, required);
}

/**
 * The file's text, or `tooBig` past MAX_CONFIG_BYTES. A regular file's size is
 * checked before reading it; anything else (`--config <(envsubst < x)`, a device)
 * is read up to the limit and no further.
 */
async function readBounded(path: string): Promise<{ tooBig: false; text: string } | { tooBig: true; bytes?: number }> {
  const handle = await open(path, 'r');
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw Object.assign(new Error('it is a directory'), { code: 'EISDIR' });
    if (info.isFile() && info.size > MAX_CONFIG_BYTES) return { tooBig: true, bytes: info.size };
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buffer = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_CONFIG_BYTES) return { tooBig: true };
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return { tooBig: false, text: Buffer.concat(chunks).toString('utf8') };
  } finally {
    await handle.close();
  }
}

/**
 * Parses one YAML document like `yaml.parse`, with one difference: duplicate keys
 * are found here, in one pass with a set per mapping, because the library's own
 * check compares every key with every other (10,000 sources took seconds, the
 * 4 MiB a file may have would take minutes). Throws the first YAMLParseError.
 */
function parseYamlText(text: string): unknown {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: false, lineCounter });
  if (document.errors.length > 0) throw document.errors[0];
  const duplicate = firstDuplicateKey(document);
  if (duplicate !== undefined) {
    const error = new YAMLParseError([duplicate, duplicate + 1], 'DUPLICATE_KEY', 'Map keys must be unique');
    error.linePos = [lineCounter.linePos(duplicate)];
    throw error;
  }
  return document.toJS();
}

/** The offset of the first key that repeats an earlier key of its mapping (compared as `yaml` does: scalar values). */
function firstDuplicateKey(document: Document): number | undefined {
  let found: number | undefined;
  visit(document, {
    Map(_, map) {
      if (!isMap(map)) return undefined;
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        if (seen.has(pair.key.value)) {
          found = pair.key.range?.[0] ?? 0;
          return visit.BREAK;
        }
        seen.add(pair.key.value);
      }
      return undefined;
    },
  });
  return found;
}

/**
 * Replaces `${VAR}` (and `${VAR:-fallback}`) in every string value. Done on the
 * parsed tree rather than the text so that a value containing `:` or `#` cannot
 * change the YAML's structure. `$${VAR}` is a literal `${VAR}`.
 */
export function substituteEnv(
  node: unknown,
  path: string[],
  env: NodeJS.ProcessEnv,
  problems: string[],
  required: (path: string[]) => boolean = () => true,
): unknown {
  if (typeof node === 'string') {
    return node.replace(
      /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (whole, escaped: string, name: string, fallback?: string) => {
        if (escaped) return whole.slice(1);
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        if (!required(path)) return whole;
        problems.push(`${path.join('.') || '(root)'}: environment variable ${name} is not set`);
        // Kept literal so validation does not add "must not be empty" for the same cause.
        return whole;
      },
    );
  }
  if (Array.isArray(node))
    return node.map((item, i) => substituteEnv(item, [...path, String(i)], env, problems, required));
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [k, substituteEnv(v, [...path, k], env, problems, required)]),
    );
  }
  return node;
}

function resolveEnvironment(
  name: string,
  file: FileConfig,
  flags: ConfigFlags,
  env: NodeJS.ProcessEnv,
  problems: string[],
): ResolvedEnvironment | undefined {
  const fromFile = file.environments[name];
  const known = Object.keys(file.environments);

  const databaseUrl = flags.databaseUrl ?? nonEmpty(env.DATABASE_URL) ?? fromFile?.database_url;
  const dbLabel = flags.databaseUrl
    ? '--database-url'
    : nonEmpty(env.DATABASE_URL)
      ? 'DATABASE_URL'
      : `environments.${name}.database_url`;
  if (!databaseUrl) {
    const hint = known.length > 0 && !fromFile ? ` (the config file defines: ${known.join(', ')})` : '';
    problems.push(
      `no database configured for environment "${name}"${hint}: set DATABASE_URL or ` +
        `environments.${name}.database_url in the config file`,
    );
  } else if (!isUrlWith(databaseUrl, DB_PROTOCOLS)) {
    // Never echo the value: it usually carries a password.
    problems.push(`${dbLabel}: expected a postgres:// or postgresql:// connection URL`);
  } else {
    const tls = connectionProblem(databaseUrl, dbLabel);
    if (tls) problems.push(tls);
  }

  const envPostgrest = nonEmpty(env.POSTGREST_URL);
  const envSupabase = nonEmpty(env.SUPABASE_URL);
  if (envPostgrest && envSupabase && !flags.postgrestUrl) {
    problems.push(
      'POSTGREST_URL and SUPABASE_URL are both set: set only one (SUPABASE_URL for Supabase, POSTGREST_URL for a ' +
        'plain PostgREST)',
    );
  }
  // The value as given: a Supabase URL gets /rest/v1 appended only once it is known good.
  let given: string | undefined;
  let restLabel = '';
  let supabase = false;
  if (flags.postgrestUrl) [given, restLabel] = [flags.postgrestUrl, '--postgrest-url'];
  else if (envPostgrest) [given, restLabel] = [envPostgrest, 'POSTGREST_URL'];
  else if (envSupabase) [given, restLabel, supabase] = [envSupabase, 'SUPABASE_URL', true];
  else if (fromFile?.postgrest_url) [given, restLabel] = [fromFile.postgrest_url, `environments.${name}.postgrest_url`];
  else if (fromFile?.supabase_url)
    [given, restLabel, supabase] = [fromFile.supabase_url, `environments.${name}.supabase_url`, true];
  const example = supabase ? 'https://<project>.supabase.co' : 'http://localhost:3000';
  if (given !== undefined && !isHttpUrlWithHost(given)) {
    // Never echoed: a URL may carry credentials.
    problems.push(
      `${restLabel}: expected an http:// or https:// URL` +
        `${/^https?:/i.test(given) ? ` with a host, e.g. ${example}` : ''}`,
    );
  }
  const restUrl = given === undefined ? undefined : supabase ? supabaseRest(given) : given;

  const serviceRoleKey = resolveApiKey(
    name,
    fromFile,
    env,
    supabase || given === undefined ? undefined : restLabel,
    problems,
  );
  if (!databaseUrl) return undefined;
  return { name, databaseUrl, restUrl: restUrl?.replace(/\/+$/, ''), serviceRoleKey };
}

/** Supabase's new API key formats; anything else is taken for a legacy JWT (`eyJ…`). */
const SECRET_PREFIX = 'sb_secret_';
const PUBLISHABLE_PREFIX = 'sb_publishable_';

/**
 * The API key the schema-cache probe sends: `SUPABASE_SECRET_KEY` or
 * `SUPABASE_SERVICE_ROLE_KEY` (the environment beats the file's `secret_key` /
 * `service_role_key`). Both set at the same level is refused rather than one
 * silently winning: during a rotation that hides which key is really in use.
 * Either setting may hold either kind of key (a new `sb_secret_…` key or the
 * legacy `service_role` JWT): the key's own prefix decides the headers. Refused,
 * each in one line that never shows the key: a publishable key (the anon role,
 * which cannot read the ops views) and an `sb_` key aimed at a plain PostgREST
 * (`plainPostgrest` names that setting), which only verifies JWTs.
 */
function resolveApiKey(
  name: string,
  fromFile: FileConfig['environments'][string] | undefined,
  env: NodeJS.ProcessEnv,
  plainPostgrest: string | undefined,
  problems: string[],
): string | undefined {
  const envSecret = nonEmpty(env.SUPABASE_SECRET_KEY);
  const envServiceRole = nonEmpty(env.SUPABASE_SERVICE_ROLE_KEY);
  if (envSecret && envServiceRole) {
    problems.push(
      'SUPABASE_SECRET_KEY and SUPABASE_SERVICE_ROLE_KEY are both set: set only one (SUPABASE_SECRET_KEY for an ' +
        'sb_secret_ key, SUPABASE_SERVICE_ROLE_KEY for the legacy service_role JWT)',
    );
    return undefined;
  }
  // The file's two keys together are refused by the schema (environments.<name>).
  const [key, label] = envSecret
    ? [envSecret, 'SUPABASE_SECRET_KEY']
    : envServiceRole
      ? [envServiceRole, 'SUPABASE_SERVICE_ROLE_KEY']
      : fromFile?.secret_key
        ? [fromFile.secret_key, `environments.${name}.secret_key`]
        : fromFile?.service_role_key
          ? [fromFile.service_role_key, `environments.${name}.service_role_key`]
          : [undefined, ''];
  if (key === undefined) return undefined;
  const characterProblem = badKeyCharacter(key);
  if (characterProblem) {
    problems.push(`${label}: ${characterProblem}`);
    return undefined;
  }
  if (key.startsWith(PUBLISHABLE_PREFIX)) {
    problems.push(
      `${label}: this is a publishable key (sb_publishable_…), which maps to the anon role and cannot read the ops ` +
        'views: use a secret key (sb_secret_…, Project Settings → API Keys) or the legacy service_role JWT',
    );
    return undefined;
  }
  if (key.startsWith('sb_') && plainPostgrest) {
    problems.push(
      `${label}: an ${key.startsWith(SECRET_PREFIX) ? 'sb_secret_' : 'sb_'} key works only through Supabase's API ` +
        `gateway (SUPABASE_URL), but ${plainPostgrest} points at a plain PostgREST, which only understands JWTs: ` +
        `use a JWT signed with its jwt-secret, or set SUPABASE_URL instead`,
    );
    return undefined;
  }
  return key;
}

function supabaseRest(base: string): string {
  return `${base.replace(/\/+$/, '')}/rest/v1`;
}

function isUrlWith(value: string, protocols: Set<string>): boolean {
  try {
    return protocols.has(new URL(value).protocol);
  } catch {
    return false;
  }
}

/**
 * An http(s) URL with a host, written with `//`: WHATWG parsing reads `http:///x`
 * and `http:x` as the host `x`, which is never what was meant.
 */
function isHttpUrlWithHost(value: string): boolean {
  const authority = /^https?:\/\/([^/?#]*)/i.exec(value.trim())?.[1];
  // The host: after any user info, before any port.
  if (!authority?.replace(/^.*@/, '').replace(/:\d*$/, '')) return false;
  return isUrlWith(value, new Set(['http:', 'https:']));
}

/**
 * Why a key cannot be what the provider issued (whitespace, a control or invisible
 * character: a line break pasted along, a BOM from an editor), or undefined. Says
 * where, never what: the key is a secret.
 */
function badKeyCharacter(key: string): string | undefined {
  const at = key.search(/[\s\p{Cc}\p{Cf}]/u);
  if (at < 0) return undefined;
  const char = key[at]!;
  const what =
    char === '\n' || char === '\r'
      ? 'a line break'
      : char === ' '
        ? 'a space'
        : char === '\t'
          ? 'a tab'
          : /[\p{Cc}\p{Cf}]/u.test(char)
            ? 'a control or invisible character'
            : 'whitespace';
  return (
    `contains ${what} (character ${at + 1} of ${key.length}): a key has no whitespace or control characters; ` +
    `copy it again without them`
  );
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

const SECRET_KEY = /(key|token|secret|password|webhook_url|heartbeat_url|auth|headers)/i;

/** Secret values to mask in every output: connection passwords, keys, webhook URLs. */
function collectSecrets(env: ResolvedEnvironment, raw: unknown): string[] {
  const found = new Set<string>([...secretsOfUrl(env.databaseUrl)]);
  if (env.serviceRoleKey) found.add(env.serviceRoleKey);
  // Everything under a secret-looking key is secret, nested values included
  // (a webhook's `headers: { Authorization: ... }`, `basic_auth: { password }`).
  const walk = (node: unknown, key: string, inherited: boolean): void => {
    const secret = inherited || SECRET_KEY.test(key);
    if (typeof node === 'string') {
      if (secret && node.length > 0) found.add(node);
      if (/url/i.test(key)) for (const s of secretsOfUrl(node)) found.add(s);
    } else if (Array.isArray(node)) for (const item of node) walk(item, key, secret);
    else if (node !== null && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v, k, secret);
  };
  walk(raw, '', false);
  return [...found];
}

/** zod issues as `path: message` lines, phrased for a person editing YAML. */
export function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(`${path ? `${path}.` : ''}${key}: unknown setting`);
      continue;
    }
    out.push(`${path || '(root)'}: ${describeIssue(issue)}`);
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  // A schema's own message (advice such as "use at least 16 characters") is kept;
  // only zod's generic wording is rephrased for a person editing YAML.
  if (!/^(Invalid input|Too small|Too big)/.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${article(issue.expected)}`;
    case 'too_small':
      return issue.origin === 'string'
        ? 'must not be empty'
        : `must be ${issue.inclusive ? 'at least' : 'greater than'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

function article(expected: string): string {
  const word =
    expected === 'record' || expected === 'object' ? 'mapping' : expected === 'int' ? 'whole number' : expected;
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}
