import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FileLockOptions, withFileLock } from './lock.js';

/**
 * Small persistent key-value state for one host (for example when the schema cache
 * was last reloaded), so that cron runs, which start fresh every time, honour the
 * same cooldowns as a loop. Writes are atomic (temp file + rename): a crash leaves
 * either the old or the new file, never half of one. Each `set` reads, changes and
 * writes the file under a lock file (`state.lock`), so two overlapping runs cannot
 * lose each other's keys (a lost reload time means a second NOTIFY).
 */
export interface StateStore {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
}

/** `set` holds the lock for milliseconds: a short wait, and a lock a minute old is abandoned. */
const DEFAULT_LOCK: Required<FileLockOptions> = { waitMs: 5_000, staleMs: 60_000 };

export class FileStateStore implements StateStore {
  private readonly file: string;
  private readonly lockFile: string;
  private readonly lockOptions: Required<FileLockOptions>;

  constructor(
    readonly dir: string,
    options: { lock?: FileLockOptions } = {},
  ) {
    this.file = join(dir, 'state.json');
    this.lockFile = join(dir, 'state.lock');
    this.lockOptions = { ...DEFAULT_LOCK, ...options.lock };
  }

  async get<T>(key: string): Promise<T | undefined> {
    const all = await this.readAll();
    return all[key] as T | undefined;
  }

  /** @throws StateLockTimeout when another process holds the state lock for longer than the lock's `waitMs`. */
  async set(key: string, value: unknown): Promise<void> {
    // withFileLock creates the directory (0700) when it is missing.
    await withFileLock(
      this.lockFile,
      async () => {
        const all = await this.readAll();
        all[key] = value;
        const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
        await writeFile(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
        await rename(tmp, this.file);
      },
      this.lockOptions,
    );
  }

  private async readAll(): Promise<Record<string, unknown>> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.file, 'utf8'));
      return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : {};
    } catch (err) {
      // A missing file is a first run. A corrupt one must not stop monitoring:
      // the worst case is one extra schema reload.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return {};
      throw err;
    }
  }
}

/** In-memory state, for tests and the demo. */
export class MemoryStateStore implements StateStore {
  private readonly data = new Map<string, unknown>();
  async get<T>(key: string): Promise<T | undefined> {
    return this.data.get(key) as T | undefined;
  }
  async set(key: string, value: unknown): Promise<void> {
    this.data.set(key, structuredClone(value));
  }
}
