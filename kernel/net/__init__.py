"""The socket table: sockets as kernel files, one provider per address family, and the policy.

``table`` holds every socket of the kernel; a provider per family (``unix``, ``inet``) gives
the semantics of its socket types; ``policy`` decides what may leave the kernel (nothing, by
default).  The syscalls that use them live in ``kernel.syscalls``.
"""
