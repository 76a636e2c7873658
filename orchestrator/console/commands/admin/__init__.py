"""`nua-orchestrator` commands, one file each."""
