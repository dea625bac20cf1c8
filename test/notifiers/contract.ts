import { describe, expect, it } from 'vitest';
import { formatIssues } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import type { Notification, Notifier } from '../../src/notifiers/contract.js';
import { DeliveryError } from '../../src/notifiers/http.js';
import { type Answer, type Responder, startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { notification, sendContext } from '../helpers/notifications.js';
import { within } from '../helpers/wait.js';

/**
 * What every notifier promises about delivery, whatever its provider: 2xx is
 * success; 4xx (but 429) is final; 429 and 5xx are retryable, with the wait the
 * provider asked for; a hanging server is given up after `timeout_seconds`, and
 * when the request had been sent whole that is "delivery unknown" (as is a reset
 * after it); a refused connection and an aborted run are retryable; each notifier
 * declares whether its receiver deduplicates (`idempotent`); and no error message ever
 * shows a secret, even when the answer echoes the request back. Each provider's
 * test file registers these tests with its own factory, request path, error label
 * and documented answers (`describeDeliveryContract`), and keeps the tests of what
 * only it does.
 */

/**
 * Problems as `sentinel` prints them (the real config schema and formatIssues), for one notifier section at
 * `notifiers.0`.
 */
export function problems(section: unknown): string[] {
  const parsed = configSchema.safeParse({ notifiers: [section] });
  return parsed.success ? [] : formatIssues(parsed.error.issues);
}

/** The DeliveryError `promise` fails with; the test fails if it resolves or fails otherwise. */
export async function sendError(promise: Promise<unknown>): Promise<DeliveryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

/** A failed answer and exactly what the error must say about it. */
export interface FailureCase {
  /** The test's title. */
  name: string;
  /** Answers queued for the next requests; the server's fallback answers after them. */
  answers: Answer[];
  /** Config overrides for this case (a function: they may name the server's URL). */
  overrides?: () => Record<string, unknown>;
  /** The notification sent; `notification()` when not given. */
  notification?: () => Notification;
  /** The label the error must start with, when not the contract's (another part is sent first). */
  label?: (host: string) => string;
  retryable: boolean;
  status: number;
  /** Checked whenever the key is present, `undefined` included (no wait asked for). */
  retryAfterMs?: number | undefined;
  /** Texts the message must contain. */
  contains?: string[];
  /** Patterns the message must match. */
  matches?: RegExp[];
  /** How many requests were made before the send gave up. */
  requests?: number;
}

/** An answer that echoes (parts of) the request, and what the error may and may not show. */
export interface EchoCase {
  name: string;
  overrides?: () => Record<string, unknown>;
  answer: Responder;
  contains?: string[];
  excludes: string[];
}

export interface DeliveryContract {
  /** `discord`: the describe block is `<provider> responses`. */
  provider: string;
  /** The file's server (see useHttpServer); its fallback answers what no case queues. */
  server: TestHttpServer;
  /** The notifier under test, built from the file's valid config with `overrides`. */
  create: (overrides?: Record<string, unknown>) => Notifier;
  /** Config overrides that send the requests to another server root (`http://127.0.0.1:<port>`). */
  pointAt: (root: string) => Record<string, unknown>;
  /** Path and query every request of `notification()` goes to. */
  path: string;
  /** The label errors start with, given the target's `host:port`: `discord webhook (127.0.0.1:4000)`. */
  label: (host: string) => string;
  /** Whether the provider deduplicates a repeated request (dedup key, labels, id header). */
  idempotent: boolean;
  /** Requests one `notification()` makes (Twilio: one per recipient). Default 1. */
  requestsPerSend?: number;
  /** Success answers as the provider documents them; each must be accepted. */
  accepts: Answer[];
  failures: FailureCase[];
  /** Values no error message may ever contain. */
  secrets: string[];
  /** Config overrides that put `secrets` to use (credentials, signing keys). Default: the file's config. */
  secretConfigs?: Array<() => Record<string, unknown>>;
  /** The provider's own echo scenarios, beyond the generic one. */
  echoes: EchoCase[];
}

const TIMEOUT_SECONDS = 0.2;

/** Registers the delivery contract's tests for one provider. */
export function describeDeliveryContract(c: DeliveryContract): void {
  const { server } = c;
  const host = (): string => new URL(server.url).host;
  const perSend = c.requestsPerSend ?? 1;

  describe(`${c.provider} responses`, () => {
    it.each(c.accepts)('accepts $status', async (answer) => {
      server.queue(...Array.from({ length: perSend }, () => answer));
      await expect(c.create().send(notification(), sendContext())).resolves.toBeUndefined();
      expect(server.requests).toHaveLength(perSend);
      for (const req of server.requests) expect(req.url).toBe(c.path);
    });

    // One test per case, titled by it (it.each would quote and shorten the title).
    for (const f of c.failures) {
      it(f.name, async () => {
        server.queue(...f.answers);
        const err = await sendError(c.create(f.overrides?.()).send((f.notification ?? notification)(), sendContext()));
        expect(err.retryable).toBe(f.retryable);
        expect(err.status).toBe(f.status);
        if ('retryAfterMs' in f) expect(err.retryAfterMs).toBe(f.retryAfterMs);
        const prefix = `${(f.label ?? c.label)(host())}: HTTP ${f.status}`;
        expect(err.message.slice(0, prefix.length)).toBe(prefix);
        for (const text of f.contains ?? []) expect(err.message).toContain(text);
        for (const pattern of f.matches ?? []) expect(err.message).toMatch(pattern);
        if (f.requests !== undefined) expect(server.requests).toHaveLength(f.requests);
      });
    }

    it(`declares idempotent: ${c.idempotent}`, () => {
      expect(c.create().idempotent).toBe(c.idempotent);
    });

    it(
      'gives up on a server that read the request and hangs after timeout_seconds, as a retryable delivery ' +
        'unknown',
      async () => {
        server.queue({ status: 200, hang: true });
        const started = performance.now();
        const err = await within(
          sendError(c.create({ timeout_seconds: TIMEOUT_SECONDS }).send(notification(), sendContext())),
          20_000,
          'the send to a hanging server',
        );
        const elapsed = performance.now() - started;
        expect(err.retryable).toBe(true);
        expect(err.deliveryUnknown).toBe(true);
        expect(err.message).toBe(
          `${c.label(host())}: delivery unknown (no answer within ${TIMEOUT_SECONDS}s after the request was sent)`,
        );
        expect(elapsed).toBeGreaterThanOrEqual(150);
      },
    );

    it('treats a connection reset after the request was sent as a retryable delivery unknown', async () => {
      server.queue({ status: 200, reset: true });
      const err = await sendError(c.create().send(notification(), sendContext()));
      expect(err.retryable).toBe(true);
      expect(err.deliveryUnknown).toBe(true);
      expect(err.message).toBe(`${c.label(host())}: delivery unknown (connection reset after the request was sent)`);
    });

    it('treats a refused connection as retryable, and known undelivered', async () => {
      const dead = await startHttpServer();
      const root = dead.url;
      await dead.close();
      const err = await sendError(c.create(c.pointAt(root)).send(notification(), sendContext()));
      expect(err.retryable).toBe(true);
      expect(err.deliveryUnknown).toBe(false);
      expect(err.message).toBe(`${c.label(new URL(root).host)}: connection refused`);
      for (const secret of c.secrets) expect(err.message).not.toContain(secret);
    });

    it('makes no request when the run is already aborted', async () => {
      const controller = new AbortController();
      controller.abort();
      const err = await sendError(c.create().send(notification(), sendContext(controller.signal)));
      expect(err.retryable).toBe(true);
      expect(err.message).toBe(`${c.label(host())}: delivery aborted`);
      expect(server.requests).toHaveLength(0);
    });

    it('stops when the run is aborted while waiting for the answer to a request it sent', async () => {
      server.queue({ status: 200, hang: true });
      const controller = new AbortController();
      void server.received(1).then(() => controller.abort());
      const err = await sendError(c.create().send(notification(), sendContext(controller.signal)));
      expect(err.retryable).toBe(true);
      expect(err.deliveryUnknown).toBe(true);
      expect(err.message).toBe(`${c.label(host())}: delivery unknown (delivery aborted after the request was sent)`);
    });

    it(
      'never shows a secret in an error when the answer echoes the whole request, final or retryable, or cut at ' +
        'the excerpt',
      async () => {
        for (const overrides of c.secretConfigs ?? [() => ({})]) {
          for (const [status, padding] of [
            [400, ''],
            [503, ''],
            // A secret straddling the excerpt's cut is masked whole, not cut into an unrecognisable half.
            [500, 'x'.repeat(280)],
          ] as const) {
            server.fallback((req) => ({
              status,
              body: `${padding}${req.url} ${JSON.stringify(req.headers)} ${req.body}`,
            }));
            const err = await sendError(c.create(overrides()).send(notification(), sendContext()));
            if (!padding) expect(err.message).toContain('***');
            for (const secret of c.secrets) {
              expect(err.message).not.toContain(secret);
              expect(err.message).not.toContain(secret.slice(0, 8));
            }
          }
        }
      },
    );

    for (const e of c.echoes) {
      it(e.name, async () => {
        server.fallback(e.answer);
        const err = await sendError(c.create(e.overrides?.()).send(notification(), sendContext()));
        for (const text of e.contains ?? []) expect(err.message).toContain(text);
        for (const text of e.excludes) expect(err.message).not.toContain(text);
      });
    }
  });
}
