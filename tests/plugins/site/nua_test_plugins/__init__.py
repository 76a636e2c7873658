"""RPC plugins for the Nua orchestrator's tests."""
