import { Badge, BarChart, Card, LineChart, Subtitle, Text, Title } from '@tremor/react';
import { type FormEvent, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  type AlertsResponse,
  type ApiFailure,
  type BatchPerformanceResponse,
  type ErrorDistributionResponse,
  getToken,
  loadAll,
  type PipelineHealthResponse,
  type StatusResponse,
  setToken,
} from './api.js';
import { ageSince, formatAge, formatHour, formatTime, pct } from './format.js';

export const REFRESH_MS = 15_000;
const RETRYING = `Retrying every ${REFRESH_MS / 1000} s.`;
const RANGES = [
  { label: '24 h', hours: 24 },
  { label: '7 d', hours: 168 },
] as const;
type Hours = (typeof RANGES)[number]['hours'];

interface Data {
  status?: StatusResponse;
  alerts?: AlertsResponse;
  performance?: BatchPerformanceResponse;
  errors?: ErrorDistributionResponse;
  pipeline?: PipelineHealthResponse;
}

interface Problems {
  /** No HTTP answer from the Sentinel server (or a 5xx other than 503). */
  api?: string;
  /** 503 from an endpoint, or the last run could not reach the database. */
  database?: string;
  /** 401: a token is needed (or the one given was refused). */
  unauthorized?: string;
}

function initialHours(): Hours {
  return location.hash === '#7d' ? 168 : 24;
}

export function App() {
  const [hours, setHours] = useState<Hours>(initialHours);
  const hoursRef = useRef<Hours>(hours);
  const [data, setData] = useState<Data>({});
  const [problems, setProblems] = useState<Problems>({});
  const [loadedAt, setLoadedAt] = useState<number | null>(null);
  // When the status now on screen was received: its run age grows from there,
  // also while the API is down (a failed refresh must not make it look fresh).
  const [statusAt, setStatusAt] = useState<number | null>(null);
  const [now, setNow] = useState(() => Date.now());
  const inFlight = useRef(0);

  const refresh = useCallback(async () => {
    const seq = ++inFlight.current;
    const wanted = hoursRef.current;
    const r = await loadAll(wanted);
    // A newer request (a range switch) started meanwhile: its answer wins.
    if (seq !== inFlight.current) return;
    const next: Problems = {};
    const fresh: Data = {};
    for (const [key, part] of Object.entries(r) as Array<[keyof Data, (typeof r)[keyof Data]]>) {
      if (part.ok) {
        (fresh as Record<string, unknown>)[key] = part.value;
        continue;
      }
      const e: ApiFailure = part.error;
      if (e.kind === 'unauthorized') next.unauthorized = e.message;
      else if (e.kind === 'unavailable') next.database ??= e.message.replace(/^database unreachable:\s*/i, '');
      else
        next.api ??=
          e.kind === 'network'
            ? `no answer from the Sentinel server (${e.message})`
            : `${e.message} (HTTP ${e.status ?? '?'})`;
    }
    if (fresh.status?.database_reachable === false)
      next.database ??= 'the last check run could not reach the monitored database';
    // Keep the last good figures on screen (marked stale) rather than blanking the page mid-incident.
    setData((prev) => ({ ...prev, ...fresh }));
    setProblems(next);
    if (fresh.status) setStatusAt(Date.now());
    if (Object.keys(fresh).length === 5) setLoadedAt(Date.now());
  }, []);

  useEffect(() => {
    void refresh();
    const id = setInterval(() => void refresh(), REFRESH_MS);
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      clearInterval(id);
      clearInterval(tick);
    };
  }, [refresh]);

  const chooseHours = (h: Hours) => {
    hoursRef.current = h;
    setHours(h);
    history.replaceState(null, '', h === 168 ? '#7d' : '#24h');
    void refresh();
  };

  if (problems.unauthorized) return <TokenForm reason={problems.unauthorized} onSubmit={() => void refresh()} />;

  return (
    <div className="mx-auto max-w-7xl space-y-4 p-4 sm:p-6">
      <Banners problems={problems} loadedAt={loadedAt} now={now} />
      <StatusHeader status={data.status} receivedAt={statusAt} now={now} />
      <AlertsCard alerts={data.alerts} now={now} />
      <PerformanceCard performance={data.performance} hours={hours} onHours={chooseHours} now={now} />
      <div className="grid gap-4 lg:grid-cols-2">
        <ErrorsCard errors={data.errors} now={now} />
        <PipelineCard pipeline={data.pipeline} />
      </div>
    </div>
  );
}

