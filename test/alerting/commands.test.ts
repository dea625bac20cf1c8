import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { identityKey, idsFor, type TrackedAlert } from '../../src/alerting/decide.js';
import { type AlertingState, AlertStore, emptyState, type Silence } from '../../src/alerting/store.js';
import { type CliResult, runCli } from '../helpers/cli.js';

/**
 * `sentinel alerts`, `sentinel silence ...` through the built CLI. They need no
 * database: the alert state file is written directly.
 */

const DB_PASSWORD = 'db-pass-5f4e3d2c1b';
const HOOK_TOKEN = 'tok-1a2b3c4d5e6f';
const HMAC_SECRET = 'hmac-secret-0987654321';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sentinel-commands-'));
  await writeFile(
    join(dir, 'sentinel.yaml'),
    `notifiers:
  - { name: hook, type: webhook, url: "https://hooks.example.com/hook?token=${HOOK_TOKEN}", secret: "${HMAC_SECRET}" }
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const stateDir = (): string => join(dir, 'state');

function sentinel(args: string[]): Promise<CliResult> {
  return runCli(args, {
    SENTINEL_STATE_DIR: stateDir(),
    SENTINEL_CONFIG: join(dir, 'sentinel.yaml'),
    SUPABASE_MODE: 'prod',
    DATABASE_URL: `postgres://sentinel:${DB_PASSWORD}@db.invalid:5432/app`,
  });
}

const hoursFromNow = (h: number): string => new Date(Date.now() + h * 3_600_000).toISOString();

function tracked(check: string, fields: Partial<TrackedAlert> = {}): TrackedAlert {
  const environment = fields.environment ?? 'prod';
  const key = identityKey(environment, { check, subject: fields.subject });
  return {
    key,
    ...idsFor(key),
    environment,
    check,
    level: 'warning',
    message: `${check} is unhappy`,
    details: {},
    firingSince: hoursFromNow(-2),
    lastSeenAt: hoursFromNow(0),
    healthyRuns: 0,
    ...fields,
  };
}

function silence(id: string, check: string, fields: Partial<Silence> = {}): Silence {
  return {
    id,
    check,
    environment: 'prod',
    reason: 'planned work',
    createdBy: 'ops',
    createdAt: hoursFromNow(-1),
    endsAt: hoursFromNow(1),
    ...fields,
  };
}

async function writeState(alerts: TrackedAlert[], more: Partial<AlertingState> = {}): Promise<void> {
  await new AlertStore(stateDir()).write({
    ...emptyState(),
    alerts: Object.fromEntries(alerts.map((a) => [a.key, a])),
    ...more,
  });
}

