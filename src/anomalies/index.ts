/** Anomaly detection (issue 15): pure functions; see docs/anomalies.md. */
export * from './compare.js';
export * from './detector.js';
export * from './message.js';
export * from './series.js';
export { hourOfWeek, isoHour } from './time.js';
export * from './types.js';
