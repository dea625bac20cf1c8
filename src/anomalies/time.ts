import { HOUR_MS, WEEK_MS } from './types.js';

/** 1970-01-05 was a Monday: hour-of-week 0 is Monday 00:00–01:00 UTC. */
const MONDAY_EPOCH = 4 * 24 * HOUR_MS;

/** Hour of the week, 0 = Monday 00:00 UTC … 167 = Sunday 23:00 UTC. */
export function hourOfWeek(hourMs: number): number {
  return Math.floor(((((hourMs - MONDAY_EPOCH) % WEEK_MS) + WEEK_MS) % WEEK_MS) / HOUR_MS);
}

export function floorHour(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

export function floorDay(ms: number): number {
  return Math.floor(ms / (24 * HOUR_MS)) * 24 * HOUR_MS;
}

/** `2026-11-03T13:00:00Z`. */
export function isoHour(hourMs: number): string {
  return new Date(hourMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export const DAY_NAMES = ['Mondays', 'Tuesdays', 'Wednesdays', 'Thursdays', 'Fridays', 'Saturdays', 'Sundays'];
