/**
 * An AbortController that also aborts when `outer` does, and lets go of `outer`
 * when disposed. `AbortSignal.any([mine, outer])` would do the same, but Node 20
 * keeps a reference to every signal ever combined with a long-lived one (the
 * loop's), so a loop grew by a few hundred bytes per run (nodejs/node#55351).
 */
export function linkedAbort(outer?: AbortSignal): {
  controller: AbortController;
  signal: AbortSignal;
  dispose: () => void;
} {
  const controller = new AbortController();
  if (!outer) return { controller, signal: controller.signal, dispose: () => {} };
  const onAbort = (): void => controller.abort(outer.reason);
  if (outer.aborted) onAbort();
  else outer.addEventListener('abort', onAbort, { once: true });
  return { controller, signal: controller.signal, dispose: () => outer.removeEventListener('abort', onAbort) };
}
