"""The command-line interfaces: `nua-orchestrator` (admin) and `nua` (client)."""
