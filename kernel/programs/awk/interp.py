"""awk's interpreter: the syntax tree compiled to Python source, run as coroutines.

Each rule section (BEGIN, the record loop, END, BEGINFILE, ENDFILE) and each user function
becomes one Python function; awk expressions become Python expressions over the helpers of
``runtime``/``builtins``/``values``, with numbers kept as floats where the tree shows a value
is numeric.  Only constants the compiler makes itself appear in the source (strings as
``bytes`` reprs, names with ``G_``/``L_``/``F_`` prefixes from awk's ``[A-Za-z_0-9]``), so no
program text can inject Python.  Functions that do I/O, loop, or call such functions are
``async``; the others are plain functions (a recursive ``fib`` costs no coroutine per call).
Loops yield to the scheduler every 10,000 iterations, so a busy loop cannot stall the kernel.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Iterator

from kernel.programs.awk import nodes as n
from kernel.programs.awk.runtime import AwkExit, NextFile, NextRecord, awk_regex, rx_test
from kernel.programs.awk.values import AwkFatal

#: Special variables kept on the runtime (rt.NAME), set through rt.setv.
SPECIAL = frozenset({"FS", "OFS", "ORS", "RS", "SUBSEP", "CONVFMT", "OFMT", "NR", "FNR", "RSTART",
                     "RLENGTH", "FILENAME", "RT"})
_NUMERIC_SPECIAL = frozenset({"NR", "FNR", "RSTART", "RLENGTH", "NF"})
_IO_BUILTINS = frozenset({"system", "close", "fflush"})
_ARRAY_ARGS = {"split": (1, 3), "asort": (0, 1), "asorti": (0, 1), "match": (2,)}
_NUM_BUILTINS = frozenset({"length", "index", "split", "sub", "gsub", "match", "sin", "cos", "atan2",
                           "exp", "log", "sqrt", "int", "rand", "srand", "system", "close", "fflush",
                           "systime", "mktime", "and", "or", "xor", "lshift", "rshift", "compl",
                           "strtonum", "asort", "asorti", "isarray"})
_ARITY = {"substr": (2, 3), "index": (2, 2), "split": (2, 4), "sub": (2, 3), "gsub": (2, 3),
          "match": (2, 3), "sin": (1, 1), "cos": (1, 1), "atan2": (2, 2), "exp": (1, 1), "log": (1, 1),
          "sqrt": (1, 1), "int": (1, 1), "rand": (0, 0), "srand": (0, 1), "tolower": (1, 1),
          "toupper": (1, 1), "system": (1, 1), "close": (1, 2), "fflush": (0, 1), "gensub": (3, 4),
          "strftime": (0, 3), "systime": (0, 0), "mktime": (1, 2), "length": (0, 1), "sprintf": (1, 10**6),
          "and": (2, 10**6), "or": (2, 10**6), "xor": (2, 10**6), "lshift": (2, 2), "rshift": (2, 2),
          "compl": (1, 1), "strtonum": (1, 1), "asort": (1, 2), "asorti": (1, 2), "isarray": (1, 1),
          "typeof": (1, 1)}


class CompileError(Exception):
    """A program that parses but cannot run: an undefined function or an array used as a
    scalar is fatal (status 2, as gawk); misplaced ``next`` or a wrong builtin arity is a
    syntax-class error (status 1)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def _walk(node: Any) -> Iterator[Any]:
    """Every node under *node* (dataclass fields, lists)."""
    stack = [node]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
            continue
        if not hasattr(x, "__dataclass_fields__"):
            continue
        yield x
        for name in x.__dataclass_fields__:
            v = getattr(x, name)
            if isinstance(v, (list,)) or hasattr(v, "__dataclass_fields__"):
                stack.append(v)


