"""The shell: a bash-grade interpreter running inside the userspace kernel.

The package holds ``lexer`` (characters to tokens), ``parser`` (tokens to the
syntax tree in ``ast``), ``braces`` (brace expansion), ``expand`` (word
expansion), ``interp`` (the interpreter), ``jobs`` (job control) and
``builtins``, plus ``arith`` and ``pattern``.  Nothing is imported here so
that importing one part does not drag in the others.
"""
