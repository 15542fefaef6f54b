"""`maestro run` tests: real `maestro run` processes, real script workers, a project's SQLite store."""
