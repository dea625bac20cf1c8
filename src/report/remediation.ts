/**
 * Short next steps from the product guide, shown under each alert. A check may
 * set its own `remediation` when it knows more (the schema-cache diagnosis does).
 */
export const REMEDIATION: Record<string, string> = {
  stuck_batches:
    'Check the worker logs for exceptions and database connectivity; restart the workers if needed; fail batches that cannot finish with a rejection reason.',
  error_spike:
    'Query ops.v_error_distribution for the top error codes; check whether a bad file was uploaded; review validation rules or give the source its own threshold (sources.<name>.error_spike_threshold_pct).',
  schema_cache:
    "Sentinel reloads the schema cache with NOTIFY pgrst, 'reload schema'; if that does not help, check the exposed schemas, the PostgREST role's statement_timeout and migrations in progress.",
  dedupe_rate:
    'Check whether a file was uploaded twice or a vendor is resending old data (compare filenames and row counts of the hour); give a source that is always high its own threshold (sources.<name>.dedupe_threshold_pct).',
  processing_time:
    'Look at parse_ms and db_ms in ops.v_batch_performance to see which stage is slow; check the workers for CPU or memory pressure and the database for locks and slow inserts.',
  queue_backlog:
    'Batches are uploaded but no worker picks them up: check that the workers are running, connected and not all busy; scale them out if the queue keeps growing.',
  source_freshness:
    "The source sent nothing for longer than expected: check the vendor's delivery (SFTP, API, schedule) and the upload job; tell the vendor if the feed has stopped.",
  database_unreachable:
    'Sentinel could not reach the monitored database: check that it is up (a failover or pooler restart in progress?), the host, port, password and sslmode of DATABASE_URL, and the network from this host. The checks run again on the next run.',
  database_locked:
    'A session holds a lock that blocks reads of the pipeline tables: look it up (select * from pg_stat_activity where pid = <pid>), let a migration or maintenance finish, or end a stuck session with pg_terminate_backend(<pid>).',
  check_failed:
    'Sentinel could not run this check: verify DATABASE_URL, network access and that `sentinel migrate` was applied.',
};
