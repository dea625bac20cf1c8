import { readFileSync } from 'node:fs';

/**
 * Sentinel's version from package.json (relative to the compiled module, so it
 * works from src/ under the tests and from dist/), or `unknown` if unreadable.
 * Read once, on first use.
 */
let cached: string | undefined;

export function sentinelVersion(): string {
  if (cached === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version?: unknown;
      };
      cached = typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
