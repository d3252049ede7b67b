"""Outbox to channel: claim, re-check just before sending, send, record; receipts after."""
