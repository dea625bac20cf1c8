import type { Redactor } from '../util/redact.js';
import type { SendContext } from './contract.js';
import { DeliveryError } from './http.js';

/**
 * Delivery of a notification that takes several requests (Twilio: one SMS per
 * recipient; PagerDuty: one event per alert). Each request is a part with a stable
 * key: a part delivered once is marked completed in the outbox, and a retry sends
 * only the parts still missing, so nobody is texted or paged twice.
 */

export interface Part {
  /** Stable across attempts (`+15550002222`, `<dedup_key>:trigger`). */
  key: string;
  /** Names the request in errors, without secrets: `Twilio SMS to +15550002222 (api.twilio.com)`. */
  label: string;
  /** Makes the request; resolves when the provider accepted it. */
  send: () => Promise<void>;
}

export interface PartsPolicy {
  /** The provider's name for the (unreachable) error of an empty failure list. */
  provider: string;
  /** Masks the notifier's secrets in an unexpected (non-DeliveryError) error's message. */
  redactor: Redactor;
  /**
   * Whether a final (non-retryable) failure of one part would fail every other part
   * alike (a rejected account or routing key), so sending them is pointless.
   */
  failsAll: (failure: DeliveryError) => boolean;
}

/**
 * Sends the parts not yet completed, in order, marking each as it is accepted.
 *
 * A retryable failure (429, 5xx, timeout, network) is the provider's trouble, not
 * this part's: the loop stops and the engine backs off. A final failure of one part
 * (an invalid number, an invalid event) does not keep the others from being sent,
 * unless `failsAll` says it concerns them all. Whatever failed is thrown at the end
 * as one DeliveryError (see combineFailures). An aborted signal stops before the
 * next part.
 */
export async function sendParts(parts: Iterable<Part>, ctx: SendContext, policy: PartsPolicy): Promise<void> {
  const failures: DeliveryError[] = [];
  for (const part of parts) {
    if (ctx.completed.has(part.key)) continue;
    if (ctx.signal.aborted)
      throw combineFailures([...failures, new DeliveryError(`${part.label}: delivery aborted`, true)], policy.provider);
    try {
      await part.send();
      ctx.markCompleted(part.key);
    } catch (err) {
      const failure =
        err instanceof DeliveryError
          ? err
          : new DeliveryError(
              `${part.label}: ${policy.redactor.redact(err instanceof Error ? err.message : String(err))}`,
              true,
            );
      if (failure.retryable || policy.failsAll(failure)) throw combineFailures([...failures, failure], policy.provider);
      failures.push(failure);
    }
  }
  if (failures.length) throw combineFailures(failures, policy.provider);
}

/**
 * One error for several failed parts: their messages joined with `; `, retryable if
 * any is, the first one's status, the longest wait any of them asked for, and
 * delivery unknown if any part's is. A single failure is returned as it is.
 */
export function combineFailures(failures: DeliveryError[], provider: string): DeliveryError {
  const [first] = failures;
  if (!first) return new DeliveryError(`${provider}: no attempt was made`, true);
  if (failures.length === 1) return first;
  const waits = failures.map((f) => f.retryAfterMs).filter((ms): ms is number => ms !== undefined);
  return new DeliveryError(
    failures.map((f) => f.message).join('; '),
    failures.some((f) => f.retryable),
    first.status,
    waits.length ? Math.max(...waits) : undefined,
    failures.some((f) => f.deliveryUnknown),
  );
}
