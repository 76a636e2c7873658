"""`nua settings ...`: the host's settings (the `settings.*` RPC namespace)."""