class Analysis:
    """Which names are arrays, which functions must be async."""

    def __init__(self, prog: n.Program, external: set[str] | None = None) -> None:
        self.prog = prog
        self.external = external or set()
        self.global_arrays: set[str] = {"ENVIRON", "ARGV"}
        self.param_arrays: dict[str, set[str]] = {f: set() for f in prog.functions}
        self.async_funcs: set[str] = set()
        self.globals: set[str] = {"ARGC"}
        self.numeric_globals: set[str] = set()
        self.numeric_locals: dict[str, set[str]] = {}
        self._run()
        self._numeric()

    def _scope_nodes(self) -> Iterator[tuple[n.Function | None, Any]]:
        p = self.prog
        for blocks in (p.begin, p.end, p.beginfile, p.endfile):
            for b in blocks:
                for x in _walk(b):
                    yield None, x
        for r in p.rules:
            for x in _walk([r.pattern, r.pattern2, r.body] if r.body else [r.pattern, r.pattern2]):
                yield None, x
        for f in p.functions.values():
            for x in _walk(f.body):
                yield f, x

    def _mark(self, fn: n.Function | None, name: str) -> bool:
        if fn is not None and name in fn.params:
            s = self.param_arrays[fn.name]
        else:
            s = self.global_arrays
        if name in s:
            return False
        s.add(name)
        return True

    def is_array(self, fn: n.Function | None, name: str) -> bool:
        if fn is not None and name in fn.params:
            return name in self.param_arrays[fn.name]
        return name in self.global_arrays

    def _numeric(self) -> None:
        """Variables every assignment of which stores a number (an unset one reads as 0, which
        compares the same way): comparisons with them need no type dispatch.  Names assigned
        from outside (``-v``, operands: the caller passes ``external``) are left out."""
        ext = self.external
        tainted: dict[Any, set[str]] = {}
        seen: dict[Any, set[str]] = {}
        for fn, x in self._scope_nodes():
            scope = fn.name if fn is not None else None
            target: Any = None
            numeric = True
            if isinstance(x, n.Assign):
                target = x.target
                numeric = x.op != "=" or _is_numeric_expr(x.value)
            elif isinstance(x, n.IncDec):
                target = x.target
            elif isinstance(x, n.Getline):
                target, numeric = x.target, False
            elif isinstance(x, n.ForIn):
                target, numeric = x.var, False
            elif isinstance(x, n.Builtin) and x.name in ("sub", "gsub") and len(x.args) > 2:
                target, numeric = x.args[2], False
            elif isinstance(x, n.Call):
                for a in x.args:   # passed by value, but the callee might be handed an array
                    if isinstance(a, n.Var):
                        tainted.setdefault(scope, set())
            if isinstance(target, n.Group) and len(target.exprs) == 1:
                target = target.exprs[0]
            if isinstance(target, n.Var):
                seen.setdefault(scope, set()).add(target.name)
                if not numeric:
                    tainted.setdefault(scope, set()).add(target.name)
        bad_global = tainted.get(None, set()) | ext | SPECIAL | {"NF", "ARGC"}
        for fn in self.prog.functions.values():
            # a global assigned in a function counts for the globals
            for name in tainted.get(fn.name, set()):
                if name not in fn.params:
                    bad_global.add(name)
        self.numeric_globals = {g for g in self.globals if g not in bad_global and g not in self.global_arrays}
        callers_pass: dict[str, int] = {}
        for _fn, x in self._scope_nodes():
            if isinstance(x, n.Call):
                callers_pass[x.name] = max(callers_pass.get(x.name, 0), len(x.args))
        for f in self.prog.functions.values():
            locals_ = f.params[callers_pass.get(f.name, 0):]
            bad = tainted.get(f.name, set())
            self.numeric_locals[f.name] = {p for p in locals_ if p not in bad
                                           and p not in self.param_arrays[f.name]}

    def _run(self) -> None:
        nodes = list(self._scope_nodes())
        for fn, x in nodes:
            if isinstance(x, n.Var) and not (fn and x.name in fn.params) and x.name not in SPECIAL \
                    and x.name != "NF":
                self.globals.add(x.name)
            if isinstance(x, (n.Index, n.In, n.Delete)):
                self._mark(fn, x.name)
                if not (fn and x.name in fn.params):
                    self.globals.add(x.name)
            elif isinstance(x, n.ForIn):
                self._mark(fn, x.array)
                if not (fn and x.array in fn.params):
                    self.globals.add(x.array)
            elif isinstance(x, n.Builtin) and x.name in _ARRAY_ARGS:
                for i in _ARRAY_ARGS[x.name]:
                    arg = x.args[i] if i < len(x.args) else None
                    if isinstance(arg, n.Var):
                        self._mark(fn, arg.name)
            elif isinstance(x, n.Call) and x.name not in self.prog.functions:
                raise CompileError(f"function `{x.name}' not defined")
        changed = True
        while changed:
            changed = False
            for fn, x in nodes:
                if isinstance(x, n.Call):
                    callee = self.prog.functions[x.name]
                    for i, a in enumerate(x.args[:len(callee.params)]):
                        if isinstance(a, n.Var):
                            pa = callee.params[i] in self.param_arrays[callee.name]
                            if pa and not self.is_array(fn, a.name):
                                changed |= self._mark(fn, a.name)
                            elif not pa and self.is_array(fn, a.name) and x.name != a.name:
                                self.param_arrays[callee.name].add(callee.params[i])
                                changed = True
        for f in self.prog.functions.values():
            for x in _walk(f.body):
                if isinstance(x, (n.Print, n.Getline, n.While, n.DoWhile, n.For, n.ForIn)) or (
                        isinstance(x, n.Builtin) and x.name in _IO_BUILTINS):
                    self.async_funcs.add(f.name)
                    break
        changed = True
        while changed:
            changed = False
            for f in self.prog.functions.values():
                if f.name in self.async_funcs:
                    continue
                for x in _walk(f.body):
                    if isinstance(x, n.Call) and x.name in self.async_funcs:
                        self.async_funcs.add(f.name)
                        changed = True
                        break


def _is_numeric_expr(e: Any) -> bool:
    """Whether *e* always yields a number (the compiler's "num" type, decided syntactically)."""
    if isinstance(e, n.Num):
        return True
    if isinstance(e, n.Binary):
        return e.op != "concat"
    if isinstance(e, (n.Unary, n.IncDec, n.MatchOp, n.In, n.Regex)):
        return True
    if isinstance(e, n.Assign):
        return e.op != "=" or _is_numeric_expr(e.value)
    if isinstance(e, n.Cond):
        return _is_numeric_expr(e.yes) and _is_numeric_expr(e.no)
    if isinstance(e, n.Group):
        return len(e.exprs) == 1 and _is_numeric_expr(e.exprs[0])
    if isinstance(e, n.Builtin):
        return e.name in _NUM_BUILTINS
    if isinstance(e, n.Var):
        return e.name in _NUMERIC_SPECIAL
    return False


