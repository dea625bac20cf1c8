import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/postgrest/server.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDb } from '../helpers/db.js';
import { answers, type FakeAnswer, type FakePostgrest, startFakePostgrest } from '../helpers/fake-postgrest.js';

/**
 * PostgREST (or whatever answers in its place) misbehaving, as a user of
 * `sentinel --json` sees it: an impostor's 200 is not health, a redirect is not
 * followed, a PostgREST that took the request and went quiet is "did not answer",
 * not "unreachable", and only a reloadable failure sends a NOTIFY.
 */

interface Report {
  alerts: Array<{ check: string; level: string; message: string; details: Record<string, unknown> }>;
  checks: Array<{ name: string; outcome: string; measurements?: Record<string, unknown> }>;
}

const KEY = 'service-role-key-0123456789abcdef';
let db: TestDb;
let dir: string;
let fake: FakePostgrest;
let listener: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'sentinel-faults-pgrst-'));
  writeFileSync(
    join(dir, 'config.yaml'),
    'checks:\n  schema_cache: { request_timeout_seconds: 0.5, reprobe_attempts: 2, reprobe_interval_seconds: ' +
      '0.1, cooldown_minutes: 0 }\n',
  );
  fake = await startFakePostgrest();
  listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  await fake.listenForReload(listener);
});
afterEach(() => {
  fake.setDefault(answers.ok());
  fake.requests.length = 0;
  fake.notifications.length = 0;
});
afterAll(async () => {
  await listener?.end();
  await fake?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

let runs = 0;
async function check(url = fake.url): Promise<{ report: Report; stderr: string; schemaCache: Report['alerts'] }> {
  const r = await runCli(['--json', '-c', join(dir, 'config.yaml')], {
    DATABASE_URL: db.url,
    POSTGREST_URL: url,
    SUPABASE_SERVICE_ROLE_KEY: KEY,
    SENTINEL_STATE_DIR: join(dir, `state-${++runs}`),
  });
  const report = JSON.parse(r.stdout) as Report;
  expect(r.stdout + r.stderr).not.toContain(KEY);
  return { report, stderr: r.stderr, schemaCache: report.alerts.filter((a) => a.check === 'schema_cache') };
}

const html = (body: string): FakeAnswer => ({ status: 200, body, headers: { 'Content-Type': 'text/html' } });

describe('a 200 that is not PostgREST is not healthy', () => {
  const cases: Array<[string, FakeAnswer, RegExp, string]> = [
    [
      "nginx's welcome page",
      html(
        '<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head><body><h1>Welcome to ' +
          'nginx!</h1></body></html>',
      ),
      new RegExp(
        "^PostgREST probe got HTTP 200 text\\/html that is not PostgREST's answer \\(not JSON\\): " +
          '"<!DOCTYPE html>\\\\n<html>\\\\n<head>\\\\n<title>Welcome to nginx!<\\/title>\\\\n<\\/head' +
          '><body…"$',
      ),
      'not JSON',
    ],
    [
      'plain text',
      { status: 200, body: 'OK', headers: { 'Content-Type': 'text/plain' } },
      /^PostgREST probe got HTTP 200 text\/plain that is not PostgREST's answer \(not JSON\): "OK"$/,
      'not JSON',
    ],
    [
      'truncated JSON',
      { status: 200, body: '[{"status":"processing","batch_cou' },
      /\(invalid or truncated JSON\): "\[\{"status":"processing","batch_cou"$/,
      'invalid or truncated JSON',
    ],
    [
      'a JSON object instead of rows',
      { status: 200, body: { status: 'ok' } },
      /\(JSON but not an array of rows\): "\{"status":"ok"\}"$/,
      'JSON but not an array of rows',
    ],
    ['an empty body', { status: 200, body: '' }, /\(an empty body\): ""$/, 'an empty body'],
    [
      'a megabyte for one row',
      { status: 200, body: JSON.stringify([{ status: 'x'.repeat(1_000_000) }]) },
      /\(more than 64 KiB for one row\)/,
      'more than 64 KiB for one row',
    ],
    [
      'escape codes in the body',
      html('\u001b[2J\u001b[31mhacked\u202e'),
      /: "\\x1b\[2J\\x1b\[31mhacked\\u202e"$/,
      'not JSON',
    ],
  ];
  for (const [name, answer, message, why] of cases) {
    it(`${name}: critical, naming what came back; no reload`, async () => {
      fake.setDefault(answer);
      const { schemaCache, report } = await check();
      expect(schemaCache).toHaveLength(1);
      expect(schemaCache[0]!.level).toBe('critical');
      expect(schemaCache[0]!.message).toMatch(message);
      expect(schemaCache[0]!.details).toMatchObject({ status: 200, why });
      expect(report.checks.find((c) => c.name === 'schema_cache')!.measurements).toMatchObject({
        result: 'not_postgrest',
        up: false,
      });
      expect(fake.notifications).toEqual([]);
      expect(fake.requests).toHaveLength(1);
    });
  }
});

describe('PostgREST slow, gone, redirecting or refusing: what was seen, nothing more', () => {
  it('accepted the request and never answered: "did not answer", not "unreachable"', async () => {
    fake.setDefault(answers.hang());
    const { schemaCache } = await check();
    expect(schemaCache.map((a) => [a.level, a.message])).toEqual([
      [
        'critical',
        `PostgREST at ${fake.url}/ did not answer: it accepted the connection but sent no answer within 0.5s`,
      ],
    ]);
    expect(schemaCache[0]!.details).toMatchObject({ stage: 'answer' });
    expect(fake.notifications).toEqual([]);
  });

  it('answered past the timeout: the same, with no retry', async () => {
    fake.setDefault({ ...answers.ok(), delayMs: 1500 });
    const { schemaCache } = await check();
    expect(schemaCache[0]!.message).toMatch(
      /did not answer: it accepted the connection but sent no answer within 0\.5s$/,
    );
    expect(fake.requests).toHaveLength(1);
  });

  it('nothing listening: unreachable, connection refused', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const { schemaCache } = await check(closed);
    expect(schemaCache.map((a) => a.message)).toEqual([`PostgREST unreachable at ${closed}/: connection refused`]);
    expect(schemaCache[0]!.details).toMatchObject({ stage: 'connect' });
  });

  it('a redirect is not followed (the key would go to another host); the alert names only the host', async () => {
    fake.setDefault({
      status: 302,
      body: '',
      headers: { Location: 'https://login.example.com/auth?token=abc123secret' },
    });
    const { schemaCache } = await check();
    expect(schemaCache.map((a) => a.message)).toEqual([
      'PostgREST probe was redirected (HTTP 302 to login.example.com); Sentinel does not follow redirects',
    ]);
    expect(JSON.stringify(schemaCache)).not.toContain('abc123secret');
    expect(fake.requests).toHaveLength(1);
  });

  it('401 from a gateway: critical, no reload', async () => {
    fake.setDefault(answers.gateway401());
    const { schemaCache } = await check();
    expect(schemaCache.map((a) => [a.level, a.message])).toEqual([
      ['critical', 'PostgREST rejected the request: HTTP 401'],
    ]);
    expect(fake.notifications).toEqual([]);
  });

  it('503 PGRST002: the reload goes out over the database and the re-probe finds it fixed', async () => {
    fake.brokenUntilReload(answers.pgrst002());
    const { schemaCache } = await check();
    expect(schemaCache.map((a) => [a.level, a.message])).toEqual([
      ['warning', 'PGRST002 detected - auto-reload triggered'],
    ]);
    expect(fake.notifications).toEqual(['reload schema']);
  });
});
