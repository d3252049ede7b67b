"""SMPP 3.4: our own asyncio transceiver (pdu, coding, receipts, session) and the channel."""
