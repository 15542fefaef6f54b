"""Launching agents: definitions -> a pure plan -> one spawner that starts and watches processes."""
