"""Times read back from the database, as aware UTC datetimes on both backends.

SQLite hands back naive datetimes (what SQLAlchemy stored, always UTC here); PostgreSQL aware ones.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
