"""Channels: one small interface, many providers (the sandbox is the embedded default)."""