function Banners({ problems, loadedAt, now }: { problems: Problems; loadedAt: number | null; now: number }) {
  const stale = loadedAt ? ` Figures below are from ${formatAge((now - loadedAt) / 1000)} ago.` : '';
  return (
    <>
      {problems.api && (
        <div
          role="alert"
          data-testid="banner-api"
          className="rounded-tremor-default border border-red-300 bg-red-50 p-4 text-red-900"
        >
          <strong className="font-semibold">Sentinel API unreachable:</strong> {problems.api}.{stale} {RETRYING}
        </div>
      )}
      {problems.database && (
        <div
          role="alert"
          data-testid="banner-db"
          className="rounded-tremor-default border border-red-300 bg-red-50 p-4 text-red-900"
        >
          <strong className="font-semibold">Database unreachable:</strong> {problems.database}.{stale} {RETRYING}
        </div>
      )}
    </>
  );
}

const STATUS_STYLE: Record<string, { word: string; box: string; dot: string }> = {
  healthy: { word: 'Healthy', box: 'border-emerald-300 bg-emerald-50 text-emerald-900', dot: 'bg-emerald-500' },
  degraded: { word: 'Degraded', box: 'border-amber-300 bg-amber-50 text-amber-900', dot: 'bg-amber-500' },
  critical: { word: 'Critical', box: 'border-red-300 bg-red-50 text-red-900', dot: 'bg-red-600' },
  unknown: { word: 'Unknown', box: 'border-slate-300 bg-slate-100 text-slate-800', dot: 'bg-slate-400' },
};

function StatusHeader({
  status,
  receivedAt,
  now,
}: {
  status?: StatusResponse;
  receivedAt: number | null;
  now: number;
}) {
  const s = STATUS_STYLE[status?.overall_status ?? 'unknown'] ?? STATUS_STYLE.unknown!;
  const age =
    status?.last_run_age_seconds != null && receivedAt ? status.last_run_age_seconds + (now - receivedAt) / 1000 : null;
  return (
    <header className={`flex flex-wrap items-center gap-x-8 gap-y-2 rounded-tremor-default border p-4 ${s.box}`}>
      <div className="flex items-center gap-3">
        <span aria-hidden="true" className={`inline-block h-4 w-4 rounded-full ${s.dot}`} />
        <h1
          className="text-2xl font-bold"
          data-testid="overall-status"
          data-status={status?.overall_status ?? 'unknown'}
        >
          {s.word}
        </h1>
      </div>
      <dl className="flex flex-wrap gap-x-8 gap-y-1 text-sm">
        <Field label="Environment" value={status?.environment ?? '…'} testid="environment" />
        <Field
          label="Last run"
          testid="last-run"
          value={
            status
              ? status.last_run_at
                ? `${formatTime(status.last_run_at)} (${age != null ? formatAge(age) : '?'} ago)`
                : 'not yet'
              : '…'
          }
        />
        <Field label="Role" value={status?.role ?? '…'} testid="role" />
        {status?.version && <Field label="Version" value={status.version} />}
      </dl>
      <span className="ml-auto text-sm font-semibold">Sentinel</span>
    </header>
  );
}

function Field({ label, value, testid }: { label: string; value: string; testid?: string }) {
  return (
    <div>
      <dt className="text-xs uppercase tracking-wide opacity-70">{label}</dt>
      <dd className="font-medium" data-testid={testid}>
        {value}
      </dd>
    </div>
  );
}