class Compiler:
    def __init__(self, prog: n.Program, external: set[str] | None = None) -> None:
        self.prog = prog
        self.an = Analysis(prog, external)
        self.consts: dict[str, Any] = {}
        self.tmp = 0
        self.lines: list[str] = []
        self.fn: n.Function | None = None
        self.loops: list[str | None] = []   # per loop: the step code a `continue` runs first
        self.is_async = True
        self.ranges = 0
        self.warnings: list[str] = []

    # -- output --------------------------------------------------------------------------
    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    def temp(self, kind: str) -> str:
        self.tmp += 1
        return f"_{kind}{self.tmp}"

    def num_lit(self, v: float) -> str:
        if v - v == 0.0:
            return repr(float(v))
        return self.const(v)

    # -- names ------------------------------------------------------------------------------
    def var_ref(self, name: str) -> str:
        if self.fn is not None and name in self.fn.params:
            return "L_" + name
        return "G_" + name

    def is_array(self, name: str) -> bool:
        return self.an.is_array(self.fn, name)

    # -- expressions: (code, type) with type "num", "str" or "any" ----------------------------
    def num(self, e: n.Expr) -> str:
        if isinstance(e, n.Field) and isinstance(e.index, n.Num) and e.index.value >= 1:
            return f"_Fn({int(e.index.value)})"
        if isinstance(e, n.Field) and not isinstance(e.index, n.Num):
            return f"_Fn({self.field_idx(e.index)})"
        if isinstance(e, n.Var) and e.name not in SPECIAL and e.name != "NF":
            ref = self.var_ref(e.name)   # a name is cheap to read twice: skip the call when a float
            return f"({ref} if {ref}.__class__ is float else _n({ref}))"
        code, t = self.expr(e)
        return code if t == "num" else f"_n({code})"

    def field_idx(self, e: n.Expr) -> str:
        """A field number: a variable known to hold only numbers needs no conversion call."""
        if isinstance(e, n.Var) and self.numeric_var(e.name):
            ref = self.var_ref(e.name)
            return f"(int({ref}) if {ref}.__class__ is float and {ref} >= 0 else rt.field_index({ref}))"
        return f"rt.field_index({self.expr(e)[0]})"

    def numeric_var(self, name: str) -> bool:
        return (self.fn is None and name in self.an.numeric_globals) or (
            self.fn is not None and name in self.an.numeric_locals.get(self.fn.name, ()))

    def str_(self, e: n.Expr) -> str:
        if isinstance(e, n.Field) and isinstance(e.index, n.Num) and e.index.value >= 1:
            return f"_Fs({int(e.index.value)})"
        if isinstance(e, n.Field) and not isinstance(e.index, n.Num):
            return f"_Fs({self.field_idx(e.index)})"
        code, t = self.expr(e)
        return code if t == "str" else f"_s({code})"

    def cond(self, e: n.Expr) -> str:
        """A Python truth value for *e*."""
        if isinstance(e, n.Group) and len(e.exprs) == 1:
            return self.cond(e.exprs[0])
        if isinstance(e, n.Binary) and e.op in ("<", "<=", "==", "!=", ">", ">="):
            return self.compare(e)
        if isinstance(e, n.Binary) and e.op in ("&&", "||"):
            op = "and" if e.op == "&&" else "or"
            return f"({self.cond(e.left)} {op} {self.cond(e.right)})"
        if isinstance(e, n.Unary) and e.op == "!":
            return f"(not {self.cond(e.operand)})"
        if isinstance(e, n.Regex):
            return f"{self.regex_test(e)}(rt.get0())"
        if isinstance(e, n.MatchOp):
            return self.match(e)
        if isinstance(e, n.In):
            return f"({self.key(e.subs)} in {self.array_ref(e.name)})"
        code, t = self.expr(e)
        if t == "num":
            return f"({code} != 0.0)"
        if t == "str":
            return f"(len({code}) > 0)"
        return f"_b({code})"

    def boolval(self, c: str) -> str:
        return f"(1.0 if {c} else 0.0)"

    def regex_const(self, e: n.Regex) -> str:
        return self.const(awk_regex(e.source))

    def regex_test(self, e: n.Regex) -> str:
        return self.const(rx_test(awk_regex(e.source)))

    def regex_arg(self, e: n.Expr) -> str:
        """A regex argument: a literal compiled once, anything else compiled at run time (cached)."""
        if isinstance(e, n.Regex):
            return self.regex_const(e)
        return f"_dre({self.expr(e)[0]})"

    def match(self, e: n.MatchOp) -> str:
        if isinstance(e.subject, n.Regex):
            self.warnings.append("regular expression on left of `~' or `!~' operator")
        subj = self.str_(e.subject)
        if isinstance(e.regex, n.Regex):
            test = f"{self.regex_test(e.regex)}({subj})"
        else:
            test = f"_dmatch({subj}, {self.expr(e.regex)[0]})"   # the subject is evaluated first
        return f"(not {test})" if e.negate else test

    def compare(self, e: n.Binary) -> str:
        lc, lt = self.expr(e.left)
        rc, rt_ = self.expr(e.right)
        op = e.op
        # a variable that only ever holds numbers (or is unset: 0) compares numerically
        if lt == "num" and isinstance(e.right, n.Var) and self.numeric_var(e.right.name):
            rc, rt_ = self.num(e.right), "num"
        if rt_ == "num" and isinstance(e.left, n.Var) and self.numeric_var(e.left.name):
            lc, lt = self.num(e.left), "num"
        if lt == "num" and rt_ == "num":
            return f"({lc} {op} {rc})"
        if lt == "str" or rt_ == "str":
            return f"({self.as_str(lc, lt)} {op} {self.as_str(rc, rt_)})"
        return f"_cmp_{_OPNAME[op]}({lc}, {rc})"

    def as_str(self, code: str, t: str) -> str:
        return code if t == "str" else f"_s({code})"

    def key(self, subs: list[n.Expr]) -> str:
        if len(subs) == 1:
            return self.str_(subs[0])
        return "rt.subsep.join((" + ", ".join(self.str_(s) for s in subs) + ",))"

    def array_ref(self, name: str) -> str:
        ref = self.var_ref(name)
        if name in SPECIAL:
            raise CompileError(f"attempt to use scalar `{name}' as an array")
        return ref

    def expr(self, e: n.Expr) -> tuple[str, str]:
        m = getattr(self, "x_" + type(e).__name__)
        return m(e)

    def x_Num(self, e: n.Num) -> tuple[str, str]:
        return self.num_lit(e.value), "num"

    def x_Str(self, e: n.Str) -> tuple[str, str]:
        return repr(bytes(e.value)), "str"

    def x_Regex(self, e: n.Regex) -> tuple[str, str]:
        return self.boolval(self.cond(e)), "num"

    def x_Group(self, e: n.Group) -> tuple[str, str]:
        if len(e.exprs) != 1:
            raise CompileError("syntax error: a parenthesised list outside `in' or print")
        code, t = self.expr(e.exprs[0])
        return f"({code})", t

    def x_Var(self, e: n.Var) -> tuple[str, str]:
        name = e.name
        if name == "NF":
            return "rt.get_nf()", "num"
        if name in SPECIAL:
            return f"rt.{name}", "num" if name in _NUMERIC_SPECIAL else "any"
        return self.var_ref(name), "any"

    def x_Field(self, e: n.Field) -> tuple[str, str]:
        if isinstance(e.index, n.Num):
            i = int(e.index.value)
            if i == 0:
                return "rt.get0s()", "any"
            if i < 0:
                raise CompileError(f"attempt to access field {i}")
            return f"_F({i})", "any"
        return f"_F(rt.field_index({self.expr(e.index)[0]}))", "any"

    def x_Index(self, e: n.Index) -> tuple[str, str]:
        return f"{self.array_ref(e.name)}[{self.key(e.subs)}]", "any"

    def x_Cond(self, e: n.Cond) -> tuple[str, str]:
        yc, yt = self.expr(e.yes)
        nc, nt = self.expr(e.no)
        return f"({yc} if {self.cond(e.test)} else {nc})", yt if yt == nt else "any"

    def x_Binary(self, e: n.Binary) -> tuple[str, str]:
        op = e.op
        if op in ("<", "<=", "==", "!=", ">", ">=", "&&", "||"):
            return self.boolval(self.cond(e)), "num"
        if op == "concat":
            parts = []
            stack: list[n.Expr] = [e]
            while stack:
                x = stack.pop()
                if isinstance(x, n.Binary) and x.op == "concat":
                    stack.append(x.right)
                    stack.append(x.left)
                else:
                    parts.append(self.str_(x))
            return "(" + " + ".join(parts) + ")", "str"
        if op in ("+", "-", "*"):
            # a chain (a + b - c ...) is emitted flat: no recursion per term, no nested parens
            family = ("+", "-") if op in ("+", "-") else ("*",)
            terms: list[tuple[str, n.Expr]] = []
            left: n.Expr = e
            while isinstance(left, n.Binary) and left.op in family:
                terms.append((left.op, left.right))
                left = left.left
            parts = [self.num(left)]
            for o, t in reversed(terms):
                parts.append(f"{o} {self.num(t)}")
            return "(" + " ".join(parts) + ")", "num"
        if op in ("/", "%") and _folds_to_zero(e.right):
            # gawk folds a literal zero divisor at parse time, even in code never run
            raise CompileError("division by zero attempted" + (" in `%'" if op == "%" else ""), 1)
        lc, rc = self.num(e.left), self.num(e.right)
        if op == "/":
            return f"_div({lc}, {rc})", "num"
        if op == "%":
            return f"_mod({lc}, {rc})", "num"
        if op == "^":
            return f"_pow({lc}, {rc})", "num"
        raise CompileError(f"unknown operator {op}")

    def x_Unary(self, e: n.Unary) -> tuple[str, str]:
        if e.op == "!":
            return self.boolval(f"(not {self.cond(e.operand)})"), "num"
        if e.op == "-":
            return f"(-{self.num(e.operand)})", "num"
        return f"(+{self.num(e.operand)})", "num"

    def x_MatchOp(self, e: n.MatchOp) -> tuple[str, str]:
        return self.boolval(self.match(e)), "num"

    def x_In(self, e: n.In) -> tuple[str, str]:
        return self.boolval(self.cond(e)), "num"

    # -- lvalues: (get binding temps, get again, set binding temps(V), set after get(V)) -------
    def lvalue(self, lv: n.Expr) -> tuple[str, str, Any, Any]:
        if isinstance(lv, n.Group) and len(lv.exprs) == 1:
            lv = lv.exprs[0]
        if isinstance(lv, n.Var):
            name = lv.name
            if name == "NF":
                return "rt.get_nf()", "rt.get_nf()", lambda v: f"rt.set_nf({v})", lambda v: f"rt.set_nf({v})"
            if name in SPECIAL:
                get = f"rt.{name}"
                return get, get, lambda v: f"rt.setv({name!r}, {v})", lambda v: f"rt.setv({name!r}, {v})"
            if self.is_array(name):
                raise CompileError(f"attempt to use array `{name}' in a scalar context")
            ref = self.var_ref(name)
            return ref, ref, lambda v: f"({ref} := {v})", lambda v: f"({ref} := {v})"
        if isinstance(lv, n.Field):
            if isinstance(lv.index, n.Num):
                i = int(lv.index.value)
                get = "rt.get0s()" if i == 0 else f"_F({i})"
                return get, get, lambda v: f"rt.set_field({i}, {v})", lambda v: f"rt.set_field({i}, {v})"
            t = self.temp("i")
            idx = f"rt.field_index({self.expr(lv.index)[0]})"
            return (f"_F(({t} := {idx}))", f"_F({t})", lambda v: f"rt.set_field(({t} := {idx}), {v})",
                    lambda v: f"rt.set_field({t}, {v})")
        if isinstance(lv, n.Index):
            arr = self.array_ref(lv.name)
            t = self.temp("k")
            key = self.key(lv.subs)
            return (f"{arr}[({t} := {key})]", f"{arr}[{t}]", lambda v: f"_aset({arr}, ({t} := {key}), {v})",
                    lambda v: f"_aset({arr}, {t}, {v})")
        raise CompileError("assignment to something that is not a variable")

    def x_Assign(self, e: n.Assign) -> tuple[str, str]:
        _, again, set_bind, _after = self.lvalue(e.target)
        if e.op == "=":
            code, t = self.expr(e.value)
            return set_bind(code), t   # the value assigned, as written (print NF = "s" prints s)
        # gawk evaluates the right side first, then reads the target: x += x++ is 3 from 1
        r = self.temp("r")
        rhs = self.num(e.value)
        op = e.op[0]
        if op in "+-*":
            v = f"(_n({again}) {op} {r})"
        else:
            v = {"/": "_div", "%": "_mod", "^": "_pow"}[op] + f"(_n({again}), {r})"
        return f"(({r} := {rhs}), {set_bind(v)})[1]", "num"

    def x_IncDec(self, e: n.IncDec) -> tuple[str, str]:
        _, again, set_bind, _after = self.lvalue(e.target)
        d = "+" if e.op == "++" else "-"
        if e.prefix:
            return set_bind(f"(_n({again}) {d} 1.0)"), "num"
        t = self.temp("t")
        return f"({set_bind(f'(({t} := _n({again})) {d} 1.0)')}, {t})[1]", "num"

    def x_Call(self, e: n.Call) -> tuple[str, str]:
        fn = self.prog.functions[e.name]
        args = []
        for i, a in enumerate(e.args):
            if isinstance(a, n.Regex):
                self.warnings.append(f"regexp constant for parameter #{i + 1} yields boolean value")
            if i >= len(fn.params):
                args.append(self.expr(a)[0])   # evaluated for its effects, then dropped
                continue
            if isinstance(a, n.Var) and (self.is_array(a.name) or fn.params[i] in self.an.param_arrays[fn.name]):
                args.append(self.var_ref(a.name) if a.name not in SPECIAL else self.expr(a)[0])
            else:
                args.append(self.expr(a)[0])
        extra = len(e.args) - len(fn.params)
        if extra > 0:
            call = f"_first(F_{e.name}({', '.join(args[:len(fn.params)])}), {', '.join(args[len(fn.params):])})"
            if e.name in self.an.async_funcs:
                call = f"_first((await F_{e.name}({', '.join(args[:len(fn.params)])})), " \
                       f"{', '.join(args[len(fn.params):])})"
            return call, "any"
        call = f"F_{e.name}({', '.join(args)})"
        if e.name in self.an.async_funcs:
            return f"(await {call})", "any"
        return call, "any"

    def x_Getline(self, e: n.Getline) -> tuple[str, str]:
        if e.kind == "plain":
            if e.target is None:
                return "(await rt.getline_main0())", "num"
            call = "(await rt.getline_main())"
        else:
            assert e.source is not None
            src = self.str_(e.source)
            cmd = "True" if e.kind == "cmd" else "False"
            if e.target is None:
                return f"(await rt.getline_from0({src}, {cmd}))", "num"
            call = f"(await rt.getline_from({src}, {cmd}))"
        _, _, set_bind, _ = self.lvalue(e.target)
        g = self.temp("g")
        return f"({g}[0] if ({g} := {call})[0] <= 0.0 else ({set_bind(f'_SN({g}[1])')}, {g}[0])[1])", "num"

    def x_Builtin(self, e: n.Builtin) -> tuple[str, str]:
        name = e.name
        args = e.args
        lo, hi = _ARITY[name]
        if not lo <= len(args) <= hi:
            raise CompileError(f"{len(args)} is invalid as number of arguments for {name}", 1)
        t = "num" if name in _NUM_BUILTINS else "str"
        if name == "typeof":
            t = "str"
        if name == "length":
            if not args:
                return "float(len(rt.get0()))", "num"
            a = args[0]
            if isinstance(a, n.Var) and a.name not in SPECIAL and a.name != "NF":
                return f"_length({self.var_ref(a.name)})", "num"
            return f"float(len({self.str_(a)}))", "num"
        if name in ("sub", "gsub"):
            target = args[2] if len(args) > 2 else n.Field(n.Num(0.0))
            if not isinstance(target, (n.Var, n.Field, n.Index, n.Group)):
                tmp = self.temp("t")
                return (f"({tmp} := _dosub({self.regex_arg(args[0])}, {self.expr(args[1])[0]}, "
                        f"{self.expr(target)[0]}, {name == 'gsub'}))[0]"), "num"
            get_bind, _, _, set_after = self.lvalue(target)
            if get_bind == "rt.get0s()":
                get_bind = "rt.get0()"
            tmp = self.temp("t")
            call = f"_dosub({self.regex_arg(args[0])}, {self.expr(args[1])[0]}, {get_bind}, {name == 'gsub'})"
            return f"({tmp}[0] if not ({tmp} := {call})[0] else ({set_after(f'{tmp}[1]')}, {tmp}[0])[1])", "num"
        if name == "gensub":
            subject = self.expr(args[3])[0] if len(args) > 3 else "rt.get0()"
            return (f"_gensub({self.regex_arg(args[0])}, {self.expr(args[1])[0]}, {self.expr(args[2])[0]}, "
                    f"{subject})"), "str"
        if name == "split":
            arr = self.array_arg(args[1])
            parts = [self.str_(args[0]), arr]
            if len(args) > 2:
                parts.append(self.regex_const(args[2]) if isinstance(args[2], n.Regex) else self.expr(args[2])[0])
            if len(args) > 3:
                parts.append(self.array_arg(args[3]))
            return f"_split({', '.join(parts)})", "num"
        if name == "match":
            parts = [self.str_(args[0]), self.regex_arg(args[1])]
            if len(args) > 2:
                parts.append(self.array_arg(args[2]))
            return f"_match({', '.join(parts)})", "num"
        if name in ("asort", "asorti"):
            return f"_{name}({', '.join(self.array_arg(a) for a in args)})", "num"
        if name == "isarray":
            a = args[0]
            if isinstance(a, n.Var) and a.name not in SPECIAL:
                return f"_isarray({self.var_ref(a.name)})", "num"
            return "0.0", "num"
        if name == "typeof":
            a = args[0]
            if isinstance(a, n.Var) and a.name not in SPECIAL and a.name != "NF":
                return f"_typeof({self.var_ref(a.name)})", "str"
            return f"_typeof({self.expr(a)[0]})", "str"
        if name == "system":
            return f"(await rt.system({self.str_(args[0])}))", "num"
        if name == "close":
            return f"(await rt.close({self.str_(args[0])}))", "num"
        if name == "fflush":
            arg = self.str_(args[0]) if args else "None"
            return f"(await rt.fflush({arg}))", "num"
        if name in ("sub", "gsub", "gensub", "match"):
            pass
        codes = [self.expr(a)[0] for a in args]
        return f"_{name}({', '.join(codes)})", t

    def array_arg(self, a: n.Expr) -> str:
        if not isinstance(a, n.Var):
            raise CompileError("an array argument must be an array name")
        return self.array_ref(a.name)

    # -- statements ---------------------------------------------------------------------------
    def block(self, stmts: list[n.Stmt], depth: int) -> None:
        start = len(self.lines)
        for s in stmts:
            self.stmt(s, depth)
        if len(self.lines) == start:
            self.emit(depth, "pass")

    def stmt(self, s: n.Stmt, d: int) -> None:
        if isinstance(s, n.Block):
            self.block(s.body, d)
        elif isinstance(s, n.ExprStmt):
            self.expr_stmt(s.expr, d)
        elif isinstance(s, n.Print):
            self.print_stmt(s, d)
        elif isinstance(s, n.If):
            self.emit(d, f"if {self.cond(s.test)}:")
            self.block([s.yes], d + 1)
            if s.no is not None:
                self.emit(d, "else:")
                self.block([s.no], d + 1)
        elif isinstance(s, n.While):
            self.emit(d, f"while {self.cond(s.test)}:")
            self.loops.append(None)
            self.tick(d + 1)
            self.block([s.body], d + 1)
            self.loops.pop()
        elif isinstance(s, n.DoWhile):
            self.emit(d, "while True:")
            self.loops.append(f"if not {self.cond(s.test)}: break")
            self.tick(d + 1)
            self.block([s.body], d + 1)
            self.emit(d + 1, f"if not {self.cond(s.test)}:")
            self.emit(d + 2, "break")
            self.loops.pop()
        elif isinstance(s, n.For):
            if s.init is not None:
                self.stmt(s.init, d)
            self.emit(d, f"while {self.cond(s.test) if s.test is not None else 'True'}:")
            step_lines: list[str] = []
            if s.step is not None:
                saved = self.lines
                self.lines = step_lines
                self.stmt(s.step, 0)
                self.lines = saved
            self.loops.append("\n".join(step_lines) if step_lines else None)
            self.tick(d + 1)
            self.block([s.body], d + 1)
            for line in step_lines:
                self.emit(d + 1, line)
            self.loops.pop()
        elif isinstance(s, n.ForIn):
            arr = self.array_ref(s.array)
            k = self.temp("k")
            if "PROCINFO" in self.an.globals:
                self.emit(d, f"for {k} in _forin({arr}, G_PROCINFO):")
            else:
                self.emit(d, f"for {k} in list({arr}):")
            self.loops.append(None)
            self.tick(d + 1)
            _, _, set_bind, _ = self.lvalue(s.var)
            self.emit(d + 1, f"{set_bind(f'_SN({k})')}")
            self.block([s.body], d + 1)
            self.loops.pop()
        elif isinstance(s, n.Simple):
            if s.what == "next":
                if self.section in ("BEGIN", "END", "BEGINFILE", "ENDFILE") and self.fn is None:
                    raise CompileError(f"`next' used in {self.section} action", 1)
                self.emit(d, "raise _Next()")
            elif s.what == "nextfile":
                if self.section in ("BEGIN", "END") and self.fn is None:
                    raise CompileError(f"`nextfile' used in {self.section} action", 1)
                self.emit(d, "raise _NextFile()")
            elif s.what == "break":
                self.emit(d, "break")
            else:
                step = self.loops[-1] if self.loops else None
                if step is not None and step.startswith("#switch "):
                    self.emit(d, f"{step[8:]} = True")   # leave the switch, then continue the loop
                    self.emit(d, "break")
                    return
                if step:
                    for line in step.split("\n"):
                        self.emit(d, line)
                self.emit(d, "continue")
        elif isinstance(s, n.Switch):
            self.switch(s, d)
        elif isinstance(s, n.Exit):
            self.emit(d, f"raise _Exit({self.num(s.value) if s.value is not None else 'None'})")
        elif isinstance(s, n.Return):
            self.emit(d, f"return {self.expr(s.value)[0] if s.value is not None else '_U'}")
        elif isinstance(s, n.Delete):
            arr = self.array_ref(s.name)
            if s.subs is None:
                self.emit(d, f"{arr}.clear()")
            else:
                self.emit(d, f"{arr}.pop({self.key(s.subs)}, None)")
        else:
            raise CompileError(f"cannot compile {type(s).__name__}")

    def switch(self, s: n.Switch, d: int) -> None:
        """gawk's switch: find the first case that matches, then run from there (fall through)
        inside a one-pass ``while`` so ``break`` leaves it."""
        subject = self.temp("sw")
        start = self.temp("st")
        cont = self.temp("sc")
        self.emit(d, f"{subject} = {self.expr(s.subject)[0]}")
        default = len(s.cases)
        first = True
        for i, c in enumerate(s.cases):
            if c.label is None:
                default = i
                continue
            if isinstance(c.label, n.Regex):
                test = f"{self.regex_test(c.label)}(_s({subject}))"
            elif isinstance(c.label, n.Str):
                test = f"(_s({subject}) == {c.label.value!r})"
            else:
                test = f"_cmp_eq({subject}, {self.num_lit(c.label.value)})"
            self.emit(d, f"{'if' if first else 'elif'} {test}:")
            self.emit(d + 1, f"{start} = {i}")
            first = False
        if first:
            self.emit(d, f"{start} = {default}")
        else:
            self.emit(d, "else:")
            self.emit(d + 1, f"{start} = {default}")
        self.emit(d, f"{cont} = False")
        self.emit(d, "while True:")
        in_loop = any(x is None or not x.startswith("#switch ") for x in self.loops) if self.loops else False
        self.loops.append(f"#switch {cont}")
        for i, c in enumerate(s.cases):
            self.emit(d + 1, f"if {start} <= {i}:")
            self.block(c.body, d + 2)
        self.emit(d + 1, "break")
        self.loops.pop()
        if in_loop:
            self.emit(d, f"if {cont}:")
            self.stmt(n.Simple("continue", s.line), d + 1)

    def tick(self, d: int) -> None:
        if self.is_async:
            self.emit(d, "rt.ticks -= 1")
            self.emit(d, "if rt.ticks < 0: await rt.tick()")

    def expr_stmt(self, e: n.Expr, d: int) -> None:
        if isinstance(e, n.Assign) and e.op == "=" and isinstance(e.target, (n.Var, n.Index)) and not (
                isinstance(e.target, n.Var) and (e.target.name in SPECIAL or e.target.name == "NF")):
            code, t = self.expr(e.value)
            if isinstance(e.target, n.Var):
                if self.is_array(e.target.name):
                    raise CompileError(f"attempt to use array `{e.target.name}' in a scalar context")
                self.emit(d, f"{self.var_ref(e.target.name)} = {code}")
            else:
                self.emit(d, f"{self.array_ref(e.target.name)}[{self.key(e.target.subs)}] = {code}")
            return
        if isinstance(e, n.Assign) and e.op in ("+=", "-=", "*=") and isinstance(e.target, n.Var) and \
                e.target.name not in SPECIAL and e.target.name != "NF" and not self.is_array(e.target.name):
            ref = self.var_ref(e.target.name)
            r = self.temp("r")
            self.emit(d, f"{r} = {self.num(e.value)}")   # the right side first, as gawk
            self.emit(d, f"{ref} = {self.num(e.target)} {e.op[0]} {r}")
            return
        if isinstance(e, n.IncDec) and isinstance(e.target, n.Var) and e.target.name not in SPECIAL \
                and e.target.name != "NF":
            ref = self.var_ref(e.target.name)
            self.emit(d, f"{ref} = {self.num(e.target)} {'+' if e.op == '++' else '-'} 1.0")
            return
        if isinstance(e, n.IncDec):
            e = n.Assign("+=" if e.op == "++" else "-=", e.target, n.Num(1.0))
        if isinstance(e, n.Assign) and e.op in ("+=", "-=", "*=") and isinstance(e.target, n.Index):
            k = self.temp("k")
            r = self.temp("r")
            arr = self.array_ref(e.target.name)
            self.emit(d, f"{r} = {self.num(e.value)}")
            self.emit(d, f"{k} = {self.key(e.target.subs)}")
            self.emit(d, f"{arr}[{k}] = _n({arr}[{k}]) {e.op[0]} {r}")
            return
        self.emit(d, self.expr(e)[0])

    def print_stmt(self, s: n.Print, d: int) -> None:
        if s.printf:
            data = f"_sprintf({', '.join(self.expr(a)[0] for a in s.args)})"
        elif not s.args:
            data = f"rt.get0() + {self.ors}"
        elif len(s.args) == 1:
            data = f"{self.out_str(s.args[0])} + {self.ors}"
        elif all(isinstance(a, n.Field) and isinstance(a.index, n.Num) and a.index.value >= 1 for a in s.args):
            idxs = tuple(_const_index(a) for a in s.args)
            spec = self.const((operator.itemgetter(*(i - 1 for i in idxs)), max(idxs), idxs))
            data = f"rt.fields_join({self.ofs}, {spec}) + {self.ors}"
        else:
            data = f"{self.ofs}.join((" + ", ".join(self.out_str(a) for a in s.args) + f",)) + {self.ors}"
        if not s.redir:
            self.emit_out(d, data)
        else:
            assert s.dest is not None
            self.emit(d, f"await rt.redirect({s.redir!r}, {self.str_(s.dest)}, {data})")

    def emit_out(self, d: int, data: str) -> None:
        """stdout is buffered in rt.obuf: at most 256 pieces or one piece over 4 KiB, then written."""
        t = self.temp("d")
        self.emit(d, f"_ob.append({t} := {data})")
        self.emit(d, f"if len(_ob) >= 256 or len({t}) > 4096 or _tty: await rt.flush_stdout()")

    def out_str(self, e: n.Expr) -> str:
        if isinstance(e, n.Field) and isinstance(e.index, n.Num) and e.index.value >= 1:
            return f"_Fs({int(e.index.value)})"
        code, t = self.expr(e)
        return code if t == "str" else f"_o({code})"

    # -- sections ------------------------------------------------------------------------------
    section = ""

    def header(self, name: str, params: list[str], is_async: bool) -> None:
        gl = sorted("G_" + g for g in self.an.globals) + [f"R_{i}" for i in range(self.ranges_total)]
        self.emit(0, f"{'async ' if is_async else ''}def {name}({', '.join(params)}):")
        if gl:
            self.emit(1, "global " + ", ".join(gl))
        self.emit(1, "_ob = rt.obuf")
        self.emit(1, "_tty = rt.tty_out")
        if self.fixed_ofs:
            self.emit(1, "_ofs = rt.ofs")
            self.emit(1, "_ors = rt.ors")

    @property
    def ofs(self) -> str:
        return "_ofs" if self.fixed_ofs else "rt.ofs"

    @property
    def ors(self) -> str:
        return "_ors" if self.fixed_ofs else "rt.ors"

    def compile(self) -> str:
        p = self.prog
        # OFS/ORS never assigned by the program nor by an operand between files: read them once
        # per function (-v happens before BEGIN)
        self.fixed_ofs = not any(
            isinstance(x, (n.Assign, n.IncDec, n.Getline, n.ForIn, n.Builtin)) and any(
                isinstance(t, n.Var) and t.name in ("OFS", "ORS") for t in _targets(x))
            for x in _walk([p.begin, p.end, p.beginfile, p.endfile, p.rules,
                            [f.body for f in p.functions.values()]])) and not (
            self.an.external & {"OFS", "ORS"})
        self.ranges_total = sum(1 for r in p.rules if r.pattern2 is not None)
        for sect, blocks in (("BEGIN", p.begin), ("END", p.end), ("BEGINFILE", p.beginfile),
                             ("ENDFILE", p.endfile)):
            if not blocks:
                continue
            self.section = sect
            self.header(f"_{sect.lower()}", [], True)
            for b in blocks:
                self.block(b.body, 1)
        if p.rules and self.batchable():
            self.section = "main"
            self.header("_main", [], True)
            self.emit(1, "while True:")
            self.emit(2, "_batch = await rt.next_batch()")
            self.emit(2, "if _batch is None: break")
            counts = self.reads_nr()
            if not counts:
                # NR/FNR are added per batch (also when exit/next-file leave it early)
                self.emit(2, "_i = 0")
                self.emit(2, "try:")
            dd = 0 if counts else 1
            self.emit(2 + dd, "for _i, _rec in enumerate(_batch, 1):" if not counts else "for _rec in _batch:")
            self.emit(3 + dd, "rt.rec = _rec")
            self.emit(3 + dd, "rt.fields = None")
            if self.changes_fields():
                self.emit(3 + dd, "rt.dirty = False")
            if counts:
                self.emit(3, "rt.NR += 1.0")
                self.emit(3, "rt.FNR += 1.0")
            self.emit(3 + dd, "try:")
            for r in p.rules:
                self.rule(r, 4 + dd)
            self.emit(3 + dd, "except _Next:")
            self.emit(4 + dd, "pass")
            if not counts:
                self.emit(2, "finally:")
                self.emit(3, "rt.NR += _i")
                self.emit(3, "rt.FNR += _i")
        elif p.rules:
            self.section = "main"
            self.header("_main", [], True)
            self.emit(1, "nextsync = rt.next_sync")
            self.emit(1, "while True:")
            self.emit(2, "if not nextsync():")
            self.emit(3, "if not await rt.next_async(): break")
            self.emit(2, "try:")
            for r in p.rules:
                self.rule(r, 3)
            self.emit(2, "except _Next:")
            self.emit(3, "pass")
            self.emit(2, "except _NextFile:")
            self.emit(3, "await rt.nextfile()")
        for f in p.functions.values():
            self.section = "function"
            self.fn = f
            is_async = f.name in self.an.async_funcs
            self.is_async = is_async
            params = [f"L_{x}=_U" for x in f.params]
            self.header(f"F_{f.name}", params, is_async)
            for x in f.params:
                if x in self.an.param_arrays[f.name]:
                    self.emit(1, f"if type(L_{x}) is not _A: L_{x} = _A()")
            self.block(f.body.body, 1)
            self.emit(1, "return _U")
            self.fn = None
            self.is_async = True
        return "\n".join(self.lines) + "\n"

    def batchable(self) -> bool:
        """Whether the record loop may take records in bulk: nothing else reads the main
        input (plain getline), skips it (nextfile) or changes how it splits (RS)."""
        for x in _walk([self.prog.rules, [f.body for f in self.prog.functions.values()]]):
            if isinstance(x, n.Getline) and x.kind == "plain":
                return False
            if isinstance(x, n.Simple) and x.what == "nextfile":
                return False
            if isinstance(x, (n.Assign, n.IncDec)) and isinstance(x.target, n.Var) and x.target.name == "RS":
                return False
            if isinstance(x, n.Builtin) and x.name in ("sub", "gsub") and len(x.args) > 2 and isinstance(
                    x.args[2], n.Var) and x.args[2].name == "RS":
                return False
        return True

    def _rule_nodes(self) -> list[Any]:
        return list(_walk([self.prog.rules, [f.body for f in self.prog.functions.values()]]))

    def reads_nr(self) -> bool:
        """Whether the rules (or functions) see NR/FNR, so it must be right at every record."""
        return any(isinstance(x, n.Var) and x.name in ("NR", "FNR") for x in self._rule_nodes())

    def max_const_field(self) -> int:
        """K when every field the program reads is a constant $1..$K and it never reads NF or
        assigns a field: records then need splitting only that far.  0 otherwise."""
        if self.changes_fields():
            return 0
        k = 0
        p = self.prog
        for x in _walk([p.begin, p.end, p.beginfile, p.endfile, p.rules, [f.body for f in p.functions.values()]]):
            if isinstance(x, n.Field):
                if not isinstance(x.index, n.Num) or x.index.value < 0:
                    return 0
                k = max(k, int(x.index.value))
            elif isinstance(x, n.Var) and x.name == "NF":
                return 0
        return k

    def changes_fields(self) -> bool:
        """Whether a field or NF is ever assigned (else $0 never needs rebuilding)."""
        for x in self._rule_nodes():
            target: Any = None
            if isinstance(x, (n.Assign, n.IncDec)):
                target = x.target
            elif isinstance(x, n.Getline):
                target = x.target
            elif isinstance(x, n.Builtin) and x.name in ("sub", "gsub") and len(x.args) > 2:
                target = x.args[2]
            elif isinstance(x, n.ForIn):
                target = x.var
            if isinstance(target, n.Group) and len(target.exprs) == 1:
                target = target.exprs[0]
            if isinstance(target, n.Field) or (isinstance(target, n.Var) and target.name == "NF"):
                return True
        return False

    def rule(self, r: n.Rule, d: int) -> None:
        if r.pattern2 is not None and r.pattern is not None:
            rv = f"R_{self.ranges}"
            self.ranges += 1
            self.emit(d, f"if {rv} or {self.cond(r.pattern)}:")
            self.emit(d + 1, f"{rv} = not {self.cond(r.pattern2)}")
            d += 1
        elif r.pattern is not None:
            self.emit(d, f"if {self.cond(r.pattern)}:")
            d += 1
        if r.body is None:
            self.emit_out(d, f"rt.get0() + {self.ors}")
        else:
            self.block(r.body.body, d)


