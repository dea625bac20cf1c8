import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import {
  type Answer,
  type RecordedHttpRequest,
  type Responder,
  startHttpServer,
  type TestHttpServer,
} from './http-server.js';

/**
 * A loopback OTLP/HTTP metrics receiver standing in for an OpenTelemetry Collector.
 * It decodes what arrives with the specification's own schema (the vendored
 * opentelemetry-proto files, loaded at run time by protobufjs), in both encodings
 * (`application/x-protobuf` and OTLP/JSON), gzip or not, and keeps every export
 * flattened to data points. It is stricter than the specification on one point:
 * OTLP/JSON receivers must ignore unknown field names, this one rejects them (400,
 * a line in `invalid`), so a sender with a misspelt or snake_case field is caught.
 *
 * Faults go through `server`: answers queued there (or a fallback set there) are
 * used instead of the receiver's own success answer. The request is still decoded
 * and checked; it counts as an export only if the client was answered a 2xx.
 */

export type AttrValue = string | number | boolean | AttrValue[] | { [k: string]: AttrValue } | null;

export interface OtlpDataPoint {
  /** Metric name. */
  metric: string;
  description: string;
  unit: string;
  type: 'gauge' | 'sum' | 'histogram' | 'exponentialHistogram' | 'summary';
  /** Sums and histograms (aggregationTemporality 1 → delta, 2 → cumulative); undefined for gauges and summaries. */
  temporality?: 'delta' | 'cumulative';
  /** Sums. */
  monotonic?: boolean;
  attributes: Record<string, AttrValue>;
  /** Gauges and sums: asDouble, or asInt (int64 → number). */
  value?: number;
  /** Histograms, exponential histograms and summaries. */
  count?: number;
  sum?: number;
  /** Explicit-bucket histograms. */
  bucketCounts?: number[];
  explicitBounds?: number[];
  /** Histograms and exponential histograms, when the sender set them. */
  min?: number;
  max?: number;
  startTimeUnixNano?: bigint;
  timeUnixNano: bigint;
}

export interface OtlpExport {
  protocol: 'protobuf' | 'json';
  headers: IncomingHttpHeaders;
  path: string;
  /** Resource attributes (of the first resourceMetrics; the SDK sends one). */
  resource: Record<string, AttrValue>;
  scopes: Array<{ name: string; version?: string }>;
  points: OtlpDataPoint[];
}

export interface OtlpReceiver {
  /** Base URL, e.g. http://127.0.0.1:PORT; the exporter posts to `${url}/v1/metrics`. */
  url: string;
  /** Every successfully decoded export answered with a 2xx, in arrival order. */
  exports: OtlpExport[];
  /** One line per request that violated the specification (path, method, content type, body). */
  invalid: string[];
  /**
   * The underlying scripted server, for faults: `queue()` and `fallback()` answers replace the
   * receiver's own answer (a non-2xx, a hang or a reset is then not counted as an export; a
   * fallback Responder that returns undefined leaves the receiver's answer); `readLater()`,
   * `requests` (with `raw` bodies), `accepted` and `received()` (requests, not exports) are the server's own.
   */
  server: TestHttpServer;
  /** Resolves once `count` exports in all were decoded. */
  received(count: number): Promise<void>;
  /** The newest value of each data point, by `pointKey` (attributes sorted), across all exports. */
  latest(): Map<string, OtlpDataPoint>;
  close(): Promise<void>;
}

export interface OtlpReceiverOptions {
  /** Answer every successful export with this partial success instead of an empty response. */
  partialSuccess?: { rejectedDataPoints: number; errorMessage: string };
}

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/opentelemetry-proto');
const PKG = 'opentelemetry.proto.collector.metrics.v1';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
root.loadSync('opentelemetry/proto/collector/metrics/v1/metrics_service.proto').resolveAll();
const RequestType = root.lookupType(`${PKG}.ExportMetricsServiceRequest`);
const ResponseType = root.lookupType(`${PKG}.ExportMetricsServiceResponse`);
// google.rpc.Status, the body of OTLP/HTTP failures (its `details`, field 3, is left out).
const StatusType = new protobuf.Type('Status')
  .add(new protobuf.Field('code', 1, 'int32'))
  .add(new protobuf.Field('message', 2, 'string'));
new protobuf.Root().define('google.rpc').add(StatusType);

