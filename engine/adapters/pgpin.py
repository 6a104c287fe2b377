"""Connections pinned to tasks, for :mod:`engine.adapters.pg`.

A consumer's worker runs one job after another, each in its own transaction; taking a
connection from asyncpg's pool and giving it back costs more than the job's own work on
the client (the give-back even starts a task of its own). Inside ``Database.pinned()``
the calling task keeps one connection of the pool for all its statements and
transactions. One that broke, or was left inside a transaction, is given back to the
pool (which replaces or resets it) at the task's next use, and a fresh one pinned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

Acquire = Callable[[], Awaitable[Any]]
Release = Callable[[Any], Awaitable[None]]


def _usable(conn: Any) -> bool:
    try:
        return not conn.is_closed() and not conn.is_in_transaction()
    except asyncpg.InterfaceError:  # asyncpg took it back when its connection was lost
        return False


class Pins:
    def __init__(self) -> None:
        self._by_task: dict[asyncio.Task[Any], Any] = {}  # the task's connection, or None
        self._in_use: set[int] = set()  # ids of pinned connections lent out right now

    def start(self) -> asyncio.Task[Any]:
        """Pin the calling task (to a connection at its first use)."""
        task = asyncio.current_task()
        assert task is not None, "Database.pinned() runs inside a task"
        self._by_task[task] = None
        return task

    def stop(self, task: asyncio.Task[Any]) -> Any:
        """Unpin ``task``; returns its connection (for the pool), if it had one."""
        conn = self._by_task.pop(task, None)
        if conn is not None:
            self._in_use.discard(id(conn))
        return conn

    async def take(self, acquire: Acquire, release: Release) -> Any:
        """The calling task's connection, or None when it is not pinned (or its connection
        is already lent out: a nested use, which takes one from the pool)."""
        if not self._by_task:
            return None
        task = asyncio.current_task()
        if task not in self._by_task:
            return None
        conn = self._by_task[task]
        if conn is not None and id(conn) in self._in_use:
            return None
        if conn is not None and not _usable(conn):
            self._by_task[task] = None
            await release(conn)
            conn = None
        if conn is None:
            conn = self._by_task[task] = await acquire()
        self._in_use.add(id(conn))
        return conn

    def give_back(self, conn: Any) -> bool:
        """True when ``conn`` is pinned: it stays with its task (not for the pool)."""
        if id(conn) in self._in_use:
            self._in_use.discard(id(conn))
            return True
        return False
