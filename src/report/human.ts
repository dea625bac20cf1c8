import { readableDetails } from '../notifiers/details.js';
import type { Alert, OverallStatus, RunResult } from '../types.js';
import { MAX_CHARS, oneLine } from '../util/text.js';

const RULE = '='.repeat(80);

const STATUS_ICON: Record<OverallStatus, string> = { healthy: '✅', degraded: '⚠️ ', critical: '🔴' };
const LEVEL_ICON: Record<Alert['level'], string> = { critical: '🔴', warning: '⚠️ ' };

export interface HumanOptions {
  /** ANSI colours (only when writing to a terminal and NO_COLOR is unset). */
  color?: boolean;
  /**
   * Masks secrets in each value before it is escaped and cut, so a secret cut in
   * half is still masked (the whole text is redacted again by the caller).
   */
  redact?: (text: string) => string;
}

/**
 * The guide's banner: status line, environment, timestamp, each alert with its
 * level, message, key details and remediation hint, then the metrics. Status is
 * always spelled out, never shown by colour or icon alone.
 */
export function renderHuman(result: RunResult, options: HumanOptions = {}): string {
  const paint = painter(options.color ?? false);
  const redact = options.redact ?? ((t: string) => t);
  // Every value that can carry data (names, messages, errors) is shown through
  // `show`: escaped and cut, so it stays one bounded piece of its line.
  const show = (value: unknown, max: number = MAX_CHARS.message): string =>
    oneLine(redact(typeof value === 'string' ? value : String(value)), max);
  const lines: string[] = [];
  const statusColor =
    result.overall_status === 'healthy' ? 'green' : result.overall_status === 'degraded' ? 'yellow' : 'red';
  lines.push(RULE);
  lines.push(
    paint(
      statusColor,
      `${STATUS_ICON[result.overall_status]} HEALTH CHECK COMPLETE - Status: ${result.overall_status.toUpperCase()}`,
    ),
  );
  lines.push(`Environment: ${show(result.environment, MAX_CHARS.name)}`);
  lines.push(`Timestamp: ${show(result.timestamp, MAX_CHARS.name)}`);
  lines.push(RULE);
  if (result.alerts.length === 0) {
    lines.push('✅ No alerts - all systems operational');
  } else {
    result.alerts.forEach((alert, i) => {
      if (i > 0) lines.push('');
      const level = alert.level.toUpperCase().padEnd(8);
      const marks = [alert.silenced ? 'SILENCED' : '', alert.acknowledged ? 'ACKNOWLEDGED' : '']
        .filter(Boolean)
        .map((m) => ` (${m})`)
        .join('');
      const colour = alert.silenced ? 'dim' : alert.level === 'critical' ? 'red' : 'yellow';
      lines.push(
        paint(
          colour,
          `${LEVEL_ICON[alert.level]} ${level} [${show(alert.check, MAX_CHARS.name)}] ${show(alert.message)}${marks}`,
        ),
      );
      if (alert.id) lines.push(`     id: ${show(alert.id, MAX_CHARS.name)}`);
      for (const line of renderDetails(alert.details, redact)) lines.push(`     ${line}`);
      if (alert.remediation) lines.push(`     → ${show(alert.remediation)}`);
    });
  }
  const skipped = result.checks.filter((c) => c.outcome === 'skipped');
  if (skipped.length > 0) {
    lines.push('');
    for (const c of skipped)
      lines.push(paint('dim', `Skipped: ${show(c.name, MAX_CHARS.name)} (${show(c.reason ?? 'not configured')})`));
  }
  if (result.alerting_error) {
    lines.push('');
    lines.push(paint('red', `⚠️  Alerting failed, nobody was notified by this run: ${show(result.alerting_error)}`));
  }
  const deliveries = (result.notifications ?? []).filter((n) => n.sent || n.pending || n.failed);
  if (deliveries.length > 0) {
    lines.push('');
    for (const n of deliveries) {
      const problems = n.errors.length ? `: ${show(n.errors[n.errors.length - 1])}` : '';
      lines.push(
        `Notifications ${show(n.notifier, MAX_CHARS.name)} (${show(n.type, MAX_CHARS.name)}): ${n.sent} sent, ` +
          `${n.pending} pending, ${n.failed} failed${problems}`,
      );
    }
  }
  lines.push(RULE);
  // Numbers only; JSON.stringify would leave C1 and bidi characters of a string raw.
  lines.push(
    `Metrics: ${JSON.stringify(result.metrics, null, 2)
      .split('\n')
      .map((l) => show(l))
      .join('\n')}`,
  );
  lines.push(RULE);
  return lines.join('\n');
}

/**
 * Details in the wording notifications use (src/notifiers/details.ts): `label: value`,
 * a list as one item a line. Each value is masked, escaped and cut there.
 */
function renderDetails(details: Record<string, unknown>, redact: (text: string) => string): string[] {
  const out: string[] = [];
  for (const entry of readableDetails(details, { redact })) {
    if (!entry.items) {
      out.push(`${entry.label}: ${entry.text}`);
      continue;
    }
    out.push(`${entry.label}:`);
    for (const item of entry.items) out.push(`  - ${item}`);
    if (entry.more) out.push(`  … and ${entry.more} more`);
  }
  return out;
}

type Colour = 'red' | 'yellow' | 'green' | 'dim';
const CODES: Record<Colour, [number, number]> = { red: [31, 39], yellow: [33, 39], green: [32, 39], dim: [2, 22] };

function painter(enabled: boolean): (colour: Colour, text: string) => string {
  return (colour, text) => (enabled ? `\u001b[${CODES[colour][0]}m${text}\u001b[${CODES[colour][1]}m` : text);
}
