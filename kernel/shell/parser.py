"""The shell's parser: recursive descent over POSIX's shell grammar plus bash's extensions.

It produces the tree in :mod:`kernel.shell.ast`.  Entry points:

* :func:`parse` — a whole source to a :class:`~kernel.shell.ast.Program`;
* :func:`parse_expansion_text` — text expanded like a here-document body
  (prompt strings) to a :class:`~kernel.shell.ast.Word`;
* :class:`Parser` and :meth:`Parser.parse_next` — one complete command at a
  time, the way bash reads a script, so that ``alias`` and ``shopt extglob``
  run by one command apply to the following ones (the ``aliases`` callable is
  consulted at parse time, and :attr:`Parser.extglob` may be changed between
  calls; :attr:`Parser.last_source` is the text each call consumed, for
  ``set -v``; :attr:`Parser.warnings` collects bash's warnings such as a
  here-document ended by end-of-file);
* :class:`IncompleteInput` (a :class:`ShellSyntaxError`) tells an interactive
  shell that more lines would complete the input.

Nesting is limited explicitly (``max_depth``): every compound command,
``$(…)``, ``${…}``, ``"…"`` and ``[[ ( … ) ]]`` level counts, and exceeding it
gives ``maximum nesting depth exceeded`` instead of a RecursionError.  While
a top-level call runs, the interpreter's recursion limit is raised to fit
``max_depth`` and the cyclic garbage collector is paused (the tree is acyclic;
collections while it grows cost most of a big script's parse time), both
restored on return.  A 10 MB script parses in about 25 s of CPU on the
(loaded) development machine, linearly in its size.
"""

from __future__ import annotations

import gc
import sys
from typing import Callable

from kernel.shell import braces
from kernel.shell.ast import (
    AndOr,
    ArithCommand,
    ArithFor,
    Case,
    CaseItem,
    CmdSub,
    Command,
    CommandList,
    CondAnd,
    CondBinary,
    CondCommand,
    CondExpr,
    CondNot,
    CondOr,
    CondUnary,
    CondWord,
    Coproc,
    For,
    FunctionDef,
    Group,
    HereDoc,
    If,
    Lit,
    Pipeline,
    Program,
    Redir,
    Select,
    SimpleCommand,
    Subshell,
    While,
    Word,
    WordPart,
)
from kernel.shell.lexer import IncompleteInput, Lexer, ShellSyntaxError, Token, apply_tilde, static_text

__all__ = [
    "parse", "parse_expansion_text", "Parser", "ShellSyntaxError", "IncompleteInput", "RESERVED_WORDS",
    "DEFAULT_MAX_DEPTH",
]

DEFAULT_MAX_DEPTH = 1000

