"""The SQLite backend: executor.py (transactions on a connection thread, the bounded write lock in
thread.py), dialect.py (how SQLite spells the shared statements), transport.py (wake-ups by Unix sockets)."""
