"""A writer that holds the SQLite store's write lock until told to let go (run by test_sqlite_lock.py).

    python lock_holder.py DB NAME

It opens the store, starts a write transaction that inserts session NAME, prints `holding` and then
waits, inside the transaction, for a line on stdin: `commit` commits it, anything else rolls it back.
"""

from __future__ import annotations

import sys

import anyio
from store_builders import session_record

from maestro_mcp.store import SQLStore, create_store, sessions
from maestro_mcp.store.steps import Step


async def main(db: str, name: str) -> None:
    store = create_store(db)
    assert isinstance(store, SQLStore)
    await store.open()

    def hold() -> Step[None]:
        yield from sessions.create(session_record(name))
        print("holding", flush=True)
        # Runs on the store's write thread, inside the transaction: the lock stays held meanwhile.
        if sys.stdin.readline().strip() != "commit":
            raise RuntimeError("told to roll back")

    try:
        await store.executor.write(hold)
        print("committed", flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