const INVALID_ARGUMENT = 3;
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
// OTLP/JSON writes these ids as hex, not base64 (they occur in exemplars).
const HEX_BYTES = new Set(['traceId', 'spanId']);

/** `name{k="v",n=2}`: attributes sorted by key, values as JSON; the bare name without attributes. */
export function pointKey(p: Pick<OtlpDataPoint, 'metric' | 'attributes'>): string {
  const attrs = Object.keys(p.attributes)
    .sort()
    .map((k) => `${k}=${JSON.stringify(p.attributes[k])}`);
  return attrs.length === 0 ? p.metric : `${p.metric}{${attrs.join(',')}}`;
}

export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const partial = options.partialSuccess;
  if (partial && !(Number.isSafeInteger(partial.rejectedDataPoints) && partial.rejectedDataPoints >= 0)) {
    throw new Error('partialSuccess.rejectedDataPoints must be a non-negative integer');
  }
  success('protobuf', partial); // throws now, not in the middle of a request, if it cannot be sent
  const inner = await startHttpServer();
  const exports: OtlpExport[] = [];
  const invalid: string[] = [];
  const events = new EventEmitter();
  const scripted: Answer[] = [];
  let scriptedFallback: Answer | Responder | undefined;

  const respond: Responder = (req) => {
    const script =
      scripted.shift() ?? (typeof scriptedFallback === 'function' ? scriptedFallback(req) : scriptedFallback);
    const outcome = decode(req);
    if ('problem' in outcome) invalid.push(`${req.method} ${req.url}: ${outcome.problem}`);
    const answer = script ?? ('problem' in outcome ? failure(outcome) : success(outcome.protocol, partial));
    const answered2xx = answer.status >= 200 && answer.status < 300 && !answer.hang && !answer.reset;
    if ('export' in outcome && answered2xx) {
      exports.push(outcome.export);
      events.emit('export');
    }
    return answer;
  };
  inner.fallback(respond);

  const server: TestHttpServer = {
    url: inner.url,
    requests: inner.requests,
    get accepted() {
      return inner.accepted;
    },
    queue: (...answers) => scripted.push(...answers),
    fallback: (answer) => {
      scriptedFallback = answer;
    },
    readLater: (ms) => inner.readLater(ms),
    received: (count) => inner.received(count),
    close: () => inner.close(),
  };

  return {
    url: inner.url,
    exports,
    invalid,
    server,
    received: (count) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (exports.length < count) return;
          events.off('export', check);
          resolve();
        };
        events.on('export', check);
        check();
      }),
    latest: () => {
      const newest = new Map<string, OtlpDataPoint>();
      for (const e of exports) for (const p of e.points) newest.set(pointKey(p), p);
      return newest;
    },
    close: () => inner.close(),
  };
}

type Protocol = OtlpExport['protocol'];
type Outcome = { protocol: Protocol; export: OtlpExport } | { protocol: Protocol; problem: string };

function decode(req: RecordedHttpRequest): Outcome {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const protocol: Protocol = contentType === 'application/x-protobuf' ? 'protobuf' : 'json';
  const fail = (problem: string): Outcome => ({ protocol, problem });
  const reqPath = req.url.split('?')[0]!;
  if (req.method !== 'POST') return fail(`method ${req.method}, not POST`);
  if (reqPath !== '/v1/metrics') return fail(`path ${reqPath}, not /v1/metrics`);
  if (contentType !== 'application/x-protobuf' && contentType !== 'application/json') {
    return fail(`content-type ${JSON.stringify(req.headers['content-type'] ?? '')} is neither protobuf nor JSON`);
  }
  let bytes = req.raw ?? Buffer.from(req.body, 'utf8');
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'gzip') {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      return fail(`content-encoding gzip, but the body does not gunzip: ${(err as Error).message}`);
    }
  } else if (encoding !== 'identity') return fail(`unsupported content-encoding ${encoding}`);
  let message: protobuf.Message;
  try {
    if (protocol === 'protobuf') message = RequestType.decode(bytes);
    else {
      let json: unknown;
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch (err) {
        return fail(`body is not JSON: ${(err as Error).message}`);
      }
      const problems: string[] = [];
      const object = fromOtlpJson(RequestType, json, 'ExportMetricsServiceRequest', problems);
      if (problems.length > 0) return fail(`OTLP/JSON: ${problems.join('; ')}`);
      message = RequestType.fromObject(object as Record<string, unknown>);
    }
  } catch (err) {
    return fail(`undecodable ${protocol} body: ${(err as Error).message}`);
  }
  const plain = RequestType.toObject(message, { longs: String, enums: Number, bytes: String, arrays: true });
  try {
    return { protocol, export: flatten(plain as Plain, protocol, req, reqPath) };
  } catch (err) {
    return fail((err as Error).message);
  }
}

