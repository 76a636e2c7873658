"""Apps: their nua-config.toml, their packed folders, and how the orchestrator runs them."""
