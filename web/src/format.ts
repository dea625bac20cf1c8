/**
 * How the page writes times and numbers: pure functions of their inputs (the zone
 * and "now" are parameters), table-tested in test/web/format.test.ts. Clock times
 * are 24-hour and always carry their zone ("14:05 UTC"), because the reader may be
 * half awake in another timezone; ages are relative ("12 min ago").
 */

/** The zone a time is shown in: `UTC`, or an IANA name such as `Europe/Berlin`. */
export type Zone = string;
export const UTC: Zone = 'UTC';

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

/** The age of `iso` at `now` (`12 min`), or `?` for an unreadable time. */
export function ageSince(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? formatAge((now - t) / 1000) : '?';
}

/** `12 min ago`; `just now` under 5 s (a clock a little ahead must not say "0 s ago" or go negative). */
export function relative(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'at an unknown time';
  return now - t < 5000 ? 'just now' : `${formatAge((now - t) / 1000)} ago`;
}

interface Parts {
  year: string;
  month: string;
  day: string;
  hour: string;
  minute: string;
  second: string;
  zoneName: string;
}

const formatters = new Map<Zone, Intl.DateTimeFormat>();

function parts(ms: number, zone: Zone): Parts {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      // An offset, not a name: `CET`/`EST` depend on the locale's data, `GMT+1` never does.
      timeZoneName: 'shortOffset',
    });
    formatters.set(zone, f);
  }
  const out: Record<string, string> = {};
  for (const p of f.formatToParts(ms)) out[p.type] = p.value;
  return {
    year: out.year ?? '',
    month: out.month ?? '',
    day: out.day ?? '',
    hour: out.hour ?? '',
    minute: out.minute ?? '',
    second: out.second ?? '',
    // `GMT+1` → `UTC+1`; a zone at offset zero is plain `UTC`.
    zoneName: offsetName(out.timeZoneName ?? zone),
  };
}

/** `GMT+1` → `UTC+1`; `GMT`, `UTC+0`, `GMT-0` → `UTC`. */
function offsetName(name: string): string {
  if (/^(GMT|UTC)([+-]0(:00)?)?$/.test(name)) return 'UTC';
  return name.replace(/^GMT(?=[+-])/, 'UTC');
}

/** The offset of `zone` at `ms`, as written after times: `UTC`, `UTC+1`, `UTC+5:30`, `UTC-5`. */
export function zoneLabel(zone: Zone, ms: number): string {
  return zone === UTC ? 'UTC' : parts(ms, zone).zoneName;
}

/**
 * `14:05 UTC`, or `4 Dec 14:05 UTC` when `iso` is not on the same day as `now` in
 * that zone; `withSeconds` adds `:07`. An unreadable time is returned as given.
 */
export function formatClock(iso: string, zone: Zone, now: number, withSeconds = false): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const p = parts(t, zone);
  const n = parts(now, zone);
  const time = `${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ''} ${p.zoneName}`;
  const sameDay = p.year === n.year && p.month === n.month && p.day === n.day;
  return sameDay ? time : `${p.day} ${p.month} ${time}`;
}

/** An axis label for the hour starting at `ms`: `14:00`, with `withDay` `4 Dec 14:00` (the caption names the zone). */
export function formatHour(ms: number, zone: Zone, withDay: boolean): string {
  const p = parts(ms, zone);
  return withDay ? `${p.day} ${p.month} ${p.hour}:${p.minute}` : `${p.hour}:${p.minute}`;
}

/** ISO 8601 in UTC with seconds (`2025-01-04T10:15:30Z`), for `title` and `dateTime`; the input when unreadable. */
export function isoUtc(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z') : iso;
}

/**
 * `8.6 %`, `21.7 %`, `15 %` (whole numbers without a decimal), `–` for no value: one
 * decimal, as the alerts' messages print rates, so the page and the alert agree.
 */
export function pct(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '–';
  const one = n.toFixed(1);
  return `${one.endsWith('.0') ? one.slice(0, -2) : one} %`;
}

/** `text` cut to `max` characters with `…` (for the one-line summaries; the full text is shown further down). */
export function short(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(1, max - 1)).join('')}…`;
}

/** `1,234` (grouping the same in every locale). */
export function count(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** The viewer's IANA zone, or UTC when the browser does not say. */
export function viewerZone(): Zone {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || UTC;
  } catch {
    return UTC;
  }
}

/** Whether `zone` is a zone this browser knows (a stored choice may be stale). */
export function knownZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