RESERVED_WORDS = frozenset({
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for",
    "{", "}", "!", "in", "select", "function", "time", "[[", "]]", "coproc",
})
_REDIR_OPS = frozenset({"<", ">", ">>", "<>", ">|", "<&", ">&", "&>", "&>>", "<<", "<<-", "<<<"})
#: Builtins whose assignment-like arguments bash lexes as assignments.
_DECL_BUILTINS = frozenset({"declare", "typeset", "local", "export", "readonly"})
_COND_UNARY = frozenset("-" + c for c in "abcdefghknoprstuvwxzGLNORS")
_COND_BINARY = frozenset({"==", "=", "!=", "=~", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef"})
_LIST_END_OPS = frozenset({")", ";;", ";&", ";;&"})
#: Operators after which a bare ``time`` / ``!`` is an (empty) pipeline; bash
#: accepts ``! ;`` and ``time`` at the end of a line but not ``! &`` or ``time |``.
_PIPELINE_END_OPS = frozenset({";"})
_COMPOUND_STARTS = frozenset({"{", "if", "while", "until", "for", "case", "select", "[[", "(("})
_MAX_ALIAS_EXPANSIONS = 10_000


class _State:
    """What a parser shares with the parsers it starts for ``$(…)`` and backquotes."""

    __slots__ = ("depth", "max_depth")

    def __init__(self, max_depth: int) -> None:
        self.depth = 0
        self.max_depth = max_depth


def parse_expansion_text(text: str, *, line: int = 1, col: int = 1, max_depth: int = DEFAULT_MAX_DEPTH) -> Word:
    """Parse ``text`` the way an unquoted here-document body is parsed:
    ``$x``, ``${…}``, ``$(…)``, ``$((…))`` and backquotes are expansions, a
    backslash quotes only ``$ ` \\`` and newline, everything else is literal.
    For prompt strings (PS1…PS4, ``${x@P}``) after their backslash escapes are
    decoded.  Syntax errors inside are kept in :class:`CmdSub` parts, as in
    here-documents, so this never raises for a bad ``$(…)``."""
    p = Parser("", max_depth=max_depth)
    return p._heredoc_word(text, line, col, p.lexer, 0)


def parse(source: str, *, posix: bool = False, aliases: Callable[[str], str | None] | None = None,
          max_depth: int = DEFAULT_MAX_DEPTH, extglob: bool = False, interactive: bool = False) -> Program:
    """Parse a whole script.  Raises :class:`ShellSyntaxError` (or
    :class:`IncompleteInput` when the input ends inside a construct)."""
    return Parser(source, posix=posix, aliases=aliases, max_depth=max_depth, extglob=extglob,
                  interactive=interactive).parse_program()


class Parser:
    """A parser over one source text.

    ``aliases(name)`` returns an alias's value or None; it is called when a
    command word is read, so aliases defined while running earlier commands
    apply (use :meth:`parse_next`).  ``interactive``: a here-document that
    reaches the end of the input is :class:`IncompleteInput` (in a script bash
    only warns; the warning is appended to :attr:`warnings`).
    """

    def __init__(self, source: str, *, posix: bool = False, aliases: Callable[[str], str | None] | None = None,
                 max_depth: int = DEFAULT_MAX_DEPTH, extglob: bool = False, interactive: bool = False,
                 line: int = 1, col: int = 1) -> None:
        self.posix = posix
        self.aliases = aliases
        self.extglob = extglob
        self.interactive = interactive
        self.warnings: list[str] = []
        self._state = _State(max_depth)
        self.lexer = Lexer(source, self, line, col)
        self._buf: list[Token] = []
        self._closer: str | None = None  # ")" when parsing the inside of $( … ) / <( … )
        self._alias_next = False
        self._alias_count = 0
        self._last_end = 0  # end offset of the last token taken
        self._span_start = 0

    # -- public entry points ---------------------------------------------------

    def parse_program(self) -> Program:
        """Parse everything that is left."""
        items: list[tuple] = []
        line, col = self.lexer.where(self.lexer.pos)
        with _Deep(self):
            while True:
                cl = self.parse_next()
                if cl is None:
                    break
                items.extend(cl.items)
        return Program(CommandList(items, line=line, col=col), line=line, col=col)

    def parse_next(self) -> CommandList | None:
        """Parse the next complete command (everything up to an unescaped
        newline outside any construct, with its here-documents), or return
        None at the end of the input.  Nothing after that newline is read.
        :attr:`last_source` is then the text it consumed."""
        self.lexer.extglob = self.extglob
        self._span_start = self.lexer.pos if not self._buf else self._buf[0].start
        with _Deep(self):
            while True:
                tok = self._peek_cmd()
                if tok.kind == "NEWLINE":
                    self._take()
                    continue
                if tok.kind == "EOF":
                    return None
                break
            line, col = tok.line, tok.col
            items: list[tuple] = []
            while True:
                start = self._peek_cmd().start
                ao = self._and_or()
                tok = self._peek()
                if tok.kind == "OP" and tok.text in (";", "&"):
                    self._take()
                    if tok.text == "&":
                        ao.text = self._job_text(start, tok.start)
                    items.append((ao, tok.text == "&"))
                    nxt = self._peek_cmd()
                    if nxt.kind in ("NEWLINE", "EOF"):
                        if nxt.kind == "NEWLINE":
                            self._take()
                        break
                    continue
                items.append((ao, False))
                if tok.kind == "NEWLINE":
                    self._take()
                    break
                if tok.kind == "EOF":
                    break
                raise self._unexpected(tok)
            return CommandList(items, line=line, col=col)

    @property
    def last_source(self) -> str:
        """The source text the last :meth:`parse_next` consumed: the command,
        its here-document bodies and the newline (what ``set -v`` echoes)."""
        return self.lexer.src[self._span_start:self.lexer.pos]

    # -- nesting (also called by the lexer) --------------------------------------

    def _enter(self, lexer: Lexer, pos: int) -> None:
        st = self._state
        st.depth += 1
        if st.depth > st.max_depth:
            st.depth -= 1
            raise lexer.error("maximum nesting depth exceeded", pos)

    def _leave(self) -> None:
        self._state.depth -= 1

    def _child(self, lexer: Lexer | None, closer: str | None) -> "Parser":
        child = Parser.__new__(Parser)
        child.posix = self.posix
        child.aliases = self.aliases
        child.extglob = self.extglob
        child.interactive = self.interactive
        child.warnings = self.warnings
        child._state = self._state
        child.lexer = lexer  # type: ignore[assignment]
        child._buf = []
        child._closer = closer
        child._alias_next = False
        child._alias_count = 0
        child._last_end = 0
        return child

    def _nested(self, lexer: Lexer, start: int) -> CommandList:
        """The inside of ``$(`` / ``<(`` / ``>(`` on ``lexer`` (positioned after
        the opening parenthesis), up to and including the matching ``)``."""
        self._enter(lexer, start)
        try:
            child = self._child(lexer, ")")
            child.extglob = lexer.extglob
            line, col = lexer.where(lexer.pos)
            try:
                body = child._list(set(), {")"}, allow_empty=True)
                tok = child._peek()
            except IncompleteInput as e:
                if e.message == "syntax error: unexpected end of file":
                    raise lexer.eof_error(")") from None
                raise
            if tok.kind == "EOF":
                raise lexer.eof_error(")")
            if not (tok.kind == "OP" and tok.text == ")"):
                raise child._unexpected(tok)
            child._buf.clear()
            body.line, body.col = line, col
            return body
        finally:
            self._leave()

    def _job_text(self, start: int, end: int) -> str:
        """The source of a background list (``sleep 5 | cat``) for ``jobs``; offsets of
        alias text or a re-lexed token may not map onto the source: then nothing."""
        src = self.lexer.src
        if not 0 <= start <= end <= len(src):
            return ""
        text = src[start:end].strip()
        # bash prints the list from its syntax tree: single spaces between words; quoted
        # text keeps its own spacing, so only unquoted source is normalised here
        return text if any(q in text for q in "'\"\\$`") else " ".join(text.split())

    def _sub_source(self, text: str, line: int, col: int, outer: Lexer, start: int) -> CommandList:
        """Parse ``text`` (a backquote body) as a whole script."""
        self._enter(outer, start)
        try:
            child = self._child(None, None)
            child.lexer = Lexer(text, child, line, col)
            try:
                return child.parse_program().body
            except IncompleteInput as e:
                raise ShellSyntaxError(e.message, e.line, e.col, e.token, e.source_line) from None
        finally:
            self._leave()

    def _heredoc_word(self, body: str, line: int, col: int, outer: Lexer, start: int) -> Word:
        """Parse an unquoted here-document body into a word."""
        self._enter(outer, start)
        try:
            child = self._child(None, None)
            child.lexer = Lexer(body, child, line, col)
            child.lexer.defer_errors = True
            try:
                parts = child.lexer.read_heredoc_parts()
            except ShellSyntaxError as e:
                if e.message == "maximum nesting depth exceeded":
                    raise
                # bash expands (and so parses) the body only when the command
                # runs: the error is reported then, like a bad $(…)
                err = CmdSub(CommandList([], line=e.line, col=e.col), False, e.message, line=e.line, col=e.col)
                parts = [err]
            return Word(parts, line=line, col=col)
        finally:
            self._leave()

    # -- tokens -----------------------------------------------------------------

    def _peek(self, k: int = 0, **ctx: bool) -> Token:
        buf = self._buf
        if buf and not k:
            return buf[0]
        while len(buf) <= k:
            buf.append(self.lexer.next_token(**ctx))
        return buf[k]

    def _take(self) -> Token:
        tok = self._buf.pop(0)
        self._last_end = tok.end
        return tok

    def _peek_cmd(self, assign_ok: bool = True, arith_ok: bool = True) -> Token:
        """The token at command position, with aliases expanded."""
        while True:
            tok = self._buf[0] if self._buf else self._peek(0, assign_ok=assign_ok, arith_ok=arith_ok)
            if self.aliases is None or not self._try_alias(tok):
                return tok

    def _try_alias(self, tok: Token) -> bool:
        """Expand ``tok`` if it is an alias; True if the token buffer changed."""
        if self.aliases is None or not tok.plain or tok.assign is not None:
            return False
        if self.posix and tok.text in RESERVED_WORDS:
            return False
        name = tok.text
        if name in tok.alias_blocked:
            return False
        value = self.aliases(name)
        if value is None:
            return False
        self._alias_count += 1
        if self._alias_count > _MAX_ALIAS_EXPANSIONS:
            raise ShellSyntaxError("alias expansion too deep", tok.line, tok.col, name)
        blocked = tok.alias_blocked | {name}
        sub = self._child(None, None)
        lexer = Lexer(value, sub, tok.line, tok.col)
        sub.lexer = lexer
        new: list[Token] = []
        first = True
        while True:
            t = lexer.next_token(assign_ok=True, arith_ok=first)
            if t.kind == "EOF":
                break
            first = False
            t.alias_blocked = blocked
            t.line, t.col = tok.line, tok.col
            t.start, t.end = tok.start, tok.end
            new.append(t)
        if value[-1:] in (" ", "\t"):
            if new:
                new[-1].alias_space = True
            else:
                self._alias_next = True
        self._buf[0:1] = new
        return True

    def _skip_newlines(self, arith_ok: bool = True) -> None:
        while self._peek_cmd(arith_ok=arith_ok).kind == "NEWLINE":
            self._take()

    def _unexpected(self, tok: Token) -> ShellSyntaxError:
        if tok.kind == "EOF":
            if self._closer:
                return self.lexer.eof_error(self._closer)
            return self.lexer.error("syntax error: unexpected end of file", tok.start, None, True)
        text = tok.describe()
        err = self.lexer.error(f"syntax error near unexpected token `{text}'", tok.start, text)
        err.line, err.col = tok.line, tok.col
        return err

    @staticmethod
    def _is_word(tok: Token, word: str) -> bool:
        return tok.kind == "WORD" and tok.text == word and tok.plain

    def _expect_word(self, word: str) -> Token:
        tok = self._peek_cmd()
        if not self._is_word(tok, word):
            raise self._unexpected(tok)
        return self._take()

    def _expect_op(self, op: str, newline_ok: bool = True) -> Token:
        """Take operator ``op``.  At the end of the input bash has seen a
        newline first: where no newline may stand (``newline_ok`` False) the
        error is about that newline, not an incomplete input."""
        tok = self._peek()
        if not (tok.kind == "OP" and tok.text == op):
            if tok.kind == "EOF" and not newline_ok:
                tok = Token("NEWLINE", "\n", tok.start, tok.end, tok.line, tok.col)
            raise self._unexpected(tok)
        return self._take()

    # -- lists ------------------------------------------------------------------

    def _list(self, end_words: set[str] | frozenset[str], end_ops: set[str] | frozenset[str],
              allow_empty: bool = False) -> CommandList:
        """A compound list: and-or lists separated by ``;``, ``&`` or newlines,
        up to (not including) one of ``end_words`` / ``end_ops``."""
        self._skip_newlines()
        tok = self._peek_cmd()
        line, col = tok.line, tok.col
        items: list[tuple] = []
        while True:
            tok = self._peek_cmd()
            if tok.kind == "EOF" or (tok.kind == "OP" and tok.text in end_ops) or (
                    tok.kind == "WORD" and tok.text in end_words and tok.plain):
                break
            start = tok.start
            ao = self._and_or()
            tok = self._peek()
            if tok.kind == "OP" and tok.text in (";", "&"):
                self._take()
                if tok.text == "&":
                    ao.text = self._job_text(start, tok.start)
                items.append((ao, tok.text == "&"))
                self._skip_newlines()
                continue
            if tok.kind == "NEWLINE":
                self._take()
                items.append((ao, False))
                self._skip_newlines()
                continue
            items.append((ao, False))
            break
        if not items and not allow_empty:
            raise self._unexpected(self._peek_cmd())
        return CommandList(items, line=line, col=col)

    def _and_or(self) -> AndOr:
        first = self._pipeline()
        ao = AndOr(first, [], line=first.line, col=first.col)
        while True:
            tok = self._peek()
            if tok.kind == "OP" and tok.text in ("&&", "||"):
                self._take()
                self._skip_newlines()
                ao.rest.append((tok.text, self._pipeline()))
            else:
                return ao

    def _pipeline(self) -> Pipeline:
        tok = self._peek_cmd()
        line, col = tok.line, tok.col
        timed = posix_time = negate = False
        if self._is_word(tok, "time"):
            self._take()
            timed = True
            tok = self._peek_cmd()
            if self._is_word(tok, "-p"):
                self._take()
                posix_time = True
                tok = self._peek_cmd()
            if self._is_word(tok, "--"):
                self._take()
                tok = self._peek_cmd()
        while self._is_word(tok, "!"):
            self._take()
            negate = not negate
            tok = self._peek_cmd()
        if (timed or negate) and (tok.kind in ("NEWLINE", "EOF") or tok.kind == "OP" and tok.text in _PIPELINE_END_OPS):
            return Pipeline([], negate, [], timed, posix_time, line=line, col=col)
        cmds: list[Command] = [self._command()]
        stderr: list[bool] = []
        while True:
            tok = self._peek()
            if tok.kind == "OP" and tok.text in ("|", "|&"):
                self._take()
                self._skip_newlines()
                stderr.append(tok.text == "|&")
                cmds.append(self._command())
            else:
                break
        return Pipeline(cmds, negate, stderr, timed, posix_time, line=line, col=col)

    # -- commands -----------------------------------------------------------------

    def _command(self) -> Command:
        tok = self._peek_cmd()
        if tok.kind == "ARITH":
            self._take()
            assert tok.word is not None
            return self._redirs_after(ArithCommand(tok.word, line=tok.line, col=tok.col, text=tok.text[2:-2]))
        if tok.kind == "OP" and tok.text == "(":
            return self._compound(self._subshell)
        if tok.kind == "WORD" and tok.plain and tok.text in RESERVED_WORDS:
            handlers: dict[str, Callable[[], Command]] = {
                "{": self._group, "if": self._if, "while": self._while, "until": self._while,
                "for": self._for, "select": self._for, "case": self._case, "[[": self._cond,
                "function": self._function, "coproc": self._coproc,
            }
            handler = handlers.get(tok.text)
            if handler is None:
                if tok.text == "time":  # after a pipe: the time utility, as in bash
                    return self._simple()
                raise self._unexpected(tok)
            if handler in (self._function, self._coproc):
                return handler()
            return self._compound(handler)
        if tok.kind == "WORD" and tok.assign is None:
            decl = tok.plain and tok.text in _DECL_BUILTINS
            nxt = self._peek(1, assign_ok=decl)
            if nxt.kind == "OP" and nxt.text == "(":
                return self._funcdef_posix()
        return self._simple()

    def _compound(self, handler: Callable[[], Command]) -> Command:
        tok = self._peek_cmd()
        self._enter(self.lexer, tok.start)
        try:
            node = handler()
        finally:
            self._leave()
        return self._redirs_after(node)

    def _redirs_after(self, node: Command) -> Command:
        redirs: list[Redir] = node.redirs  # type: ignore[union-attr]
        while True:
            tok = self._peek()
            if tok.kind in ("IONUM", "IOVAR") or tok.kind == "OP" and tok.text in _REDIR_OPS:
                redirs.append(self._redir())
            else:
                return node

    def _simple(self) -> SimpleCommand:
        tok = self._peek_cmd()
        cmd = SimpleCommand(line=tok.line, col=tok.col)
        decl = False
        alias_ok = True
        while True:
            if not cmd.words:
                first = not (cmd.assigns or cmd.redirs)
                tok = self._peek_cmd(arith_ok=first) if alias_ok else self._peek(0, assign_ok=True)
            else:
                tok = self._peek(0, assign_ok=decl)
                if self._alias_next and tok.kind == "WORD":
                    self._alias_next = False
                    if self._try_alias(tok):
                        continue
            if tok.kind in ("IONUM", "IOVAR") or tok.kind == "OP" and tok.text in _REDIR_OPS:
                cmd.redirs.append(self._redir())
                continue
            if tok.kind != "WORD":
                break
            self._take()
            if tok.alias_space:
                self._alias_next = True
            if tok.assign is not None and not cmd.words:
                tok.assign.text = tok.text
                cmd.assigns.append(tok.assign)
                continue
            word = self._word(tok)
            cmd.words.append(word)
            if len(cmd.words) == 1 and tok.plain and tok.text in _DECL_BUILTINS:
                decl = True
        if not (cmd.assigns or cmd.words or cmd.redirs):
            raise self._unexpected(tok)
        return cmd

    def _word(self, tok: Token, brace: bool = True) -> Word:
        """The :class:`Word` of a word token, with tilde prefixes and (unless
        ``brace`` is False) brace expressions recognised."""
        parts: list[WordPart] = tok.parts or []
        if tok.assign is not None and tok.assign.array is None or (
                not self.posix and "=" in tok.text and _looks_like_assign(tok.text)):
            parts = _tilde_after_eq(parts)
        else:
            parts = apply_tilde(parts, False)
        if brace and tok.assign is None:
            try:
                parts = braces.parse_braces(parts)
            except braces.BraceError as e:
                raise ShellSyntaxError(str(e), tok.line, tok.col, None, self.lexer.line_text(tok.start)) from None
        return Word(parts, assign=tok.assign, line=tok.line, col=tok.col, text=tok.text)

    def _redir(self) -> Redir:
        tok = self._take()
        fd: int | None = None
        fd_var: str | None = None
        line, col = tok.line, tok.col
        if tok.kind == "IONUM":
            fd = int(tok.text)
            tok = self._take() if self._peek().kind == "OP" else self._peek()
        elif tok.kind == "IOVAR":
            fd_var = tok.text
            tok = self._take() if self._peek().kind == "OP" else self._peek()
        if not (tok.kind == "OP" and tok.text in _REDIR_OPS):
            raise self._unexpected(tok)
        op = tok.text
        target = self._peek()
        if target.kind != "WORD":
            if target.kind == "EOF":
                err = self._unexpected(Token("NEWLINE", "\n", target.start, target.end, target.line, target.col))
                raise err
            raise self._unexpected(target)
        self._take()
        if op in ("<<", "<<-"):
            delim, quoted = static_text(target.text)
            hd = HereDoc("" if quoted else Word([]), quoted, op == "<<-", delim, line=line, col=col)
            redir = Redir(op, Word(target.parts or [], line=target.line, col=target.col, text=target.text),
                          fd, fd_var, hd,
                          line=line, col=col)
            self.lexer.add_heredoc(redir, delim, quoted, op == "<<-")
            return redir
        # bash brace-expands file names (then calls several an ambiguous
        # redirect) but not here-strings
        return Redir(op, self._word(target, brace=op != "<<<"), fd, fd_var, line=line, col=col)

    # -- compound commands --------------------------------------------------------

    def _subshell(self) -> Subshell:
        tok = self._take()
        body = self._list(set(), {")"})
        self._expect_op(")")
        return Subshell(body, line=tok.line, col=tok.col)

    def _group(self) -> Group:
        tok = self._take()
        body = self._list({"}"}, _LIST_END_OPS)
        self._expect_word("}")
        return Group(body, line=tok.line, col=tok.col)

    def _if(self) -> If:
        tok = self._take()
        clauses = []
        cond = self._list({"then"}, _LIST_END_OPS)
        self._expect_word("then")
        body = self._list({"elif", "else", "fi"}, _LIST_END_OPS)
        clauses.append((cond, body))
        else_body = None
        while True:
            t = self._peek_cmd()
            if self._is_word(t, "elif"):
                self._take()
                cond = self._list({"then"}, _LIST_END_OPS)
                self._expect_word("then")
                body = self._list({"elif", "else", "fi"}, _LIST_END_OPS)
                clauses.append((cond, body))
                continue
            if self._is_word(t, "else"):
                self._take()
                else_body = self._list({"fi"}, _LIST_END_OPS)
            self._expect_word("fi")
            return If(clauses, else_body, line=tok.line, col=tok.col)

    def _while(self) -> While:
        tok = self._take()
        cond = self._list({"do"}, _LIST_END_OPS)
        self._expect_word("do")
        body = self._list({"done"}, _LIST_END_OPS)
        self._expect_word("done")
        return While(cond, body, tok.text == "until", line=tok.line, col=tok.col)

    def _do_group(self) -> CommandList:
        """``do list done`` (or bash's ``{ list }``) after for/select."""
        self._skip_newlines(arith_ok=False)
        tok = self._peek_cmd()
        if self._is_word(tok, "{"):
            self._take()
            body = self._list({"}"}, _LIST_END_OPS)
            self._expect_word("}")
            return body
        self._expect_word("do")
        body = self._list({"done"}, _LIST_END_OPS)
        self._expect_word("done")
        return body

    def _for(self) -> Command:
        tok = self._take()
        is_select = tok.text == "select"
        nxt = _eof_as_newline(self._peek(0, arith_for=not is_select))
        if nxt.kind == "ARITHFOR":
            self._take()
            assert nxt.arith is not None
            t = self._peek_cmd()
            if t.kind == "OP" and t.text == ";":
                self._take()
            body = self._do_group()
            init, cond, step = nxt.arith
            return ArithFor(init, cond, step, body, line=tok.line, col=tok.col, text=nxt.text[2:-2])
        if nxt.kind != "WORD":
            raise self._unexpected(nxt)
        self._take()
        words: list[Word] | None = None
        t = self._peek_cmd(arith_ok=False)
        while t.kind == "NEWLINE":
            self._take()
            t = self._peek_cmd(arith_ok=False)
        if self._is_word(t, "in"):
            self._take()
            words = []
            while True:
                t = self._peek()
                if t.kind == "WORD":
                    self._take()
                    words.append(self._word(t))
                    continue
                if t.kind == "OP" and t.text == ";" or t.kind == "NEWLINE":
                    self._take()
                    break
                raise self._unexpected(t)
        elif t.kind == "OP" and t.text == ";":
            self._take()
        body = self._do_group()
        cls = Select if is_select else For
        return cls(nxt.text, words, body, line=tok.line, col=tok.col)

    def _case(self) -> Case:
        tok = self._take()
        wt = self._peek()
        if wt.kind != "WORD":
            raise self._unexpected(_eof_as_newline(wt))
        self._take()
        word = self._word(wt, brace=False)
        self._skip_newlines(arith_ok=False)
        self._expect_word("in")
        items: list[CaseItem] = []
        while True:
            self._skip_newlines()
            t = self._peek()
            if self._is_word(t, "esac"):
                self._take()
                break
            line, col = t.line, t.col
            if t.kind == "OP" and t.text == "(":
                self._take()
                t = self._peek()
            patterns: list[Word] = []
            while True:
                if t.kind != "WORD":
                    raise self._unexpected(t)
                self._take()
                patterns.append(self._word(t, brace=False))
                t = self._peek()
                if t.kind == "OP" and t.text == "|":
                    self._take()
                    t = self._peek()
                    continue
                break
            self._expect_op(")", newline_ok=False)
            body = self._list({"esac"}, _LIST_END_OPS, allow_empty=True)
            t = self._peek_cmd()
            if t.kind == "OP" and t.text in (";;", ";&", ";;&"):
                self._take()
                items.append(CaseItem(patterns, body, t.text, line=line, col=col))
                continue
            if self._is_word(t, "esac"):
                self._take()
                items.append(CaseItem(patterns, body, ";;", line=line, col=col))
                break
            raise self._unexpected(t)
        return Case(word, items, line=tok.line, col=tok.col)

    def _function(self) -> FunctionDef:
        tok = self._take()
        start = tok.start
        name_tok = self._peek()
        if name_tok.kind != "WORD":
            raise self._unexpected(_eof_as_newline(name_tok))
        self._take()
        t = self._peek(0, arith_ok=True)
        if t.kind == "OP" and t.text == "(" and self._peek(1).kind == "OP" and self._peek(1).text == ")":
            # "function f ()"; a "(" not followed by ")" starts a subshell body
            self._take()
            self._take()
        return self._function_body(name_tok.text, tok, start)

    def _funcdef_posix(self) -> FunctionDef:
        name_tok = self._take()
        self._expect_op("(")
        self._expect_op(")", newline_ok=False)
        return self._function_body(name_tok.text, name_tok, name_tok.start)

    def _function_body(self, name: str, tok: Token, start: int) -> FunctionDef:
        self._skip_newlines()
        t = self._peek_cmd()
        if not (t.kind == "ARITH" or t.kind == "OP" and t.text == "(" or
                self._is_word(t, t.text) and t.text in _COMPOUND_STARTS):
            raise self._unexpected(t)
        self._enter(self.lexer, t.start)
        try:
            body = self._command()
        finally:
            self._leave()
        # Redirections after the body were collected into the body by _compound;
        # bash applies them to each call, which is what FunctionDef.redirs means.
        redirs = getattr(body, "redirs", [])
        moved = list(redirs)
        redirs.clear()
        source = self.lexer.src[start:self._last_end] if not tok.alias_blocked else ""
        return FunctionDef(name, body, moved, source, line=tok.line, col=tok.col)

    def _coproc(self) -> Coproc:
        tok = self._take()
        t = self._peek_cmd()
        name = "COPROC"
        if t.kind == "WORD" and t.assign is None and not (t.plain and t.text in RESERVED_WORDS):
            nxt = self._peek(1, arith_ok=True)
            if nxt.kind == "ARITH" or nxt.kind == "OP" and nxt.text == "(" or (
                    nxt.kind == "WORD" and nxt.plain and nxt.text in RESERVED_WORDS and nxt.text != "time"):
                # "coproc NAME <reserved word>": bash wants a compound command
                # there, so "coproc cat }" is an error rather than cat's argument
                self._take()
                name = t.text
        if t.kind == "EOF":
            raise self._unexpected(_eof_as_newline(t))
        body = self._command()
        return Coproc(name, body, line=tok.line, col=tok.col)

    # -- [[ … ]] --------------------------------------------------------------

    def _cond(self) -> CondCommand:
        tok = self._take()
        saved = self.lexer.extglob
        try:
            t = self._cpeek()
            if self._is_word(t, "]]"):
                # bash rejects an empty [[ ]] without a message; say what it is
                raise self.lexer.error("syntax error in conditional expression", t.start, "]]")
            expr = self._cond_or()
            t = self._peek(0, cond=True)
            if not self._is_word(t, "]]"):
                if t.kind == "EOF":
                    raise self.lexer.error("unexpected EOF while looking for `]]'", t.start, None, True)
                raise self._cond_error(t)
            self._take()
        finally:
            self.lexer.extglob = saved
        return CondCommand(expr, line=tok.line, col=tok.col)

    def _cpeek(self) -> Token:
        """Next token inside ``[[ ]]`` where an operand may start (newlines skipped)."""
        while True:
            t = self._peek(0, cond=True)
            if t.kind != "NEWLINE":
                return t
            self._take()

    def _cond_error(self, t: Token) -> ShellSyntaxError:
        if t.kind == "EOF":
            return self._unexpected(t)
        err = self.lexer.error(f"syntax error in conditional expression: unexpected token `{t.describe()}'",
                               t.start, t.describe())
        return err

    def _cond_or(self) -> CondExpr:
        left = self._cond_and()
        while True:
            t = self._peek(0, cond=True)
            if t.kind == "OP" and t.text == "||":
                self._take()
                right = self._cond_and()
                left = CondOr(left, right, line=left.line, col=left.col)
            else:
                return left

    def _cond_and(self) -> CondExpr:
        left = self._cond_not()
        while True:
            t = self._peek(0, cond=True)
            if t.kind == "OP" and t.text == "&&":
                self._take()
                right = self._cond_not()
                left = CondAnd(left, right, line=left.line, col=left.col)
            else:
                return left

    def _cond_not(self) -> CondExpr:
        t = self._cpeek()
        if self._is_word(t, "!"):
            self._take()
            self._enter(self.lexer, t.start)
            try:
                return CondNot(self._cond_not(), line=t.line, col=t.col)
            finally:
                self._leave()
        return self._cond_primary()

    def _cond_primary(self) -> CondExpr:
        t = self._cpeek()
        if t.kind == "OP" and t.text == "(":
            self._take()
            self._enter(self.lexer, t.start)
            try:
                e = self._cond_or()
            finally:
                self._leave()
            c = self._peek(0, cond=True)
            if not (c.kind == "OP" and c.text == ")"):
                name = "EOF" if c.kind == "EOF" else c.describe()
                raise self.lexer.error(f"unexpected token `{name}', expected `)'", c.start, name)
            self._take()
            if isinstance(e, (CondAnd, CondOr, CondNot, CondBinary, CondUnary, CondWord)):
                e.paren = True  # declare -f prints the parentheses as written
            return e
        if t.kind != "WORD" or self._is_word(t, "]]"):
            name = "EOF" if t.kind == "EOF" else t.describe()
            raise self.lexer.error(f"unexpected token `{name}' in conditional command", t.start, name)
        self._take()
        if t.plain and t.text in _COND_UNARY:
            o = self._peek(0, cond=True)
            if o.kind != "WORD" or self._is_word(o, "]]"):
                raise self.lexer.error(f"unexpected argument `{_cond_desc(o)}' to conditional unary operator",
                                       o.start, _cond_desc(o))
            self._take()
            return CondUnary(t.text, self._word(o, brace=False), line=t.line, col=t.col)
        left = self._word(t, brace=False)
        o = self._peek(0, cond=True)
        is_bin = (o.kind == "WORD" and o.plain and o.text in _COND_BINARY) or (
            o.kind == "OP" and o.text in ("<", ">"))
        if not is_bin:
            if o.kind == "WORD" and not self._is_word(o, "]]"):
                raise self.lexer.error("conditional binary operator expected", o.start, o.describe())
            if o.kind in ("NEWLINE", "EOF"):
                raise self.lexer.error("unexpected token `newline', conditional binary operator expected",
                                       o.start, "newline")
            return CondWord(left, line=t.line, col=t.col)
        self._take()
        if o.text == "=~":
            if self._buf:
                self.lexer.pos = self._buf[0].start
                self._buf.clear()
            parts, start, line, col = self.lexer.read_regex_parts()
            if not parts and self.lexer.pos == start:
                nxt = self._peek(0, cond=True)
                raise self.lexer.error(f"unexpected argument `{nxt.describe()}' to conditional binary operator",
                                       nxt.start, nxt.describe())
            right = Word(parts, line=line, col=col, text=self.lexer.src[start:self.lexer.pos])
        else:
            # bash turns extglob on for the pattern right of == = != only
            if self._buf:
                self.lexer.pos = self._buf[0].start
                self._buf.clear()
            self.lexer.extglob = True
            try:
                r = self._peek(0, cond=True)
            finally:
                self.lexer.extglob = self.extglob
            if r.kind != "WORD" or self._is_word(r, "]]"):
                raise self.lexer.error(f"unexpected argument `{_cond_desc(r)}' to conditional binary operator",
                                       r.start, _cond_desc(r))
            self._take()
            right = self._word(r, brace=False)
        return CondBinary(o.text, left, right, line=t.line, col=t.col)


class _Deep:
    """Runs a top-level parse with a recursion limit that fits ``max_depth``
    (each nesting level costs a dozen Python frames) and turns a stray
    RecursionError into the nesting-depth syntax error."""

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.old = 0
        self.gc_was_enabled = False

    def __enter__(self) -> None:
        # The tree is acyclic and allocated in bulk: letting the cyclic
        # collector run while it grows costs three quarters of the parse time
        # of a large script (each full collection walks the whole tree so far).
        self.gc_was_enabled = gc.isenabled()
        gc.disable()
        self.old = sys.getrecursionlimit()
        need = self.parser._state.max_depth * 16 + 2000
        if need > self.old:
            sys.setrecursionlimit(need)

    def __exit__(self, et: type | None, ev: BaseException | None, tb: object) -> None:
        if sys.getrecursionlimit() != self.old:
            sys.setrecursionlimit(self.old)
        if self.gc_was_enabled:
            gc.enable()
        if et is RecursionError:
            lx = self.parser.lexer
            self.parser._state.depth = 0
            raise lx.error("maximum nesting depth exceeded", lx.pos) from None


def _eof_as_newline(tok: Token) -> Token:
    """Where bash would have seen the newline it adds at the end of input."""
    if tok.kind != "EOF":
        return tok
    return Token("NEWLINE", "\n", tok.start, tok.end, tok.line, tok.col)


def _cond_desc(tok: Token) -> str:
    """How bash names a token in ``[[ ]]`` errors (it has seen a newline before the end of input)."""
    return "newline" if tok.kind == "EOF" else tok.describe()


def _is_name(text: str) -> bool:
    return bool(text) and (text[0].isalpha() or text[0] == "_") and all(c.isalnum() or c == "_" for c in text) \
        and text.isascii()


def _tilde_after_eq(parts: list[WordPart]) -> list[WordPart]:
    """Tilde prefixes after the first ``=`` and after ``:`` (``a=~/x:~/y`` as an argument)."""
    if not parts or type(parts[0]) is not Lit or "=" not in parts[0].text:
        return parts
    first = parts[0]
    eq = first.text.index("=") + 1
    head = Lit(first.text[:eq], line=first.line, col=first.col)
    rest: list[WordPart] = parts[1:]
    if eq < len(first.text):
        rest = [Lit(first.text[eq:], line=first.line, col=first.col + eq)] + rest
    return [head] + apply_tilde(rest, True)


def _looks_like_assign(text: str) -> bool:
    eq = text.find("=")
    name = text[:eq]
    if name.endswith("+"):
        name = name[:-1]
    return _is_name(name)
