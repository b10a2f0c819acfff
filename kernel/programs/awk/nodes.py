"""The syntax tree of an awk program: one dataclass per construct, each with its line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union


@dataclass
class Num:
    value: float
    line: int = 0


@dataclass
class Str:
    value: bytes
    line: int = 0


@dataclass
class Regex:
    """``/re/``: as a value it is ``$0 ~ /re/``; as a function argument, the regex itself."""

    source: bytes
    line: int = 0


@dataclass
class Var:
    name: str
    line: int = 0


@dataclass
class Field:
    index: "Expr"
    line: int = 0


@dataclass
class Index:
    name: str
    subs: list["Expr"]
    line: int = 0


@dataclass
class Assign:
    op: str                # "=", "+=", ...
    target: "LValue"
    value: "Expr"
    line: int = 0


@dataclass
class Cond:
    test: "Expr"
    yes: "Expr"
    no: "Expr"
    line: int = 0


@dataclass
class Binary:
    op: str                # + - * / % ^ < <= == != > >= && || concat
    left: "Expr"
    right: "Expr"
    line: int = 0


@dataclass
class Unary:
    op: str                # - + !
    operand: "Expr"
    line: int = 0


@dataclass
class IncDec:
    op: str                # "++" or "--"
    prefix: bool
    target: "LValue"
    line: int = 0


@dataclass
class MatchOp:
    negate: bool
    subject: "Expr"
    regex: "Expr"
    line: int = 0


@dataclass
class In:
    subs: list["Expr"]
    name: str
    line: int = 0


@dataclass
class Group:
    """A parenthesised expression (kept so ``print (a) > "f"`` and ``(a, b) in x`` parse)."""

    exprs: list["Expr"]
    line: int = 0


@dataclass
class Call:
    name: str
    args: list["Expr"]
    line: int = 0


@dataclass
class Builtin:
    name: str
    args: list["Expr"]
    line: int = 0


@dataclass
class Getline:
    kind: str              # "plain", "file", "cmd"
    target: Optional["LValue"]
    source: Optional["Expr"]
    line: int = 0


Expr = Union[Num, Str, Regex, Var, Field, Index, Assign, Cond, Binary, Unary, IncDec, MatchOp, In,
             Group, Call, Builtin, Getline]
LValue = Union[Var, Field, Index]


@dataclass
class Print:
    printf: bool
    args: list[Expr]
    redir: str = ""        # "", ">", ">>", "|"
    dest: Optional[Expr] = None
    line: int = 0


@dataclass
class ExprStmt:
    expr: Expr
    line: int = 0


@dataclass
class If:
    test: Expr
    yes: "Stmt"
    no: Optional["Stmt"] = None
    line: int = 0


@dataclass
class While:
    test: Expr
    body: "Stmt"
    line: int = 0


@dataclass
class DoWhile:
    body: "Stmt"
    test: Expr
    line: int = 0


@dataclass
class For:
    init: Optional["Stmt"]
    test: Optional[Expr]
    step: Optional["Stmt"]
    body: "Stmt"
    line: int = 0


@dataclass
class ForIn:
    var: LValue
    array: str
    body: "Stmt"
    line: int = 0


@dataclass
class Block:
    body: list["Stmt"] = field(default_factory=list)
    line: int = 0


@dataclass
class Simple:
    """``next``, ``nextfile``, ``break``, ``continue``."""

    what: str
    line: int = 0


@dataclass
class Exit:
    value: Optional[Expr] = None
    line: int = 0


@dataclass
class Return:
    value: Optional[Expr] = None
    line: int = 0


@dataclass
class Delete:
    name: str
    subs: Optional[list[Expr]] = None
    line: int = 0


@dataclass
class Case:
    """One ``case`` of a gawk ``switch``: a constant or regex (None for ``default``)."""

    label: Optional[Union[Num, Str, Regex]]
    body: list["Stmt"]
    line: int = 0


@dataclass
class Switch:
    subject: Expr
    cases: list[Case]
    line: int = 0


Stmt = Union[Print, ExprStmt, If, While, DoWhile, For, ForIn, Block, Simple, Exit, Return, Delete, Switch]


@dataclass
class Rule:
    pattern: Optional[Expr]
    pattern2: Optional[Expr]     # a range ``p1, p2``
    body: Optional[Block]        # None: ``{ print }``
    line: int = 0


@dataclass
class Function:
    name: str
    params: list[str]
    body: Block
    line: int = 0


@dataclass
class Program:
    begin: list[Block] = field(default_factory=list)
    end: list[Block] = field(default_factory=list)
    beginfile: list[Block] = field(default_factory=list)
    endfile: list[Block] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    functions: dict[str, Function] = field(default_factory=dict)
