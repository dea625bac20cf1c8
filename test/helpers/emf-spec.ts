/**
 * A validator for CloudWatch Embedded Metric Format documents written from the
 * specification, independent of the code under test:
 *
 * - "Specification: Embedded metric format" (Amazon CloudWatch User Guide,
 *   docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
 *   and its JSON schema: the root is a JSON object with nothing before or after it; `_aws` is an
 *   object with an integer `Timestamp` (ms since the epoch) and a `CloudWatchMetrics` array of
 *   MetricDirectives, each with exactly `Namespace` (string, 1–255), `Dimensions` (an array of at
 *   least one DimensionSet; a DimensionSet an array of 0–30 dimension keys, strings of 1–255)
 *   and `Metrics` (at most 100 MetricDefinitions, each exactly `Name` (string, 1–255), optional
 *   `Unit` from the allowed list and optional `StorageResolution` 1 or 60); every referenced
 *   dimension and metric is a member of the root node, not nested; a dimension target is a string,
 *   a metric target a number or an array of at most 100 numbers; an event is at most 1 MB (the
 *   CloudWatch Logs event limit; older versions of the page said 256 KB and 9 dimensions).
 * - CloudWatch API reference, Dimension: a dimension name and value contain only ASCII characters,
 *   no ASCII control characters, at least one non-whitespace character; a name is 1–255
 *   characters and does not start with `:`, a value 1–1024 characters.
 *
 * Returns the problems found (empty: valid).
 */

/** MetricDatum `Unit` / the EMF schema's MetricUnit pattern. */
export const EMF_UNITS = [
  'Seconds',
  'Microseconds',
  'Milliseconds',
  'Bytes',
  'Kilobytes',
  'Megabytes',
  'Gigabytes',
  'Terabytes',
  'Bits',
  'Kilobits',
  'Megabits',
  'Gigabits',
  'Terabits',
  'Percent',
  'Count',
  'Bytes/Second',
  'Kilobytes/Second',
  'Megabytes/Second',
  'Gigabytes/Second',
  'Terabytes/Second',
  'Bits/Second',
  'Kilobits/Second',
  'Megabits/Second',
  'Gigabits/Second',
  'Terabits/Second',
  'Count/Second',
  'None',
] as const;

export const EMF_LIMITS = {
  eventBytes: 1024 * 1024,
  dimensionsPerSet: 30,
  metricsPerDirective: 100,
  valuesPerMetric: 100,
  nameChars: 255,
  dimensionValueChars: 1024,
} as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const hasOnly = (o: Record<string, unknown>, allowed: string[]): string[] =>
  Object.keys(o).filter((k) => !allowed.includes(k));
const ASCII_PRINTABLE = /^[\x20-\x7e]*$/;

function nameProblems(what: string, name: unknown): string[] {
  if (typeof name !== 'string') return [`${what}: not a string`];
  if (name.length < 1 || name.length > EMF_LIMITS.nameChars) return [`${what} "${name}": length ${name.length}`];
  return [];
}

function dimensionNameProblems(name: string): string[] {
  const out: string[] = [];
  if (!ASCII_PRINTABLE.test(name)) out.push(`dimension name "${name}": not printable ASCII`);
  if (name.trim() === '') out.push(`dimension name "${name}": blank`);
  if (name.startsWith(':')) out.push(`dimension name "${name}": starts with a colon`);
  return out;
}

function dimensionValueProblems(name: string, value: unknown): string[] {
  if (typeof value !== 'string') return [`dimension ${name}: target is not a string`];
  const out: string[] = [];
  if (value.length < 1 || value.length > EMF_LIMITS.dimensionValueChars)
    out.push(`dimension ${name}: value length ${value.length}`);
  if (!ASCII_PRINTABLE.test(value)) out.push(`dimension ${name}: value ${JSON.stringify(value)} not printable ASCII`);
  if (value.trim() === '') out.push(`dimension ${name}: value blank`);
  return out;
}

function metricValueProblems(name: string, value: unknown): string[] {
  const number = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
  if (number(value)) return [];
  if (Array.isArray(value)) {
    if (value.length > EMF_LIMITS.valuesPerMetric) return [`metric ${name}: ${value.length} values`];
    return value.every(number) ? [] : [`metric ${name}: an array value is not a number`];
  }
  return [`metric ${name}: target is not a number (${JSON.stringify(value)})`];
}

