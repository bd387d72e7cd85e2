"""The engine's one long-lived aiosqlite connection: pragmas, migrations, write transactions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiosqlite

from .schema import PRAGMAS, connect_sync, migrate_sync
from .settings import Settings


class Store:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> Store:
        self.settings.ensure()
        # migrations run on a plain connection (one code path for every process)
        await asyncio.to_thread(self._migrate)
        self.db = await aiosqlite.connect(str(self.settings.db_path), timeout=10.0,
                                          isolation_level=None)
        for p in PRAGMAS:
            await self.db.execute(p)
        return self

    def _migrate(self) -> None:
        conn = connect_sync(self.settings.db_path, migrate=False)
        try:
            migrate_sync(conn, self.settings.db_path)
        finally:
            conn.close()

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()
            self.db = None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        assert self.db is not None, "store is closed"
        async with self.db.execute(sql, tuple(params)) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> tuple | None:
        assert self.db is not None, "store is closed"
        async with self.db.execute(sql, tuple(params)) as cur:
            return await cur.fetchone()

    async def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, serialised within this process."""
        assert self.db is not None, "store is closed"
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    async def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" probe."""
        v = await self.scalar("PRAGMA data_version")
        return int(v)
