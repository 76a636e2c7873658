"""`nua app ...`: one installed app (the `app.*` RPC namespace)."""