/**
 * Checks an OTLP/JSON value against the message type (lowerCamelCase names only, enums as
 * integers, 64-bit integers as decimal strings or integral numbers, hex trace and span ids) and
 * returns it in the shape `fromObject` takes; every violation is pushed to `problems`.
 */
function fromOtlpJson(type: protobuf.Type, value: unknown, at: string, problems: string[]): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(`${at}: expected an object (${type.name})`);
    return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = Object.hasOwn(type.fields, key) ? type.fields[key] : undefined;
    if (!field) {
      problems.push(`${at}: unknown field ${JSON.stringify(key)} in ${type.name}`);
      continue;
    }
    if (v === null) continue; // ProtoJSON: null is the field's default
    const where = `${at}.${key}`;
    if (field.repeated) {
      if (!Array.isArray(v)) {
        problems.push(`${where}: expected an array`);
        continue;
      }
      out[key] = v.map((item, i) => fromJsonField(field, item, `${where}[${i}]`, problems));
    } else out[key] = fromJsonField(field, v, where, problems);
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.oneof.filter((name) => out[name] !== undefined);
    if (set.length > 1) problems.push(`${at}: more than one of ${oneof.name} set (${set.join(', ')})`);
  }
  return out;
}

function fromJsonField(field: protobuf.Field, v: unknown, where: string, problems: string[]): unknown {
  field.resolve();
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return fromOtlpJson(resolved, v, where, problems);
  const bad = (expected: string): undefined => {
    problems.push(`${where}: expected ${expected}, got ${JSON.stringify(v)}`);
    return undefined;
  };
  if (resolved instanceof protobuf.Enum) {
    return Number.isInteger(v) ? v : bad('an enum value as an integer');
  }
  const t = field.type;
  if (LONG_TYPES.has(t) || INT_TYPES.has(t)) {
    const unsigned = t.startsWith('u') || t.startsWith('fixed');
    const ok = (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?(0|[1-9]\d*)$/.test(v));
    if (!ok || (unsigned && String(v).startsWith('-'))) return bad(`an integer (${t})`);
    return v;
  }
  if (t === 'double' || t === 'float') {
    if (typeof v === 'number') return v;
    if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
    return bad('a number');
  }
  if (t === 'bool') return typeof v === 'boolean' ? v : bad('a boolean');
  if (t === 'string') return typeof v === 'string' ? v : bad('a string');
  if (t === 'bytes') {
    if (HEX_BYTES.has(field.name)) {
      return typeof v === 'string' && /^([0-9a-fA-F]{2})*$/.test(v) ? Buffer.from(v, 'hex') : bad('a hex string');
    }
    return typeof v === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v) ? Buffer.from(v, 'base64') : bad('base64');
  }
  return bad(`a ${t}`);
}

// biome-ignore lint/suspicious/noExplicitAny: protobufjs' toObject output, walked by field name
type Plain = Record<string, any>;

const TEMPORALITY: Record<number, 'delta' | 'cumulative'> = { 1: 'delta', 2: 'cumulative' };
const DATA_KINDS = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'] as const;

function flatten(request: Plain, protocol: Protocol, req: RecordedHttpRequest, reqPath: string): OtlpExport {
  const result: OtlpExport = { protocol, headers: req.headers, path: reqPath, resource: {}, scopes: [], points: [] };
  (request.resourceMetrics as Plain[]).forEach((rm, i) => {
    if (i === 0) result.resource = attributes(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics as Plain[]) {
      const scope = sm.scope as Plain | undefined;
      result.scopes.push({ name: scope?.name ?? '', ...(scope?.version ? { version: scope.version } : {}) });
      for (const m of sm.metrics as Plain[]) result.points.push(...metricPoints(m));
    }
  });
  return result;
}

