import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Small persistent key-value state for one host (for example when the schema cache
 * was last reloaded), so that cron runs, which start fresh every time, honour the
 * same cooldowns as a loop. Writes are atomic (temp file + rename): a crash or two
 * overlapping runs leave either the old or the new file, never half of one.
 */
export interface StateStore {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
}

export class FileStateStore implements StateStore {
  private readonly file: string;

  constructor(private readonly dir: string) {
    this.file = join(dir, 'state.json');
  }

  async get<T>(key: string): Promise<T | undefined> {
    const all = await this.readAll();
    return all[key] as T | undefined;
  }

  async set(key: string, value: unknown): Promise<void> {
    const all = await this.readAll();
    all[key] = value;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.file);
  }

  private async readAll(): Promise<Record<string, unknown>> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.file, 'utf8'));
      return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
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