/** The problems of one log event's message (one line of output); empty when it is a valid EMF document. */
export function emfProblems(line: string): string[] {
  const problems: string[] = [];
  const bytes = Buffer.byteLength(line, 'utf8');
  if (bytes > EMF_LIMITS.eventBytes) problems.push(`event is ${bytes} bytes`);
  if (line.includes('\n')) problems.push('event contains a newline');
  if (line !== line.trim()) problems.push('data before or after the JSON object');
  let root: unknown;
  try {
    root = JSON.parse(line);
  } catch (err) {
    return [...problems, `not JSON: ${(err as Error).message}`];
  }
  if (!isObject(root)) return [...problems, 'root is not an object'];
  const aws = root._aws;
  if (!isObject(aws)) return [...problems, '_aws is not an object'];
  const extra = hasOnly(aws, ['Timestamp', 'CloudWatchMetrics']);
  if (extra.length > 0) problems.push(`_aws has other members: ${extra.join(', ')}`);
  if (typeof aws.Timestamp !== 'number' || !Number.isInteger(aws.Timestamp) || aws.Timestamp < 0)
    problems.push(`_aws.Timestamp is not epoch milliseconds: ${JSON.stringify(aws.Timestamp)}`);
  const directives = aws.CloudWatchMetrics;
  if (!Array.isArray(directives)) return [...problems, '_aws.CloudWatchMetrics is not an array'];
  directives.forEach((d, i) => {
    const at = `CloudWatchMetrics[${i}]`;
    if (!isObject(d)) {
      problems.push(`${at}: not an object`);
      return;
    }
    const other = hasOnly(d, ['Namespace', 'Dimensions', 'Metrics']);
    if (other.length > 0) problems.push(`${at}: other members ${other.join(', ')}`);
    problems.push(...nameProblems(`${at}.Namespace`, d.Namespace));
    if (!Array.isArray(d.Dimensions) || d.Dimensions.length < 1)
      problems.push(`${at}.Dimensions: not a non-empty array`);
    else
      for (const set of d.Dimensions) {
        if (!Array.isArray(set)) {
          problems.push(`${at}: a DimensionSet is not an array`);
          continue;
        }
        if (set.length > EMF_LIMITS.dimensionsPerSet) problems.push(`${at}: a DimensionSet has ${set.length} keys`);
        for (const key of set) {
          problems.push(...nameProblems(`${at} dimension key`, key));
          if (typeof key !== 'string') continue;
          problems.push(...dimensionNameProblems(key));
          if (!(key in root)) problems.push(`dimension ${key}: not a root member`);
          else problems.push(...dimensionValueProblems(key, root[key]));
        }
      }
    if (!Array.isArray(d.Metrics)) {
      problems.push(`${at}.Metrics: not an array`);
      return;
    }
    if (d.Metrics.length > EMF_LIMITS.metricsPerDirective)
      problems.push(`${at}.Metrics: ${d.Metrics.length} definitions`);
    for (const m of d.Metrics) {
      if (!isObject(m)) {
        problems.push(`${at}: a MetricDefinition is not an object`);
        continue;
      }
      const more = hasOnly(m, ['Name', 'Unit', 'StorageResolution']);
      if (more.length > 0) problems.push(`${at}: MetricDefinition has other members ${more.join(', ')}`);
      problems.push(...nameProblems(`${at} metric name`, m.Name));
      if (m.Unit !== undefined && !(EMF_UNITS as readonly unknown[]).includes(m.Unit))
        problems.push(`metric ${String(m.Name)}: unit ${JSON.stringify(m.Unit)} not allowed`);
      if (m.StorageResolution !== undefined && m.StorageResolution !== 1 && m.StorageResolution !== 60)
        problems.push(`metric ${String(m.Name)}: StorageResolution ${JSON.stringify(m.StorageResolution)}`);
      if (typeof m.Name !== 'string') continue;
      if (!(m.Name in root)) problems.push(`metric ${m.Name}: not a root member`);
      else problems.push(...metricValueProblems(m.Name, root[m.Name]));
    }
  });
  return problems;
}

/** A valid document's figures: its namespace, dimension values and metrics with their units. */
export interface EmfDocument {
  timestamp: number;
  namespace: string;
  dimensions: Record<string, string>;
  metrics: Record<string, { value: number | number[]; unit?: string }>;
  root: Record<string, unknown>;
}

/** Parses a line already checked with {@link emfProblems} (first directive's namespace and dimension set). */
export function parseEmf(line: string): EmfDocument {
  const root = JSON.parse(line) as Record<string, unknown> & {
    _aws: {
      Timestamp: number;
      CloudWatchMetrics: Array<{
        Namespace: string;
        Dimensions: string[][];
        Metrics: Array<{ Name: string; Unit?: string }>;
      }>;
    };
  };
  const dimensions: Record<string, string> = {};
  const metrics: EmfDocument['metrics'] = {};
  for (const d of root._aws.CloudWatchMetrics) {
    for (const key of d.Dimensions.flat()) dimensions[key] = root[key] as string;
    for (const m of d.Metrics) metrics[m.Name] = { value: root[m.Name] as number, ...(m.Unit ? { unit: m.Unit } : {}) };
  }
  return {
    timestamp: root._aws.Timestamp,
    namespace: root._aws.CloudWatchMetrics[0]?.Namespace ?? '',
    dimensions,
    metrics,
    root,
  };
}
