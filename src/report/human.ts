import type { Alert, OverallStatus, RunResult } from '../types.js';

const RULE = '='.repeat(80);
const MAX_ITEMS = 5;

const STATUS_ICON: Record<OverallStatus, string> = { healthy: '✅', degraded: '⚠️ ', critical: '🔴' };
const LEVEL_ICON: Record<Alert['level'], string> = { critical: '🔴', warning: '⚠️ ' };

export interface HumanOptions {
  /** ANSI colours (only when writing to a terminal and NO_COLOR is unset). */
  color?: boolean;
}

/**
 * The guide's banner: status line, environment, timestamp, each alert with its
 * level, message, key details and remediation hint, then the metrics. Status is
 * always spelled out, never shown by colour or icon alone.
 */
export function renderHuman(result: RunResult, options: HumanOptions = {}): string {
  const paint = painter(options.color ?? false);
  const lines: string[] = [];
  const statusColor = result.overall_status === 'healthy' ? 'green' : result.overall_status === 'degraded' ? 'yellow' : 'red';
  lines.push(RULE);
  lines.push(paint(statusColor, `${STATUS_ICON[result.overall_status]} HEALTH CHECK COMPLETE - Status: ${result.overall_status.toUpperCase()}`));
  lines.push(`Environment: ${result.environment}`);
  lines.push(`Timestamp: ${result.timestamp}`);
  lines.push(RULE);
  if (result.alerts.length === 0) {
    lines.push('✅ No alerts - all systems operational');
  } else {
    result.alerts.forEach((alert, i) => {
      if (i > 0) lines.push('');
      const level = alert.level.toUpperCase().padEnd(8);
      const marks = [alert.silenced ? 'SILENCED' : '', alert.acknowledged ? 'ACKNOWLEDGED' : ''].filter(Boolean).map((m) => ` (${m})`).join('');
      const colour = alert.silenced ? 'dim' : alert.level === 'critical' ? 'red' : 'yellow';
      lines.push(paint(colour, `${LEVEL_ICON[alert.level]} ${level} [${alert.check}] ${alert.message}${marks}`));
      if (alert.id) lines.push(`     id: ${alert.id}`);
      for (const line of renderDetails(alert.details)) lines.push(`     ${line}`);
      if (alert.remediation) lines.push(`     → ${alert.remediation}`);
    });
  }
  const skipped = result.checks.filter((c) => c.outcome === 'skipped');
  if (skipped.length > 0) {
    lines.push('');
    for (const c of skipped) lines.push(paint('dim', `Skipped: ${c.name} (${c.reason ?? 'not configured'})`));
  }
  if (result.alerting_error) {
    lines.push('');
    lines.push(paint('red', `⚠️  Alerting failed, nobody was notified by this run: ${result.alerting_error}`));
  }
  const deliveries = (result.notifications ?? []).filter((n) => n.sent || n.pending || n.failed);
  if (deliveries.length > 0) {
    lines.push('');
    for (const n of deliveries) {
      const problems = n.errors.length ? `: ${n.errors[n.errors.length - 1]}` : '';
      lines.push(`Notifications ${n.notifier} (${n.type}): ${n.sent} sent, ${n.pending} pending, ${n.failed} failed${problems}`);
    }
  }
  lines.push(RULE);
  lines.push(`Metrics: ${JSON.stringify(result.metrics, null, 2)}`);
  lines.push(RULE);
  return lines.join('\n');
}

/** Details as short `key: value` lines; lists are cut at a few items. */
function renderDetails(details: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) {
      if (value.length === 0) continue;
      out.push(`${key}:`);
      for (const item of value.slice(0, MAX_ITEMS)) out.push(`  - ${inline(item)}`);
      if (value.length > MAX_ITEMS) out.push(`  … and ${value.length - MAX_ITEMS} more`);
    } else {
      out.push(`${key}: ${inline(value)}`);
    }
  }
  return out;
}

function inline(value: unknown): string {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value)
      .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
      .join(', ');
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

type Colour = 'red' | 'yellow' | 'green' | 'dim';
const CODES: Record<Colour, [number, number]> = { red: [31, 39], yellow: [33, 39], green: [32, 39], dim: [2, 22] };

function painter(enabled: boolean): (colour: Colour, text: string) => string {
  return (colour, text) => (enabled ? `\u001b[${CODES[colour][0]}m${text}\u001b[${CODES[colour][1]}m` : text);
}
