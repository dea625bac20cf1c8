import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Notification } from '../notifiers/contract.js';
import { ensureDirectory } from '../state/dir.js';
import { type FileLockOptions, StateLockTimeout, withFileLock } from '../state/lock.js';
import type { TrackedAlert } from './decide.js';

export { StateLockTimeout };

/**
 * Alert state on this host: tracked alerts, silences and the outbox, in one JSON
 * file under `state_dir`. Every change is written atomically (temp file + rename)
 * and every read-modify-write happens under an exclusive lock file, so two
 * overlapping cron runs neither corrupt the file nor both send the same page.
 */

export interface Silence {
  id: string;
  /** Undefined: every environment sharing this state directory. */
  environment?: string;
  check: string;
  /** Matches the alert's subject (the source of a per-source alert); undefined matches all. */
  source?: string;
  reason: string;
  createdBy: string;
  createdAt: string;
  endsAt: string;
  /** Set by `sentinel silence expire`. */
  expiredAt?: string;
}

export interface OutboxEntry {
  notification: Notification;
  /** The environment whose run recorded it: only that environment's runs deliver it. */
  environment: string;
  attempts: number;
  /**
   * A run delivering this entry holds it until then (ISO 8601), so an overlapping
   * run does not send it too, while the state lock is not held across HTTP calls.
   */
  claimedUntil?: string;
  claimedBy?: string;
  /** Parts already accepted by the provider (a recipient, a PagerDuty event). */
  completedParts: string[];
  /** ISO 8601: do not try before this (backoff, Retry-After). */
  nextAttemptAt?: string;
  /**
   * An attempt was sent whole but got no answer (delivery unknown): the provider
   * may have shown it. Its resolution is then sent even if the alert resolves
   * before the entry is delivered, and, for a provider that cannot tell a repeat,
   * even the final flush waits for `nextAttemptAt`.
   */
  maybeDelivered?: boolean;
  lastError?: string;
}

/** A notification that failed for good (a 4xx other than 429), kept so it can be seen. */
export interface DeadEntry extends OutboxEntry {
  failedAt: string;
}

export interface AlertingState {
  version: 1;
  alerts: Record<string, TrackedAlert>;
  silences: Silence[];
  outbox: OutboxEntry[];
  dead: DeadEntry[];
}

export function emptyState(): AlertingState {
  return { version: 1, alerts: {}, silences: [], outbox: [], dead: [] };
}

export type LockOptions = FileLockOptions;

/**
 * Where alert state lives, as the engine and the alert commands use it: this host's
 * file ({@link AlertStore}) or, for replicas, one row in PostgreSQL
 * (`PgAlertStore`, src/alerting/pg-store.ts).
 */
export interface AlertStateStore {
  /** The state as it is now (empty when nothing was ever recorded). */
  read(): Promise<AlertingState>;
  /** Replaces the state; call it inside {@link withLock} when others may write too. */
  write(state: AlertingState): Promise<void>;
  /** Read, change, write as one step that no other process can interleave with. */
  update<T>(change: (state: AlertingState) => T | Promise<T>, options?: LockOptions): Promise<T>;
  /** Runs `body` (which may `read` and `write`) holding the state's lock. */
  withLock<T>(body: () => Promise<T>, options?: LockOptions): Promise<T>;
  /** Releases connections, if any. */
  close?(): Promise<void>;
}

/** This host's alert state file (single-host use; see {@link AlertStateStore}). */
export class AlertStore implements AlertStateStore {
  readonly file: string;
  private readonly lockFile: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'alerting.json');
    this.lockFile = join(dir, 'alerting.lock');
  }

  async read(): Promise<AlertingState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw new Error(`cannot read alert state ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed = JSON.parse(text) as Partial<AlertingState>;
      return { ...emptyState(), ...parsed, version: 1 };
    } catch (err) {
      // Refuse to overwrite what might be the only record of undelivered pages.
      throw new Error(
        `alert state ${this.file} is not valid JSON: move it aside to start fresh (pending notifications in it ` +
          `would be lost)`,
        { cause: err },
      );
    }
  }

  async write(state: AlertingState): Promise<void> {
    await ensureDirectory(this.dir);
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(state, null, 1)}\n`, { mode: 0o600 });
    await rename(tmp, this.file);
  }

  /**
   * Reads, lets `change` modify, and writes the state, all under the lock: the
   * one way to change it while other runs may be doing the same.
   */
  async update<T>(change: (state: AlertingState) => T | Promise<T>, options: LockOptions = {}): Promise<T> {
    return this.withLock(async () => {
      const state = await this.read();
      const result = await change(state);
      await this.write(state);
      return result;
    }, options);
  }

  /**
   * Runs `body` holding the state lock: see {@link withFileLock} (a file created with
   * O_EXCL naming the owner's host and pid, its mtime refreshed while held; taken
   * over when older than `staleMs`, or when its owner on this host is gone).
   */
  withLock<T>(body: () => Promise<T>, options: LockOptions = {}): Promise<T> {
    return withFileLock(this.lockFile, body, options);
  }
}
