import { randomBytes } from 'node:crypto';
import { appendFile, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FileLockOptions, withFileLock } from '../state/lock.js';
import type { RunRecord } from './record.js';

/**
 * Where every run is recorded, for `sentinel slo` and for later questions. A write
 * that fails must never fail a run: callers log it and go on.
 */
export interface RunHistoryStore {
  /** Records one run and drops records older than the retention. */
  append(record: RunRecord): Promise<void>;
  /** The records of this environment with `from <= timestamp <= to`, oldest first. */
  read(from: Date, to: Date): Promise<RunRecord[]>;
  close?(): Promise<void>;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Held for one append or one rewrite: a short wait, and a lock a minute old is abandoned. */
const LOCK: Required<FileLockOptions> = { waitMs: 5_000, staleMs: 60_000 };

/**
 * One JSON line per run in `<state_dir>/history-<environment>.jsonl`. Appends and
 * the pruning rewrite (temp file + rename) hold `history-<environment>.lock`, so a
 * run appending while another prunes loses no line. Pruning happens when the oldest
 * line is more than an hour past the retention: at most about once an hour, and it
 * needs no state of its own (cron runs start fresh).
 */
export class FileRunHistory implements RunHistoryStore {
  readonly file: string;
  private readonly lockFile: string;

  constructor(
    dir: string,
    private readonly environment: string,
    private readonly retentionDays: number,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.file = join(dir, `history-${environment}.jsonl`);
    this.lockFile = join(dir, `history-${environment}.lock`);
  }

  async append(record: RunRecord): Promise<void> {
    await withFileLock(
      this.lockFile,
      async () => {
        await appendFile(this.file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
        const cutoff = this.now().getTime() - this.retentionDays * DAY_MS;
        const oldest = await this.firstTimestamp();
        if (oldest !== undefined && oldest < cutoff - HOUR_MS) await this.prune(cutoff);
      },
      LOCK,
    );
  }

  async read(from: Date, to: Date): Promise<RunRecord[]> {
    return (await this.lines()).filter((r) => {
      const t = Date.parse(r.timestamp);
      return t >= from.getTime() && t <= to.getTime();
    });
  }

  /** Every readable record; a torn or foreign line (a crash mid-write, an edit) is skipped. */
  private async lines(): Promise<RunRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const records: RunRecord[] = [];
    for (const line of text.split('\n')) {
      const record = parseRecord(line);
      if (record && record.environment === this.environment) records.push(record);
    }
    return records;
  }

  /** The first line's time, read from the file's first few kilobytes only. */
  private async firstTimestamp(): Promise<number | undefined> {
    const handle = await open(this.file, 'r');
    try {
      const buffer = Buffer.alloc(16_384);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      const first = buffer.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '';
      const record = parseRecord(first);
      // An unreadable first line: prune, which drops it.
      return record ? Date.parse(record.timestamp) : 0;
    } finally {
      await handle.close();
    }
  }

  private async prune(cutoff: number): Promise<void> {
    const kept = (await this.lines()).filter((r) => Date.parse(r.timestamp) >= cutoff);
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, kept.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: 0o600 });
    await rename(tmp, this.file);
  }
}

function parseRecord(line: string): RunRecord | undefined {
  if (!line.trim()) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    if (value === null || typeof value !== 'object') return undefined;
    const r = value as Partial<RunRecord>;
    if (typeof r.timestamp !== 'string' || Number.isNaN(Date.parse(r.timestamp)) || typeof r.environment !== 'string')
      return undefined;
    return r as RunRecord;
  } catch {
    return undefined;
  }
}
