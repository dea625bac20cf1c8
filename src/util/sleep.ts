/**
 * Waits `ms`, or less when `signal` aborts (then it resolves, it does not throw:
 * callers check the signal themselves). The one real-time wait of the runner and
 * of alerting; both take a `sleep` of this shape as a dependency so that tests
 * can pass one that does not wait.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The shape of {@link sleep}, as injected. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;
