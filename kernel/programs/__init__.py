"""Userspace programs of the sandbox kernel (grep, sed, awk, expr, ...) and what they share."""
