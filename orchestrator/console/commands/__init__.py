"""Command implementations for the two CLIs."""
