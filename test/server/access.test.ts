import { describe, expect, it } from 'vitest';
import { type AccessContext, type AccessVerdict, access } from '../../src/server/access.js';
import { API_PATHS, endpointsOf, findRoute, ROUTES } from '../../src/server/routes.js';

/**
 * The access rules as one table (src/server/access.ts), rows taken from what the
 * server did before the rules moved there (test/server/*.test.ts pin the same
 * behaviour end to end over HTTP).
 */

const TOKEN = 'a-token-of-sufficient-length';
const DASHBOARD = { dashboard: true, webRoot: true };

interface Row {
  path: string;
  loopback: boolean;
  token?: string;
  host?: string;
  bearer?: string;
  metricsWithoutToken?: boolean;
  expected: AccessVerdict;
}

const rows: Row[] = [
  // No token configured, on loopback: everything open to loopback Host headers.
  { path: '/api/status', loopback: true, host: '127.0.0.1:9464', expected: 'allow' },
  { path: '/api/alerts', loopback: true, host: 'localhost:9464', expected: 'allow' },
  { path: '/api/pipeline-health', loopback: true, host: '[::1]:9464', expected: 'allow' },
  { path: '/api/status', loopback: true, host: 'dash.localhost', expected: 'allow' },
  { path: '/api/unknown', loopback: true, host: '127.0.0.1', expected: 'allow' },
  { path: '/metrics', loopback: true, host: '127.0.0.1:9464', expected: 'allow' },
  { path: '/healthz', loopback: true, host: '127.0.0.1:9464', expected: 'allow' },
  { path: '/readyz', loopback: true, host: '127.0.0.2', expected: 'allow' },
  { path: '/', loopback: true, host: 'localhost', expected: 'allow' },
  { path: '/assets/index.js', loopback: true, host: 'localhost', expected: 'allow' },
  { path: '/nope', loopback: true, host: 'localhost', expected: 'allow' },
  // A bearer sent anyway changes nothing when none is configured.
  { path: '/api/status', loopback: true, host: 'localhost', bearer: 'whatever', expected: 'allow' },
  // No token, on loopback, Host not loopback (DNS rebinding): 421 for every path, even unknown ones.
  { path: '/api/status', loopback: true, host: 'evil.example:9464', expected: 421 },
  { path: '/metrics', loopback: true, host: 'evil.example', expected: 421 },
  { path: '/healthz', loopback: true, host: 'evil.example', expected: 421 },
  { path: '/', loopback: true, host: '192.168.1.10:9464', expected: 421 },
  { path: '/nope', loopback: true, host: 'evil.example', expected: 421 },
  { path: '/api/status', loopback: true, host: undefined, expected: 421 },
  { path: '/api/status', loopback: true, host: 'localhost.evil.example', expected: 421 },
  { path: '/api/status', loopback: true, host: 'evil_host.localhost', expected: 421 },
  // No token, off loopback (a metrics-only server): /api/* would need one; /metrics is open.
  { path: '/api/status', loopback: false, host: 'monitor.example', expected: 401 },
  { path: '/metrics', loopback: false, host: 'monitor.example', expected: 'allow' },
  { path: '/healthz', loopback: false, host: 'monitor.example', expected: 'allow' },
  // Token configured, off loopback: /api/* and /metrics need it; the Host is not checked.
  { path: '/api/status', loopback: false, token: TOKEN, host: 'monitor.example', bearer: TOKEN, expected: 'allow' },
  { path: '/api/status', loopback: false, token: TOKEN, host: 'monitor.example', bearer: 'wrong', expected: 401 },
  { path: '/api/status', loopback: false, token: TOKEN, host: 'monitor.example', expected: 401 },
  { path: '/api/unknown', loopback: false, token: TOKEN, host: 'monitor.example', expected: 401 },
  { path: '/metrics', loopback: false, token: TOKEN, host: 'monitor.example', bearer: TOKEN, expected: 'allow' },
  { path: '/metrics', loopback: false, token: TOKEN, host: 'monitor.example', expected: 401 },
  { path: '/metrics', loopback: false, token: TOKEN, host: 'monitor.example', bearer: 'wrong', expected: 401 },
  { path: '/healthz', loopback: false, token: TOKEN, host: 'monitor.example', expected: 'allow' },
  { path: '/readyz', loopback: false, token: TOKEN, host: 'monitor.example', bearer: 'wrong', expected: 'allow' },
  { path: '/', loopback: false, token: TOKEN, host: 'monitor.example', expected: 'allow' },
  { path: '/assets/app.css', loopback: false, token: TOKEN, host: 'monitor.example', expected: 'allow' },
  { path: '/nope', loopback: false, token: TOKEN, host: 'monitor.example', expected: 'allow' },
  // Token configured, on loopback: the token guards, so any Host is accepted.
  { path: '/api/status', loopback: true, token: TOKEN, host: 'evil.example', bearer: TOKEN, expected: 'allow' },
  { path: '/api/status', loopback: true, token: TOKEN, host: 'localhost', expected: 401 },
  { path: '/api/status', loopback: true, token: TOKEN, host: 'localhost', bearer: `${TOKEN}x`, expected: 401 },
  { path: '/metrics', loopback: true, token: TOKEN, host: 'localhost', expected: 401 },
  { path: '/metrics', loopback: true, token: TOKEN, host: 'localhost', bearer: TOKEN, expected: 'allow' },
  { path: '/healthz', loopback: true, token: TOKEN, host: 'evil.example', expected: 'allow' },
  // --metrics-without-token: /metrics open, /api/* still guarded.
  { path: '/metrics', loopback: true, token: TOKEN, host: 'localhost', metricsWithoutToken: true, expected: 'allow' },
  {
    path: '/metrics',
    loopback: false,
    token: TOKEN,
    host: 'monitor.example',
    metricsWithoutToken: true,
    expected: 'allow',
  },
  {
    path: '/api/status',
    loopback: false,
    token: TOKEN,
    host: 'monitor.example',
    metricsWithoutToken: true,
    expected: 401,
  },
];

