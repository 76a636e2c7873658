"""What the orchestrator needs from its host: locations, the instance lock, processes."""
