import { minutesText, pct1, trimNumber } from '../util/format.js';
import { MAX_CHARS, oneLine } from '../util/text.js';

/**
 * An alert's details as a person reads them, the one wording every text output
 * shares (notifications, the human report): `top sources: vendor_a 41.2 % (120 of 291
 * rows); vendor_b …`, `oldest batches: 0b9a… (vendor_a, validating, 14 min)`, `error
 * rate: 29 %`, `hour bucket: 2025-01-04 10:00 UTC`. Never raw JSON.
 *
 * Units come from the key names (`_pct`, `_minutes`, `_ms`, `_seconds`; `_rows` reads
 * well as it is), times from ISO strings; arrays of the shapes the checks record
 * (sources with a rate, batches with an id, statuses with a count) get a phrase each,
 * and any other value a bounded `key value, …` rendering. Every string from the data
 * is escaped and cut (src/util/text.ts), lists stop after {@link MAX_ITEMS} with a
 * count of the rest, and nesting deeper than two levels shows as `…`: a detail is
 * always a few readable, bounded lines whatever a check put in it.
 */

/** Items of one list shown; the rest are counted (`… and 3 more`). */
export const MAX_ITEMS = 5;

/** One detail: `label: text`; a list also keeps its items for layouts that show one per line. */
export interface DetailEntry {
  label: string;
  /** The whole value on one line (a list's items joined with `; `, `… and N more` at the end). */
  text: string;
  /** A list's shown items, when the value is a list. */
  items?: string[];
  /** How many items of the list are not shown. */
  more?: number;
}

export interface ReadableOptions {
  /** Masks secrets in each string before it is escaped and cut (a secret cut in half stays masked). */
  redact?: (text: string) => string;
  maxItems?: number;
}

/** The details in order, as readable entries; empty values (null, undefined, empty lists) are left out. */
export function readableDetails(details: Record<string, unknown>, options: ReadableOptions = {}): DetailEntry[] {
  const r = renderer(options);
  const entries: DetailEntry[] = [];
  // Every detail is kept: how many fit is each layout's decision (Discord's 25 fields, an email's 50 lines).
  for (const [key, value] of Object.entries(details).filter(([, v]) => !isEmpty(v))) {
    const label = r.label(key);
    if (Array.isArray(value)) {
      const max = options.maxItems ?? MAX_ITEMS;
      const items = value.slice(0, max).map((item) => r.item(item, 1));
      const more = value.length - items.length;
      const text = `${items.join('; ')}${more > 0 ? `; … and ${more} more` : ''}`;
      entries.push({ label, text, items, ...(more > 0 ? { more } : {}) });
    } else {
      entries.push({ label, text: r.value(key, value, 1) });
    }
  }
  return entries;
}

/** `label: text` per detail: the plain-text form (email, chat, Alertmanager annotations). */
export function readableLines(details: Record<string, unknown>, options: ReadableOptions = {}): string[] {
  return readableDetails(details, options).map((e) => `${e.label}: ${e.text}`);
}

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || (Array.isArray(value) && value.length === 0);
}

/** Key suffixes that carry a unit, and how a number with that unit reads. */
const UNITS: Array<{ suffix: string; show: (n: number) => string }> = [
  { suffix: '_pct', show: (n) => `${trimNumber(n)} %` },
  { suffix: '_minutes', show: (n) => minutesText(n) },
  { suffix: '_ms', show: (n) => (Math.abs(n) >= 1000 ? `${trimNumber(n / 1000)} s` : `${trimNumber(n)} ms`) },
  { suffix: '_seconds', show: (n) => (Math.abs(n) >= 600 ? minutesText(n / 60) : `${trimNumber(n)} s`) },
];

const ISO_TIME = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/;

/** `2025-01-04T10:00:00Z` → `2025-01-04 10:00 UTC`; other zones are converted to UTC. */
export function readableTime(iso: string): string | undefined {
  const m = ISO_TIME.exec(iso);
  if (!m) return undefined;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return undefined;
  const utc = date.toISOString();
  const seconds = utc.slice(17, 19) === '00' ? '' : utc.slice(16, 19);
  return `${utc.slice(0, 10)} ${utc.slice(11, 16)}${seconds} UTC`;
}

