export { type RunRecord, recordOf } from './record.js';
export type { RunHistoryStore } from './store.js';
