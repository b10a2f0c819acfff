"""awk's parser: tokens to the syntax tree of ``nodes``, by recursive descent.

Precedence, loosest first, as POSIX and gawk have it: assignment, ``?:``, ``||``, ``&&``,
``in``, ``~ !~``, comparison, ``cmd | getline``, concatenation, ``+ -``, ``* / %``, unary
``! - +``, ``^`` (right associative, its exponent may carry a sign), ``++ --``, ``$``,
grouping.  Inside ``print``'s argument list an unparenthesised ``>`` is a redirection.
"""

from __future__ import annotations

from kernel.programs.awk import nodes as n
from kernel.programs.awk.lexer import AwkSyntaxError, Lexer, Token

_ASSIGN_OPS = frozenset({"=", "+=", "-=", "*=", "/=", "%=", "^="})
_REL_OPS = frozenset({"<", "<=", "==", "!=", ">", ">="})
#: Tokens that can begin an operand of a concatenation (``+``/``-`` cannot: ``a -1`` subtracts).
_CONCAT_START = frozenset({"NAME", "NUMBER", "STRING", "ERE", "FUNC_NAME", "BUILTIN", "$", "!", "(",
                           "++", "--", "-", "+"}) - {"-", "+", "!"}
_SIMPLE_END = frozenset({";", "NEWLINE", "}", "EOF"})


def _describe(tok: Token) -> str:
    if tok.kind in ("NEWLINE", "EOF"):
        return "unexpected newline or end of string"
    if tok.kind == "STRING":
        return "syntax error at string constant"
    if tok.kind == "NUMBER":
        return "syntax error at numeric constant"
    return f"syntax error at or near `{tok.value if tok.kind != 'ERE' else '/'}'"