_OPNAME = {"<": "lt", "<=": "le", "==": "eq", "!=": "ne", ">": "gt", ">=": "ge"}


def _const_index(e: Any) -> int:
    return int(e.index.value)


def _targets(x: Any) -> list[Any]:
    """The lvalues a node assigns (unwrapping a parenthesised one)."""
    t: list[Any]
    if isinstance(x, (n.Assign, n.IncDec, n.Getline)):
        t = [x.target]
    elif isinstance(x, n.ForIn):
        t = [x.var]
    elif isinstance(x, n.Builtin) and x.name in ("sub", "gsub") and len(x.args) > 2:
        t = [x.args[2]]
    else:
        return []
    return [y.exprs[0] if isinstance(y, n.Group) and len(y.exprs) == 1 else y for y in t]


def _folds_to_zero(e: Any) -> bool:
    """Whether gawk's constant folding makes *e* a zero (a literal, or ! - + applied to one;
    a parenthesised zero is not folded)."""
    while isinstance(e, n.Unary):
        if e.op == "!":
            return isinstance(e.operand, n.Num) and e.operand.value != 0
        e = e.operand
    return isinstance(e, n.Num) and e.value == 0


def _div(a: float, b: float) -> float:
    if b == 0.0:
        raise AwkFatal("division by zero attempted")
    return a / b