/** The line of `sentinel alerts` for the alert with this id. */
function lineOf(stdout: string, alert: TrackedAlert): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${alert.id} `));
  if (!line) throw new Error(`no line for ${alert.id} in:\n${stdout}`);
  return line;
}

describe('sentinel alerts', () => {
  it('shows the active silences matching each alert, and "never notified" apart from them', async () => {
    const notifiedThenSilenced = tracked('stuck_batches', {
      notifiedLevel: 'warning',
      lastNotifiedAt: hoursFromNow(-2),
    });
    const silencedNeverNotified = tracked('error_spike', { subject: 'vendor_a' });
    const silenceEnded = tracked('error_spike', { subject: 'vendor_b' }); // its silence expired: not silenced now
    const plainNotified = tracked('schema_cache', { notifiedLevel: 'critical', level: 'critical' });
    await writeState([notifiedThenSilenced, silencedNeverNotified, silenceEnded, plainNotified], {
      silences: [
        silence('s-0000aaaa', 'stuck_batches'),
        silence('s-0000bbbb', 'error_spike', { source: 'vendor_a' }),
        silence('s-0000cccc', 'error_spike', { environment: undefined }), // every environment, every source
        silence('s-0000dddd', 'error_spike', { source: 'vendor_b', endsAt: hoursFromNow(-0.5) }),
        silence('s-0000eeee', 'error_spike', { source: 'vendor_b', expiredAt: hoursFromNow(-0.5) }),
        silence('s-0000ffff', 'schema_cache', { environment: 'staging' }),
      ],
    });

    const r = await sentinel(['alerts']);

    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const notifiedLine = lineOf(r.stdout, notifiedThenSilenced);
    expect(notifiedLine).toContain('silenced by s-0000aaaa');
    expect(notifiedLine).not.toContain('notified');
    expect(lineOf(r.stdout, silencedNeverNotified)).toContain('; silenced by s-0000bbbb, s-0000cccc, never notified)');
    const endedLine = lineOf(r.stdout, silenceEnded);
    expect(endedLine).toContain('silenced by s-0000cccc, never notified');
    expect(endedLine).not.toContain('s-0000dddd');
    expect(endedLine).not.toContain('s-0000eeee');
    const plainLine = lineOf(r.stdout, plainNotified);
    expect(plainLine).not.toContain('silenced');
    expect(plainLine).not.toContain('notified');
  });

  it('says "never notified" (not "silenced") for an alert no silence covers any more', async () => {
    const alert = tracked('stuck_batches');
    await writeState([alert], {
      silences: [silence('s-0000aaaa', 'stuck_batches', { expiredAt: hoursFromNow(-0.1) })],
    });

    const line = lineOf((await sentinel(['alerts'])).stdout, alert);

    expect(line).toMatch(/; never notified\)$/);
    expect(line).not.toContain('silenced');
  });

  it('--json lists the matching active silence ids of each alert', async () => {
    const silenced = tracked('stuck_batches', { notifiedLevel: 'warning' });
    const other = tracked('schema_cache');
    await writeState([silenced, other], { silences: [silence('s-0000aaaa', 'stuck_batches')] });

    const r = await sentinel(['alerts', '--json']);

    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as {
      alerts: Array<{ id: string; silencedBy: string[]; notifiedLevel?: string }>;
    };
    expect(parsed.alerts.map((a) => [a.id, a.silencedBy, a.notifiedLevel])).toEqual([
      [silenced.id, ['s-0000aaaa'], 'warning'],
      [other.id, [], undefined],
    ]);
  });

  it('masks the secrets of the config and its notifiers, as the report does (--json and text)', async () => {
    const alert = tracked('schema_cache', {
      message: `PostgREST said: bad password ${DB_PASSWORD}`,
      details: { url: `https://hooks.example.com/hook?token=${HOOK_TOKEN}`, nested: [{ signature: HMAC_SECRET }] },
    });
    await writeState([alert], {
      dead: [
        {
          notification: { id: 'n1', notifier: 'hook', createdAt: hoursFromNow(-1), host: 'h', events: [] },
          environment: 'prod',
          attempts: 1,
          completedParts: [],
          lastError: `HTTP 401 from https://hooks.example.com/hook?token=${HOOK_TOKEN}`,
          failedAt: hoursFromNow(-1),
        },
      ],
    });

    const json = await sentinel(['alerts', '--json']);
    const text = await sentinel(['alerts']);

    for (const r of [json, text]) {
      expect(r.code).toBe(0);
      for (const secret of [DB_PASSWORD, HOOK_TOKEN, HMAC_SECRET]) expect(r.stdout).not.toContain(secret);
      expect(r.stdout).toContain('***');
    }
    const parsed = JSON.parse(json.stdout) as {
      alerts: Array<{ message: string; details: { nested: Array<{ signature: string }> } }>;
    };
    expect(parsed.alerts[0]!.message).toBe('PostgREST said: bad password ***');
    expect(parsed.alerts[0]!.details.nested[0]!.signature).toBe('***');
    // the webhook URL is the notifier's secret, as in delivery errors
    expect(text.stdout).toContain('last: HTTP 401 from ***');
  });
});

describe('sentinel silence', () => {
  it('list masks the secrets of the config and its notifiers (--json and text)', async () => {
    await writeState([], {
      silences: [
        silence('s-0000aaaa', 'stuck_batches', { reason: `rotating ${DB_PASSWORD} and ?token=${HOOK_TOKEN}` }),
      ],
    });

    const json = await sentinel(['silence', 'list', '--json']);
    const text = await sentinel(['silence', 'list']);

    for (const r of [json, text]) {
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain(DB_PASSWORD);
      expect(r.stdout).not.toContain(HOOK_TOKEN);
    }
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ id: 's-0000aaaa', reason: 'rotating *** and ?***', active: true }),
    ]);
  });

  it.each(['stuck_batches', 'schema_cache', 'queue_backlog'])(
    'add --source is rejected for %s, which has no per-source alerts',
    async (check) => {
      const r = await sentinel([
        'silence',
        'add',
        '--check',
        check,
        '--source',
        'vendor_a',
        '--duration',
        '1h',
        '--reason',
        'planned',
      ]);

      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([
        `sentinel: config error: --source: ${check} has no per-source alerts, so this silence would match nothing ` +
          `(only error_spike, dedupe_rate, source_freshness, row_error_codes, anomalies take --source)`,
      ]);
      expect((await new AlertStore(stateDir()).read()).silences).toEqual([]);
    },
  );

  it('add --source is accepted for error_spike and matches only that source', async () => {
    const r = await sentinel([
      'silence',
      'add',
      '--check',
      'error_spike',
      '--source',
      'vendor_a',
      '--duration',
      '1h',
      '--reason',
      'planned',
    ]);

    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Silenced error_spike for source vendor_a in prod');
    expect((await new AlertStore(stateDir()).read()).silences).toEqual([
      expect.objectContaining({ check: 'error_spike', source: 'vendor_a', environment: 'prod' }),
    ]);
  });

  it('add --source "" is rejected rather than silencing every source', async () => {
    const r = await sentinel([
      'silence',
      'add',
      '--check',
      'error_spike',
      '--source',
      '',
      '--duration',
      '1h',
      '--reason',
      'planned',
    ]);

    expect(r.code).toBe(3);
    expect(r.stderr).toContain('--source:');
    expect((await new AlertStore(stateDir()).read()).silences).toEqual([]);
  });
});