function metricPoints(m: Plain): OtlpDataPoint[] {
  const type = DATA_KINDS.find((k) => m[k] !== undefined);
  if (!type) throw new Error(`metric ${m.name}: no data (none of ${DATA_KINDS.join(', ')})`);
  const data = m[type] as Plain;
  let temporality: OtlpDataPoint['temporality'];
  if (type === 'sum' || type === 'histogram' || type === 'exponentialHistogram') {
    temporality = TEMPORALITY[data.aggregationTemporality ?? 0];
    // metrics.proto: AGGREGATION_TEMPORALITY_UNSPECIFIED "MUST NOT be used".
    if (!temporality) throw new Error(`metric ${m.name}: aggregationTemporality unspecified`);
  }
  return (data.dataPoints as Plain[]).map((dp) => {
    const p: OtlpDataPoint = {
      metric: m.name ?? '',
      description: m.description ?? '',
      unit: m.unit ?? '',
      type,
      attributes: attributes(dp.attributes),
      timeUnixNano: BigInt(dp.timeUnixNano ?? 0),
    };
    if (temporality) p.temporality = temporality;
    if (type === 'sum') p.monotonic = data.isMonotonic ?? false;
    if (dp.startTimeUnixNano !== undefined) p.startTimeUnixNano = BigInt(dp.startTimeUnixNano);
    if (type === 'gauge' || type === 'sum') {
      if (dp.asDouble !== undefined) p.value = dp.asDouble;
      else if (dp.asInt !== undefined) p.value = Number(dp.asInt);
    } else {
      p.count = Number(dp.count ?? 0);
      if (dp.sum !== undefined) p.sum = dp.sum;
    }
    if (type === 'histogram') {
      p.bucketCounts = (dp.bucketCounts as string[]).map(Number);
      p.explicitBounds = dp.explicitBounds;
    }
    if (dp.min !== undefined) p.min = dp.min;
    if (dp.max !== undefined) p.max = dp.max;
    return p;
  });
}

function attributes(list: Plain[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list ?? []) out[kv.key ?? ''] = anyValue(kv.value);
  return out;
}

/** An AnyValue: int64 → number, bytes → base64 string, an empty AnyValue → null. */
function anyValue(v: Plain | undefined): AttrValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.bytesValue !== undefined) return v.bytesValue;
  if (v.arrayValue !== undefined) return ((v.arrayValue.values ?? []) as Plain[]).map(anyValue);
  if (v.kvlistValue !== undefined) return attributes(v.kvlistValue.values);
  return null;
}

/**
 * The receiver's own answers end the connection. TestHttpServer.close() cannot end an idle
 * keep-alive connection (its http.Server never listens itself, so closeAllConnections() finds
 * none) and waits seconds for the client to drop it; without keep-alive every export attempt is
 * also one connection, as `server.accepted` counts them.
 */
const CLOSE = { connection: 'close' };

/**
 * The answer's body in the request's encoding. http-server.ts sends a string body as UTF-8, so a
 * protobuf body goes out intact only when its bytes are valid UTF-8 (true of short messages:
 * lengths and varints below 128, ASCII text); anything else is refused here rather than mangled.
 */
function encoded(protocol: Protocol, type: protobuf.Type, object: Record<string, unknown>): Answer {
  if (protocol === 'json') {
    const body = JSON.stringify(type.toObject(type.fromObject(object), { longs: String, enums: Number }));
    return { status: 200, headers: { 'content-type': 'application/json', ...CLOSE }, body };
  }
  const bytes = Buffer.from(type.encode(type.fromObject(object)).finish());
  const body = bytes.toString('utf8');
  if (!Buffer.from(body, 'utf8').equals(bytes)) {
    throw new Error(`the protobuf ${type.name} is not valid UTF-8, which the test server cannot send`);
  }
  return { status: 200, headers: { 'content-type': 'application/x-protobuf', ...CLOSE }, body };
}

function success(protocol: Protocol, partial: OtlpReceiverOptions['partialSuccess']): Answer {
  return encoded(protocol, ResponseType, partial ? { partialSuccess: partial } : {});
}

function failure(outcome: { protocol: Protocol; problem: string }): Answer {
  // ASCII and short, so that the protobuf Status is sendable (see `encoded`); `invalid` has it all.
  const message = outcome.problem.replace(/[^\x20-\x7e]/g, '?').slice(0, 120);
  return { ...encoded(outcome.protocol, StatusType, { code: INVALID_ARGUMENT, message }), status: 400 };
}
