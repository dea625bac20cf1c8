import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createDashboardApi } from '../../src/server/api.js';
import type { ErrorDistributionResponse } from '../../src/server/api-types.js';
import { CLI, type CliResult, cliEnv, runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { insertBatch, insertRowErrors, minutesAgo } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';

/**
 * Hostile data (docs/contract.md §9, issue 12 item 6): names, filenames, error codes and
 * messages, reasons with terminal escapes, CR/LF, a bidi override, a C1 CSI, DEL
 * and 1 MB strings, in a real database, read back through the built CLI, the API
 * and /metrics. What a person sees holds no raw control or bidi character (the
 * escaped form instead), every line is bounded, and machine answers stay small.
 */

const ESC = '\x1b[2J\x1b[31m';
/** Clears the screen and turns it red, forges a line, reverses what follows, sends a C1 CSI and a DEL. */
const EVIL = `evil${ESC}src\r\nFORGED\u202egnp.exe\x9b\x7f`;
const EVIL_SHOWN = 'evil\\x1b[2J\\x1b[31msrc\\r\\nFORGED\\u202egnp.exe\\x9b\\x7f';
/** The plugin API's reserved characters in a Nagios perfdata label. */
const QUOTE = "a=b|c'd";
/** A 1 MB name that starts with an escape. */
const BIG = `\x1b[31m${'X'.repeat(1_000_000)}`;
/** 1 MB of `x.x.…`: every position a word boundary where a URL scheme could start (redaction must stay linear). */
const DOTTED = 'x.'.repeat(500_000);
/** A silent feed (source_freshness), named with an OSC title sequence ended by BEL. */
const FRESH = 'silent\x1b]0;pwned\x07feed\u2066';
const CODE = `E_${ESC}\u202e\r\nCODE`;
const MESSAGE = `${ESC}bad row\r\n${'M'.repeat(1_000_000)}`;
const REASON = `oops ${ESC}\u202e\r\n2025-01-04 10:15:30 | INFO     | sentinel | forged`;

/** A raw control or bidi character; a newline ends a line and is allowed between lines. */
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** Longest line a command may print (a message is cut at 500 characters, a log message at 2000). */
const MAX_STDOUT_LINE = 1200;
const MAX_STDERR_LINE = 2100;

let db: TestDb;
let stateDir: string;
let configPath: string;

/** JSON is YAML; C1, bidi and separator characters are written as escapes too (YAML wants printable text). */
function yamlOf(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

beforeAll(async () => {
  db = await createTestDatabase();
  stateDir = await mkdtemp(join(tmpdir(), 'sentinel-hostile-state-'));
  configPath = join(stateDir, 'sentinel.yaml');
  await writeFile(
    configPath,
    yamlOf({
      sources: {
        [EVIL]: { error_spike_threshold_pct: 5 },
        [QUOTE]: { error_spike_threshold_pct: 5 },
        [FRESH]: { expected_every: '1h' },
      },
    }),
  );
  // Stuck (stuck_batches, `batches stuck`), waiting (queue_backlog's details) and
  // erroring (error_spike per source, in both hours so the judged bucket has rows).
  await insertBatch(db.pool, {
    source: EVIL,
    filename: `${EVIL}.csv`,
    status: 'processing',
    created_at: minutesAgo(40),
    updated_at: minutesAgo(30),
  });
  await insertBatch(db.pool, {
    source: BIG,
    filename: BIG,
    status: 'validating',
    created_at: minutesAgo(50),
    updated_at: minutesAgo(40),
  });
  await insertBatch(db.pool, {
    source: QUOTE,
    filename: QUOTE,
    status: 'inserting',
    created_at: minutesAgo(30),
    updated_at: minutesAgo(20),
  });
  await insertBatch(db.pool, {
    source: DOTTED,
    filename: DOTTED,
    status: 'processing',
    created_at: minutesAgo(40),
    updated_at: minutesAgo(35),
  });
  await insertBatch(db.pool, {
    source: BIG,
    filename: `${EVIL}.csv`,
    status: 'uploaded',
    created_at: minutesAgo(90),
    updated_at: minutesAgo(90),
  });
  for (const source of [EVIL, QUOTE, BIG]) {
    for (const m of [0.5, 61]) {
      const id = await insertBatch(db.pool, {
        source,
        filename: EVIL,
        status: 'completed',
        total_rows: 1000,
        error_rows: 500,
        created_at: minutesAgo(m),
        updated_at: minutesAgo(m),
      });
      await insertRowErrors(db.pool, id, [{ error_code: CODE, error_message: MESSAGE, created_at: minutesAgo(m) }]);
    }
  }
});
afterAll(async () => {
  await db?.drop();
  await rm(stateDir, { recursive: true, force: true });
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db.url,
  SENTINEL_STATE_DIR: stateDir,
  SENTINEL_CONFIG: configPath,
  SUDO_USER: EVIL,
  ...extra,
});

/** No raw control or bidi character on either stream, and every line bounded. */
function expectSafe(r: CliResult): void {
  for (const [name, text, max] of [
    ['stdout', r.stdout, MAX_STDOUT_LINE],
    ['stderr', r.stderr, MAX_STDERR_LINE],
  ] as const) {
    const raw = UNSAFE.exec(text);
    expect(
      raw,
      `${name} holds a raw U+${raw?.[0].charCodeAt(0).toString(16).padStart(4, '0')}: ` +
        `${JSON.stringify(text.slice(Math.max(0, (raw?.index ?? 0) - 80), (raw?.index ?? 0) + 80))}`,
    ).toBeNull();
    const longest = Math.max(0, ...text.split('\n').map((l) => l.length));
    expect(longest, `${name} has a line of ${longest} characters`).toBeLessThanOrEqual(max);
  }
  // stderr is log lines in the guide's shape and `sentinel: ` error lines, nothing else.
  for (const line of r.stderr.split('\n').filter(Boolean)) {
    expect(line).toMatch(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| (DEBUG|INFO|WARNING|ERROR) +\| sentinel \| |sentinel: )/);
  }
}

describe('hostile data in every human output', () => {
  it('the human report (--no-color) shows names, messages and details escaped and cut', async () => {
    const r = await runCli(['--no-color'], env());
    expect(r.code, r.stderr).toBe(2);
    expectSafe(r);
    expect(r.stdout).toContain(`Error rate 50.0% > 5.0% threshold for source ${EVIL_SHOWN}`);
    expect(r.stdout).toContain('No batches from silent\\x1b]0;pwned\\x07feed\\u2066 for');
    // The 1 MB source in the batches of the details (`id (source, …)`), cut.
    expect(r.stdout).toMatch(/ \(\\x1b\[31mX{90,}…, /);
    // The only escape sequences are none at all: --no-color and data-borne ones escaped.
    expect(r.stdout).not.toContain('\x1b');
  });

  it(
    '--format nagios: one line, escaped text, perfdata labels without "=", raw "|" or controls, quoted per the ' +
      'plugin API',
    async () => {
      const r = await runCli(['--format', 'nagios'], env());
      expect(r.code, r.stderr).toBe(2);
      expectSafe(r);
      const line = r.stdout.trimEnd();
      expect(line.split('\n')).toHaveLength(1);
      expect(line.split('|')).toHaveLength(2);
      const perf = line.slice(line.indexOf('|') + 1);
      const labels = [...perf.matchAll(/'((?:[^']|'')*)'=/g)].map((m) => m[1]!);
      expect(labels.length).toBeGreaterThan(3);
      for (const label of labels) expect(label).not.toMatch(/[=|\n]/);
      expect(labels).toContain(`error_rate ${EVIL_SHOWN}`);
      expect(labels).toContain("error_rate a\\x3db\\x7cc''d");
      // Nothing but labels and values: every token is 'label'=value[;...].
      expect(perf.trim().replace(/'(?:[^']|'')*'=[-0-9.]+[a-zA-Z%]*(;[-~@:0-9.]*)*( |$)/g, '')).toBe('');
    },
  );

  it('batches stuck: a table cut per cell before it is measured, names escaped', async () => {
    const r = await runCli(['batches', 'stuck'], env());
    expect(r.code, r.stderr).toBe(0);
    expectSafe(r);
    expect(r.stdout).toContain('evil\\x1b[2J\\x1b[31msrc\\r\\nFORGED\\u202egnp');
    expect(r.stdout).toMatch(/\\x1b\[31mX+…/);
    expect(r.stdout).toMatch(/(x\.){31}x…/);
    // 4 columns of at most 64 characters: the 1 MB name does not pad every row.
    for (const l of r.stdout.split('\n')) expect(l.length).toBeLessThanOrEqual(2 + 4 * 64 + 3 * 2);
    // --json stays exact: the machine gets the real name back.
    const json = await runCli(['batches', 'stuck', '--json'], env());
    expect((JSON.parse(json.stdout) as Array<{ source: string }>).map((b) => b.source)).toContain(EVIL);
  });

  it('batches fail-stuck --yes and audit: the hostile reason, user and sources are shown escaped', async () => {
    const fail = await runCli(['batches', 'fail-stuck', '--older-than', '15m', '--reason', REASON, '--yes'], env());
    expect(fail.code, fail.stderr).toBe(0);
    expectSafe(fail);
    expect(fail.stdout).toContain('oops \\x1b[2J\\x1b[31m\\u202e\\r\\n2025-01-04');
    const audit = await runCli(['batches', 'audit'], env());
    expect(audit.code, audit.stderr).toBe(0);
    expectSafe(audit);
    expect(audit.stdout).toContain(
      '"oops \\x1b[2J\\x1b[31m\\u202e\\r\\n2025-01-04 10:15:30 | INFO     | sentinel | forged"',
    );
    expect(audit.stdout).toContain(`${EVIL_SHOWN} / `); // the OS user (SUDO_USER)
    // The forged log line stays inside its quotes: no line of the output starts with it.
    expect(audit.stdout.split('\n').some((l) => l.startsWith('2025-01-04 10:15:30 | INFO'))).toBe(false);
  });

  it('alerts and silence list show messages, subjects and reasons escaped', async () => {
    const alerts = await runCli(['alerts'], env());
    expect(alerts.code, alerts.stderr).toBe(0);
    expectSafe(alerts);
    expect(alerts.stdout).toContain(`error_spike/${EVIL_SHOWN}: Error rate`);
    const add = await runCli(
      ['silence', 'add', '--check', 'error_spike', '--source', EVIL, '--duration', '1h', '--reason', REASON],
      env(),
    );
    expect(add.code, add.stderr).toBe(0);
    expectSafe(add);
    const list = await runCli(['silence', 'list'], env());
    expect(list.code, list.stderr).toBe(0);
    expectSafe(list);
    expect(list.stdout).toContain(`error_spike/${EVIL_SHOWN}`);
    expect(list.stdout).toContain(`by ${EVIL_SHOWN}: oops \\x1b[2J\\x1b[31m\\u202e\\r\\n2025-01-04`);
  });

  it('slo: a target without data says "no data"; a hostile --env is echoed escaped', async () => {
    const r = await runCli(['slo'], env());
    expect([0, 1]).toContain(r.code);
    expectSafe(r);
    expect(r.stdout).toMatch(/\nschema_cache +no data /);
    const bad = await runCli(['slo', '--env', `prod${ESC}\u202e`], env());
    expect(bad.code).toBe(3);
    expectSafe(bad);
    expect(bad.stderr).toContain(
      'sentinel: config error: --env: "prod\\x1b[2J\\x1b[31m\\u202e" is not an environment name',
    );
  });

  it('error lines echo what was typed escaped: an unknown option, a bad flag value', async () => {
    const unknown = await runCli([`--bogus${ESC}\u202e`], env());
    expect(unknown.code).toBe(3);
    expectSafe(unknown);
    expect(unknown.stderr).toContain("sentinel: unknown option '--bogus\\x1b[2J\\x1b[31m\\u202e'");
    const nagios = await runCli(['--format', 'nagios', `--bogus${ESC}`], env());
    expect(nagios.code).toBe(3);
    expectSafe(nagios);
    expect(nagios.stdout).toMatch(/^SENTINEL UNKNOWN - unknown option '--bogus\\x1b\[2J\\x1b\[31m'/);
    const value = await runCli(['batches', 'fail-stuck', '--older-than', `${ESC}1h`, '--reason', 'x'], env());
    expect(value.code).toBe(3);
    expectSafe(value);
    expect(value.stderr).toContain('sentinel: config error: --older-than: "\\x1b[2J\\x1b[31m1h" is not a duration');
  });

  it('log lines keep the guide shape with the message escaped and cut', () => {
    const lines: string[] = [];
    const logger = createLogger({ write: (l) => lines.push(l), now: () => new Date('2025-01-04T10:15:30Z') });
    logger.info(`refresh failed for ${EVIL}\n2025-01-04 10:15:31 | ERROR    | sentinel | forged ${BIG}`);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^2025-01-04 10:15:30 \| INFO {5}\| sentinel \| refresh failed for evil\\x1b\[2J/);
    expect(lines[0]).toContain('\\n2025-01-04 10:15:31 | ERROR');
    expect(lines[0]).not.toMatch(UNSAFE);
    expect(lines[0]!.length).toBeLessThanOrEqual(MAX_STDERR_LINE);
    expect(lines[0]!.endsWith('…')).toBe(true);
  });
});

describe('hostile data in machine answers', () => {
  it('/api/error-distribution cuts messages at 1 KiB and codes at 256 characters', async () => {
    const api = createDashboardApi({
      databaseUrl: db.url,
      environment: 'dev',
      stuckThresholdMinutes: 10,
      errorThresholdPct: 15,
    });
    try {
      const answer = await api.handle('/api/error-distribution', new URLSearchParams('limit=100'), {
        last: () => undefined,
        role: () => 'single',
      });
      expect(answer.status).toBe(200);
      const { rows } = answer.body as ErrorDistributionResponse;
      const row = rows.find((r) => r.error_code === CODE)!;
      expect(row).toBeDefined();
      expect(row.occurrence_count).toBe(6);
      expect(row.sample_message!.length).toBeLessThanOrEqual(1024);
      expect(row.sample_message!.endsWith('…')).toBe(true);
      expect(row.sample_message!.startsWith(`${ESC}bad row`)).toBe(true); // JSON escapes it on the wire
      expect(JSON.stringify(answer.body).length).toBeLessThan(8 * 1024);
    } finally {
      await api.close();
    }
  });
});

describe('/metrics with 10,000 hostile sources and 1 MB names', () => {
  const children: ChildProcess[] = [];
  let big: TestDb;
  beforeAll(async () => {
    big = await createTestDatabase();
    // 10,000 sources with escapes and bidi overrides, each with its own row count, plus ten 1 MB names.
    await big.pool.query(
      `insert into intake.simplicity_batches
              (source, status, total_rows, error_rows, skipped_rows, created_at, completed_at, updated_at)
       select E'\\x1b[2J\\x1b[31msrc' || g || E'\\u202e\\r\\n' || repeat('y', 200), 'completed',
              g, g / 3, g / 5, now(), now(), now()
         from generate_series(1, 10000) g`,
    );
    await big.pool.query(
      `insert into intake.simplicity_batches
              (source, status, total_rows, error_rows, created_at, completed_at, updated_at)
       select g || repeat('Z', 1000000), 'completed', 20000 + g, 1, now(), now(), now() from generate_series(1, 10) g`,
    );
  });
  afterAll(async () => {
    await big?.drop();
  });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  /** Starts `sentinel serve` on a free port and returns the first /metrics text that has per-source series. */
  async function firstScrape(extraArgs: string[]): Promise<string> {
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--listen', '127.0.0.1:0', '--interval', '3600', ...extraArgs],
      {
        env: cliEnv({ DATABASE_URL: big.url, SENTINEL_STATE_DIR: join(stateDir, 'serve') }),
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor(
      () => /Listening on http:\/\/\S+/.test(stderr) || child.exitCode !== null,
      30_000,
      `"Listening on" in: ${stderr}`,
    );
    const url = /Listening on (http:\/\/\S+)/.exec(stderr)?.[1];
    if (!url) throw new Error(`not listening: ${stderr}`);
    // The first run's figures: wait for the per-source series to appear.
    let text = '';
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`sentinel serve exited; stderr: ${stderr}`);
        text = await (await fetch(`${url}/metrics`)).text();
        return /sentinel_pipeline_bucket_rows\{source=/.test(text);
      },
      'the per-source series of the first run',
      { timeoutMs: 120_000, intervalMs: 100, detail: () => `stderr: ${stderr}` },
    );
    child.kill('SIGTERM');
    return text;
  }

  /** The distinct `source` label values, as written in the exposition (prom-client doubles backslashes). */
  const sourcesOf = (text: string): Set<string> =>
    new Set([...text.matchAll(/source="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!));
  const otherRows = (text: string): number =>
    Number(/sentinel_pipeline_bucket_rows\{source="other"\} (\d+)/.exec(text)?.[1]);

  it('exports the 50 busiest sources plus "other", labels escaped and cut, and the scrape stays small', async () => {
    const text = await firstScrape([]);
    const sources = sourcesOf(text);
    expect(sources.size).toBe(51);
    expect(sources).toContain('other');
    // The busiest (the 1 MB names, 20,001+ rows) are kept, cut at 128 characters.
    expect([...sources].filter((s) => /^\d+Z+…$/.test(s))).toHaveLength(10);
    for (const s of sources) expect(s.replace(/\\\\/g, '\\').length).toBeLessThanOrEqual(128);
    expect([...sources].some((s) => s.includes('\\\\x1b[2J') && s.includes('\\\\u202e'))).toBe(true);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    // "other" sums every folded source: the 10,000 small ones but the 40 busiest of them.
    expect(otherRows(text)).toBe((9960 * 9961) / 2);
    expect(Buffer.byteLength(text)).toBeLessThan(64 * 1024);
  });

  it('metrics.max_sources sets how many sources get series of their own', async () => {
    const config = join(stateDir, 'metrics.yaml');
    await writeFile(config, 'metrics:\n  max_sources: 5\n');
    const text = await firstScrape(['--config', config]);
    const sources = sourcesOf(text);
    expect(sources.size).toBe(6);
    expect([...sources].filter((s) => s !== 'other').every((s) => /^\d+Z+…$/.test(s))).toBe(true);
    expect(otherRows(text)).toBe((10000 * 10001) / 2 + 20001 + 20002 + 20003 + 20004 + 20005);
    // Bounded at load like every count.
    await writeFile(config, 'metrics:\n  max_sources: 1001\n');
    const bad = await runCli(['--config', config], {
      DATABASE_URL: big.url,
      SENTINEL_STATE_DIR: join(stateDir, 'serve'),
    });
    expect(bad.code).toBe(3);
    expect(bad.stderr.trim()).toBe('sentinel: config error: metrics.max_sources: must be at most 1000');
  });
});
