/**
 * Kept so that code written against this module keeps compiling: the notification
 * contract (events, notifications, the Notifier interface) lives in
 * notifiers/contract.ts, below alerting/, and the delivery failure reasons with the
 * report's types in types.ts. New code imports those modules directly.
 */
export type { EventKind, Notification, NotificationEvent, Notifier, SendContext } from '../notifiers/contract.js';
export { type DeliveryFailureReason as FailureReason, FAILURE_REASONS } from '../types.js';
