/**
 * Redaction of secrets from everything Sentinel prints. Known secret values
 * (keys, passwords, webhook URLs from the config) are replaced wherever they appear,
 * and any `scheme://user:password@host` userinfo is masked even when the value was
 * not known in advance (a URL inside a driver's error message, say).
 */
export const MASK = '***';

// The scheme is bounded (real ones are short): unbounded, a long run like `x.x.x.…` in
// monitored data is scanned again from every word boundary, quadratic in its length.
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]{0,31}:\/\/[^\s:/@]*:)([^\s@/]+)@/gi;

/**
 * A Supabase secret key (`sb_secret_` and its random part), known or not: one may be
 * echoed back in an error (a gateway's, a proxy's) that is not the configured key.
 */
const SUPABASE_SECRET_KEY = /\bsb_secret_[A-Za-z0-9_-]+/g;

export function redactUrlPasswords(text: string): string {
  return text.replace(URL_PASSWORD, `$1${MASK}@`).replace(SUPABASE_SECRET_KEY, `sb_secret_${MASK}`);
}

export class Redactor {
  private secrets: string[] = [];

  constructor(secrets: Iterable<string> = []) {
    this.add(secrets);
  }

  /** Registers more secret values; short values are ignored (too likely to match ordinary text). */
  add(secrets: Iterable<string>): void {
    for (const s of secrets) {
      if (s.length >= 6 && !this.secrets.includes(s)) this.secrets.push(s);
      // A password is often percent-encoded inside a URL; mask both spellings.
      const decoded = safeDecode(s);
      if (decoded !== s && decoded.length >= 6 && !this.secrets.includes(decoded)) this.secrets.push(decoded);
    }
    // Longest first so that a secret containing another is masked whole.
    this.secrets.sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join(MASK);
    return redactUrlPasswords(out);
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The secret parts of a connection URL: its password and the URL itself. */
export function secretsOfUrl(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const parsed = new URL(url);
    // A malformed escape (`%zz`) is still a password: kept as written rather than lost to the decoder.
    return parsed.password ? [parsed.password, safeDecode(parsed.password)] : [];
  } catch {
    return [];
  }
}

/** A URL safe to print: password masked, query string (tokens live there) dropped. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = MASK;
    parsed.search = '';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
