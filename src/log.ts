import { Redactor } from './util/redact.js';
import { MAX_CHARS, oneLine } from './util/text.js';

/** `off` logs nothing: `--format nagios`, whose one stdout line already says everything (Icinga shows stderr too). */
export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'off';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warning: 30, error: 40, off: 50 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  redactor?: Redactor;
  /** Where lines go; stderr by default so stdout stays pure report. */
  write?: (line: string) => void;
  now?: () => Date;
  name?: string;
}

/**
 * Log lines in the guide's shape:
 * `2025-01-04 10:15:30 | INFO     | sentinel | Running stuck_batches check...`
 * Times are UTC. Every message is redacted, then escaped and cut (src/util/text.ts):
 * messages carry data (source names, driver and provider errors), and a line on a
 * terminal or in a log file must be one line with no escape sequences in it.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const redactor = options.redactor ?? new Redactor();
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  const name = options.name ?? 'sentinel';
  const emit = (level: LogLevel, label: string, message: string): void => {
    if (ORDER[level] < min) return;
    const ts = now().toISOString().slice(0, 19).replace('T', ' ');
    // Redacted before it is cut, so a secret cut in half is still masked.
    write(
      `${ts} | ${label.padEnd(8)} | ${oneLine(name, MAX_CHARS.name)} | ` +
        `${oneLine(redactor.redact(message), MAX_CHARS.log)}`,
    );
  };
  return {
    debug: (m) => emit('debug', 'DEBUG', m),
    info: (m) => emit('info', 'INFO', m),
    warn: (m) => emit('warning', 'WARNING', m),
    error: (m) => emit('error', 'ERROR', m),
  };
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
