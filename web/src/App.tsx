import { type FormEvent, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { AnomaliesCard } from './anomalies.js';
import {
  type AlertsResponse,
  type AnomaliesResponse,
  type AnomalyPick,
  type ApiFailure,
  type BatchPerformanceResponse,
  type ErrorDistributionResponse,
  getToken,
  loadAll,
  type PipelineHealthResponse,
  type SourcesResponse,
  type StatusResponse,
  setToken,
} from './api.js';
import { type BarPoint, Legend, NumbersTable, RateLine, StackedBars } from './charts.js';
import { type ApiAlert, aboutLine, alertBatches, alertSource, sortAlerts, topSources } from './details.js';
import {
  ageSince,
  count,
  formatAge,
  formatHour,
  knownZone,
  pct,
  relative,
  short,
  UTC,
  viewerZone,
  type Zone,
  zoneLabel,
} from './format.js';
import { hourPoints } from './series.js';
import { Card, Time, type TimeCtx } from './ui.js';

export const REFRESH_MS = 15_000;
const RETRYING = `Retrying every ${REFRESH_MS / 1000} s.`;
const RANGES = [
  { label: '24 h', hours: 24 },
  { label: '7 d', hours: 168 },
] as const;
type Hours = (typeof RANGES)[number]['hours'];
const ZONE_KEY = 'sentinel.timezone';

interface Data {
  status?: StatusResponse;
  alerts?: AlertsResponse;
  performance?: BatchPerformanceResponse;
  errors?: ErrorDistributionResponse;
  pipeline?: PipelineHealthResponse;
  sources?: SourcesResponse;
  anomalies?: AnomaliesResponse;
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

/** UTC unless the viewer chose their own zone before (remembered in localStorage). */
function initialZone(): Zone {
  try {
    const stored = localStorage.getItem(ZONE_KEY);
    if (stored && knownZone(stored)) return stored;
  } catch {
    /* storage disabled */
  }
  return UTC;
}

export function App() {
  const [hours, setHours] = useState<Hours>(initialHours);
  const hoursRef = useRef<Hours>(hours);
  const [zone, setZone] = useState<Zone>(initialZone);
  const [pick, setPick] = useState<AnomalyPick>({ metric: 'volume' });
  const pickRef = useRef<AnomalyPick>(pick);
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
    const r = await loadAll(wanted, pickRef.current, (key, part) => {
      // Each answer goes on screen as it arrives (unless a newer request started meanwhile).
      if (part.ok && seq === inFlight.current) setData((prev) => ({ ...prev, [key]: part.value }));
    });
    // A newer request (a range switch) started meanwhile: its answer wins.
    if (seq !== inFlight.current) return;
    const next: Problems = {};
    const fresh: Data = {};
    let retry = false;
    for (const [key, part] of Object.entries(r) as Array<[keyof Data, (typeof r)[keyof Data]]>) {
      if (part.ok) {
        (fresh as Record<string, unknown>)[key] = part.value;
        continue;
      }
      const e: ApiFailure = part.error;
      if (key === 'anomalies' && e.status === 404 && pickRef.current.source !== undefined) {
        // The chosen source is gone from the window (or was renamed): back to the busiest one.
        const { metric } = pickRef.current;
        pickRef.current = { metric };
        setPick({ metric });
        retry = true;
        continue;
      }
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
    if (Object.keys(fresh).length === Object.keys(r).length) setLoadedAt(Date.now());
    if (retry) void refresh();
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
  const choosePick = (p: AnomalyPick) => {
    pickRef.current = p;
    setPick(p);
    void refresh();
  };
  const chooseZone = (z: Zone) => {
    setZone(z);
    try {
      localStorage.setItem(ZONE_KEY, z);
    } catch {
      /* storage disabled: the choice lasts as long as the page */
    }
  };

  if (problems.unauthorized) return <TokenForm reason={problems.unauthorized} onSubmit={() => void refresh()} />;

  const alerts = sortAlerts(data.alerts?.alerts ?? []);
  const t = { zone, now };
  return (
    <main className="mx-auto max-w-7xl space-y-3 p-2 sm:space-y-4 sm:p-6" data-refreshed={loadedAt ?? undefined}>
      <Banners problems={problems} loadedAt={loadedAt} now={now} />
      <StatusHeader
        status={data.status}
        alerts={data.alerts ? alerts : undefined}
        receivedAt={statusAt}
        t={t}
        onZone={chooseZone}
      />
      <AlertsCard alerts={data.alerts ? alerts : undefined} t={t} />
      <div className="grid gap-3 sm:gap-4 lg:grid-cols-2">
        <SourcesCard sources={data.sources} t={t} />
        <PipelineCard pipeline={data.pipeline} alerts={alerts} t={t} />
      </div>
      <AnomaliesCard answer={data.anomalies} pick={pick} onPick={choosePick} t={t} />
      <PerformanceCard performance={data.performance} hours={hours} onHours={chooseHours} t={t} />
      <ErrorsCard errors={data.errors} t={t} />
    </main>
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
          className="rounded-lg border border-red-300 bg-red-50 p-3 text-red-900"
        >
          <strong className="font-semibold">Sentinel API unreachable:</strong> {problems.api}.{stale} {RETRYING}
        </div>
      )}
      {problems.database && (
        <div
          role="alert"
          data-testid="banner-db"
          className="rounded-lg border border-red-300 bg-red-50 p-3 text-red-900"
        >
          <strong className="font-semibold">Database unreachable:</strong> {problems.database}.{stale} {RETRYING}
        </div>
      )}
    </>
  );
}

// Marks: dark text on a light tint (AA contrast), always with a symbol and a word.
const MARK = 'inline-flex items-center gap-1 rounded px-1.5 text-xs font-bold ring-1';
const RED_MARK = 'bg-red-100 text-red-900 ring-red-300';
const AMBER_MARK = 'bg-amber-100 text-amber-900 ring-amber-300';
/** A row an active alert is about (also marked in words: the tint is not the message). */
const FLAGGED = 'border-red-300 bg-red-50';
const SUMMARY_LINK =
  'flex min-h-11 flex-wrap items-center gap-x-2 gap-y-0.5 rounded bg-white/70 px-2 py-1 text-sm text-slate-900 ' +
  'underline-offset-2 hover:underline';

/** Status in a word and an icon, never by colour alone. */
const STATUS_STYLE: Record<string, { word: string; icon: string; box: string }> = {
  healthy: { word: 'Healthy', icon: '✓', box: 'border-emerald-300 bg-emerald-50 text-emerald-900' },
  degraded: { word: 'Degraded', icon: '▲', box: 'border-amber-300 bg-amber-50 text-amber-900' },
  critical: { word: 'Critical', icon: '✕', box: 'border-red-300 bg-red-50 text-red-900' },
  unknown: { word: 'Unknown', icon: '?', box: 'border-slate-300 bg-slate-100 text-slate-900' },
};

/** Level marks with AA contrast (dark text on a light tint), a symbol and the word. */
function LevelBadge({ level }: { level: ApiAlert['level'] }) {
  return level === 'critical' ? (
    <span className={`${MARK} py-0.5 ${RED_MARK}`}>
      <span aria-hidden="true">✕</span>CRITICAL
    </span>
  ) : (
    <span className={`${MARK} py-0.5 ${AMBER_MARK}`}>
      <span aria-hidden="true">▲</span>WARNING
    </span>
  );
}

function firing(a: ApiAlert, now: number): string {
  return a.since ? `firing for ${ageSince(a.since, now)}` : 'new in the last run';
}

function StatusHeader({
  status,
  alerts,
  receivedAt,
  t,
  onZone,
}: {
  status?: StatusResponse;
  alerts?: ApiAlert[];
  receivedAt: number | null;
  t: TimeCtx;
  onZone: (z: Zone) => void;
}) {
  const s = STATUS_STYLE[status?.overall_status ?? 'unknown'] ?? STATUS_STYLE.unknown!;
  const age =
    status?.last_run_age_seconds != null && receivedAt
      ? status.last_run_age_seconds + (t.now - receivedAt) / 1000
      : null;
  return (
    <header className={`rounded-lg border p-3 sm:p-4 ${s.box}`}>
      <div className="flex flex-wrap items-center justify-between gap-x-4 gap-y-1">
        <div className="flex items-center gap-2">
          <span aria-hidden="true" className="text-2xl font-bold leading-none">
            {s.icon}
          </span>
          <h1
            className="text-2xl font-bold"
            data-testid="overall-status"
            data-status={status?.overall_status ?? 'unknown'}
          >
            {s.word}
          </h1>
        </div>
        <ZoneSelect zone={t.zone} now={t.now} onZone={onZone} />
      </div>
      <p className="mt-1 text-sm" data-testid="last-run">
        {status?.environment ?? '…'} · last run{' '}
        {status ? (
          status.last_run_at ? (
            <>
              <Time iso={status.last_run_at} t={t} seconds /> ({age != null ? `${formatAge(age)} ago` : '?'})
            </>
          ) : (
            'not yet'
          )
        ) : (
          '…'
        )}
        {status && status.role !== 'single' ? ` · ${status.role}` : ''}
        {status?.version ? ` · Sentinel ${status.version}` : ''}
      </p>
      {alerts && alerts.length > 0 && (
        <ul className="mt-2 space-y-1" data-testid="alert-summary" aria-label="Active alerts, most severe first">
          {alerts.map((a, i) => (
            <li
              key={a.id ?? `${a.check}-${a.subject ?? ''}-${i}`}
              data-testid="alert-summary-item"
              data-check={a.check}
            >
              <a href={`#alert-${i}`} className={SUMMARY_LINK}>
                <LevelBadge level={a.level} />
                <span className="font-mono font-semibold">{a.check}</span>
                <span className="min-w-0 break-anywhere" data-testid="alert-about">
                  {aboutLine(a)}
                </span>
                <span className="ml-auto whitespace-nowrap" data-testid="alert-duration">
                  {firing(a, t.now)}
                </span>
              </a>
            </li>
          ))}
        </ul>
      )}
    </header>
  );
}

function ZoneSelect({ zone, now, onZone }: { zone: Zone; now: number; onZone: (z: Zone) => void }) {
  const mine = viewerZone();
  const options = [UTC, ...(mine !== UTC ? [mine] : []), ...(zone !== UTC && zone !== mine ? [zone] : [])];
  return (
    <label className="flex items-center gap-2 text-sm">
      <span>Times in</span>
      <select
        value={zone}
        onChange={(e) => onZone(e.target.value)}
        data-testid="timezone"
        className="min-h-11 rounded border border-slate-400 bg-white px-2 text-slate-900"
      >
        {options.map((z) => (
          <option key={z} value={z}>
            {z === UTC ? 'UTC' : `${z} (${zoneLabel(z, now)})`}
          </option>
        ))}
      </select>
    </label>
  );
}

function AlertsCard({ alerts, t }: { alerts?: ApiAlert[]; t: TimeCtx }) {
  return (
    <Card title={alerts ? `Active alerts (${alerts.length})` : 'Active alerts'} id="alerts-title" testid="alerts-card">
      {!alerts ? (
        <p className="mt-2">Loading…</p>
      ) : alerts.length === 0 ? (
        <p className="mt-2" data-testid="no-alerts">
          No alerts: every check passed in the last run.
        </p>
      ) : (
        <ul className="mt-2 divide-y divide-slate-200" data-testid="alerts">
          {alerts.map((a, i) => (
            <li
              key={a.id ?? `${a.check}-${a.subject ?? ''}-${i}`}
              id={`alert-${i}`}
              className="py-3"
              data-testid="alert"
              data-level={a.level}
              data-check={a.check}
            >
              <div className="flex flex-wrap items-center gap-x-2 gap-y-1">
                <LevelBadge level={a.level} />
                <h3 className="font-mono text-sm font-semibold">{a.check}</h3>
                {alertSource(a) !== undefined && (
                  <span className="min-w-0 break-anywhere font-mono text-sm text-slate-700">
                    source {alertSource(a)}
                  </span>
                )}
                {a.silenced && (
                  <span className="rounded bg-slate-200 px-1.5 text-xs text-slate-900" data-testid="silenced">
                    silenced
                  </span>
                )}
                {a.acknowledged && (
                  <span className="rounded bg-blue-100 px-1.5 text-xs text-blue-900" data-testid="acknowledged">
                    acknowledged
                  </span>
                )}
              </div>
              <p className="mt-1 text-sm text-slate-700">
                {firing(a, t.now)}
                {a.since && (
                  <>
                    {' '}
                    (since <Time iso={a.since} t={t} />)
                  </>
                )}
              </p>
              <AlertMessage message={a.message} />
              <AlertDetails alert={a} />
              {a.remediation && <p className="mt-1 text-sm text-slate-700">Next step: {a.remediation}</p>}
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

/** Longest message shown at once; a longer one (a quoted 1 KB row error) opens on demand. */
const MESSAGE_CHARS = 280;

function AlertMessage({ message }: { message: string }) {
  if ([...message].length <= MESSAGE_CHARS) return <p className="mt-1 break-anywhere text-sm">{message}</p>;
  return (
    <details className="mt-1 text-sm" data-testid="long-message">
      <summary className="flex min-h-11 cursor-pointer items-start break-anywhere">
        <span>
          {short(message, MESSAGE_CHARS)} <span className="font-medium text-blue-800 underline">Show all</span>
        </span>
      </summary>
      <p className="break-anywhere">{message}</p>
    </details>
  );
}

/** What the alert is about: its batches or the sources behind it. */
function AlertDetails({ alert }: { alert: ApiAlert }) {
  const batches = alertBatches(alert);
  const top = topSources(alert);
  const waiting = typeof alert.details?.total_waiting === 'number' ? alert.details.total_waiting : undefined;
  return (
    <>
      {batches.length > 0 && (
        <div className="mt-2">
          <p className="text-sm font-medium">
            {alert.check === 'queue_backlog'
              ? `Waiting batches${waiting !== undefined ? ` (${waiting} in all; oldest first)` : ' (oldest first)'}`
              : 'Batches (oldest first)'}
          </p>
          <ul className="mt-1 space-y-1 text-sm">
            {batches.map((b) => (
              <li
                key={b.id}
                className="rounded border border-slate-200 bg-slate-50 p-2"
                data-testid="alert-batch"
                data-batch={b.id}
              >
                <span className="break-anywhere font-mono">{b.id}</span>
                <span className="block break-anywhere">
                  source <span className="font-mono">{b.source}</span>
                  {b.status !== undefined && (
                    <>
                      {' '}
                      · status <span className="font-mono">{b.status}</span>
                    </>
                  )}
                  {b.age_minutes !== undefined &&
                    ` · ${alert.check === 'queue_backlog' ? 'waiting' : 'unchanged'} ` +
                      `for ${formatAge(b.age_minutes * 60)}`}
                </span>
              </li>
            ))}
          </ul>
        </div>
      )}
      {top.length > 0 && (
        <div className="mt-2">
          <p className="text-sm font-medium">Top contributing sources (error rows in the judged hour)</p>
          <ul className="mt-1 space-y-1 text-sm">
            {top.map((s) => (
              <li key={s.source} className="rounded border border-slate-200 bg-slate-50 p-2" data-testid="top-source">
                <span className="block break-anywhere font-mono">{s.source}</span>
                {pct(s.error_rate_pct)} errors · {count(s.error_rows)} of {count(s.total_rows)} rows
              </li>
            ))}
          </ul>
        </div>
      )}
    </>
  );
}

/** Marks a row an active alert is about: a symbol and words, not only a tint. */
function AlertMark({ label }: { label: string }) {
  return (
    <span className={`${MARK} ${RED_MARK}`}>
      <span aria-hidden="true">⚑</span>
      {label}
    </span>
  );
}

function SourcesCard({ sources, t }: { sources?: SourcesResponse; t: TimeCtx }) {
  const scale = useMemo(() => {
    if (!sources) return 100;
    const m = Math.max(
      sources.threshold_pct,
      ...sources.sources.map((s) => Math.max(s.error_rate_pct ?? 0, s.threshold_pct)),
    );
    return Math.min(100, Math.max(1, m * 1.1));
  }, [sources]);
  const own = sources?.sources.filter((s) => s.own_threshold).length ?? 0;
  return (
    <Card title="Error rate by source" id="sources-title" testid="sources-card">
      {/* Static: on screen from the first paint, before any answer. */}
      <p className="mt-1 text-sm text-slate-700">
        The rates of the hour the error_spike check judges, from its last run. The overall rate counts every source
        without a threshold of its own; a source with its own threshold is judged alone against it.
      </p>
      {!sources ? (
        <p className="mt-2">Loading…</p>
      ) : !sources.overall ? (
        <p className="mt-2">No figures yet: they come with the next check run.</p>
      ) : (
        <>
          <p className="mt-1 text-sm text-slate-700">
            Hour from <Time iso={sources.overall.hour_bucket} t={t} />
            {sources.overall.judged ? '' : ` (fewer than ${sources.min_rows} rows: not judged)`}.
          </p>
          <div className="mt-2 rounded border border-slate-300 p-2" data-testid="overall-rate">
            <p className="text-sm">
              <span className="font-semibold">Overall: {pct(sources.overall.error_rate_pct)}</span> of{' '}
              {count(sources.overall.total_rows)} rows · threshold {pct(sources.threshold_pct)}
              {sources.overall.judged &&
                sources.overall.error_rate_pct != null &&
                sources.overall.error_rate_pct > sources.threshold_pct && (
                  <>
                    {' '}
                    <AlertMark label="over threshold" />
                  </>
                )}
            </p>
            <RateBar rate={sources.overall.error_rate_pct} threshold={sources.threshold_pct} scale={scale} />
          </div>
          <ul className="mt-2 space-y-2" data-testid="source-list" aria-label="Sources, most rows first">
            {sources.sources.map((s) => (
              <li
                key={s.source}
                data-testid="source-row"
                data-alert={s.alert_checks.length > 0}
                data-over={s.over_threshold}
                className={`rounded border p-2 text-sm ${s.alert_checks.length > 0 ? FLAGGED : 'border-slate-200'}`}
              >
                <div className="flex flex-wrap items-center gap-x-2 gap-y-1">
                  <span className="min-w-0 break-anywhere font-mono font-medium">{s.source}</span>
                  {s.alert_checks.length > 0 && <AlertMark label={`alert: ${s.alert_checks.join(', ')}`} />}
                </div>
                <p>
                  {pct(s.error_rate_pct)} errors · {count(s.error_rows)} of {count(s.total_rows)} rows · threshold{' '}
                  {pct(s.threshold_pct)} {s.own_threshold ? '(its own; not in the overall rate)' : '(overall)'}
                  {s.over_threshold && ' · ▲ over threshold'}
                  {!s.judged && ' · too few rows to judge'}
                </p>
                <RateBar rate={s.error_rate_pct} threshold={s.threshold_pct} scale={scale} />
              </li>
            ))}
          </ul>
          {sources.others.sources > 0 && (
            <p className="mt-2 text-sm text-slate-700">
              {sources.others.sources} more sources: {count(sources.others.error_rows)} error rows of{' '}
              {count(sources.others.total_rows)}.
            </p>
          )}
          {own > 0 && (
            <p className="mt-2 text-sm text-slate-700">
              {own} source{own > 1 ? 's have' : ' has'} its own threshold
              (sources.&lt;name&gt;.error_spike_threshold_pct).
            </p>
          )}
        </>
      )}
    </Card>
  );
}

/** The rate as a bar with the threshold as a vertical line (the numbers are in the text next to it). */
function RateBar({ rate, threshold, scale }: { rate: number | null; threshold: number; scale: number }) {
  const w = (v: number) => `${Math.min(100, (v / scale) * 100)}%`;
  return (
    <div aria-hidden="true" className="relative mt-1 h-2 rounded bg-slate-200">
      <div
        className={`h-2 rounded ${rate != null && rate > threshold ? 'bg-red-700' : 'bg-slate-600'}`}
        style={{ width: w(rate ?? 0) }}
      />
      <div className="absolute -top-1 h-4 w-0.5 bg-slate-900" style={{ left: w(threshold) }} />
    </div>
  );
}

function PipelineCard({ pipeline, alerts, t }: { pipeline?: PipelineHealthResponse; alerts: ApiAlert[]; t: TimeCtx }) {
  // The batches the alerts name, under their status: stuck ones under processing/validating/inserting,
  // waiting ones under uploaded.
  const batchesByStatus = useMemo(() => {
    const m = new Map<string, Array<{ id: string; source: string; check: string }>>();
    for (const a of alerts) {
      for (const b of alertBatches(a)) {
        const status = b.status ?? (a.check === 'queue_backlog' ? 'uploaded' : undefined);
        if (!status) continue;
        m.set(status, [...(m.get(status) ?? []), { id: b.id, source: b.source, check: a.check }]);
      }
    }
    return m;
  }, [alerts]);
  return (
    <Card title="Pipeline health" id="pipeline-title" testid="pipeline-card">
      <p className="mt-1 text-sm text-slate-700">
        In-flight batches per status (ops.v_pipeline_health)
        {pipeline ? `; stuck after ${pipeline.threshold_minutes} min without a status change` : ''}.
      </p>
      {!pipeline ? (
        <p className="mt-2">Loading…</p>
      ) : pipeline.rows.length === 0 ? (
        <p className="mt-2">No batches in flight.</p>
      ) : (
        <ul className="mt-2 space-y-2" data-testid="pipeline-list">
          {pipeline.rows.map((r) => {
            const named = batchesByStatus.get(r.status) ?? [];
            return (
              <li
                key={r.status}
                data-testid="pipeline-row"
                data-status={r.status}
                data-stuck={r.stuck}
                className={`rounded border p-2 text-sm ${r.stuck || named.length ? FLAGGED : 'border-slate-200'}`}
              >
                <div className="flex flex-wrap items-center gap-x-2 gap-y-1">
                  <span className="break-anywhere font-mono font-medium">{r.status}</span>
                  {r.stuck && <AlertMark label="STUCK" />}
                  <span className="ml-auto tabular-nums">
                    {count(r.batch_count)} batch{r.batch_count === 1 ? '' : 'es'}
                  </span>
                </div>
                <p className="text-slate-700">
                  oldest unchanged for {formatAge(r.oldest_age_minutes * 60)} (since{' '}
                  <Time iso={r.oldest_batch_at} t={t} />)
                </p>
                {named.length > 0 && (
                  <ul className="mt-1 space-y-1">
                    {named.map((b) => (
                      <li key={`${b.check}-${b.id}`} className="break-anywhere" data-testid="pipeline-batch">
                        <span aria-hidden="true">⚑ </span>
                        {b.check}: batch <span className="font-mono">{b.id}</span>, source{' '}
                        <span className="font-mono">{b.source}</span>
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </Card>
  );
}

const BAR_SERIES = [
  { key: 'completed', label: 'Completed', fill: 'fill-emerald-700', swatch: 'bg-emerald-700' },
  { key: 'failed', label: 'Failed', fill: 'fill-red-700', swatch: 'bg-red-700' },
];

function PerformanceCard({
  performance,
  hours,
  onHours,
  t,
}: {
  performance?: BatchPerformanceResponse;
  hours: Hours;
  onHours: (h: Hours) => void;
  t: TimeCtx;
}) {
  const current = performance && performance.hours === hours ? performance : undefined;
  // The hour only changes once an hour: keep the chart data stable between ticks.
  const hourNow = Math.floor(t.now / 3_600_000);
  const points = useMemo(
    () => (current ? hourPoints(current, hourNow * 3_600_000, t.zone) : []),
    [current, hourNow, t.zone],
  );
  const totals = useMemo(() => {
    const completed = points.reduce((n, p) => n + p.completed, 0);
    const failed = points.reduce((n, p) => n + p.failed, 0);
    const over = current
      ? points.filter((p) => p.errorRate != null && p.errorRate > current.error_threshold_pct).length
      : 0;
    const worst = points.reduce<number | null>(
      (m, p) => (p.errorRate != null && (m == null || p.errorRate > m) ? p.errorRate : m),
      null,
    );
    return { completed, failed, over, worst };
  }, [points, current]);
  const windowText = hours === 24 ? 'last 24 h' : 'last 7 days';
  const zoneName = zoneLabel(t.zone, t.now);
  const barName =
    `Completed and failed batches per UTC hour, ${windowText}, all sources: ${count(totals.completed)} completed, ` +
    `${count(totals.failed)} failed.`;
  const rateName =
    `Error rate per UTC hour, ${windowText}, all sources, ` +
    `against the ${pct(current?.error_threshold_pct)} threshold: ` +
    `worst ${pct(totals.worst)}, ${totals.over} hour${totals.over === 1 ? '' : 's'} over it.`;

  return (
    <Card title="Hourly batch performance" id="performance-title" testid="performance-card">
      <div className="mt-1 flex flex-wrap items-center justify-between gap-2">
        <p className="text-sm text-slate-700">From ops.v_batch_performance, every source. Hours shown in {zoneName}.</p>
        <fieldset className="inline-flex overflow-hidden rounded border border-slate-400">
          <legend className="sr-only">Time range</legend>
          {RANGES.map((r) => (
            <button
              key={r.hours}
              type="button"
              aria-pressed={hours === r.hours}
              data-testid={`range-${r.hours}`}
              onClick={() => onHours(r.hours)}
              className={`min-h-11 min-w-16 px-3 text-sm ${
                hours === r.hours ? 'bg-blue-800 text-white' : 'bg-white text-slate-900 hover:bg-slate-100'
              }`}
            >
              {r.label}
            </button>
          ))}
        </fieldset>
      </div>
      {!current ? (
        <p className="mt-4">Loading…</p>
      ) : (
        <>
          <dl
            className="mt-3 grid grid-cols-2 gap-x-6 gap-y-1 text-sm sm:flex sm:flex-wrap"
            data-testid="performance-summary"
          >
            <Field label="Completed" value={count(totals.completed)} testid="total-completed" />
            <Field label="Failed" value={count(totals.failed)} testid="total-failed" />
            <Field label="Worst hourly error rate" value={pct(totals.worst)} />
            <Field label="Threshold (overall)" value={pct(current.error_threshold_pct)} testid="threshold" />
            <Field label="Hours over threshold" value={String(totals.over)} testid="hours-over" />
          </dl>
          <figure className="mt-4">
            <figcaption className="text-sm font-medium">{barName.replace(/:.*$/, '')}</figcaption>
            <div className="mt-2">
              <StackedBars
                points={points.map(
                  (p): BarPoint => ({ label: p.label, values: { completed: p.completed, failed: p.failed } }),
                )}
                series={BAR_SERIES}
                name={barName}
                testid="batch-chart"
              />
            </div>
            <Legend items={BAR_SERIES} />
          </figure>
          <figure className="mt-6">
            <figcaption className="text-sm font-medium">
              Error rate per UTC hour, {windowText}, all sources, against the overall threshold (
              {pct(current.error_threshold_pct)}).{' '}
              <span className="font-normal text-slate-700">
                This view counts every source, including those with their own threshold; the error_spike check judges
                the overall rate without them (see Error rate by source).
              </span>
            </figcaption>
            <div className="mt-2">
              <RateLine
                points={points.map((p) => ({ label: p.label, value: p.errorRate }))}
                threshold={current.error_threshold_pct}
                name={rateName}
                testid="error-rate-chart"
              />
            </div>
            <Legend
              items={[
                { label: 'Error rate, all sources', swatch: 'bg-amber-700' },
                { label: `Threshold ${pct(current.error_threshold_pct)}`, swatch: 'border-slate-700', dashed: true },
              ]}
            />
          </figure>
          <NumbersTable
            caption={`Batches and error rate per hour (${zoneName}), ${windowText}`}
            header={['Hour', 'Completed', 'Failed', 'Error rate']}
            rows={[...points]
              .reverse()
              .map((p) => [formatHour(p.hourMs, t.zone, true), p.completed, p.failed, pct(p.errorRate)])}
            testid="performance-numbers"
          />
        </>
      )}
    </Card>
  );
}

function Field({ label, value, testid }: { label: string; value: string; testid?: string }) {
  return (
    <div>
      <dt className="text-xs text-slate-700">{label}</dt>
      <dd className="font-semibold tabular-nums" data-testid={testid}>
        {value}
      </dd>
    </div>
  );
}

function ErrorsCard({ errors, t }: { errors?: ErrorDistributionResponse; t: TimeCtx }) {
  return (
    <Card title="Top errors" id="errors-title" testid="errors-card">
      <p className="mt-1 text-sm text-slate-700">Row errors by code, all time (ops.v_error_distribution).</p>
      {!errors ? (
        <p className="mt-2">Loading…</p>
      ) : errors.rows.length === 0 ? (
        <p className="mt-2">No row errors.</p>
      ) : (
        <ul className="mt-2 divide-y divide-slate-200" data-testid="errors-list">
          {errors.rows.map((r) => (
            <li key={r.error_code} className="py-2 text-sm" data-testid="error-row">
              <div className="flex flex-wrap items-baseline gap-x-3">
                <span className="min-w-0 break-anywhere font-mono font-semibold">{r.error_code}</span>
                <span className="tabular-nums">
                  {count(r.occurrence_count)} rows in {count(r.affected_batches)} batch
                  {r.affected_batches === 1 ? '' : 'es'}
                </span>
                <span className="text-slate-700">
                  last seen {relative(r.last_seen_at, t.now)} (<Time iso={r.last_seen_at} t={t} />)
                </span>
              </div>
              {/* Untrusted input: rendered as a text node, never as HTML; wrapped anywhere. */}
              <p className="mt-1 break-anywhere font-mono text-xs text-slate-800" data-testid="sample-message">
                {r.sample_message ?? '—'}
              </p>
            </li>
          ))}
        </ul>
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
    <main className="mx-auto mt-16 max-w-md p-4">
      <form
        onSubmit={submit}
        className="space-y-3 rounded-lg border border-slate-200 bg-white p-5 shadow-sm"
        data-testid="token-form"
      >
        <h1 className="text-lg font-semibold">Sentinel dashboard</h1>
        <p className="text-sm">
          {hadToken ? `The token was refused (${reason}). ` : ''}This dashboard needs its access token (the server's
          --auth-token or SENTINEL_DASHBOARD_TOKEN). It is kept for this browser tab only.
        </p>
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
          className="min-h-11 w-full rounded border border-slate-400 px-3"
          // The token form is the whole page until it is answered: focus belongs in its only field.
          // biome-ignore lint/a11y/noAutofocus: see above
          autoFocus
        />
        <button
          type="submit"
          className="min-h-11 rounded bg-blue-800 px-4 text-sm font-medium text-white hover:bg-blue-900"
        >
          Open dashboard
        </button>
      </form>
    </main>
  );
}
