/** Pieces every card of the page shares: the card itself and a clock time. */
import type { ReactNode } from 'react';
import { formatClock, isoUtc, type Zone } from './format.js';

/** The zone times are shown in and the page's clock. */
export interface TimeCtx {
  zone: Zone;
  now: number;
}

/** A clock time with its zone; the full ISO 8601 time on hover and on focus (tap, keyboard). */
export function Time({ iso, t, seconds }: { iso: string; t: TimeCtx; seconds?: boolean }) {
  const full = isoUtc(iso);
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: focus shows the full ISO time (styles.css), also on touch
    <time dateTime={full} title={full} tabIndex={0} className="iso-tip whitespace-nowrap">
      {formatClock(iso, t.zone, t.now, seconds)}
    </time>
  );
}

export function Card({
  title,
  id,
  children,
  testid,
}: {
  title: string;
  id: string;
  children: ReactNode;
  testid?: string;
}) {
  return (
    <section
      aria-labelledby={id}
      data-testid={testid}
      className="min-w-0 rounded-lg border border-slate-200 bg-white p-3 shadow-sm sm:p-5"
    >
      <h2 id={id} className="text-lg font-semibold text-slate-900">
        {title}
      </h2>
      {children}
    </section>
  );
}