class Parser:
    def __init__(self, text: bytes, source: str = "cmd. line") -> None:
        self.source = source
        lexer = Lexer(text, source)
        self.toks = lexer.tokens()
        self.warnings = lexer.warnings
        self.pos = 0
        self.no_gt = 0         # >0: '>' is a print redirection here
        self.no_in = 0         # >0: 'in' ends the expression (for (x in a) lookahead)
        self.in_function: n.Function | None = None
        self.loop_depth = 0
        self.switch_depth = 0
        self.prog = n.Program()

    # -- token helpers ---------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.pos]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.toks[self.pos]
        if t.kind != "EOF":
            self.pos += 1
        return t

    def error(self, tok: Token | None = None, msg: str | None = None) -> AwkSyntaxError:
        tok = tok or self.tok
        return AwkSyntaxError(tok.line, msg or _describe(tok), self.source)

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.error()
        return self.advance()

    def skip_nl(self) -> None:
        while self.tok.kind == "NEWLINE":
            self.advance()

    def skip_terms(self) -> None:
        while self.tok.kind in ("NEWLINE", ";"):
            self.advance()

    # -- program -----------------------------------------------------------------------------
    def parse(self) -> n.Program:
        self.skip_terms()
        while self.tok.kind != "EOF":
            self.item()
            self.skip_terms()
        return self.prog

    def item(self) -> None:
        t = self.tok
        if t.kind in ("BEGIN", "END", "BEGINFILE", "ENDFILE"):
            self.advance()
            if self.tok.kind != "{":
                raise self.error(msg=f"{t.kind} blocks must have an action part")
            block = self.block()
            getattr(self.prog, t.kind.lower()).append(block)
            return
        if t.kind == "function":
            self.function()
            return
        pattern = pattern2 = None
        if t.kind != "{":
            pattern = self.expr()
            if self.tok.kind == ",":
                self.advance()
                self.skip_nl()
                pattern2 = self.expr()
        body = self.block() if self.tok.kind == "{" else None
        self.prog.rules.append(n.Rule(pattern, pattern2, body, t.line))

    def function(self) -> None:
        start = self.advance()
        name_tok = self.advance()
        if name_tok.kind not in ("NAME", "FUNC_NAME"):
            raise self.error(name_tok)
        name = str(name_tok.value)
        if name in self.prog.functions:
            raise self.error(name_tok, f"function `{name}' previously defined")
        self.expect("(")
        params: list[str] = []
        self.skip_nl()
        while self.tok.kind != ")":
            p = self.expect("NAME")
            pname = str(p.value)
            if pname == name:
                raise self.error(p, f"function `{name}': cannot use function name as parameter name")
            if pname in params:
                raise self.error(p, f"function `{name}': parameter #{len(params) + 1}, `{pname}', "
                                    f"duplicates parameter #{params.index(pname) + 1}")
            params.append(pname)
            self.skip_nl()
            if self.tok.kind == ",":
                self.advance()
                self.skip_nl()
            elif self.tok.kind != ")":
                raise self.error()
        self.advance()
        self.skip_nl()
        fn = n.Function(name, params, n.Block([], start.line), start.line)
        self.prog.functions[name] = fn
        self.in_function = fn
        fn.body = self.block()
        self.in_function = None

    def block(self) -> n.Block:
        start = self.expect("{")
        stmts: list[n.Stmt] = []
        self.skip_terms()
        while self.tok.kind != "}":
            if self.tok.kind == "EOF":
                raise self.error()
            stmts.append(self.statement())
            self.skip_terms()
        self.advance()
        return n.Block(stmts, start.line)

    # -- statements -------------------------------------------------------------------------
    def end_simple(self) -> None:
        k = self.tok.kind
        if k in (";", "NEWLINE"):
            self.advance()
        elif k not in ("}", "EOF"):
            raise self.error()

    def body_stmt(self) -> n.Stmt:
        """The statement after ``if (..)``, ``while (..)``...: newlines may come first."""
        self.skip_nl()
        if self.tok.kind == ";":
            self.advance()
            return n.Block([], self.tok.line)
        return self.statement()

    def statement(self) -> n.Stmt:
        t = self.tok
        k = t.kind
        if k == "{":
            return self.block()
        if k == "if":
            self.advance()
            self.expect("(")
            test = self.expr()
            self.expect(")")
            yes = self.body_stmt()
            save = self.pos
            # `if (c) x; else y` is fine (the ; ends x) but after a compound statement a ;
            # is an empty statement that ends the if: `if (c) { x }; else` is an error (gawk)
            self.skip_nl()
            if self.tok.kind == "else":
                self.advance()
                return n.If(test, yes, self.body_stmt(), t.line)
            self.pos = save
            return n.If(test, yes, None, t.line)
        if k == "while":
            self.advance()
            self.expect("(")
            test = self.expr()
            self.expect(")")
            if self.tok.kind == ";":
                self.advance()
                return n.While(test, n.Block([], t.line), t.line)
            self.loop_depth += 1
            body = self.body_stmt()
            self.loop_depth -= 1
            return n.While(test, body, t.line)
        if k == "do":
            self.advance()
            self.loop_depth += 1
            body = self.body_stmt()
            self.loop_depth -= 1
            self.skip_terms()
            self.expect("while")
            self.expect("(")
            test = self.expr()
            self.expect(")")
            if self.tok.kind not in (";", "NEWLINE", "}", "EOF"):
                raise self.error()
            return n.DoWhile(body, test, t.line)   # a ; after it is an empty statement
        if k == "for":
            return self.for_stmt()
        if k == "switch":
            return self.switch_stmt()
        if k == ";":
            self.advance()
            return n.Block([], t.line)
        stmt = self.simple_statement()
        self.end_simple()
        return stmt

    def switch_stmt(self) -> n.Stmt:
        t = self.advance()
        self.expect("(")
        subject = self.expr()
        self.expect(")")
        self.skip_nl()
        self.expect("{")
        cases: list[n.Case] = []
        self.switch_depth += 1
        self.skip_terms()
        while self.tok.kind != "}":
            ct = self.tok
            label: n.Num | n.Str | n.Regex | None = None
            if ct.kind == "case":
                self.advance()
                neg = False
                if self.tok.kind in ("-", "+"):
                    neg = self.advance().kind == "-"
                lt = self.advance()
                if lt.kind == "NUMBER":
                    label = n.Num(-float(lt.value) if neg else float(lt.value), lt.line)  # type: ignore[arg-type]
                elif lt.kind == "STRING" and not neg:
                    label = n.Str(lt.value, lt.line)  # type: ignore[arg-type]
                elif lt.kind == "ERE" and not neg:
                    label = n.Regex(lt.value, lt.line)  # type: ignore[arg-type]
                else:
                    raise self.error(lt)
            elif ct.kind == "default":
                self.advance()
                if any(c.label is None for c in cases):
                    raise self.error(ct, "duplicate `default' detected in switch body")
            else:
                raise self.error()
            self.expect(":")
            body: list[n.Stmt] = []
            self.skip_terms()
            while self.tok.kind not in ("case", "default", "}"):
                if self.tok.kind == "EOF":
                    raise self.error()
                body.append(self.statement())
                self.skip_terms()
            cases.append(n.Case(label, body, ct.line))
        self.advance()
        self.switch_depth -= 1
        return n.Switch(subject, cases, t.line)

    def for_stmt(self) -> n.Stmt:
        t = self.advance()
        self.expect("(")
        if (self.tok.kind == "NAME" and self.peek().kind == "in" and self.peek(2).kind == "NAME"
                and self.peek(3).kind == ")"):
            var = n.Var(str(self.advance().value), t.line)
            self.advance()
            arr = str(self.advance().value)
            self.advance()
            self.loop_depth += 1
            body = self.body_stmt()
            self.loop_depth -= 1
            return n.ForIn(var, arr, body, t.line)
        if (self.tok.kind == "(" and self.peek().kind == "NAME" and self.peek(2).kind == "in"
                and self.peek(3).kind == "NAME" and self.peek(4).kind == ")" and self.peek(5).kind == ")"):
            self.advance()
            var = n.Var(str(self.advance().value), t.line)
            self.advance()
            arr = str(self.advance().value)
            self.advance()
            self.advance()
            self.loop_depth += 1
            body = self.body_stmt()
            self.loop_depth -= 1
            return n.ForIn(var, arr, body, t.line)
        init = None if self.tok.kind == ";" else self.simple_statement()
        self.expect(";")
        self.skip_nl()
        test = None if self.tok.kind == ";" else self.expr()
        self.expect(";")
        self.skip_nl()
        step = None if self.tok.kind == ")" else self.simple_statement()
        self.expect(")")
        if self.tok.kind == ";":
            self.advance()
            return n.For(init, test, step, n.Block([], t.line), t.line)
        self.loop_depth += 1
        body = self.body_stmt()
        self.loop_depth -= 1
        return n.For(init, test, step, body, t.line)

    def simple_statement(self) -> n.Stmt:
        t = self.tok
        k = t.kind
        if k in ("print", "printf"):
            return self.print_stmt()
        if k in ("next", "nextfile"):
            self.advance()
            if self.in_function is None and False:
                raise self.error(t)
            return n.Simple(k, t.line)
        if k in ("break", "continue"):
            self.advance()
            if not self.loop_depth and not (k == "break" and self.switch_depth):
                raise self.error(t, f"`{k}' is not allowed outside a loop or switch")
            return n.Simple(k, t.line)
        if k == "exit":
            self.advance()
            value = None if self.tok.kind in _SIMPLE_END else self.expr()
            return n.Exit(value, t.line)
        if k == "return":
            self.advance()
            if self.in_function is None:
                raise self.error(t, "`return' used outside function context")
            value = None if self.tok.kind in _SIMPLE_END else self.expr()
            return n.Return(value, t.line)
        if k == "delete":
            self.advance()
            paren = self.tok.kind == "("
            if paren:
                self.advance()
            name = str(self.expect("NAME").value)
            subs = None
            if self.tok.kind == "[":
                self.advance()
                subs = self.expr_list("]")
                self.expect("]")
            if paren:
                self.expect(")")
            return n.Delete(name, subs, t.line)
        return n.ExprStmt(self.expr(), t.line)

    def print_stmt(self) -> n.Stmt:
        t = self.advance()
        args: list[n.Expr] = []
        self.no_gt += 1
        try:
            if self.tok.kind not in _SIMPLE_END and self.tok.kind not in (">", ">>", "|"):
                args = self.expr_list(None)
        finally:
            self.no_gt -= 1
        if len(args) == 1 and isinstance(args[0], n.Group):
            args = args[0].exprs
        redir = ""
        dest = None
        if self.tok.kind in (">", ">>", "|"):
            redir = str(self.advance().value)
            self.no_gt += 1
            try:
                dest = self.concat()
            finally:
                self.no_gt -= 1
        if t.kind == "printf" and not args:
            raise self.error(t, "printf: no format")
        return n.Print(t.kind == "printf", args, redir, dest, t.line)

    def expr_list(self, closer: str | None) -> list[n.Expr]:
        out = [self.expr()]
        while self.tok.kind == ",":
            self.advance()
            self.skip_nl()
            out.append(self.expr())
        return out

    # -- expressions ------------------------------------------------------------------------
    def expr(self) -> n.Expr:
        left = self.ternary()
        if self.tok.kind in _ASSIGN_OPS or (self.tok.kind == "/" and False):
            if isinstance(left, (n.Var, n.Field, n.Index)):
                op = str(self.advance().value)
                self.skip_nl()
                return n.Assign(op, left, self.expr(), left.line)
            if isinstance(left, n.Group) and len(left.exprs) == 1 and isinstance(
                    left.exprs[0], (n.Var, n.Field, n.Index)):
                op = str(self.advance().value)
                self.skip_nl()
                return n.Assign(op, left.exprs[0], self.expr(), left.line)
        return left

    def ternary(self) -> n.Expr:
        test = self.or_expr()
        if self.tok.kind == "?":
            self.advance()
            self.skip_nl()
            yes = self.expr()
            self.skip_nl()
            self.expect(":")
            self.skip_nl()
            no = self.expr()
            return n.Cond(test, yes, no, test.line)
        return test

    def or_expr(self) -> n.Expr:
        left = self.and_expr()
        while self.tok.kind == "||":
            self.advance()
            self.skip_nl()
            left = n.Binary("||", left, self.and_expr(), left.line)
        return left

    def and_expr(self) -> n.Expr:
        left = self.in_expr()
        while self.tok.kind == "&&":
            self.advance()
            self.skip_nl()
            left = n.Binary("&&", left, self.in_expr(), left.line)
        return left

    def in_expr(self) -> n.Expr:
        left = self.match_expr()
        while self.tok.kind == "in" and not self.no_in:
            self.advance()
            name = str(self.expect("NAME").value)
            subs: list[n.Expr] = list(left.exprs) if isinstance(left, n.Group) else [left]
            left = n.In(subs, name, left.line)
        return left

    def match_expr(self) -> n.Expr:
        left = self.rel_expr()
        while self.tok.kind in ("~", "!~"):
            neg = self.advance().kind == "!~"
            left = n.MatchOp(neg, left, self.rel_expr(), left.line)
        return left

    def rel_expr(self) -> n.Expr:
        """Comparisons do not chain: ``a < b < c`` is a syntax error, as in gawk."""
        left = self.pipe_getline()
        if self.tok.kind in _REL_OPS and not (self.tok.kind == ">" and self.no_gt):
            op = str(self.advance().value)
            left = n.Binary(op, left, self.pipe_getline(), left.line)
            if self.tok.kind in _REL_OPS and not (self.tok.kind == ">" and self.no_gt):
                raise self.error()
        return left

    def pipe_getline(self) -> n.Expr:
        left = self.concat()
        while self.tok.kind == "|" and self.peek().kind == "getline":
            self.advance()
            self.advance()
            target = self.opt_lvalue()
            left = n.Getline("cmd", target, left, left.line)
        return left

    def concat(self) -> n.Expr:
        left = self.additive()
        while self.tok.kind in _CONCAT_START and not (self.tok.kind == "in"):
            left = n.Binary("concat", left, self.additive(), left.line)
        return left

    def additive(self) -> n.Expr:
        left = self.mul()
        while self.tok.kind in ("+", "-"):
            op = str(self.advance().value)
            left = n.Binary(op, left, self.mul(), left.line)
        return left

    def mul(self) -> n.Expr:
        left = self.unary()
        while self.tok.kind in ("*", "/", "%"):
            op = str(self.advance().value)
            left = n.Binary(op, left, self.unary(), left.line)
        return left

    def unary(self) -> n.Expr:
        t = self.tok
        if t.kind in ("!", "-", "+"):
            self.advance()
            operand = self.unary()
            if t.kind == "-" and isinstance(operand, n.Num):
                return n.Num(-operand.value, t.line)
            return n.Unary(t.kind, operand, t.line)
        return self.power()

    def power(self) -> n.Expr:
        base = self.postfix()
        if self.tok.kind == "^":
            self.advance()
            return n.Binary("^", base, self.power_rhs(), base.line)
        return base

    def power_rhs(self) -> n.Expr:
        t = self.tok
        if t.kind in ("-", "+", "!"):
            self.advance()
            return n.Unary(t.kind, self.power_rhs(), t.line)
        return self.power()

    def postfix(self) -> n.Expr:
        e = self.primary()
        if self.tok.kind in ("++", "--") and isinstance(e, (n.Var, n.Field, n.Index)):
            op = str(self.advance().value)
            return n.IncDec(op, False, e, e.line)
        return e

    def opt_lvalue(self) -> n.LValue | None:
        k = self.tok.kind
        if k == "$":
            t = self.advance()
            return n.Field(self.field_operand(), t.line)
        if k == "NAME":
            return self.name_ref()  # type: ignore[return-value]
        return None

    def name_ref(self) -> n.Expr:
        t = self.advance()
        name = str(t.value)
        if self.tok.kind == "[":
            self.advance()
            subs = self.expr_list("]")
            self.expect("]")
            return n.Index(name, subs, t.line)
        return n.Var(name, t.line)

    def field_operand(self) -> n.Expr:
        t = self.tok
        if t.kind in ("++", "--"):
            self.advance()
            target = self.primary()
            if not isinstance(target, (n.Var, n.Field, n.Index)):
                raise self.error(t)
            return n.IncDec(t.kind, True, target, t.line)
        if t.kind in ("-", "+", "!"):
            self.advance()
            return n.Unary(t.kind, self.field_operand(), t.line)
        return self.primary()

    def primary(self) -> n.Expr:
        t = self.tok
        k = t.kind
        if k == "NUMBER":
            self.advance()
            return n.Num(float(t.value), t.line)  # type: ignore[arg-type]
        if k == "STRING":
            self.advance()
            return n.Str(t.value, t.line)  # type: ignore[arg-type]
        if k == "ERE":
            self.advance()
            return n.Regex(t.value, t.line)  # type: ignore[arg-type]
        if k == "$":
            self.advance()
            return n.Field(self.field_operand(), t.line)
        if k in ("++", "--"):
            self.advance()
            target = self.primary()
            if not isinstance(target, (n.Var, n.Field, n.Index)):
                raise self.error(t)
            return n.IncDec(k, True, target, t.line)
        if k in ("-", "+", "!"):
            self.advance()
            return n.Unary(k, self.unary(), t.line)
        if k == "(":
            self.advance()
            saved = self.no_gt, self.no_in
            self.no_gt = self.no_in = 0
            try:
                self.skip_nl()
                exprs = self.expr_list(")")
                self.skip_nl()
                self.expect(")")
            finally:
                self.no_gt, self.no_in = saved
            if len(exprs) > 1 and self.tok.kind != "in" and not self.no_gt:
                raise self.error()
            return n.Group(exprs, t.line)
        if k == "NAME":
            return self.name_ref()
        if k == "FUNC_NAME":
            self.advance()
            self.expect("(")
            args = self.call_args()
            return n.Call(str(t.value), args, t.line)
        if k == "BUILTIN":
            self.advance()
            name = str(t.value)
            if self.tok.kind == "(":
                self.advance()
                args = self.call_args()
            elif name == "length":
                args = []
            else:
                raise self.error()
            return n.Builtin(name, args, t.line)
        if k == "getline":
            self.advance()
            dest = self.opt_lvalue()
            if self.tok.kind == "<":
                self.advance()
                source = self.postfix()
                return n.Getline("file", dest, source, t.line)
            return n.Getline("plain", dest, None, t.line)
        raise self.error()

    def call_args(self) -> list[n.Expr]:
        saved = self.no_gt, self.no_in
        self.no_gt = self.no_in = 0
        try:
            self.skip_nl()
            if self.tok.kind == ")":
                self.advance()
                return []
            args = self.expr_list(")")
            self.skip_nl()
            self.expect(")")
            return args
        finally:
            self.no_gt, self.no_in = saved


def parse(text: bytes, source: str = "cmd. line") -> tuple[n.Program, list[str]]:
    """The syntax tree of *text* and the lexer's warnings; ``AwkSyntaxError`` if it does not parse."""
    p = Parser(text, source)
    return p.parse(), p.warnings
