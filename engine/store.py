"""The engine's one long-lived database connection, owned by one thread, so the event loop never
waits on SQLite: ``await store.run(fn, *args)`` runs a data-layer function ``fn(conn, *args)``
there. The async API and the sync workers thus share every statement (engine/data); calls run
one at a time, in order, and a write transaction is one call (``write_tx``: BEGIN IMMEDIATE).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .data.rows import PAGE_SIZE, Page
from .schema import connect_sync, data_version, set_busy_timeout
from .settings import Settings

T = TypeVar("T")


class Store:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def open(self) -> Store:
        self.settings.ensure()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labdeck-store")
        try:
            # pragmas and pending migrations (refusing a schema newer than this code)
            self._conn = await self._on_thread(connect_sync, self.settings.db_path)
        except BaseException:
            self._thread.shutdown(wait=False)
            self._thread = None
            raise
        return self

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._on_thread(conn.close)
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(conn, *args, **kwargs)`` on the engine's connection, in its thread."""
        if self._conn is None:
            raise RuntimeError("store is closed")
        return await self._on_thread(functools.partial(fn, self._conn, *args, **kwargs))

    async def pages(self, fn: Callable[..., Page[T]], *args: Any, offset: int = 0,
                    limit: int | None = None, page_size: int = PAGE_SIZE) -> AsyncIterator[T]:
        """The items of a list read a page at a time by ``fn(conn, *args, after, size,
        offset)`` (engine/data's ``*_page`` functions, keyset: ``after`` is the page before's
        ``next``): ``offset`` skipped, at most ``limit`` (None: all), ``page_size`` a page.
        (Reading the next page ahead, while the caller handles this one, gained nothing:
        both sides are Python holding the GIL.)"""
        after = None
        while limit is None or limit > 0:
            size = page_size if limit is None else min(page_size, limit)
            page = await self.run(fn, *args, after, size, offset)
            for item in page.items:
                yield item
            if page.next is None:
                return
            after, offset = page.next, 0
            if limit is not None:
                limit -= len(page.items)

    async def run_apart(self, fn: Callable[..., T], *args: Any,
                        busy_timeout_ms: int | None = None) -> T:
        """``fn(conn, *args)`` on a connection of its own, in a thread of its own: for work
        that must not hold up the engine's connection (a long read), or that may wait on
        another process's write lock for ``busy_timeout_ms`` only."""
        def go() -> T:
            conn = connect_sync(self.settings.db_path, migrate=False)
            try:
                if busy_timeout_ms is not None:
                    set_busy_timeout(conn, busy_timeout_ms)
                return fn(conn, *args)
            finally:
                conn.close()

        return await asyncio.to_thread(go)

    async def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" probe."""
        return await self.run(data_version)
