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
  check_failed: 'Sentinel could not run this check: verify DATABASE_URL, network access and that `sentinel migrate` was applied.',
};
