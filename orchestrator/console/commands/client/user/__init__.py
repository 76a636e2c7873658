"""`nua user ...`: the host's users (the `user.*` RPC namespace)."""
