"""Looking inside a store: the ``/.vfs`` tree and the inspection commands it shares with the CLI."""
