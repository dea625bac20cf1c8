/**
 * Data shown to people. Source names, filenames, error codes and messages,
 * rejection, audit and silence reasons come from monitored tables or from users:
 * printed raw, an escape sequence in them clears or recolours the terminal, a
 * newline forges a report line and a bidi override reverses what follows. Every
 * human output passes such values through {@link oneLine}: control and bidi
 * characters become visible escapes and long values are cut with `…`, so one
 * value is always one bounded piece of one line.
 *
 * JSON outputs keep values exact (JSON escapes controls itself); API answers and
 * metric labels only cut ({@link cut}).
 */

/** Per-use maxima, in characters (UTF-16 code units) of the printed form. */
export const MAX_CHARS = {
  /** A cell of a table (`batches stuck`): a name, an id, a status. */
  cell: 64,
  /** A name inside a sentence (a source, a notifier, an environment). */
  name: 100,
  /** One field of a structured value (`key=value` in a report's details). */
  field: 200,
  /** A message, a reason, an error line. */
  message: 500,
  /** A whole log line's message. */
  log: 2000,
} as const;

/**
 * Characters shown escaped: C0 controls, DEL, C1 controls, the bidi embeddings,
 * overrides, isolates and marks (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F,
 * U+061C), the line and paragraph separators (U+2028, U+2029: line breaks to some
 * terminals and to JavaScript), the byte-order mark / zero-width no-break space
 * (U+FEFF) and lone surrogates (unprintable; UTF-8 would turn them into U+FFFD).
 */
const UNSAFE_CHAR = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;
const LONE_HIGH_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])/;
const LONE_LOW_SURROGATE = /(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSAFE = new RegExp(`${UNSAFE_CHAR.source}|${LONE_HIGH_SURROGATE.source}|${LONE_LOW_SURROGATE.source}`);

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One unsafe character as it is shown: `\n`, `\x1b`, `\x9b`, `\u202e`. */
function escapeChar(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `value` as one safe line of at most `max` characters: unsafe characters escaped
 * (see {@link UNSAFE}; newline, CR and tab as `\n`, `\r`, `\t`), the rest kept as
 * written, and cut with `…` when longer. Never splits an escape or a surrogate
 * pair; reads only as much of the value as it prints, so a 1 MB value costs no
 * more than a short one. Non-strings are shown with `String()`. `also` lists more
 * characters to escape where a format reserves them (`=` and `|` in Nagios labels).
 */
export function oneLine(value: unknown, max: number = MAX_CHARS.message, also = ''): string {
  const text = typeof value === 'string' ? value : String(value);
  const reserved = (ch: string): boolean => also !== '' && also.includes(ch);
  // The common case: short and clean.
  if (text.length <= max && !UNSAFE.test(text) && ![...also].some((ch) => text.includes(ch))) return text;
  const limit = Math.max(1, max);
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.charCodeAt(i);
    const pair =
      code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    const ch = pair ? text.slice(i, i + 2) : text[i]!;
    const shown = !pair && (UNSAFE.test(ch) || reserved(ch)) ? escapeChar(ch) : ch;
    // Room is left for the `…` unless this is the last character and it fits exactly.
    const last = i + ch.length >= text.length;
    if (length + shown.length > (last ? limit : limit - 1)) {
      parts.push('…');
      return parts.join('');
    }
    parts.push(shown);
    length += shown.length;
    i += ch.length;
  }
  return parts.join('');
}

/**
 * `value` cut to at most `max` characters with `…` (never splitting a surrogate
 * pair), nothing escaped: for JSON answers and metric labels, whose formats escape
 * what they must themselves.
 */
export function cut(value: string, max: number): string {
  if (value.length <= max) return value;
  let end = Math.max(0, max - 1);
  if (end > 0 && (value.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--;
  return `${value.slice(0, end)}…`;
}

/**
 * Cells of a table, cut to `max` and escaped before the widths are measured (a
 * 1 MB name must not pad every row), then padded; the last column is not padded.
 */
export function tableLines(
  rows: readonly (readonly unknown[])[],
  { max = MAX_CHARS.cell, indent = '' }: { max?: number; indent?: string } = {},
): string[] {
  const cells = rows.map((r) => r.map((c) => oneLine(c, max)));
  const columns = Math.max(0, ...cells.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(0, ...cells.map((r) => r[i]?.length ?? 0)));
  return cells.map((r) =>
    `${indent}${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd(),
  );
}