function renderer(options: ReadableOptions) {
  const redact = options.redact ?? ((t: string) => t);
  const text = (value: string, max: number = MAX_CHARS.field): string => oneLine(redact(value), max);
  const name = (value: unknown): string => text(String(value), MAX_CHARS.name);

  /** `oldest_age_minutes` → `oldest age`, `error_rows` → `error rows`. */
  const label = (key: string): string => {
    const unit = UNITS.find((u) => key.endsWith(u.suffix) && key.length > u.suffix.length);
    const bare = unit ? key.slice(0, -unit.suffix.length) : key;
    return text(bare.replace(/_/g, ' ').trim() || key, MAX_CHARS.name) || '(unnamed)';
  };

  const scalar = (key: string, value: unknown, depth = 2): string => {
    if (typeof value === 'number') {
      const unit = UNITS.find((u) => key.endsWith(u.suffix));
      return unit ? unit.show(value) : trimNumber(value);
    }
    if (typeof value === 'boolean') return value ? 'yes' : 'no';
    if (typeof value === 'string')
      return readableTime(value) ?? text(value, depth > 1 ? MAX_CHARS.field : MAX_CHARS.message);
    return text(String(value));
  };

  /** Any value, `depth` levels down: scalars as above, objects as `key value, …`, lists joined. */
  const value = (key: string, v: unknown, depth: number): string => {
    if (v === null || v === undefined) return '—';
    if (Array.isArray(v)) {
      if (depth > 2) return '…';
      const shown = v.slice(0, options.maxItems ?? MAX_ITEMS).map((x) => item(x, depth + 1));
      const more = v.length - shown.length;
      return `${shown.join(', ')}${more > 0 ? `, … and ${more} more` : ''}`;
    }
    if (typeof v === 'object') return depth > 2 ? '…' : generic(v as Record<string, unknown>, depth + 1);
    return scalar(key, v, depth);
  };

  const generic = (o: Record<string, unknown>, depth: number): string =>
    Object.entries(o)
      .filter(([, x]) => x !== undefined && x !== null)
      .map(([k, x]) => `${label(k)} ${value(k, x, depth)}`)
      .join(', ');

  /** One list item: the shapes the checks record get a phrase, anything else the generic rendering. */
  const item = (v: unknown, depth: number): string => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return value('', v, depth);
    const o = v as Record<string, unknown>;
    const rateKey = Object.keys(o).find((k) => k.endsWith('_rate_pct') && typeof o[k] === 'number');
    // A source's share: `vendor_a 41.2 % (120 of 291 rows)`.
    if (typeof o.source === 'string' && rateKey && typeof o.total_rows === 'number') {
      const partKey = `${rateKey.slice(0, -'_rate_pct'.length)}_rows`;
      const part = typeof o[partKey] === 'number' ? `${trimNumber(o[partKey] as number)} of ` : '';
      return `${name(o.source)} ${scalar(rateKey, o[rateKey])} (${part}${trimNumber(o.total_rows)} rows)`;
    }
    // A batch: `0b9a… (vendor_a, validating, 14 min)`.
    if (typeof o.id === 'string' || typeof o.id === 'number') {
      const rest = Object.entries(o)
        .filter(([k, x]) => k !== 'id' && x !== undefined && x !== null)
        .map(([k, x]) => (typeof x === 'object' ? `${label(k)} ${value(k, x, depth)}` : scalar(k, x)));
      return `${name(o.id)}${rest.length ? ` (${rest.join(', ')})` : ''}`;
    }
    // Batches per status: `2 batches in validating, oldest 14 min`.
    if (typeof o.status === 'string' && typeof o.batch_count === 'number') {
      const count = `${trimNumber(o.batch_count)} ${o.batch_count === 1 ? 'batch' : 'batches'}`;
      const oldest = typeof o.oldest_age_minutes === 'number' ? `, oldest ${minutesText(o.oldest_age_minutes)}` : '';
      return `${count} in ${name(o.status)}${oldest}`;
    }
    return generic(o, depth);
  };

  return { label, value, item };
}

/** Sources an `about` phrase names (the details name up to {@link MAX_ITEMS}). */
const ABOUT_SOURCES = 3;

/**
 * What an alert is about, as a short phrase to put after its message where only the
 * message is shown (an SMS, a PagerDuty summary on a phone): ` (top sources: vendor_a
 * 41.2%, vendor_b 20.3%, …)` for details with `top_sources`, `; oldest 0b9a… from
 * vendor_a, 14 min` for details with `oldest_batches`, else empty. The message itself
 * stays the contract's text (docs/contract.md §5, §8); this is presentation. Strings
 * from the data are masked, escaped and cut.
 */
export function aboutAlert(details: Record<string, unknown>, options: Pick<ReadableOptions, 'redact'> = {}): string {
  const redact = options.redact ?? ((t: string) => t);
  const text = (value: unknown): string => oneLine(redact(String(value)), MAX_CHARS.cell);
  const top = details.top_sources;
  if (Array.isArray(top) && top.length > 0) {
    const named = top
      .slice(0, ABOUT_SOURCES)
      .filter((s): s is { source: unknown; error_rate_pct: number } => typeof s?.error_rate_pct === 'number')
      .map((s) => `${text(s.source)} ${pct1(s.error_rate_pct)}%`);
    if (named.length === 0) return '';
    const more = top.length > ABOUT_SOURCES ? ', …' : '';
    return ` (top source${top.length === 1 ? '' : 's'}: ${named.join(', ')}${more})`;
  }
  const oldest = Array.isArray(details.oldest_batches) ? details.oldest_batches[0] : undefined;
  if (oldest && typeof oldest === 'object' && typeof oldest.age_minutes === 'number') {
    return `; oldest ${text(oldest.id)} from ${text(oldest.source)}, ${minutesText(oldest.age_minutes)}`;
  }
  return '';
}