function AlertsCard({ alerts, now }: { alerts?: AlertsResponse; now: number }) {
  const sorted = useMemo(
    () => [...(alerts?.alerts ?? [])].sort((a, b) => (a.level === b.level ? 0 : a.level === 'critical' ? -1 : 1)),
    [alerts],
  );
  return (
    <Card>
      <Title>Current alerts</Title>
      {!alerts ? (
        <Text>Loading…</Text>
      ) : sorted.length === 0 ? (
        <Text className="mt-2" data-testid="no-alerts">
          No alerts: every check passed in the last run.
        </Text>
      ) : (
        <ul className="mt-3 divide-y divide-slate-200" data-testid="alerts">
          {sorted.map((a, i) => (
            <li
              key={a.id ?? `${a.check}-${a.subject ?? ''}-${i}`}
              className="py-3"
              data-testid="alert"
              data-level={a.level}
              data-check={a.check}
            >
              <div className="flex flex-wrap items-center gap-2">
                <Badge color={a.level === 'critical' ? 'red' : 'amber'} size="xs">
                  {a.level === 'critical' ? 'CRITICAL' : 'WARNING'}
                </Badge>
                <span className="font-mono text-sm font-semibold">{a.check}</span>
                {a.subject && <span className="font-mono text-sm text-slate-500">{a.subject}</span>}
                {a.silenced && (
                  <Badge color="slate" size="xs" data-testid="silenced">
                    silenced
                  </Badge>
                )}
                {a.acknowledged && (
                  <Badge color="blue" size="xs" data-testid="acknowledged">
                    acknowledged
                  </Badge>
                )}
                {a.since && (
                  <span className="ml-auto text-xs text-slate-500" title={`first reported by Sentinel at ${a.since}`}>
                    firing since {formatTime(a.since)} ({ageSince(a.since, now)})
                  </span>
                )}
              </div>
              <p className="mt-1 text-sm">{a.message}</p>
              {a.remediation && <p className="mt-1 text-xs text-slate-600">→ {a.remediation}</p>}
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

export interface ChartPoint {
  hour: string;
  Completed: number;
  Failed: number;
  'Error rate %': number | null;
  'Threshold %': number;
}

/** One point per hour of the window, oldest first; hours without batches are zeros. */
export function chartPoints(perf: BatchPerformanceResponse, now: number): ChartPoint[] {
  const byHour = new Map<number, (typeof perf.rows)[number]>();
  for (const r of perf.rows) byHour.set(Math.floor(Date.parse(r.hour_bucket) / 3_600_000), r);
  const current = Math.floor(now / 3_600_000);
  const points: ChartPoint[] = [];
  for (let h = current - perf.hours + 1; h <= current; h++) {
    const r = byHour.get(h);
    points.push({
      hour: formatHour(new Date(h * 3_600_000), perf.hours > 24),
      Completed: r?.completed_batches ?? 0,
      Failed: r?.failed_batches ?? 0,
      'Error rate %': r?.error_rate_pct ?? null,
      'Threshold %': perf.error_threshold_pct,
    });
  }
  return points;
}

function PerformanceCard({
  performance,
  hours,
  onHours,
  now,
}: {
  performance?: BatchPerformanceResponse;
  hours: Hours;
  onHours: (h: Hours) => void;
  now: number;
}) {
  const current = performance && performance.hours === hours ? performance : undefined;
  // The hour only changes once an hour: keep the chart data stable between ticks.
  const hourNow = Math.floor(now / 3_600_000);
  const points = useMemo(() => (current ? chartPoints(current, hourNow * 3_600_000) : []), [current, hourNow]);
  const totals = useMemo(() => {
    const rows = current?.rows ?? [];
    const completed = rows.reduce((n, r) => n + r.completed_batches, 0);
    const failed = rows.reduce((n, r) => n + r.failed_batches, 0);
    const over = rows.filter(
      (r) => r.error_rate_pct != null && current && r.error_rate_pct > current.error_threshold_pct,
    ).length;
    const worst = rows.reduce<number | null>(
      (m, r) => (r.error_rate_pct != null && (m == null || r.error_rate_pct > m) ? r.error_rate_pct : m),
      null,
    );
    return { completed, failed, over, worst };
  }, [current]);

  return (
    <Card>
      <div className="flex flex-wrap items-center justify-between gap-2">
        <div>
          <Title>Hourly batch performance</Title>
          <Subtitle>Completed vs failed batches per hour (ops.v_batch_performance)</Subtitle>
        </div>
        <fieldset
          aria-label="Time range"
          className="inline-flex overflow-hidden rounded-tremor-small border border-slate-300"
        >
          {RANGES.map((r) => (
            <button
              key={r.hours}
              type="button"
              aria-pressed={hours === r.hours}
              data-testid={`range-${r.hours}`}
              onClick={() => onHours(r.hours)}
              className={`px-3 py-1 text-sm ${
                hours === r.hours ? 'bg-blue-600 text-white' : 'bg-white text-slate-700 hover:bg-slate-100'
              }`}
            >
              {r.label}
            </button>
          ))}
        </fieldset>
      </div>
      {!current ? (
        <Text className="mt-4">Loading…</Text>
      ) : (
        <>
          <dl className="mt-3 flex flex-wrap gap-x-8 gap-y-1 text-sm" data-testid="performance-summary">
            <Field label="Completed" value={String(totals.completed)} testid="total-completed" />
            <Field label="Failed" value={String(totals.failed)} testid="total-failed" />
            <Field label="Worst error rate" value={pct(totals.worst)} />
            <Field label="Threshold" value={pct(current.error_threshold_pct)} testid="threshold" />
            <Field label="Hours over threshold" value={String(totals.over)} testid="hours-over" />
          </dl>
          <div data-testid="batch-chart" data-points={points.length}>
            <BarChart
              className="mt-4 h-72"
              data={points}
              index="hour"
              categories={['Completed', 'Failed']}
              colors={['emerald', 'rose']}
              yAxisWidth={40}
              allowDecimals={false}
              showAnimation={false}
              noDataText="No batches in this window"
            />
          </div>
          <Subtitle className="mt-6">
            Error rate per hour against the error-spike threshold ({pct(current.error_threshold_pct)})
          </Subtitle>
          <div data-testid="error-rate-chart">
            <LineChart
              className="mt-2 h-40"
              data={points}
              index="hour"
              categories={['Error rate %', 'Threshold %']}
              colors={['amber', 'slate']}
              yAxisWidth={48}
              connectNulls
              showAnimation={false}
              valueFormatter={(v: number) => `${Math.round(v * 10) / 10} %`}
            />
          </div>
        </>
      )}
    </Card>
  );
}

function ErrorsCard({ errors, now }: { errors?: ErrorDistributionResponse; now: number }) {
  return (
    <Card>
      <Title>Top errors</Title>
      <Subtitle>Row errors by code (ops.v_error_distribution)</Subtitle>
      {!errors ? (
        <Text>Loading…</Text>
      ) : errors.rows.length === 0 ? (
        <Text className="mt-2">No row errors.</Text>
      ) : (
        <div className="mt-3 overflow-x-auto">
          <table className="w-full text-left text-sm" data-testid="errors-table">
            <thead className="text-xs uppercase text-slate-500">
              <tr>
                <th className="py-1 pr-3">Code</th>
                <th className="py-1 pr-3 text-right">Count</th>
                <th className="py-1 pr-3 text-right">Batches</th>
                <th className="py-1 pr-3">Sample message</th>
                <th className="py-1">Last seen</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-200">
              {errors.rows.map((r) => (
                <tr key={r.error_code}>
                  <td className="py-1 pr-3 font-mono">{r.error_code}</td>
                  <td className="py-1 pr-3 text-right tabular-nums">{r.occurrence_count}</td>
                  <td className="py-1 pr-3 text-right tabular-nums">{r.affected_batches}</td>
                  {/* Untrusted input: rendered as a text node, never as HTML. */}
                  <td className="max-w-xs break-words py-1 pr-3 font-mono text-xs" data-testid="sample-message">
                    {r.sample_message ?? '—'}
                  </td>
                  <td className="whitespace-nowrap py-1 text-xs text-slate-500">{ageSince(r.last_seen_at, now)} ago</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function PipelineCard({ pipeline }: { pipeline?: PipelineHealthResponse }) {
  return (
    <Card>
      <Title>Pipeline health</Title>
      <Subtitle>
        In-flight batches per status{pipeline ? `; stuck after ${pipeline.threshold_minutes} min` : ''}
      </Subtitle>
      {!pipeline ? (
        <Text>Loading…</Text>
      ) : pipeline.rows.length === 0 ? (
        <Text className="mt-2">No batches in flight.</Text>
      ) : (
        <table className="mt-3 w-full text-left text-sm" data-testid="pipeline-table">
          <thead className="text-xs uppercase text-slate-500">
            <tr>
              <th className="py-1 pr-3">Status</th>
              <th className="py-1 pr-3 text-right">Batches</th>
              <th className="py-1 pr-3 text-right">Oldest</th>
              <th className="py-1" />
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-200">
            {pipeline.rows.map((r) => (
              <tr
                key={r.status}
                data-testid="pipeline-row"
                data-status={r.status}
                data-stuck={r.stuck}
                className={r.stuck ? 'bg-red-50 text-red-900' : ''}
              >
                <td className="py-1 pr-3 font-mono">{r.status}</td>
                <td className="py-1 pr-3 text-right tabular-nums">{r.batch_count}</td>
                <td className="py-1 pr-3 text-right tabular-nums">{formatAge(r.oldest_age_minutes * 60)}</td>
                <td className="py-1">
                  {r.stuck && (
                    <Badge color="red" size="xs">
                      STUCK
                    </Badge>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}

function TokenForm({ reason, onSubmit }: { reason: string; onSubmit: () => void }) {
  const [value, setValue] = useState('');
  const hadToken = getToken() != null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!value.trim()) return;
    setToken(value.trim());
    onSubmit();
  };
  return (
    <div className="mx-auto mt-24 max-w-md p-4">
      <Card>
        <form onSubmit={submit} className="space-y-3" data-testid="token-form">
          <Title>Sentinel dashboard</Title>
          <Text>
            {hadToken ? `The token was refused (${reason}). ` : ''}This dashboard needs its access token (the server's
            --auth-token or SENTINEL_DASHBOARD_TOKEN). It is kept for this browser tab only.
          </Text>
          <label className="block text-sm font-medium" htmlFor="token">
            Access token
          </label>
          <input
            id="token"
            name="token"
            type="password"
            autoComplete="current-password"
            value={value}
            onChange={(e) => setValue(e.target.value)}
            className="w-full rounded-tremor-small border border-slate-300 px-3 py-2"
            // The token form is the whole page until it is answered: focus belongs in its only field.
            // biome-ignore lint/a11y/noAutofocus: see above
            autoFocus
          />
          <button
            type="submit"
            className="rounded-tremor-small bg-blue-600 px-4 py-2 text-sm font-medium text-white hover:bg-blue-700"
          >
            Open dashboard
          </button>
        </form>
      </Card>
    </div>
  );
}
