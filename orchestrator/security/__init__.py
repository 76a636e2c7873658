"""Secrets: how passwords are hashed and checked."""
