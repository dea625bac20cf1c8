import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  alertmanagerAlerts,
  alertmanagerConfigSchema,
  alertName,
  alertsUrl,
  createAlertmanagerNotifier,
  type PostableAlert,
} from '../../src/notifiers/alertmanager.js';
import { useHttpServer } from '../helpers/http-server.js';
import { event, notification, sendContext, storm } from '../helpers/notifications.js';
import { describeDeliveryContract, problems } from './contract.js';

const PASSWORD = 'am-pa55word-0123456789';
const TOKEN = 'am-bearer-token-0123456789abcdef';
const BASIC = Buffer.from(`sentinel:${PASSWORD}`).toString('base64');
/** notification().createdAt: the tests below send at once, as a delivery on time does. */
const CREATED = '2025-01-04T10:16:00.000Z';
const FIFTEEN_MINUTES_AFTER_CREATED = '2025-01-04T10:31:00.000Z';
/** A clock standing still at the notification's creation. */
const onTime = (): Date => new Date(CREATED);

// Alertmanager answers 200 with an empty body.
const server = useHttpServer({ status: 200 });

function config(overrides: Record<string, unknown> = {}): z.output<typeof alertmanagerConfigSchema> {
  return alertmanagerConfigSchema.parse({ name: 'am', type: 'alertmanager', url: server.url, ...overrides });
}

function alertsOf(index = 0): PostableAlert[] {
  const req = server.requests[index];
  if (!req) throw new Error(`no request #${index}`);
  return JSON.parse(req.body) as PostableAlert[];
}

