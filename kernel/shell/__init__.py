"""The shell: a bash-grade interpreter running inside the userspace kernel."""
