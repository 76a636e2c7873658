"""`nua` commands, one file each."""
