"""`nua-orchestrator db ...` commands."""
