import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { HrTime } from '@opentelemetry/api';
import type {
  CollectionResult,
  DataPoint,
  Histogram,
  MetricData,
  MetricProducer,
  PushMetricExporter,
  ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { Registry } from 'prom-client';
import { DEFAULT_SERVICE_NAME, type OtlpSettings, type OtlpTemporality } from '../config/otlp.js';
import type { Logger } from '../log.js';
import type { RunResult } from '../types.js';
import { oneLine } from '../util/text.js';
import { sentinelVersion } from '../util/version.js';
import { createMetrics, observeResult, observeSafely } from './registry.js';

/**
 * The OpenTelemetry metrics export: what `/metrics` serves (the same registry, names and bounded
 * labels) pushed over OTLP/HTTP by the official OpenTelemetry JS SDK (a MeterProvider, a reader
 * and the `http/protobuf` or `http/json` exporter). The registry is read through a
 * {@link MetricProducer}, the SDK's hook for metrics kept by another library: Sentinel's figures
 * are set per run and its counters already count, so the SDK only carries them.
 *
 * Temporality: cumulative by default; delta (Datadog's preference) sends each counter's and the
 * histogram's increase since the last export that the receiver accepted. A failed export moves
 * nothing on, so the next one carries the increase of both: nothing is lost to an outage.
 * Gauges are gauges either way.
 *
 * The SDK is loaded only when an endpoint is set; `--version` and runs without it never load it.
 */

/** How much longer than the SDK's timeout an export may take in all (its retries' last answer). */
const DEADLINE_GRACE_MS = 1000;

/** The instrumentation scope the metrics are reported under. */
export const OTLP_SCOPE = '@dragonfly-sre/sentinel';

/** What a prom-client registry's `getMetricsAsJSON()` gives for one metric. */
export interface PromMetricJson {
  name: string;
  help: string;
  type: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

/** A counter's or the histogram's figures at the last export a receiver accepted. */
interface Sent {
  at: HrTime;
  value?: number;
  histogram?: { cumulative: number[]; sum: number; count: number };
}

/** The OTel unit of a Prometheus base-unit suffix (UCUM, as the OTLP → Prometheus translation reads it back). */
export function unitOf(name: string): string {
  const base = name.replace(/_total$/, '');
  if (base.endsWith('_seconds')) return 's';
  if (base.endsWith('_bytes')) return 'By';
  if (base.endsWith('_ratio')) return '1';
  return '';
}

const seriesKey = (name: string, labels: Record<string, string>): string =>
  `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;

const stringLabels = (labels: Record<string, string | number>, without?: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (k !== without) out[k] = String(v);
  return out;
};

/**
 * Converts a registry's metrics into OTel metric data, pure: `sent` holds what the receiver last
 * accepted (delta temporality subtracts it); the returned `next` is what to keep once this export
 * is accepted. A counter that went down (a new registry) starts again from its current value.
 */
export function toMetricData(
  metrics: readonly PromMetricJson[],
  options: { temporality: OtlpTemporality; start: HrTime; now: HrTime; sent: ReadonlyMap<string, Sent> },
): { data: MetricData[]; next: Map<string, Sent> } {
  // The enums' values (sdk-metrics: AggregationTemporality DELTA 0 / CUMULATIVE 1; DataPointType
  // HISTOGRAM 0 / EXPONENTIAL_HISTOGRAM 1 / GAUGE 2 / SUM 3; api: ValueType DOUBLE 1): this module
  // is loaded without the SDK, which {@link startOtlpExport} imports only when asked.
  const temporality = options.temporality === 'delta' ? 0 : 1;
  const delta = options.temporality === 'delta';
  const { start, now, sent } = options;
  const next = new Map<string, Sent>();
  const data: MetricData[] = [];
  for (const m of metrics) {
    const descriptor = { name: m.name, description: m.help, unit: unitOf(m.name), valueType: 1 };
    if (m.type === 'gauge') {
      const dataPoints = m.values
        .filter((v) => Number.isFinite(v.value))
        .map((v) => ({ startTime: start, endTime: now, attributes: stringLabels(v.labels), value: v.value }));
      if (dataPoints.length > 0)
        data.push({ descriptor, aggregationTemporality: 1, dataPointType: 2, dataPoints } as MetricData);
    } else if (m.type === 'counter') {
      const dataPoints: DataPoint<number>[] = [];
      for (const v of m.values) {
        if (!Number.isFinite(v.value)) continue;
        const attributes = stringLabels(v.labels);
        const key = seriesKey(m.name, attributes);
        // Delta from what was accepted, unless the counter went down since (a reset): then all of it.
        const before = sent.get(key);
        const base = delta && before?.value !== undefined && v.value >= before.value ? before : undefined;
        const value = v.value - (base?.value ?? 0);
        dataPoints.push({ startTime: base?.at ?? start, endTime: now, attributes, value });
        next.set(key, { at: now, value: v.value });
      }
      if (dataPoints.length > 0)
        data.push({
          descriptor,
          aggregationTemporality: temporality,
          dataPointType: 3,
          isMonotonic: true,
          dataPoints,
        } as MetricData);
    } else if (m.type === 'histogram') {
      const dataPoints = histogramPoints(m, { delta, start, now, sent, next });
      if (dataPoints.length > 0)
        data.push({ descriptor, aggregationTemporality: temporality, dataPointType: 0, dataPoints } as MetricData);
    }
    // prom-client summaries have no OTel SDK counterpart; Sentinel's registry holds none.
  }
  return { data, next };
}

function histogramPoints(
  m: PromMetricJson,
  o: { delta: boolean; start: HrTime; now: HrTime; sent: ReadonlyMap<string, Sent>; next: Map<string, Sent> },
): DataPoint<Histogram>[] {
  // prom-client lists each label set's cumulative buckets (le), then its _sum and _count.
  type Series = {
    attributes: Record<string, string>;
    bounds: number[];
    cumulative: number[];
    sum: number;
    count: number;
  };
  const series = new Map<string, Series>();
  for (const v of m.values) {
    const attributes = stringLabels(v.labels, 'le');
    const key = seriesKey(m.name, attributes);
    let s = series.get(key);
    if (!s) {
      s = { attributes, bounds: [], cumulative: [], sum: 0, count: 0 };
      series.set(key, s);
    }
    if (v.metricName === `${m.name}_bucket`) {
      if (v.labels.le !== '+Inf') s.bounds.push(Number(v.labels.le));
      s.cumulative.push(v.value);
    } else if (v.metricName === `${m.name}_sum`) s.sum = v.value;
    else if (v.metricName === `${m.name}_count`) s.count = v.value;
  }
  const points: DataPoint<Histogram>[] = [];
  for (const [key, s] of series) {
    // Delta from what was accepted, unless it went down or changed buckets since (a reset): then all of it.
    const before = o.sent.get(key);
    const h = before?.histogram;
    const base = o.delta && h && s.count >= h.count && h.cumulative.length === s.cumulative.length ? h : undefined;
    const cumulative = s.cumulative.map((c, i) => c - (base?.cumulative[i] ?? 0));
    // OTLP counts per bucket; Prometheus counts up to each bound.
    const counts = cumulative.map((c, i) => c - (i === 0 ? 0 : (cumulative[i - 1] ?? 0)));
    points.push({
      startTime: base ? (before?.at ?? o.start) : o.start,
      endTime: o.now,
      attributes: s.attributes,
      value: {
        buckets: { boundaries: s.bounds, counts },
        sum: s.sum - (base?.sum ?? 0),
        count: s.count - (base?.count ?? 0),
      },
    });
    o.next.set(key, { at: o.now, histogram: { cumulative: s.cumulative, sum: s.sum, count: s.count } });
  }
  return points;
}

/**
 * Sentinel's resource attributes; the user's (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME) win.
 * `service.instance.id` (the Prometheus translation's `instance`): a random UUID per long-running
 * process, so replicas and restarts are told apart; for one-shot runs (`oneShot`) a UUID derived
 * from the host, the environment and the service name, so that cron's runs on one host are one
 * series whose counters start again each run, not a new series every run.
 */
export function resourceAttributes(
  settings: Pick<OtlpSettings, 'resource'>,
  environment: string,
  options: { oneShot?: boolean; host?: string } = {},
): Record<string, string> {
  const host = options.host ?? hostname();
  const service = settings.resource['service.name'] ?? DEFAULT_SERVICE_NAME;
  return {
    'service.name': DEFAULT_SERVICE_NAME,
    'service.version': sentinelVersion(),
    'service.instance.id': options.oneShot ? stableUuid(`${host}\n${environment}\n${service}`) : randomUUID(),
    'host.name': host,
    'deployment.environment.name': environment,
    ...settings.resource,
  };
}

/** A UUID (version 5 layout) from a SHA-1 of `text`: the same text, the same id. */
function stableUuid(text: string): string {
  const h = createHash('sha1').update(`sentinel-instance\n${text}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface OtlpExport {
  /**
   * Exports what the registry holds now. Never rejects: a failure is logged (once while it lasts)
   * and the run goes on. Exports never overlap; a call during one waits for it, then exports.
   */
  exportNow(): Promise<void>;
  /** The loop: also export every `intervalMs`. */
  startPeriodic(): void;
  /**
   * A last export (bounded by the timeout), then shutdown. Resolves `abandoned: true` when a request
   * outlived its deadline (a receiver trickling its answer): its socket may still hold the process.
   */
  close(): Promise<{ abandoned: boolean }>;
}

/** How an export failure reads in one line: the status and the receiver's words, or the network error. */
export function exportFailure(error: unknown): string {
  if (!(error instanceof Error)) return oneLine(String(error), 200);
  const status = (error as { code?: unknown }).code;
  const body = (error as { data?: unknown }).data;
  if (typeof status === 'number') {
    const said = typeof body === 'string' && body.trim() !== '' ? `: ${oneLine(body, 200)}` : '';
    return `HTTP ${status}${error.message ? ` ${oneLine(error.message, 80)}` : ''}${said}`;
  }
  return oneLine(error.message || error.name, 200);
}

/**
 * Starts the export of `registry` to `settings.url`. `redact` masks the headers' values (API keys)
 * and every other secret in what is logged.
 */
export async function startOtlpExport(
  settings: OtlpSettings,
  registry: Registry,
  options: { logger: Logger; redact: (text: string) => string; environment: string; oneShot?: boolean },
): Promise<OtlpExport> {
  const [sdk, resources, core, api] = await Promise.all([
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
    import('@opentelemetry/api'),
  ]);
  // The SDK's warnings (an unreadable certificate file, a partial success) in Sentinel's log, one
  // masked, escaped line each; set before the exporter reads its environment.
  const sdkLine = (message: string, args: unknown[]): string =>
    options.redact(
      oneLine(
        [message, ...args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : safeJson(a)))].join(
          ' ',
        ),
        300,
      ),
    );
  const quiet = (): void => {};
  api.diag.setLogger(
    {
      error: (message, ...args) => options.logger.warn(`OpenTelemetry SDK: ${sdkLine(message, args)}`),
      warn: (message, ...args) => options.logger.warn(`OpenTelemetry SDK: ${sdkLine(message, args)}`),
      info: quiet,
      debug: quiet,
      verbose: quiet,
    },
    { logLevel: api.DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  const exporterOptions = {
    url: settings.url,
    headers: settings.headers,
    timeoutMillis: settings.timeoutMs,
    // One export at a time is all Sentinel sends; the SDK's default queue of 30 is for tracing.
    concurrencyLimit: 2,
  };
  const exporter: PushMetricExporter =
    settings.protocol === 'http/json'
      ? new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter(exporterOptions)
      : new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter(exporterOptions);
  const { logger, redact } = options;
  const start = core.millisToHrTime(Date.now());
  let sent = new Map<string, Sent>();
  let pending: Map<string, Sent> | undefined;
  const producer: MetricProducer = {
    async collect(): Promise<CollectionResult> {
      const { data, next } = toMetricData((await registry.getMetricsAsJSON()) as unknown as PromMetricJson[], {
        temporality: settings.temporality,
        start,
        now: core.millisToHrTime(Date.now()),
        sent,
      });
      pending = next;
      return {
        resourceMetrics: {
          resource: resources.emptyResource(),
          scopeMetrics: [{ scope: { name: OTLP_SCOPE, version: sentinelVersion() }, metrics: data }],
        },
        errors: [],
      };
    },
  };
  class RunReader extends sdk.MetricReader {
    protected async onForceFlush(): Promise<void> {}
    protected async onShutdown(): Promise<void> {}
  }
  const reader = new RunReader({ metricProducers: [producer] });
  const provider = new sdk.MeterProvider({
    // The SDK's telemetry.sdk.* attributes, then Sentinel's, then the user's.
    resource: resources
      .defaultResource()
      .merge(
        resources.resourceFromAttributes(
          resourceAttributes(settings, options.environment, options.oneShot ? { oneShot: true } : {}),
        ),
      ),
    readers: [reader],
  });

  const where = redact(settings.url);
  let failing: string | undefined;
  let failures = 0;
  // The SDK's timeout is the socket's idle time: a receiver that trickles a byte now and then would
  // hold an export (and a one-shot run's exit) for ever. This is the whole export's deadline.
  const deadlineMs = settings.timeoutMs + DEADLINE_GRACE_MS;
  const send = (metrics: ResourceMetrics): Promise<{ ok: boolean; error?: unknown }> =>
    new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve({ ok: false, error: new Error(`no complete answer within ${deadlineMs / 1000}s`) }),
        deadlineMs,
      );
      timer.unref();
      exporter.export(metrics, (result) => {
        clearTimeout(timer);
        resolve(result.code === core.ExportResultCode.SUCCESS ? { ok: true } : { ok: false, error: result.error });
      });
    });
  const once = async (): Promise<void> => {
    try {
      const { resourceMetrics } = await reader.collect({ timeoutMillis: settings.timeoutMs });
      const outcome = await send(resourceMetrics);
      if (outcome.ok) {
        if (pending) sent = pending;
        if (failing !== undefined)
          logger.info(
            `OTLP export to ${where} works again (after ${failures} failed export${failures === 1 ? '' : 's'})`,
          );
        failing = undefined;
        failures = 0;
        return;
      }
      throw outcome.error ?? new Error('export failed');
    } catch (err) {
      const reason = redact(exportFailure(err));
      failures += 1;
      // Said once while it lasts (and again when the reason changes); a loop must not flood its log.
      if (failing !== reason)
        logger.warn(
          `OTLP export to ${where} failed: ${reason}; the checks go on` +
            `${settings.temporality === 'delta' ? ' and the next export carries what this one would have' : ''}`,
        );
      else logger.debug(`OTLP export to ${where} failed again: ${reason}`);
      failing = reason;
    }
  };
  // One export at a time, and at most one waiting: a receiver that hangs for the whole timeout
  // while runs go on every second holds one export, not a queue that grows without end.
  let chain: Promise<void> = Promise.resolve();
  let waiting: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const exportNow = (): Promise<void> => {
    if (waiting) return waiting;
    const next = chain.then(() => {
      waiting = undefined;
      return once();
    });
    waiting = next;
    chain = next;
    return next;
  };
  return {
    exportNow,
    startPeriodic() {
      if (timer || closed) return;
      timer = setInterval(() => void exportNow(), settings.intervalMs);
      timer.unref();
    },
    async close() {
      if (closed) return { abandoned: false };
      closed = true;
      if (timer) clearInterval(timer);
      await exportNow();
      // The SDK's shutdown waits for its requests; one that outlived its deadline is not waited for.
      const shutdown = Promise.allSettled([provider.shutdown(), exporter.shutdown()]).then(() => false);
      const gaveUp = new Promise<boolean>((resolve) => setTimeout(() => resolve(true), DEADLINE_GRACE_MS).unref());
      return { abandoned: await Promise.race([shutdown, gaveUp]) };
    },
  };
}

/**
 * A one-shot run (cron, a plugin runner): its figures in a registry of their own, exported once and
 * flushed before the process exits, within the export's timeout. A failure is logged, never thrown:
 * the exit code says what the run found, not whether a collector listened. `abandoned`: a request
 * outlived its deadline and the caller should exit rather than wait for its socket.
 */
export async function exportRunOnce(
  settings: OtlpSettings,
  result: RunResult,
  options: { logger: Logger; redact: (text: string) => string; environment: string; maxSources: number } & {
    durationMs?: number;
  },
): Promise<{ abandoned: boolean }> {
  const metrics = createMetrics({ maxSources: options.maxSources });
  observeSafely(() => observeResult(metrics, result, options.durationMs), options.logger, options.redact);
  const exporter = await startOtlpExport(settings, metrics.registry, { ...options, oneShot: true });
  return exporter.close();
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