def _mod(a: float, b: float) -> float:
    if b == 0.0:
        raise AwkFatal("division by zero attempted in `%'")
    try:
        return math.fmod(a, b)
    except ValueError:   # inf % n
        return math.nan


def _pow(a: float, b: float) -> float:
    try:
        r = a ** b
    except OverflowError:
        return math.inf
    except ZeroDivisionError:
        return math.inf
    if type(r) is complex:
        return -math.nan   # C's pow gives a negative NaN here, and gawk prints "-nan"
    return r


def _first(v: Any, *rest: Any) -> Any:
    return v


def base_namespace() -> dict[str, Any]:
    """The helpers every compiled program sees (per-run ones are added by the caller)."""
    from kernel.programs.awk import values as v

    def cmp_factory(op: str) -> Any:
        import operator
        f = getattr(operator, op)

        def cmp(a: Any, b: Any) -> bool:
            if v.is_num_for_compare(a) and v.is_num_for_compare(b):
                return bool(f(v.to_num(a), v.to_num(b)))
            return bool(f(_S[0](a), _S[0](b)))
        return cmp

    _S: list[Any] = [None]
    ns: dict[str, Any] = {
        "_n": v.to_num, "_b": v.truth, "_U": v.UNINIT, "_A": v.AwkArray, "_SN": v.StrNum,
        "_div": _div, "_mod": _mod, "_pow": _pow, "_first": _first,
        "_Next": NextRecord, "_NextFile": NextFile, "_Exit": AwkExit,
        "_aset": _aset, "_S_holder": _S, "_forin": _forin,
    }
    for op in _OPNAME.values():
        ns[f"_cmp_{op}"] = cmp_factory(op)
    return ns


