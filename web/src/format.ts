/** `42 s`, `5 min`, `3 h 10 min`, `2 d 4 h`. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

export function ageSince(iso: string, now: number = Date.now()): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? formatAge((now - t) / 1000) : '?';
}

/** Local time, with the date when it is not today. */
export function formatTime(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === now.toDateString()
    ? time
    : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

export function formatHour(date: Date, withDay: boolean): string {
  const hh = String(date.getHours()).padStart(2, '0');
  return withDay ? `${date.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hh}:00` : `${hh}:00`;
}

export function pct(n: number | null | undefined): string {
  return n == null ? '–' : `${n.toFixed(n >= 10 ? 0 : 1)} %`;
}
