/**
 * Waiting in tests without fixed sleeps and without wall-clock upper bounds.
 *
 * - {@link until} waits for something observable (a row, an HTTP answer, a log line)
 *   to become true, polling it; the timeout only says when to give up, it is not
 *   what the test asserts.
 * - {@link within} is the "does not hang" assertion: the promise must settle before a
 *   generous limit. A test that wants to show something happened "at once" asserts
 *   what happened (attempts, the timeout reported, the order of events) and uses this
 *   only so that a regression fails instead of hanging the suite.
 *
 * Both use the timers captured when this module loads, so a test that fakes the
 * global timers (vi.useFakeTimers) still gets real waiting here.
 */

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

/** Resolves after `ms` of real time (only for polling intervals and give-up limits). */
function realDelay(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** Options of {@link until}. */
export interface UntilOptions {
  /** When to give up (not an assertion about speed). Default 15 s. */
  timeoutMs?: number;
  /** How often to look again. Default 20 ms. */
  intervalMs?: number;
  /** Extra text for the timeout error, computed when it happens (a log tail, the last answer). */
  detail?: () => string;
}

/**
 * Resolves with the first truthy value `probe` returns (sync or async); throws after
 * `timeoutMs` naming `what`. A probe that throws is an error of the test, not a "no".
 */
export async function until<T>(
  probe: () => T | Promise<T>,
  what: string,
  options: UntilOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      const detail = options.detail?.();
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${detail ? `\n${detail}` : ''}`);
    }
    await realDelay(options.intervalMs ?? 20);
  }
}

/**
 * `promise`, or an error if it has not settled within `limitMs`: for asserting that
 * something does not hang. Pick a limit far above the expected time (the suite runs
 * on a loaded 2-core machine); speed itself is measured in bench/.
 */
export async function within<T>(promise: Promise<T>, limitMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = realSetTimeout(() => reject(new Error(`${what} did not finish within ${limitMs}ms`)), limitMs);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    realClearTimeout(timer);
  }
}

/** A promise with its resolve function, for a test to release something when it chooses. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
