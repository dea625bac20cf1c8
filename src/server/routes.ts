/**
 * Every path `sentinel serve` (and `--loop --metrics-port`) answers, in one table:
 * what it serves and who may read it. The server's dispatch (http.ts), the API's
 * switch (api.ts) and the dashboard's fetches (web/src/api.ts) all read it, so a
 * path is named once. Plain data and no Node imports: the page bundles it.
 */

/** The dashboard API's paths, by name (what web/src/api.ts fetches). */
export const API_PATHS = {
  status: '/api/status',
  alerts: '/api/alerts',
  batchPerformance: '/api/batch-performance',
  errorDistribution: '/api/error-distribution',
  pipelineHealth: '/api/pipeline-health',
  sources: '/api/sources',
  anomalies: '/api/anomalies',
} as const;

/** One of {@link API_PATHS}. */
export type ApiPath = (typeof API_PATHS)[keyof typeof API_PATHS];

/**
 * Who may read a route (decided by `access` in access.ts):
 * - `public`: anyone (probes, the page, which holds no data and asks for the token);
 * - `loopback-or-token`: the bearer token when one is configured, and always off loopback (`/api/*`);
 * - `token-if-configured`: the bearer token when one is configured, unless
 *   `--metrics-without-token` (`/metrics`: Prometheus sends it natively).
 */
export type RouteAccess = 'public' | 'loopback-or-token' | 'token-if-configured';

/** What a route serves. */
export type RouteServes = 'metrics' | 'health' | 'readiness' | 'page' | 'asset' | 'api';

/** One row of the route table. */
export interface Route {
  /** The exact path, or with `prefix` every path starting with it. */
  readonly path: string;
  readonly prefix?: boolean;
  readonly serves: RouteServes;
  readonly access: RouteAccess;
  /**
   * When it exists: `always`; `dashboard` with the dashboard (`sentinel serve`);
   * `web-root` when a page directory is served (the dashboard's, or one given).
   */
  readonly when: 'always' | 'dashboard' | 'web-root';
}

/** The methods every route takes: everything is read-only. */
export const ROUTE_METHODS: readonly string[] = ['GET', 'HEAD'];

/** The table. Exact paths in the order a 404 lists them. */
export const ROUTES: readonly Route[] = [
  { path: '/metrics', serves: 'metrics', access: 'token-if-configured', when: 'always' },
  { path: '/healthz', serves: 'health', access: 'public', when: 'always' },
  { path: '/readyz', serves: 'readiness', access: 'public', when: 'always' },
  { path: '/', serves: 'page', access: 'public', when: 'dashboard' },
  ...Object.values(API_PATHS).map(
    (path): Route => ({ path, serves: 'api', access: 'loopback-or-token', when: 'dashboard' }),
  ),
  { path: '/assets/', prefix: true, serves: 'asset', access: 'public', when: 'web-root' },
  // Any other /api/ path: the API answers 404 itself, to whoever may read the API.
  { path: '/api/', prefix: true, serves: 'api', access: 'loopback-or-token', when: 'dashboard' },
];

/** Which optional parts a server has. */
export interface RouteAvailability {
  dashboard: boolean;
  webRoot: boolean;
}

function available(route: Route, has: RouteAvailability): boolean {
  return route.when === 'always' || (route.when === 'dashboard' ? has.dashboard : has.webRoot);
}

/** The route of `path` on a server with these parts, or undefined (404). Exact paths win over prefixes. */
export function findRoute(path: string, has: RouteAvailability): Route | undefined {
  const routes = ROUTES.filter((r) => available(r, has));
  return routes.find((r) => !r.prefix && r.path === path) ?? routes.find((r) => r.prefix && path.startsWith(r.path));
}

/** The exact paths a server with these parts answers (listed in a 404 to whoever may read them). */
export function endpointsOf(has: RouteAvailability): string[] {
  return ROUTES.filter((r) => !r.prefix && available(r, has)).map((r) => r.path);
}
