"""HTTP endpoints: provider callbacks now (receipts, inbound replies); the operator UI later."""
