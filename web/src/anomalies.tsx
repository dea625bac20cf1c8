/**
 * "Unusual hours": one source × metric over the last 7 days against its usual band for each hour
 * of the week (`GET /api/anomalies`), judged as the live anomalies check would have judged it.
 */
import { useId, useMemo } from 'react';
import {
  axisUnit,
  bandPoints,
  judged,
  METRIC_NAMES,
  METRICS,
  notJudgedSpans,
  spanText,
  unusualLine,
} from './anomaly-points.js';
import type { AnomaliesResponse, AnomalyMetric, AnomalyPick } from './api.js';
import { BandChart, Legend, MARK_SYMBOL, NumbersTable } from './charts.js';
import { formatHour, zoneLabel } from './format.js';
import { Card, type TimeCtx } from './ui.js';

/** Most unusual hours and not-judged spans written out under the chart (the table has every hour). */
const LISTED = 12;

const SELECT = 'min-h-11 w-full min-w-0 rounded border border-slate-400 bg-white px-2 text-sm text-slate-900';

export function AnomaliesCard({
  answer,
  pick,
  onPick,
  t,
}: {
  answer?: AnomaliesResponse;
  pick: AnomalyPick;
  onPick: (pick: AnomalyPick) => void;
  t: TimeCtx;
}) {
  const sourceId = useId();
  const metricId = useId();
  // The answer on screen is the one asked for (a new pick shows "Loading…" until it arrives).
  const current =
    answer && answer.metric === pick.metric && (pick.source === undefined || answer.source === pick.source)
      ? answer
      : undefined;
  const points = useMemo(() => (current ? bandPoints(current, t.zone) : []), [current, t.zone]);
  const spans = useMemo(() => (current ? notJudgedSpans(current) : []), [current]);
  const unusual = useMemo(() => (current ? current.hours.filter((h) => judged(h) && h.level !== 'ok') : []), [current]);
  const sources = answer?.sources ?? [];
  const shownSource = current?.source ?? pick.source;
  const options =
    shownSource !== undefined && shownSource !== null && !sources.includes(shownSource)
      ? [shownSource, ...sources]
      : sources;
  const metric = current?.metric ?? pick.metric;
  const metricName = METRIC_NAMES[metric];
  const zoneName = zoneLabel(t.zone, t.now);
  const band = `The shaded band is the usual range for this hour of the week, from the previous ${
    current?.training_weeks ?? '?'
  } weeks`;
  const judgedCount = current ? current.hours.length - current.not_judged : 0;
  const chartName = current
    ? `${metricName} of ${current.source} per hour, last 7 days, against its usual range for each hour of the ` +
      `week: ${current.unusual} unusual hour${current.unusual === 1 ? '' : 's'}, ${current.not_judged} not judged.`
    : '';

  return (
    <Card title="Unusual hours" id="anomalies-title" testid="anomalies-card">
      <p className="mt-1 text-sm text-slate-700">
        One source's last 7 days against what is usual for it at that hour of the week, judged as the anomalies check
        judges each hour. Hours shown in {zoneName}.
      </p>
      <div className="mt-2 grid gap-2 sm:grid-cols-2">
        <div className="min-w-0">
          <label htmlFor={sourceId} className="block text-sm font-medium">
            Source
          </label>
          <select
            id={sourceId}
            data-testid="anomaly-source"
            className={`${SELECT} font-mono`}
            value={shownSource ?? ''}
            disabled={options.length === 0}
            onChange={(e) => onPick({ source: e.target.value, metric: pick.metric })}
          >
            {options.length === 0 && <option value="">No sources</option>}
            {options.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="min-w-0">
          <label htmlFor={metricId} className="block text-sm font-medium">
            Metric
          </label>
          <select
            id={metricId}
            data-testid="anomaly-metric"
            className={SELECT}
            value={pick.metric}
            onChange={(e) =>
              onPick({
                ...(pick.source !== undefined ? { source: pick.source } : {}),
                metric: e.target.value as AnomalyMetric,
              })
            }
          >
            {(answer?.metrics ?? METRICS).map((m) => (
              <option key={m} value={m}>
                {METRIC_NAMES[m]}
              </option>
            ))}
          </select>
        </div>
      </div>
      {!current ? (
        <p className="mt-4">Loading…</p>
      ) : current.source === null ? (
        <p className="mt-4" data-testid="anomalies-empty">
          No source sent a batch in the last {current.training_weeks + 1} weeks: nothing to judge yet.
        </p>
      ) : (
        <>
          <figure className="mt-4">
            <figcaption className="break-anywhere text-sm font-medium">
              {metricName} of <span className="font-mono">{current.source}</span> per hour, last 7 days
            </figcaption>
            <div className="mt-2">
              <BandChart points={points} name={chartName} testid="anomaly-chart" unit={axisUnit(metric)} />
            </div>
            <Legend
              testid="anomaly-legend"
              items={[
                { label: 'Observed', swatch: 'text-slate-900', symbol: '━' },
                { label: 'Usual range', swatch: 'bg-sky-200 ring-1 ring-sky-700' },
                { label: 'Unusual, above the range', swatch: 'text-red-700', symbol: MARK_SYMBOL.high },
                { label: 'Unusual, below the range', swatch: 'text-red-700', symbol: MARK_SYMBOL.low },
                { label: 'Not judged (no band)', swatch: 'bg-slate-200 ring-1 ring-slate-400' },
              ]}
            />
          </figure>
          <p className="mt-3 text-sm" data-testid="anomalies-summary">
            {band} (sensitivity {current.sensitivity}: outside it is unusual, twice as far out is critical).{' '}
            {judgedCount === 0 ? (
              <strong className="font-semibold">No hour of the 7 days could be judged yet (why: below).</strong>
            ) : (
              <>
                <strong className="font-semibold">
                  {current.unusual} of {judgedCount} hours judged {current.unusual === 1 ? 'was' : 'were'} unusual
                </strong>
                {current.not_judged > 0 && `; ${current.not_judged} not judged`}.
              </>
            )}
            {!current.enabled && ' The anomalies check is turned off for this source or metric in the configuration.'}
          </p>
          {unusual.length > 0 && (
            <ul className="mt-2 space-y-1 text-sm" aria-label="Unusual hours, oldest first" data-testid="unusual-list">
              {unusual.slice(0, LISTED).map((h) =>
                judged(h) ? (
                  <li key={h.hour_start} className="break-anywhere" data-testid="unusual-hour" data-level={h.level}>
                    <span aria-hidden="true" className="font-bold text-red-700">
                      {MARK_SYMBOL[h.score >= 0 ? 'high' : 'low']}{' '}
                    </span>
                    {unusualLine(metric, h, t.zone)}
                  </li>
                ) : null,
              )}
              {unusual.length > LISTED && <li>and {unusual.length - LISTED} more (see the numbers).</li>}
            </ul>
          )}
          {spans.length > 0 && (
            <ul
              className="mt-2 space-y-1 text-sm text-slate-700"
              aria-label="Hours not judged"
              data-testid="not-judged-list"
            >
              {spans.slice(0, LISTED).map((s) => (
                <li key={s.from} className="break-anywhere">
                  Not judged {spanText(s, t.zone)}: {s.reason}.
                </li>
              ))}
              {spans.length > LISTED && <li>and {spans.length - LISTED} more stretches (see the numbers).</li>}
            </ul>
          )}
          <NumbersTable
            caption={`${metricName} per hour (${zoneName}) against the usual range, last 7 days`}
            header={['Hour', 'Observed', 'Usual range', 'Verdict']}
            rows={[...current.hours]
              .reverse()
              .map((h) => [
                formatHour(Date.parse(h.hour_start), t.zone, true),
                h.observed == null ? '–' : String(h.observed),
                judged(h) ? `${h.lower}–${h.upper}` : '–',
                judged(h)
                  ? h.level === 'ok'
                    ? 'usual'
                    : `${MARK_SYMBOL[h.score >= 0 ? 'high' : 'low']} ${h.level} (score ${h.score})`
                  : `not judged: ${h.reason}`,
              ])}
            testid="anomaly-numbers"
          />
        </>
      )}
    </Card>
  );
}
