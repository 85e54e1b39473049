"""Rate-limit counters every worker shares (``assistant.frontdesk.RateLimiter`` with
``storage="database"``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from assistant.errors import StoreError
from assistant.store.models import RateHitRow

if TYPE_CHECKING:
    from assistant.store.engine import Store


class RateHitRepository:
    """The ``rate_hits`` table: requests per client and fixed window."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def hit(self, key: str, window: int, amount: int = 1) -> int:
        """Count ``amount`` requests of ``key`` in the window starting at ``window`` (epoch
        seconds) and return the window's total so far; older windows of the key go."""
        dialect = self.store.engine.dialect.name
        inserts: dict[str, Callable[[type[RateHitRow]], postgresql.Insert | sqlite.Insert]] = {
            "postgresql": postgresql.insert, "sqlite": sqlite.insert}
        insert = inserts.get(dialect)
        if insert is None:
            raise StoreError(f"Shared rate limits need SQLite or PostgreSQL, not {dialect}")
        values = insert(RateHitRow).values(key=key, window=window, hits=amount)
        statement = values.on_conflict_do_update(
            index_elements=["key", "window"], set_={"hits": RateHitRow.hits + amount}
        ).returning(RateHitRow.hits)
        with self.store.transaction() as db:
            total = db.execute(statement).scalar_one()
            db.execute(delete(RateHitRow).where(RateHitRow.key == key,
                                                RateHitRow.window < window))
        return total
