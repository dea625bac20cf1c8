/**
 * Small hand-written SVG charts (no chart library: a fraction of the JS, and markup we
 * control for accessibility). Each chart is a <figure>: its caption says what it
 * counts and over which window, the SVG has an accessible name with the key figures,
 * the legend is a real list, and a <details> table holds every number.
 *
 * The plot area scales to its box (`preserveAspectRatio="none"`, strokes kept thin
 * with `vector-effect`); axis labels are HTML around it, so text never stretches.
 */
import type { ReactNode } from 'react';
import type { BandPoint } from './anomaly-points.js';

export interface Series {
  key: string;
  label: string;
  /** Tailwind fill/stroke classes of the series, plus the swatch's background class. */
  fill: string;
  swatch: string;
}

const DASHED_SWATCH = 'h-0 w-5 border-t-2 border-dashed';

export interface LegendItem {
  label: string;
  /** Classes of the swatch (a square, a dashed line, or the colour of `symbol`). */
  swatch: string;
  dashed?: boolean;
  /** A symbol drawn instead of a square (the chart's marks). */
  symbol?: string;
}

export function Legend({ items, testid }: { items: LegendItem[]; testid?: string }) {
  return (
    <ul className="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-sm text-slate-700" data-testid={testid}>
      {items.map((i) => (
        <li key={i.label} className="flex items-center gap-2">
          {i.symbol ? (
            <span aria-hidden="true" className={`w-3 text-center font-bold leading-none ${i.swatch}`}>
              {i.symbol}
            </span>
          ) : (
            <span
              aria-hidden="true"
              className={`inline-block ${i.dashed ? DASHED_SWATCH : 'h-3 w-3 rounded-sm'} ${i.swatch}`}
            />
          )}
          {i.label}
        </li>
      ))}
    </ul>
  );
}

/** The numbers behind a chart, one row per hour, behind a disclosure. */
/** `Volume of X per hour (UTC)` → `volume of X per hour (UTC)`: names and zones keep their case. */
function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}