def _forin(arr: dict[bytes, Any], procinfo: dict[bytes, Any]) -> list[bytes]:
    """The keys of a ``for (k in a)``, in gawk's ``PROCINFO["sorted_in"]`` order if one is set."""
    from kernel.programs.awk import values as v
    how = procinfo.get(b"sorted_in")
    keys = list(arr)
    if not how or not isinstance(how, bytes) or how == b"@unsorted":
        return keys
    desc = how.endswith(b"_desc")
    kind = how[:-5] if desc else how[:-4]

    def num_or_str(x: Any) -> tuple[int, float, bytes]:
        if type(x) is float or (type(x) is v.StrNum and v.looks_numeric(x)):
            return (0, v.to_num(x), b"")
        return (1, 0.0, bytes(x) if isinstance(x, bytes) else b"")

    if kind == b"@ind_str":
        keys.sort(key=bytes)
    elif kind == b"@ind_num":
        keys.sort(key=lambda k: (v.to_num(k), bytes(k)))
    elif kind == b"@val_str":
        keys.sort(key=lambda k: (arr[k] if isinstance(arr[k], bytes) else b"%.17g" % arr[k], bytes(k)))
    elif kind in (b"@val_num", b"@val_type"):
        keys.sort(key=lambda k: (num_or_str(arr[k]), bytes(k)))
    else:
        return keys
    if desc:
        keys.reverse()
    return keys


def _aset(arr: dict[bytes, Any], key: bytes, value: Any) -> Any:
    arr[key] = value
    return value