describe('access (who may read which route)', () => {
  it.each(rows)('$path loopback=$loopback token=$token host=$host bearer=$bearer → $expected', (row) => {
    const ctx: AccessContext = {
      loopback: row.loopback,
      token: row.token,
      host: row.host,
      bearer: row.bearer,
      ...(row.metricsWithoutToken ? { metricsWithoutToken: true } : {}),
    };
    expect(access(findRoute(row.path, DASHBOARD), ctx)).toBe(row.expected);
  });
});

describe('the route table', () => {
  it('lists the endpoints a 404 names, in order, with and without the dashboard', () => {
    expect(endpointsOf({ dashboard: false, webRoot: false })).toEqual(['/metrics', '/healthz', '/readyz']);
    expect(endpointsOf(DASHBOARD)).toEqual([
      '/metrics',
      '/healthz',
      '/readyz',
      '/',
      '/api/status',
      '/api/alerts',
      '/api/batch-performance',
      '/api/error-distribution',
      '/api/pipeline-health',
      '/api/sources',
      '/api/anomalies',
    ]);
  });

  it('finds exact paths before prefixes, and nothing of the dashboard without it', () => {
    expect(findRoute('/api/status', DASHBOARD)?.path).toBe(API_PATHS.status);
    expect(findRoute('/api/other', DASHBOARD)?.prefix).toBe(true);
    expect(findRoute('/assets/x.js', DASHBOARD)?.serves).toBe('asset');
    expect(findRoute('/api/status', { dashboard: false, webRoot: false })).toBeUndefined();
    expect(findRoute('/', { dashboard: false, webRoot: true })).toBeUndefined();
    expect(findRoute('/assets/x.js', { dashboard: false, webRoot: true })?.serves).toBe('asset');
    expect(findRoute('/metricsx', DASHBOARD)).toBeUndefined();
  });

  it('gives every API path a row the dashboard can fetch', () => {
    for (const path of Object.values(API_PATHS)) {
      expect(ROUTES.find((r) => r.path === path)).toMatchObject({ serves: 'api', access: 'loopback-or-token' });
    }
  });
});