export function NumbersTable({
  caption,
  header,
  rows,
  testid,
}: {
  caption: string;
  header: string[];
  rows: Array<Array<string | number>>;
  testid?: string;
}) {
  return (
    <details className="mt-2 text-sm">
      <summary className="flex min-h-11 cursor-pointer items-center font-medium text-blue-800 underline">
        Show the numbers ({lowerFirst(caption)})
      </summary>
      <div className="mt-2 max-h-80 overflow-auto">
        <table className="w-full text-left tabular-nums" data-testid={testid}>
          <caption className="sr-only">{caption}</caption>
          <thead className="sticky top-0 bg-white text-xs text-slate-700">
            <tr>
              {header.map((h, i) => (
                <th key={h} scope="col" className={`py-1 pr-3 ${i > 0 ? 'text-right' : ''}`}>
                  {h}
                </th>
              ))}
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-200">
            {rows.map((r) => (
              <tr key={String(r[0])}>
                {r.map((c, i) =>
                  i === 0 ? (
                    <th key={header[i]} scope="row" className="py-1 pr-3 font-normal">
                      {c}
                    </th>
                  ) : (
                    <td key={header[i]} className="py-1 pr-3 text-right">
                      {c}
                    </td>
                  ),
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

const TICK_KEYS = ['first', 'middle', 'last'];

/** Y-axis top label, the plot, and three hour labels (first, middle, last) under it. */
function Frame({
  top,
  labels,
  height,
  children,
}: {
  top: string;
  labels: string[];
  height: string;
  children: ReactNode;
}) {
  const n = labels.length;
  const ticks = n > 2 ? [labels[0], labels[Math.floor((n - 1) / 2)], labels[n - 1]] : labels;
  return (
    <div aria-hidden="true">
      <div className="flex items-end gap-1 text-xs text-slate-700">
        <span className="w-10 shrink-0 text-right tabular-nums">{top}</span>
        <span className="grow border-b border-dashed border-slate-300" />
      </div>
      <div className={`ml-11 border-b border-l border-slate-400 ${height}`}>{children}</div>
      <div className="ml-11 flex justify-between text-xs text-slate-700 tabular-nums">
        {ticks.map((t, i) => (
          <span key={TICK_KEYS[i]}>{t}</span>
        ))}
      </div>
    </div>
  );
}

/** Nice upper bound for an axis: 1, 2, 5 × 10^k at or above `max`. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export interface BarPoint {
  label: string;
  values: Record<string, number>;
}

/** Stacked bars per hour (first series at the bottom). */
export function StackedBars({
  points,
  series,
  name,
  testid,
}: {
  points: BarPoint[];
  series: Series[];
  name: string;
  testid: string;
}) {
  const totals = points.map((p) => series.reduce((n, s) => n + (p.values[s.key] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const w = 10;
  return (
    <div role="img" aria-label={name} data-testid={testid} data-points={points.length} data-max={max}>
      <Frame top={String(max)} labels={points.map((p) => p.label)} height="h-48 sm:h-64">
        <svg
          aria-hidden="true"
          viewBox={`0 0 ${points.length * w} 100`}
          preserveAspectRatio="none"
          className="h-full w-full"
        >
          {points.map((p, i) => {
            let y = 100;
            return series.map((s) => {
              const v = p.values[s.key] ?? 0;
              const h = (v / max) * 100;
              y -= h;
              return (
                <rect
                  key={`${p.label}-${s.key}`}
                  data-series={s.key}
                  data-index={i}
                  data-value={v}
                  x={i * w + 1}
                  y={y}
                  width={w - 2}
                  height={h}
                  className={s.fill}
                />
              );
            });
          })}
        </svg>
      </Frame>
    </div>
  );
}

/** A line per hour (gaps where there is no value) and a dashed threshold line. */
export function RateLine({
  points,
  threshold,
  name,
  testid,
}: {
  points: Array<{ label: string; value: number | null }>;
  threshold: number;
  name: string;
  testid: string;
}) {
  const max = niceMax(Math.max(threshold * 1.2, ...points.map((p) => p.value ?? 0)));
  const n = points.length;
  const x = (i: number) => (n <= 1 ? 50 : (i / (n - 1)) * 100);
  const y = (v: number) => 100 - (v / max) * 100;
  // Segments of consecutive hours with a value; a lone value is drawn as a dot.
  const segments: Array<Array<[number, number]>> = [];
  let current: Array<[number, number]> = [];
  points.forEach((p, i) => {
    if (p.value == null) {
      if (current.length) segments.push(current);
      current = [];
    } else current.push([x(i), y(p.value)]);
  });
  if (current.length) segments.push(current);
  return (
    <div role="img" aria-label={name} data-testid={testid} data-points={n}>
      <Frame top={`${max} %`} labels={points.map((p) => p.label)} height="h-32 sm:h-40">
        <svg
          aria-hidden="true"
          viewBox="0 0 100 100"
          preserveAspectRatio="none"
          className="h-full w-full overflow-visible"
        >
          <line
            x1={0}
            x2={100}
            y1={y(threshold)}
            y2={y(threshold)}
            className="stroke-slate-700"
            strokeWidth={2}
            strokeDasharray="6 4"
            vectorEffect="non-scaling-stroke"
            data-threshold={threshold}
          />
          {segments.map((seg) =>
            seg.length === 1 ? (
              <circle key={`d-${seg[0]![0]}`} cx={seg[0]![0]} cy={seg[0]![1]} r={1.2} className="fill-amber-700" />
            ) : (
              <polyline
                key={`l-${seg[0]![0]}`}
                points={seg.map(([a, b]) => `${a},${b}`).join(' ')}
                fill="none"
                className="stroke-amber-700"
                strokeWidth={2.5}
                vectorEffect="non-scaling-stroke"
              />
            ),
          )}
        </svg>
      </Frame>
    </div>
  );
}

/** One hour of the band chart: an anomaly-points.ts point without its time. */
export type BandChartPoint = Omit<BandPoint, 'hourMs'>;

/** Consecutive runs of indexes where `has` holds. */
function runs(n: number, has: (i: number) => boolean): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  for (let i = 0; i < n; i++) {
    if (has(i)) cur.push(i);
    else if (cur.length) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length) out.push(cur);
  return out;
}

export const MARK_SYMBOL = { high: '▲', low: '▼' } as const;

/**
 * An observed line against a shaded band (lower to upper) per hour: hours without a band are a
 * gap, shaded grey; hours outside the band carry a symbol (▲ above, ▼ below) in red over a
 * tinted column, so neither colour nor position alone says it. The symbols are HTML over the
 * plot, so they keep their shape however the plot stretches.
 */
export function BandChart({
  points,
  name,
  testid,
  unit,
}: {
  points: BandChartPoint[];
  name: string;
  testid: string;
  /** After the axis' top value: ` %`, ` min`. */
  unit: string;
}) {
  const n = points.length;
  const max = niceMax(Math.max(0, ...points.flatMap((p) => [p.observed ?? 0, p.upper ?? 0])));
  const w = n > 0 ? 100 / n : 100;
  const x = (i: number) => (i + 0.5) * w;
  const y = (v: number) => 100 - (Math.min(v, max) / max) * 100;
  const banded = runs(n, (i) => points[i]!.lower !== undefined && points[i]!.upper !== undefined);
  const gaps = runs(n, (i) => points[i]!.lower === undefined);
  const lines = runs(n, (i) => points[i]!.observed != null);
  const marks = points.flatMap((p, i) => (p.mark ? [{ p, i }] : []));
  const edge = (run: number[], key: 'lower' | 'upper') =>
    run.map((i) => `${run.length === 1 ? x(i) - w / 2 : x(i)},${y(points[i]![key]!)}`).join(' ') +
    (run.length === 1 ? ` ${x(run[0]!) + w / 2},${y(points[run[0]!]![key]!)}` : '');
  return (
    <div role="img" aria-label={name} data-testid={testid} data-points={n} data-max={max}>
      <Frame top={`${max}${unit}`} labels={points.map((p) => p.label)} height="h-48 sm:h-64">
        <div className="relative h-full w-full">
          <svg
            aria-hidden="true"
            viewBox="0 0 100 100"
            preserveAspectRatio="none"
            className="absolute inset-0 h-full w-full overflow-visible"
          >
            {gaps.map((run) => (
              <rect
                key={`g-${run[0]}`}
                data-testid="not-judged"
                x={run[0]! * w}
                y={0}
                width={run.length * w}
                height={100}
                className="fill-slate-200"
              />
            ))}
            {marks.map(({ i }) => (
              <rect key={`c-${i}`} x={i * w} y={0} width={w} height={100} className="fill-red-100" />
            ))}
            {banded.map((run) => {
              const upper = edge(run, 'upper');
              const lower = edge(run, 'lower');
              const back = lower.split(' ').reverse().join(' ');
              return (
                <g key={`b-${run[0]}`}>
                  <polygon points={`${upper} ${back}`} className="fill-sky-200" data-testid="band" />
                  <polyline
                    points={upper}
                    fill="none"
                    className="stroke-sky-700"
                    strokeWidth={1}
                    vectorEffect="non-scaling-stroke"
                  />
                  <polyline
                    points={lower}
                    fill="none"
                    className="stroke-sky-700"
                    strokeWidth={1}
                    vectorEffect="non-scaling-stroke"
                  />
                </g>
              );
            })}
            {lines.map((run) =>
              run.length === 1 ? (
                <line
                  key={`o-${run[0]}`}
                  x1={x(run[0]!) - w / 2}
                  x2={x(run[0]!) + w / 2}
                  y1={y(points[run[0]!]!.observed!)}
                  y2={y(points[run[0]!]!.observed!)}
                  className="stroke-slate-900"
                  strokeWidth={2}
                  vectorEffect="non-scaling-stroke"
                />
              ) : (
                <polyline
                  key={`o-${run[0]}`}
                  data-testid="observed"
                  points={run.map((i) => `${x(i)},${y(points[i]!.observed!)}`).join(' ')}
                  fill="none"
                  className="stroke-slate-900"
                  strokeWidth={2}
                  vectorEffect="non-scaling-stroke"
                />
              ),
            )}
          </svg>
          {marks.map(({ p, i }) => (
            <span
              key={`m-${i}`}
              data-testid="anomaly-mark"
              data-mark={p.mark}
              title={p.markName}
              className="absolute -translate-x-1/2 -translate-y-1/2 text-sm font-bold leading-none text-red-700"
              style={{ left: `${x(i)}%`, top: `${y(p.observed ?? 0)}%` }}
            >
              {MARK_SYMBOL[p.mark!]}
            </span>
          ))}
        </div>
      </Frame>
    </div>
  );
}
