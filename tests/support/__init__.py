"""Test support: the real orchestrator in a short temporary home."""
