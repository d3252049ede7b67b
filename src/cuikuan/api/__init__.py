"""The HTTP API and the provider callbacks, served by `cuikuan serve` (FastAPI on uvicorn)."""