describe('alertmanager request', () => {
  it('posts the documented API v2 request: /api/v2/alerts, a JSON array of postable alerts', async () => {
    const notifier = createAlertmanagerNotifier(config(), { now: onTime });
    await notifier.send(notification(), sendContext());

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/api/v2/alerts');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.authorization).toBeUndefined();

    expect(alertsOf()).toEqual([
      {
        labels: {
          alertname: 'SentinelStuckBatches',
          check: 'stuck_batches',
          environment: 'prod',
          severity: 'critical',
        },
        annotations: {
          summary: '3 batches stuck > 10m: processing(2), validating(1)',
          // Readable prose with the numbers and their units, never JSON (src/notifiers/details.ts).
          description: 'stuck batches: 2 batches in processing, oldest 15 min\ntotal stuck: 3\nthreshold: 10 min',
          remediation: 'Check the worker logs for exceptions and database connectivity.',
          runbook_url: 'docs/runbooks.md#stuck-batches',
        },
        startsAt: '2025-01-04T10:15:32.123Z',
        endsAt: FIFTEEN_MINUTES_AFTER_CREATED,
      },
    ]);
  });

  it('labels a per-source alert with source and leaves out empty annotations', () => {
    const [alert] = alertmanagerAlerts(
      notification([
        event({
          check: 'error_spike',
          subject: 'vendor_7',
          level: 'warning',
          details: {},
          remediation: undefined,
          message: 'Error rate 31%',
        }),
      ]),
      15 * 60_000,
      new Date(CREATED),
    );
    expect(alert).toEqual({
      labels: {
        alertname: 'SentinelErrorSpike',
        check: 'error_spike',
        environment: 'prod',
        severity: 'warning',
        source: 'vendor_7',
      },
      annotations: { summary: 'Error rate 31%', runbook_url: 'docs/runbooks.md#error-spike' },
      startsAt: '2025-01-04T10:15:32.123Z',
      endsAt: FIFTEEN_MINUTES_AFTER_CREATED,
    });
  });

  it(
    'ends a resolved alert at resolvedAt and a firing one at the ' + 'time of sending + resolve_timeout_minutes',
    async () => {
      const notifier = createAlertmanagerNotifier(config({ resolve_timeout_minutes: 60 }), { now: onTime });
      await notifier.send(
        notification([
          event({ kind: 'repeat' }),
          event({ kind: 'resolved', check: 'schema_cache', resolvedAt: '2025-01-04T10:15:59.000Z' }),
        ]),
        sendContext(),
      );
      expect(alertsOf().map((a) => [a.labels.alertname, a.startsAt, a.endsAt])).toEqual([
        ['SentinelStuckBatches', '2025-01-04T10:15:32.123Z', '2025-01-04T11:16:00.000Z'],
        ['SentinelSchemaCache', '2025-01-04T10:15:32.123Z', '2025-01-04T10:15:59.000Z'],
      ]);
    },
  );

  it('resolves the warning-severity alert at once when an alert escalates to critical', () => {
    const alerts = alertmanagerAlerts(
      notification([event({ kind: 'escalated', level: 'critical' })]),
      15 * 60_000,
      new Date(CREATED),
    );
    expect(alerts.map((a) => [a.labels.severity, a.endsAt])).toEqual([
      ['critical', FIFTEEN_MINUTES_AFTER_CREATED],
      ['warning', '2025-01-04T10:16:00.000Z'],
    ]);
    expect(alerts[1]!.labels).toEqual({ ...alerts[0]!.labels, severity: 'warning' });
  });

  it(
    'counts endsAt of a late delivery (after an outage) from the ' + 'time of sending, so it does not arrive expired',
    async () => {
      const sentAt = '2025-01-04T12:00:00.000Z';
      const notifier = createAlertmanagerNotifier(config(), { now: () => new Date(sentAt) });
      await notifier.send(
        notification([
          event({ kind: 'repeat' }),
          event({ kind: 'escalated', check: 'error_spike' }),
          event({ kind: 'resolved', check: 'schema_cache', resolvedAt: '2025-01-04T10:15:59.000Z' }),
        ]),
        sendContext(),
      );
      expect(alertsOf().map((a) => [a.labels.alertname, a.labels.severity, a.endsAt])).toEqual([
        ['SentinelStuckBatches', 'critical', '2025-01-04T12:15:00.000Z'],
        ['SentinelErrorSpike', 'critical', '2025-01-04T12:15:00.000Z'],
        // What already ended keeps the time it ended: in the past, so resolved on arrival.
        ['SentinelErrorSpike', 'warning', CREATED],
        ['SentinelSchemaCache', 'critical', '2025-01-04T10:15:59.000Z'],
      ]);
      expect(alertmanagerAlerts(notification(), 15 * 60_000, new Date(sentAt))[0]!.endsAt).toBe(
        '2025-01-04T12:15:00.000Z',
      );
    },
  );

  it('reads the real clock at every send by default', async () => {
    const notifier = createAlertmanagerNotifier(config());
    const before = Date.now();
    await notifier.send(notification(), sendContext());
    const after = Date.now();
    const endsAt = Date.parse(alertsOf()[0]!.endsAt);
    expect(endsAt).toBeGreaterThanOrEqual(before + 15 * 60_000);
    expect(endsAt).toBeLessThanOrEqual(after + 15 * 60_000);
  });

  it('sends basic auth or a bearer token', async () => {
    await createAlertmanagerNotifier(config({ basic_auth: { username: 'sentinel', password: PASSWORD } })).send(
      notification(),
      sendContext(),
    );
    await createAlertmanagerNotifier(config({ bearer_token: TOKEN })).send(notification(), sendContext());
    expect(server.requests[0]!.headers.authorization).toBe(`Basic ${BASIC}`);
    expect(server.requests[1]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('appends /api/v2/alerts to the root, tolerating a trailing slash and keeping a path prefix', async () => {
    expect(alertsUrl('http://alertmanager:9093')).toBe('http://alertmanager:9093/api/v2/alerts');
    expect(alertsUrl('http://alertmanager:9093/')).toBe('http://alertmanager:9093/api/v2/alerts');
    expect(alertsUrl('https://ops.example.com/alertmanager/')).toBe(
      'https://ops.example.com/alertmanager/api/v2/alerts',
    );
    await createAlertmanagerNotifier(config({ url: `${server.url}/am//` })).send(notification(), sendContext());
    expect(server.requests[0]!.url).toBe('/am/api/v2/alerts');
  });

  it('names alerts Sentinel + PascalCase(check)', () => {
    expect(alertName('stuck_batches')).toBe('SentinelStuckBatches');
    expect(alertName('error_spike')).toBe('SentinelErrorSpike');
    expect(alertName('slo-latency.p99')).toBe('SentinelSloLatencyP99');
  });

  it('marks itself for re-posting every run, so firing alerts never expire in Alertmanager while they fire', () => {
    const notifier = createAlertmanagerNotifier(config());
    expect(notifier.everyRun).toBe(true);
    expect(notifier).toMatchObject({ name: 'am', type: 'alertmanager', minLevel: 'warning', sendResolved: true });
  });

  it('sends a storm of 50 as one request with 50 alerts, one per source', async () => {
    await createAlertmanagerNotifier(config()).send(storm(50), sendContext());
    expect(server.requests).toHaveLength(1);
    const alerts = alertsOf();
    expect(alerts).toHaveLength(50);
    expect(new Set(alerts.map((a) => a.labels.source)).size).toBe(50);
    expect(alerts.every((a) => a.labels.alertname === 'SentinelErrorSpike')).toBe(true);
  });
});

describe('alertmanager config', () => {
  it('applies the defaults to a minimal section', () => {
    expect(
      alertmanagerConfigSchema.parse({ name: 'am', type: 'alertmanager', url: 'http://alertmanager:9093' }),
    ).toEqual({
      name: 'am',
      type: 'alertmanager',
      url: 'http://alertmanager:9093',
      min_level: 'warning',
      send_resolved: true,
      timeout_seconds: 10,
      resolve_timeout_minutes: 15,
    });
  });

  it('names the path of every bad setting', () => {
    expect(problems({ name: 'am', type: 'alertmanager' })).toEqual(['notifiers.0.url: required']);
    const bad = problems({
      name: 'am',
      type: 'alertmanager',
      url: `http://sentinel:${PASSWORD}@alertmanager:9093`,
      resolve_timeout_minutes: 0,
      basic_auth: { username: 'sentinel' },
      resolve_timeout: '15m',
    });
    expect(bad).toEqual(
      expect.arrayContaining([
        'notifiers.0.url: credentials in the URL are not sent: use basic_auth: { username, password } instead',
        expect.stringMatching(/^notifiers\.0\.resolve_timeout_minutes: /),
        expect.stringMatching(/^notifiers\.0\.basic_auth\.password: /),
        'notifiers.0.resolve_timeout: unknown setting',
      ]),
    );
    expect(bad.join('\n')).not.toContain(PASSWORD);
    expect(
      problems({
        name: 'am',
        type: 'alertmanager',
        url: 'http://alertmanager:9093',
        basic_auth: { username: 'a', password: 'b' },
        bearer_token: 'c',
      }),
    ).toEqual(['notifiers.0.bearer_token: set basic_auth or bearer_token, not both']);
  });

  it('reports the password, its base64 form and the bearer token as secrets', () => {
    expect(
      createAlertmanagerNotifier(config({ basic_auth: { username: 'sentinel', password: PASSWORD } })).secrets(),
    ).toEqual([PASSWORD, BASIC]);
    expect(createAlertmanagerNotifier(config({ bearer_token: TOKEN })).secrets()).toEqual([TOKEN]);
    expect(createAlertmanagerNotifier(config()).secrets()).toEqual([]);
  });
});

const basicAuth = (): Record<string, unknown> => ({ basic_auth: { username: 'sentinel', password: PASSWORD } });
const bearer = (): Record<string, unknown> => ({ bearer_token: TOKEN });

describeDeliveryContract({
  provider: 'alertmanager',
  idempotent: true,
  server,
  create: (overrides) => createAlertmanagerNotifier(config(overrides)),
  pointAt: (root) => ({ url: root }),
  path: '/api/v2/alerts',
  label: (host) => `alertmanager (${host})`,
  accepts: [{ status: 200 }],
  failures: [
    {
      name: 'treats 400 (invalid alerts) as final and shows why',
      answers: [
        { status: 400, headers: { 'content-type': 'application/json' }, body: '"start time must be before end time"' },
      ],
      retryable: false,
      status: 400,
      matches: [
        new RegExp(
          '^alertmanager \\(127\\.0\\.0\\.1:\\d+\\): HTTP 400 Bad Request: "start time must be before' +
            ' end time" \\(Alertmanager rejected',
        ),
      ],
    },
    {
      name: 'treats 404 as final and says the URL must be the Alertmanager root',
      answers: [{ status: 404, body: '404 page not found' }],
      overrides: () => ({ url: `${server.url}/api/v2/alerts` }),
      retryable: false,
      status: 404,
      contains: ['url must be the Alertmanager root'],
    },
    {
      name: 'treats 401 as final and points at the credentials',
      answers: [{ status: 401, body: 'Unauthorized' }],
      overrides: bearer,
      retryable: false,
      status: 401,
      contains: ['check basic_auth or bearer_token'],
    },
    { name: 'retries 5xx', answers: [{ status: 500, body: '"failed to store alert"' }], retryable: true, status: 500 },
    {
      name: 'retries 429 with Retry-After',
      answers: [{ status: 429, headers: { 'Retry-After': '2' } }],
      retryable: true,
      status: 429,
      retryAfterMs: 2000,
    },
  ],
  secrets: [PASSWORD, BASIC, TOKEN],
  secretConfigs: [basicAuth, bearer],
  echoes: [
    {
      name: 'never shows the password or its base64 form in an error, even when the answer echoes the headers',
      overrides: basicAuth,
      answer: (req) => ({ status: 401, body: `denied ${req.headers.authorization}` }),
      contains: ['denied Basic ***'],
      excludes: [BASIC],
    },
    {
      name: 'never shows the bearer token in an error, even when the answer echoes the headers',
      overrides: bearer,
      answer: (req) => ({ status: 401, body: `denied ${req.headers.authorization}` }),
      contains: ['denied Bearer ***'],
      excludes: [TOKEN],
    },
  ],
});
