"""Latency tuning of the daemon's request path: fast CPU wake-ups, polling the FUSE device between
requests, and keeping big buffers in glibc's heap.  Each is optional and measured in scripts/."""
