import { redactUrlPasswords } from './redact.js';
import { cut, MAX_CHARS, oneLine } from './text.js';

/** How {@link errorLine} shapes its line. */
export interface ErrorLineOptions {
  /** Masks the configuration's secrets (a Redactor's `redact`); URL passwords are masked either way. */
  redact?: (text: string) => string;
  /** The longest line, in characters; cut with `…`. Default {@link MAX_CHARS.message}. */
  max?: number;
  /**
   * True (the default) for text shown to people: control and bidi characters
   * escaped (src/util/text.ts). False for JSON answers, whose format escapes them.
   */
  escape?: boolean;
  /** False keeps every line (escaped into one): for messages that are not errors' (commander's). */
  firstLine?: boolean;
}

/**
 * An error (or any thrown value, or a message) as one line for a person: its
 * message (the name when the message is empty), only the first line of it, URL
 * passwords and `redact`'s secrets masked, then escaped and cut. Every "error →
 * one line" in Sentinel goes through here, so none forgets the masking or the
 * escaping.
 */
export function errorLine(err: unknown, options: ErrorLineOptions = {}): string {
  const text = typeof err === 'string' ? err : err instanceof Error ? err.message || err.name : String(err);
  const line = options.firstLine === false ? text : (text.split('\n')[0] ?? text);
  const masked = redactUrlPasswords(options.redact ? options.redact(line) : line);
  const max = options.max ?? MAX_CHARS.message;
  return options.escape === false ? cut(masked, max) : oneLine(masked, max);
}

/**
 * Why a file could not be read, in the words the config errors use: `file not found`,
 * `permission denied`, `it is a directory`, else `otherwise(code)`.
 */
export function whyUnreadable(err: unknown, otherwise: (code: string | undefined) => string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return otherwise(code);
}
