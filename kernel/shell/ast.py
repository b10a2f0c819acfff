"""The shell's syntax tree: what :mod:`kernel.shell.parser` produces and the interpreter walks.

Design notes (why the tree looks like this):

* Every node carries ``line`` and ``col`` (1-based, of the node's first
  character in the source) so the interpreter can report ``line N:`` as bash
  does and set ``LINENO``.  They are keyword-only and excluded from ``==`` so
  tests (and the interpreter's caches) can compare trees structurally.
* A :class:`Word` keeps its quoting as a list of parts.  Quote removal, field
  splitting (only unquoted expansion results split), globbing (only unquoted
  glob characters in :class:`Lit`) and ``"$@"`` all need to know which part of
  a word was quoted, so nothing is flattened at parse time.
* Command substitutions, process substitutions and here-documents are parsed
  at parse time, as bash does, so syntax errors inside ``$(…)`` surface when
  the script is parsed, not when it runs.
* Arithmetic (``$((…))``, ``((…))``, ``for ((…))``, array subscripts) is kept
  as a :class:`Word`: parameter expansion, command substitution and quote
  removal happen first, and :mod:`kernel.shell.arith` evaluates the resulting
  string.
* Brace expansion is recognised by the parser (:mod:`kernel.shell.braces`)
  and represented by :class:`BraceExp` / :class:`BraceRange` parts; words
  where bash does no brace expansion (assignment values, ``[[ ]]``, case
  patterns, here-documents) never contain them.
* Names are stable: later changes add fields (with defaults) or nodes, they do
  not rename.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

__all__ = [
    "Node",
    # words
    "Word", "WordPart", "Lit", "SQ", "DollarSQ", "DQ", "Escaped", "Param", "CmdSub", "ArithSub",
    "ProcSub", "Tilde", "BraceExp", "BraceRange", "ExtGlob",
    # commands
    "Command", "Assign", "ArrayElem", "Redir", "HereDoc", "SimpleCommand", "Pipeline", "AndOr",
    "CommandList", "Subshell", "Group", "If", "While", "For", "ArithFor", "Case", "CaseItem",
    "Select", "FunctionDef", "ArithCommand", "CondCommand", "CondExpr", "CondBinary", "CondUnary",
    "CondAnd", "CondOr", "CondNot", "CondWord", "Coproc", "Program",
]


@dataclass(slots=True)
class Node:
    """Base of every node: the source position of its first character (1-based)."""

    line: int = field(default=0, kw_only=True, compare=False, repr=False)
    col: int = field(default=0, kw_only=True, compare=False, repr=False)


# ---------------------------------------------------------------------------
# Words


@dataclass(slots=True)
class Word(Node):
    """One shell word as a sequence of parts; adjacent parts are concatenated."""

    parts: list["WordPart"] = field(default_factory=list)
    #: For an argument of a declaration builtin (``declare a=(1 2)``,
    #: ``local x=~/y``): the word parsed as an assignment, as bash does.
    assign: "Assign | None" = field(default=None, repr=False)
    #: The word as written (``declare -f`` prints it; "" where the parser did not keep it).
    text: str = field(default="", compare=False, repr=False)


@dataclass(slots=True)
class Lit(Node):
    """Unquoted literal text.  Glob characters (``* ? [``) are kept as is and are
    the only ones that glob; backslash-escaped characters are :class:`Escaped`."""

    text: str


@dataclass(slots=True)
class SQ(Node):
    """A single-quoted string ``'…'`` (its text, without the quotes)."""

    text: str


@dataclass(slots=True)
class DollarSQ(Node):
    """An ANSI-C quoted string ``$'…'``; ``text`` has its escapes already decoded."""

    text: str


@dataclass(slots=True)
class DQ(Node):
    """A double-quoted string ``"…"``: its parts are :class:`Lit` (literal inside
    the quotes: no globbing, no splitting), :class:`Param`, :class:`CmdSub` and
    :class:`ArithSub`.  Backslash rules are already applied to the ``Lit``s."""

    parts: list["WordPart"] = field(default_factory=list)


@dataclass(slots=True)
class Escaped(Node):
    """A backslash-escaped character outside quotes (``\\*``): literal, never globbed.
    (A backslash-newline continuation leaves no part at all.)"""

    char: str


@dataclass(slots=True)
class Param(Node):
    """A parameter expansion: ``$x``, ``${x}``, ``${x:-w}``, ``${#x}``, ``${a[i]}``…

    ``name`` is the variable name or a special parameter (``? $ ! # @ * - 0``,
    digits, e.g. ``"10"`` for ``${10}``).

    ``subscript`` is the text between ``[`` and ``]`` as a :class:`Word`
    (``@`` and ``*`` appear as ``Word([Lit("@")])``); it is an arithmetic
    expression for indexed arrays and a plain word for associative ones, so
    the interpreter decides how to evaluate it.

    ``op`` is None for a plain expansion, otherwise one of:

    * ``:-  -  :=  =  :?  ?  :+  +`` — ``arg`` is the word (may be empty);
    * ``#  ##  %  %%`` — ``arg`` is the pattern;
    * ``/  //  /#  /%`` — ``arg`` is the pattern, ``arg2`` the replacement
      (None when there was no second ``/``);
    * ``:`` — substring: ``arg`` the offset, ``arg2`` the length or None;
    * ``^  ^^  ,  ,,`` — case modification, ``arg`` the pattern or None;
    * ``@`` — transformation, ``arg`` is ``Word([Lit("Q")])`` etc.;
    * ``prefix*`` / ``prefix@`` — ``${!prefix*}`` / ``${!prefix@}``: names of
      variables starting with ``name``;
    * ``keys`` — ``${!a[@]}`` / ``${!a[*]}``: the keys of array ``name``
      (``subscript`` tells ``@`` from ``*``).

    ``length`` marks ``${#x}``; ``indirect`` marks ``${!x…}`` indirection
    (not set for ``prefix*``/``keys``, which are different operations).
    * ``bad`` — a ``${…}`` bash rejects when it runs (``${x!}``): ``arg`` is
      the text between the braces; expanding it is a "bad substitution".

    ``braced`` tells ``${x}`` from ``$x`` (no semantic difference; kept for
    error messages and printing).
    """

    name: str
    op: str | None = None
    arg: Word | None = None
    arg2: Word | None = None
    subscript: Word | None = None
    length: bool = False
    indirect: bool = False
    braced: bool = False


@dataclass(slots=True)
class CmdSub(Node):
    """A command substitution ``$(…)`` or ```…``` (``backquote``); the body is
    parsed at parse time (backquote bodies after bash's backslash rules)."""


    body: "CommandList"
    backquote: bool = False
    #: Bash parses a backquote body (and a ``$(…)`` inside a here-document)
    #: only when it runs, so a syntax error in it is not a syntax error of the
    #: script: the message is kept here (``body`` is then empty) for the
    #: interpreter to report when the substitution runs.
    error: "str | None" = None


@dataclass(slots=True)
class ArithSub(Node):
    """``$((…))``: ``expr`` expands first (``$x``, ``$(…)``, quote removal); the
    interpreter evaluates the resulting string with :mod:`kernel.shell.arith`."""

    expr: Word


@dataclass(slots=True)
class ProcSub(Node):
    """A process substitution ``<(…)`` (``direction == "<"``) or ``>(…)``."""

    body: "CommandList"
    direction: str


@dataclass(slots=True)
class Tilde(Node):
    """A tilde prefix ``~`` or ``~user`` (also ``~+``, ``~-``, ``~+N``) at the
    start of a word or after ``=``/``:`` in an assignment value; ``user`` is the
    text after ``~`` (empty for a bare ``~``)."""

    user: str


@dataclass(slots=True)
class BraceExp(Node):
    """Brace expansion ``{a,b,c}``: one alternative per comma-separated item
    (each alternative may itself contain brace parts: ``{a,{b,c}}``)."""

    alternatives: list[Word]


@dataclass(slots=True)
class BraceRange(Node):
    """A sequence expression ``{1..10..2}``, ``{a..e}``, ``{01..10}``.

    ``kind`` is ``"int"`` or ``"char"``; ``start``/``end`` are the texts as
    written (zero padding is decided from them, as bash does); ``step`` is the
    increment as written or None (its sign is ignored, as bash does).
    """

    start: str
    end: str
    step: int | None
    kind: str


@dataclass(slots=True)
class ExtGlob(Node):
    """An extended glob group ``?(…) *(…) +(…) @(…) !(…)`` (only with
    ``extglob``, and in ``[[ … == … ]]``).  ``text`` is the whole group as
    written, e.g. ``"@(a|b)"``; it is a pattern, unquoted."""

    text: str


WordPart = Union[Lit, SQ, DollarSQ, DQ, Escaped, Param, CmdSub, ArithSub, ProcSub, Tilde, BraceExp, BraceRange, ExtGlob]


# ---------------------------------------------------------------------------
# Simple commands, redirections, assignments


@dataclass(slots=True)
class ArrayElem(Node):
    """One element of a compound array assignment ``a=(x [k]=v [k]+=v)``:
    ``key`` is None for a positional element."""

    value: Word
    key: Word | None = None
    append: bool = False


@dataclass(slots=True)
class Assign(Node):
    """An assignment word ``name=value``, ``name[i]=value``, ``name+=value``,
    ``name=(…)``.  ``value`` is None only for array assignments (then ``array``
    holds the elements).  Values get no brace expansion and no splitting;
    tilde prefixes after ``=`` and ``:`` are :class:`Tilde` parts."""

    name: str
    value: Word | None = None
    index: Word | None = None
    array: list[ArrayElem] | None = None
    append: bool = False
    text: str = field(default="", compare=False, repr=False)  # as written (set by the parser)


@dataclass(slots=True)
class HereDoc(Node):
    """The body of a ``<<`` / ``<<-`` redirection.

    ``body`` is a :class:`Word` (parsed as bash parses an unquoted here-doc:
    ``$x``, ``$(…)``, ``$((…))``, backslash before ``$ ` \\`` and newline) or
    a plain ``str`` when the delimiter was quoted (``quoted``: no expansion).
    ``strip_tabs`` is ``<<-`` (leading tabs are already stripped from the
    body).  ``delimiter`` is the delimiter after quote removal.
    """

    body: Word | str
    quoted: bool = False
    strip_tabs: bool = False
    delimiter: str = ""
    raw: str = field(default="", compare=False, repr=False)  # the body as written (tabs stripped)


@dataclass(slots=True)
class Redir(Node):
    """A redirection.  ``op`` is one of ``< > >> <> >| <& >& &> &>> << <<- <<<``.

    ``fd`` is the explicit file descriptor number (None: the operator's
    default), ``fd_var`` the variable name of ``{var}>file``.  ``target`` is
    the file word (or the delimiter word for here-docs, or ``-``/a number for
    ``<&``/``>&``); ``heredoc`` holds the body for ``<<``/``<<-``.
    """

    op: str
    target: Word
    fd: int | None = None
    fd_var: str | None = None
    heredoc: HereDoc | None = None


@dataclass(slots=True)
class SimpleCommand(Node):
    """Assignments, words and redirections in source order within each list.
    ``words`` may be empty (``x=1`` or ``>file``)."""

    assigns: list[Assign] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirs: list[Redir] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Lists


@dataclass(slots=True)
class Pipeline(Node):
    """``[time [-p]] [!] cmd | cmd |& cmd``.  ``pipe_stderr[i]`` is True when the
    pipe after ``commands[i]`` is ``|&``.  ``commands`` can be empty only for a
    bare ``time`` or ``!`` (bash accepts both)."""

    commands: list["Command"]
    negate: bool = False
    pipe_stderr: list[bool] = field(default_factory=list)
    time: bool = False
    time_posix: bool = False


@dataclass(slots=True)
class AndOr(Node):
    """``first && p2 || p3``: ``rest`` holds ``("&&" | "||", pipeline)`` pairs."""

    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)
    #: The source text of a list run with ``&`` (what ``jobs`` shows); "" otherwise.
    text: str = field(default="", compare=False, repr=False)


@dataclass(slots=True)
class CommandList(Node):
    """A sequence of and-or lists; each item is ``(and_or, background)`` where
    ``background`` is True when it was terminated by ``&``."""

    items: list[tuple[AndOr, bool]] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Compound commands (each may carry redirections)


@dataclass(slots=True)
class Subshell(Node):
    """``( list )``."""

    body: CommandList
    redirs: list[Redir] = field(default_factory=list)


@dataclass(slots=True)
class Group(Node):
    """``{ list; }``."""

    body: CommandList
    redirs: list[Redir] = field(default_factory=list)


@dataclass(slots=True)
class If(Node):
    """``if c1; then b1; elif c2; then b2; else e; fi``: ``clauses`` is
    ``[(c1, b1), (c2, b2)]``."""

    clauses: list[tuple[CommandList, CommandList]]
    else_body: CommandList | None = None
    redirs: list[Redir] = field(default_factory=list)


@dataclass(slots=True)
class While(Node):
    """``while cond; do body; done`` (``until`` for ``until``)."""

    cond: CommandList
    body: CommandList
    until: bool = False
    redirs: list[Redir] = field(default_factory=list)


@dataclass(slots=True)
class For(Node):
    """``for var [in words]; do body; done``; ``words`` is None without ``in``
    (iterate over ``"$@"``), ``[]`` for ``in`` followed by nothing."""

    var: str
    words: list[Word] | None
    body: CommandList
    redirs: list[Redir] = field(default_factory=list)


@dataclass(slots=True)
class ArithFor(Node):
    """``for ((init; cond; step)); do body; done``; an empty expression is None
    (an empty ``cond`` means true)."""

    init: Word | None
    cond: Word | None
    step: Word | None
    body: CommandList
    redirs: list[Redir] = field(default_factory=list)
    text: str = field(default="", compare=False, repr=False)  # ``init;cond;step`` as written


@dataclass(slots=True)
class CaseItem(Node):
    """``pat1 | pat2) body ;;`` — ``terminator`` is ``;;``, ``;&`` or ``;;&``
    (``;;`` also for a last item without a terminator)."""

    patterns: list[Word]
    body: CommandList
    terminator: str = ";;"


@dataclass(slots=True)
class Case(Node):
    """``case word in items esac``."""

    word: Word
    items: list[CaseItem]
    redirs: list[Redir] = field(default_factory=list)


@dataclass(slots=True)
class Select(Node):
    """``select var [in words]; do body; done`` (``words`` as in :class:`For`)."""

    var: str
    words: list[Word] | None
    body: CommandList
    redirs: list[Redir] = field(default_factory=list)


@dataclass(slots=True)
class FunctionDef(Node):
    """``name() compound``, ``function name compound``, ``function name() compound``.

    ``redirs`` are the redirections written after the body; bash applies them
    at every call.  ``source`` is the definition's source text (for
    ``declare -f`` / ``type``)."""

    name: str
    body: "Command"
    redirs: list[Redir] = field(default_factory=list)
    source: str = ""
    #: Where it was defined (bash's BASH_SOURCE inside it): the sourced file or script, or
    #: "environment" for a ``-c`` string, as bash calls it.  Set when the definition runs.
    file: str = field(default="", compare=False, repr=False)


@dataclass(slots=True)
class ArithCommand(Node):
    """``(( expr ))``; ``expr`` as in :class:`ArithSub`."""

    expr: Word
    redirs: list[Redir] = field(default_factory=list)
    text: str = field(default="", compare=False, repr=False)  # ``expr`` as written


@dataclass(slots=True)
class CondWord(Node):
    """A lone word in ``[[ … ]]`` (true when non-empty)."""

    word: Word
    paren: bool = field(default=False, compare=False, repr=False)  # written in ( )


@dataclass(slots=True)
class CondUnary(Node):
    """``-f file``, ``-n str``, ``-v name``… (``op`` includes the dash)."""

    op: str
    operand: Word
    paren: bool = field(default=False, compare=False, repr=False)  # written in ( )


@dataclass(slots=True)
class CondBinary(Node):
    """``left op right`` with ``op`` one of ``== = != =~ < > -eq -ne -lt -le -gt
    -ge -nt -ot -ef``.  For ``== = !=`` the right side is a pattern (quoted
    parts match literally); for ``=~`` it is a regex word, whose quoted parts
    match literally."""

    op: str
    left: Word
    right: Word
    paren: bool = field(default=False, compare=False, repr=False)  # written in ( )


@dataclass(slots=True)
class CondNot(Node):
    """``! expr``."""

    operand: "CondExpr"
    paren: bool = field(default=False, compare=False, repr=False)  # written in ( )


@dataclass(slots=True)
class CondAnd(Node):
    """``left && right``."""

    left: "CondExpr"
    right: "CondExpr"
    paren: bool = field(default=False, compare=False, repr=False)  # written in ( )


@dataclass(slots=True)
class CondOr(Node):
    """``left || right``."""

    left: "CondExpr"
    right: "CondExpr"
    paren: bool = field(default=False, compare=False, repr=False)  # written in ( )


CondExpr = Union[CondWord, CondUnary, CondBinary, CondNot, CondAnd, CondOr]


@dataclass(slots=True)
class CondCommand(Node):
    """``[[ expr ]]`` (parentheses only group, so they leave no node)."""

    expr: CondExpr
    redirs: list[Redir] = field(default_factory=list)


@dataclass(slots=True)
class Coproc(Node):
    """``coproc [NAME] command``; ``name`` is ``"COPROC"`` when not given (bash
    only takes a name before a compound command).  Redirections belong to
    ``body``."""

    name: str
    body: "Command"


Command = Union[
    SimpleCommand, Subshell, Group, If, While, For, ArithFor, Case, Select, FunctionDef,
    ArithCommand, CondCommand, Coproc,
]


@dataclass(slots=True)
class Program(Node):
    """A whole parsed source."""

    body: CommandList
