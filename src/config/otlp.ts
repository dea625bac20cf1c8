import { secretsOfUrl } from '../util/redact.js';

/**
 * The OpenTelemetry (OTLP/HTTP) metrics export's settings, from `--otlp-*` flags and the standard
 * `OTEL_*` environment variables (opentelemetry.io/docs/specs/otel/protocol/exporter/ and
 * .../configuration/sdk-environment-variables/). Off unless an endpoint is set. Every malformed
 * value is one problem naming its variable (never a header's value: those carry API keys), so a
 * typo in a deployment is exit 3 at start, not metrics silently missing from a backend.
 */

/** `OTEL_EXPORTER_OTLP_PROTOCOL` values Sentinel speaks (gRPC needs a transport it does not ship). */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** Aggregation temporality of counters and the histogram (gauges have none). */
export const OTLP_TEMPORALITIES = ['cumulative', 'delta'] as const;
export type OtlpTemporality = (typeof OTLP_TEMPORALITIES)[number];

/** The specification's defaults: 10 s per export (retries included), an export a minute. */
export const DEFAULT_OTLP_TIMEOUT_MS = 10_000;
export const DEFAULT_OTLP_INTERVAL_MS = 60_000;
/** `service.name` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise. */
export const DEFAULT_SERVICE_NAME = 'sentinel';
const MAX_TIMEOUT_MS = 120_000;
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 86_400_000;

export interface OtlpSettings {
  /** Where metrics are posted: the full `/v1/metrics` URL. */
  url: string;
  /** What set it, for messages (`--otlp-endpoint`, `OTEL_EXPORTER_OTLP_ENDPOINT`, ...). */
  urlSetting: string;
  protocol: OtlpProtocol;
  /** Extra request headers (API keys: every value is a secret). */
  headers: Record<string, string>;
  /** One export's budget, the SDK's retries of 429/502/503/504 included. */
  timeoutMs: number;
  temporality: OtlpTemporality;
  /** `--loop`/`serve`: an export this often besides the one after every run. */
  intervalMs: number;
  /** Resource attributes from OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (they win over Sentinel's own). */
  resource: Record<string, string>;
  /** Header values and URL credentials, for redaction. */
  secrets: string[];
}

/** The flags that set the export; they win over the environment. */
export interface OtlpFlags {
  otlpEndpoint?: string;
  otlpProtocol?: string;
  otlpTemporality?: string;
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value !== undefined && value.trim() !== '' ? value.trim() : undefined;

/** The first of `names` set (non-empty) in `env`, with its name. */
function firstSet(env: NodeJS.ProcessEnv, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = nonEmpty(env[name]);
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

/** RFC 7230 token: what a header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * `key1=value1,key2=value2` (the W3C Baggage format the specification uses for
 * OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES), values percent-decoded. A problem
 * names the variable and the entry's position, never its value.
 */
export function parseKeyValueList(
  text: string,
  variable: string,
  problems: string[],
  validKey: (key: string) => boolean = (key) => key.length > 0,
): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(',').forEach((entry, i) => {
    if (entry.trim() === '') return;
    const at = entry.indexOf('=');
    const key = (at < 0 ? entry : entry.slice(0, at)).trim();
    if (at < 0 || !validKey(key)) {
      problems.push(`${variable}: entry ${i + 1} is not key=value (comma-separated key=value pairs expected)`);
      return;
    }
    try {
      out[key] = decodeURIComponent(entry.slice(at + 1).trim());
    } catch {
      problems.push(`${variable}: the value of ${key} is not valid percent-encoding`);
    }
  });
  return out;
}

/** An integer number of milliseconds within bounds, or a problem naming the variable. */
function milliseconds(
  found: { name: string; value: string } | undefined,
  fallback: number,
  min: number,
  max: number,
  problems: string[],
): number {
  if (!found) return fallback;
  const n = Number(found.value);
  if (!/^\d+$/.test(found.value) || n < min || n > max) {
    problems.push(
      `${found.name}: expected whole milliseconds from ${min} to ${max}, got "${found.value.slice(0, 40)}"`,
    );
    return fallback;
  }
  return n;
}

/**
 * The metrics URL: a signal-specific endpoint (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) is used as
 * given; a base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, and `--otlp-endpoint` unless it already
 * ends in `/v1/metrics`) gets `v1/metrics` appended to its path, as the specification says.
 */
function metricsUrl(found: { name: string; value: string }, problems: string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(found.value);
  } catch {
    problems.push(`${found.name}: not a URL (expected http://host:4318 or https://…)`);
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push(`${found.name}: expected an http:// or https:// URL (OTLP/HTTP), got ${url.protocol}`);
    return undefined;
  }
  if (found.name === 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT' || /\/v1\/metrics\/?$/.test(url.pathname)) return url.href;
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/metrics`;
  return url.href;
}

/**
 * The export's settings, undefined when it is off: no endpoint, `OTEL_SDK_DISABLED=true`, or
 * `OTEL_METRICS_EXPORTER` without `otlp` (each only when no `--otlp-endpoint` asks for it).
 * Problems are appended to `problems` (the caller fails once, with all of them).
 */
export function otlpSettings(
  flags: OtlpFlags,
  problems: string[],
  env: NodeJS.ProcessEnv = process.env,
  notices: string[] = [],
): OtlpSettings | undefined {
  const start = problems.length;
  const flagEndpoint = nonEmpty(flags.otlpEndpoint);
  const endpoint = flagEndpoint
    ? { name: '--otlp-endpoint', value: flagEndpoint }
    : firstSet(env, 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (!endpoint) {
    if (flags.otlpProtocol !== undefined || flags.otlpTemporality !== undefined)
      problems.push(
        '--otlp-protocol and --otlp-temporality need an endpoint: --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT',
      );
    return undefined;
  }
  if (!flagEndpoint) {
    // Off on purpose, but said: an endpoint in the environment that sends nothing is otherwise a puzzle.
    if (nonEmpty(env.OTEL_SDK_DISABLED)?.toLowerCase() === 'true') {
      notices.push(`OTLP export off: OTEL_SDK_DISABLED=true (${endpoint.name} is set; --otlp-endpoint overrides)`);
      return undefined;
    }
    const exporters = nonEmpty(env.OTEL_METRICS_EXPORTER)?.toLowerCase();
    if (exporters !== undefined && !exporters.split(',').some((e) => e.trim() === 'otlp')) {
      notices.push(
        `OTLP export off: OTEL_METRICS_EXPORTER=${exporters.slice(0, 40)} does not name otlp ` +
          `(${endpoint.name} is set; --otlp-endpoint overrides)`,
      );
      return undefined;
    }
  }
  const url = metricsUrl(endpoint, problems);

  const protocolSetting = flags.otlpProtocol
    ? { name: '--otlp-protocol', value: flags.otlpProtocol }
    : firstSet(env, 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL');
  let protocol: OtlpProtocol = 'http/protobuf';
  if (protocolSetting) {
    const value = protocolSetting.value.trim().toLowerCase();
    if ((OTLP_PROTOCOLS as readonly string[]).includes(value)) protocol = value as OtlpProtocol;
    else if (value === 'grpc')
      problems.push(
        `${protocolSetting.name}: grpc is not supported; use http/protobuf (the collector's port 4318) or http/json`,
      );
    else problems.push(`${protocolSetting.name}: expected http/protobuf or http/json, got "${value.slice(0, 40)}"`);
  }

