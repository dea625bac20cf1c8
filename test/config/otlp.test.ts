import { describe, expect, it } from 'vitest';
import { type OtlpFlags, otlpSettings } from '../../src/config/otlp.js';

/** The settings and the problems for flags and an environment (nothing from the process's own). */
function settings(env: NodeJS.ProcessEnv, flags: OtlpFlags = {}) {
  const problems: string[] = [];
  return { settings: otlpSettings(flags, problems, env), problems };
}

describe('OTLP export settings', () => {
  it('are off without an endpoint, whatever else is set', () => {
    expect(settings({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'x' })).toEqual({
      settings: undefined,
      problems: [],
    });
  });

  it('take the specification defaults from a base endpoint, v1/metrics appended to its path', () => {
    const { settings: s, problems } = settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' });
    expect(problems).toEqual([]);
    expect(s).toMatchObject({
      url: 'http://collector:4318/v1/metrics',
      urlSetting: 'OTEL_EXPORTER_OTLP_ENDPOINT',
      protocol: 'http/protobuf',
      headers: {},
      timeoutMs: 10_000,
      intervalMs: 60_000,
      temporality: 'cumulative',
      resource: {},
    });
    // A base with a path keeps it (a gateway that routes by prefix).
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp/' }).settings?.url).toBe(
      'https://gw.example/otlp/v1/metrics',
    );
  });

  it('use a signal-specific endpoint as given, and the flag over both', () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318',
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://specific:9999/custom/path',
    };
    expect(settings(env).settings?.url).toBe('http://specific:9999/custom/path');
    expect(settings(env, { otlpEndpoint: 'http://flag:4318' }).settings).toMatchObject({
      url: 'http://flag:4318/v1/metrics',
      urlSetting: '--otlp-endpoint',
    });
    // A flag that already names the metrics path is not given a second one.
    expect(settings({}, { otlpEndpoint: 'http://flag:4318/v1/metrics' }).settings?.url).toBe(
      'http://flag:4318/v1/metrics',
    );
  });

  it('read headers (the signal-specific one wins per header), percent-decoded, their values secret', () => {
    const { settings: s, problems } = settings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_HEADERS: 'DD-API-KEY=generic-key-123, X-Scope-OrgID = tenant%20one',
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'DD-API-KEY=metrics-key-456',
    });
    expect(problems).toEqual([]);
    expect(s?.headers).toEqual({ 'DD-API-KEY': 'metrics-key-456', 'X-Scope-OrgID': 'tenant one' });
    expect(s?.secrets).toEqual(expect.arrayContaining(['metrics-key-456', 'tenant one']));
  });

  it('take protocol, timeout, interval and temporality from the variables, flags over them', () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '3000',
      OTEL_METRIC_EXPORT_INTERVAL: '15000',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'Delta',
    };
    expect(settings(env).settings).toMatchObject({
      protocol: 'http/json',
      timeoutMs: 3000,
      intervalMs: 15_000,
      temporality: 'delta',
    });
    expect(settings(env, { otlpProtocol: 'http/protobuf', otlpTemporality: 'cumulative' }).settings).toMatchObject({
      protocol: 'http/protobuf',
      temporality: 'cumulative',
    });
    // lowmemory: delta for counters and histograms, which is all Sentinel sends as sums.
    expect(
      settings({ ...env, OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'lowmemory' }).settings?.temporality,
    ).toBe('delta');
  });

  it('read resource attributes, OTEL_SERVICE_NAME over service.name', () => {
    const s = settings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=ignored,team=data%2Cplatform,deployment.environment.name=prod',
      OTEL_SERVICE_NAME: 'sentinel-eu',
    }).settings;
    expect(s?.resource).toEqual({
      'service.name': 'sentinel-eu',
      team: 'data,platform',
      'deployment.environment.name': 'prod',
    });
  });

  it('are off, and say so, when the environment disables the SDK or picks another exporter, unless asked', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    const notices: string[] = [];
    expect(otlpSettings({}, [], { ...base, OTEL_SDK_DISABLED: 'TRUE' }, notices)).toBeUndefined();
    expect(otlpSettings({}, [], { ...base, OTEL_METRICS_EXPORTER: 'console' }, notices)).toBeUndefined();
    expect(notices).toEqual([
      'OTLP export off: OTEL_SDK_DISABLED=true (OTEL_EXPORTER_OTLP_ENDPOINT is set; --otlp-endpoint overrides)',
      'OTLP export off: OTEL_METRICS_EXPORTER=console does not name otlp (OTEL_EXPORTER_OTLP_ENDPOINT is set; ' +
        '--otlp-endpoint overrides)',
    ]);
    expect(settings({ ...base, OTEL_METRICS_EXPORTER: 'prometheus, otlp' }).settings).toBeDefined();
    expect(settings({ OTEL_SDK_DISABLED: 'true' }, { otlpEndpoint: 'http://c:4318' }).settings).toBeDefined();
  });

  it('say what is wrong with each bad value in one line, never a header value', () => {
    const { settings: s, problems } = settings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://c:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer s3cr3t-token,broken-entry-s3cr3t',
      OTEL_EXPORTER_OTLP_TIMEOUT: '10s',
      OTEL_METRIC_EXPORT_INTERVAL: '10',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'sometimes',
      OTEL_RESOURCE_ATTRIBUTES: 'team=%E0%A4%A',
    });
    expect(s).toBeUndefined();
    expect(problems).toEqual([
      'OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL (OTLP/HTTP), got grpc:',
      "OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported; use http/protobuf (the collector's port 4318) or http/json",
      'OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value (comma-separated key=value pairs expected)',
      'OTEL_EXPORTER_OTLP_TIMEOUT: expected whole milliseconds from 1 to 120000, got "10s"',
      'OTEL_METRIC_EXPORT_INTERVAL: expected whole milliseconds from 1000 to 86400000, got "10"',
      'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: expected cumulative, delta or lowmemory, got "sometimes"',
      'OTEL_RESOURCE_ATTRIBUTES: the value of team is not valid percent-encoding',
    ]);
    expect(problems.join('\n')).not.toContain('s3cr3t');
    expect(settings({}, { otlpProtocol: 'http/json' }).problems).toEqual([
      '--otlp-protocol and --otlp-temporality need an endpoint: --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT',
    ]);
    expect(settings({}, { otlpEndpoint: 'not a url' }).problems).toEqual([
      '--otlp-endpoint: not a URL (expected http://host:4318 or https://…)',
    ]);
  });

  it('mask a password in the endpoint', () => {
    const s = settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:pa%24%24word@gw.example' }).settings;
    expect(s?.secrets).toContain('pa$$word');
  });
});
