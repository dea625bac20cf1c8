import { networkInterfaces } from 'node:os';
import { describe, it } from 'vitest';

/**
 * Tests that need a real part of the machine (the PostgREST binary, promtool,
 * openssl, Chromium): on a laptop without it they are skipped with a printed
 * reason; in CI (`CI` set and not `false`) a missing part is a failing test, never
 * a silent skip.
 *
 *     describe.runIf(requirePart('openssl', haveOpenssl(), 'apt-get install openssl'))('…', () => { … });
 */
export const inCi = !!process.env.CI && process.env.CI !== 'false';

/** Whether the tests that need `name` should run; registers a failing test in CI when it is missing. */
export function requirePart(name: string, available: boolean, howToGet: string): boolean {
  if (available) return true;
  if (inCi) {
    describe(`required part: ${name}`, () => {
      it(`${name} is installed (CI must run the tests that need it)`, () => {
        throw new Error(`${name} is missing: ${howToGet}`);
      });
    });
    return false;
  }
  console.warn(`Skipping the tests that need ${name}: it is missing here (${howToGet}). CI runs them.`);
  return false;
}

/** Whether this host has the IPv6 loopback address (::1) configured. */
export function haveIpv6Loopback(): boolean {
  return Object.values(networkInterfaces())
    .flat()
    .some((i) => i?.internal === true && i.family === 'IPv6' && i.address === '::1');
}