  const headers: Record<string, string> = {};
  const validHeader = (key: string): boolean => HEADER_NAME.test(key);
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_METRICS_HEADERS']) {
    const text = nonEmpty(env[name]);
    // The signal-specific variable wins for a header both set.
    if (text !== undefined) Object.assign(headers, parseKeyValueList(text, name, problems, validHeader));
  }

  const timeoutMs = milliseconds(
    firstSet(env, 'OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'),
    DEFAULT_OTLP_TIMEOUT_MS,
    1,
    MAX_TIMEOUT_MS,
    problems,
  );
  const intervalMs = milliseconds(
    firstSet(env, 'OTEL_METRIC_EXPORT_INTERVAL'),
    DEFAULT_OTLP_INTERVAL_MS,
    MIN_INTERVAL_MS,
    MAX_INTERVAL_MS,
    problems,
  );

  const temporalitySetting = flags.otlpTemporality
    ? { name: '--otlp-temporality', value: flags.otlpTemporality }
    : firstSet(env, 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE');
  let temporality: OtlpTemporality = 'cumulative';
  if (temporalitySetting) {
    const value = temporalitySetting.value.trim().toLowerCase();
    // lowmemory: delta for counters and histograms, which is every sum Sentinel sends.
    if (value === 'delta' || value === 'lowmemory') temporality = 'delta';
    else if (value !== 'cumulative')
      problems.push(`${temporalitySetting.name}: expected cumulative, delta or lowmemory, got "${value.slice(0, 40)}"`);
  }

  const resourceText = nonEmpty(env.OTEL_RESOURCE_ATTRIBUTES);
  const resource = resourceText ? parseKeyValueList(resourceText, 'OTEL_RESOURCE_ATTRIBUTES', problems) : {};
  const serviceName = nonEmpty(env.OTEL_SERVICE_NAME);
  if (serviceName !== undefined) resource['service.name'] = serviceName;

  if (problems.length > start || url === undefined) return undefined;
  // Every header value: they carry API keys (DD-API-KEY, Authorization, api-key).
  const secrets = [...Object.values(headers), ...secretsOfUrl(url)].filter((s) => s !== '');
  return { url, urlSetting: endpoint.name, protocol, headers, timeoutMs, temporality, intervalMs, resource, secrets };
}
