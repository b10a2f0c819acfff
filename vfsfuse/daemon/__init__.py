"""The mount daemon: configuration, the store lock, the FUSE adapter and server, tuning of the
request path, and the sandbox kernel the daemon boots (and, later, the control socket for shells)."""
