"""Tests of the shell lexer and parser.

Two kinds: unit tests that pin the tree for each construct (the interpreter
depends on its exact shape), and a corpus in ``parse_cases/*.txt`` whose
expectations are checked against ``bash -n`` so the parser accepts exactly
what bash accepts.
"""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kernel.shell import ast as A
from kernel.shell.parser import IncompleteInput, Parser, ShellSyntaxError, parse, parse_expansion_text

BASH = "/bin/bash"
CASES_DIR = Path(__file__).parent / "parse_cases"


# ---------------------------------------------------------------------------
# helpers


def cmds(src: str, **kw: object) -> list[A.Command]:
    """The commands of the first pipeline of each list item."""
    prog = parse(src, **kw)  # type: ignore[arg-type]
    return [ao.first.commands[0] for ao, _bg in prog.body.items]


def cmd(src: str, **kw: object) -> A.Command:
    return cmds(src, **kw)[0]


def simple(src: str, **kw: object) -> A.SimpleCommand:
    c = cmd(src, **kw)
    assert isinstance(c, A.SimpleCommand)
    return c


def word(src: str, **kw: object) -> A.Word:
    """The second word of ``echo <src>``."""
    return simple("echo " + src, **kw).words[1]


def lit(text: str) -> A.Word:
    return A.Word([A.Lit(text)])


def text_of(w: A.Word) -> str:
    """Literal words only: their text after quote removal."""
    out = []
    for p in w.parts:
        if isinstance(p, (A.Lit, A.SQ, A.DollarSQ)):
            out.append(p.text)
        elif isinstance(p, A.Escaped):
            out.append(p.char)
        elif isinstance(p, A.DQ):
            out.append(text_of(A.Word(p.parts)))
        else:
            raise AssertionError(f"not literal: {p!r}")
    return "".join(out)


def words(src: str) -> list[str]:
    return [text_of(w) for w in simple(src).words]


def bash_check(src: str, *opts: str) -> tuple[str, bool]:
    """(first error line bash -n prints for ``src`` without its ``bash: -c:
    line N: `` prefix or "", whether it printed warnings)."""
    r = subprocess.run([BASH, *opts, "-n", "-c", src], capture_output=True, text=True)
    lines = [ln for ln in r.stderr.splitlines() if "warning:" not in ln]
    if not lines:
        return "", bool(r.stderr)
    return re.sub(r"^[^:]*bash: -c: line \d+: ", "", lines[0]), True


def bash_message(src: str, *opts: str) -> str:
    return bash_check(src, *opts)[0]


# ---------------------------------------------------------------------------
# the corpus, checked against bash -n


def load_cases() -> list[tuple[str, str, str, bool]]:
    """(id, expectation, source, extglob) for every block of every corpus file."""
    out = []
    for path in sorted(CASES_DIR.glob("*.txt")):
        ext = path.name.startswith("extglob")
        cur: list | None = None
        for line in path.read_text().split("\n"):
            m = re.match(r"### (ok|error|incomplete) (.*)$", line)
            if m:
                cur = [f"{path.stem}: {m.group(2)}", m.group(1), [], ext]
                out.append(cur)
            elif cur is not None:
                cur[2].append(line)
    return [(c[0], c[1], "\n".join(c[2]), c[3]) for c in out]


CASES = load_cases()


def classify_ours(src: str, extglob: bool) -> str:
    try:
        parse(src, extglob=extglob)
    except IncompleteInput:
        return "incomplete"
    except ShellSyntaxError:
        return "error"
    return "ok"


def bash_accepts_silently(src: str, opts: list[str]) -> bool:
    """Some errors in ``[[ ]]`` (``[[ ]]``, ``[[ a || ]]``) make bash stop
    without a message and with status 0.  A line that is always an error is
    appended: bash reports it only if it got past ``src``."""
    r = subprocess.run([BASH, *opts, "-n", "-c", src + "\n)"], capture_output=True, text=True)
    return "unexpected token `)'" in r.stderr


def classify_bash(case: tuple[str, str, str, bool]) -> str:
    """bash -n on one case; an error mentioning an unexpected end of input is
    "incomplete".  (bash -n exits 0 after errors in [[ ]], so stderr decides.)"""
    _cid, _exp, src, ext = case
    opts = ["-O", "extglob"] if ext else []
    msg, printed = bash_check(src, *opts)
    if not msg:
        # only warnings (an unterminated here-document), or nothing at all
        return "ok" if printed or bash_accepts_silently(src, opts) else "error"
    if "unexpected end of file" in msg or "unexpected EOF" in msg:
        return "incomplete"
    return "error"


def test_corpus_is_large_and_varied() -> None:
    kinds = [c[1] for c in CASES]
    assert len(CASES) >= 400
    assert kinds.count("error") >= 60 and kinds.count("incomplete") >= 20
    assert len({c[0] for c in CASES}) == len(CASES), "case names must be unique"


@pytest.mark.parametrize("cid,expected,src,extglob", CASES, ids=[c[0] for c in CASES])
def test_corpus_case(cid: str, expected: str, src: str, extglob: bool) -> None:
    assert classify_ours(src, extglob) == expected


def test_corpus_marks_agree_with_bash() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:  # bash start-up dominates: overlap it
        got = dict(zip([c[0] for c in CASES], pool.map(classify_bash, CASES)))
    wrong = {cid: (exp, got[cid]) for cid, exp, _s, _e in CASES if got[cid] != exp}
    assert not wrong


# ---------------------------------------------------------------------------
# error messages


COMMON_MISTAKES = [
    "if true; then fi", "echo a; ;", "while true; do done", "{ }", "echo $(if)",
    "case x in a) echo; b) echo;; esac", "echo a &; echo", "for x in a b; echo", "f() echo",
    "echo \"abc", "echo 'abc", "if true; then", "(echo", "x=(1 2", "echo `echo", "echo ${x",
    "[[ a b ]]", "[[ -f ]]", "cat < (ls)", "done", "echo >", "echo > |", "(( 1 +", "echo $(( 1 +",
    "a | | b", "[[ a ==", "[[ -n", "fi", "then", "}", "echo (", "a=(1;2)", "[[ a == ]]", "case x in esac esac",
    "if a; then b; else c; else d; fi", "echo a; done", "((echo a) | b", "f(x) { :; }",
]


@pytest.mark.parametrize("src", COMMON_MISTAKES)
def test_error_message_is_bash_s(src: str) -> None:
    with pytest.raises(ShellSyntaxError) as info:
        parse(src)
    assert str(info.value) == bash_message(src)


def test_error_position_and_token() -> None:
    with pytest.raises(ShellSyntaxError) as info:
        parse("echo ok\nif true; then\n  echo\nfi fi")
    e = info.value
    assert (e.line, e.col, e.token) == (4, 4, "fi")
    assert e.source_line == "fi fi"
    assert not isinstance(e, IncompleteInput)


def test_newline_token_is_named_newline() -> None:
    with pytest.raises(ShellSyntaxError) as info:
        parse("echo >\necho")
    assert info.value.token == "newline"
    assert str(info.value) == "syntax error near unexpected token `newline'"


# ---------------------------------------------------------------------------
# incomplete input (interactive continuation)


@pytest.mark.parametrize("src", [
    "if true; then", "echo 'abc", 'echo "abc', "echo $(ls", "for x in a", "while :; do", "case x in",
    "echo a |", "true &&", "{ echo", "f() {", "echo ${x", "echo `ls", "a=(1", "[[ a == b", "((1+",
    "cat <<EOF\nbody", "echo $(cat <<EOF\nx\nEOF\n", "function f", "case x in a) echo;;",
])
def test_incomplete_input_interactive(src: str) -> None:
    with pytest.raises(IncompleteInput):
        parse(src, interactive=True)


def test_line_continuation_at_end_is_incomplete_only_interactively() -> None:
    for src in ["echo a \\\n", "echo a\\\n"]:
        assert parse(src).body.items
        with pytest.raises(IncompleteInput):
            parse(src, interactive=True)
    assert parse("echo a # comment \\\n", interactive=True).body.items


def test_incomplete_then_complete() -> None:
    src = "if true; then\n"
    with pytest.raises(IncompleteInput):
        parse(src, interactive=True)
    prog = parse(src + "echo yes\nfi\n", interactive=True)
    assert isinstance(prog.body.items[0][0].first.commands[0], A.If)


def test_unterminated_heredoc_in_script_warns_like_bash() -> None:
    p = Parser("cat <<EOF\nline\n")
    prog = p.parse_program()
    redir = prog.body.items[0][0].first.commands[0].redirs[0]  # type: ignore[union-attr]
    assert redir.heredoc.body == A.Word([A.Lit("line\n")])
    assert p.warnings == ["here-document at line 1 delimited by end-of-file (wanted `EOF')"]


def test_syntax_errors_are_not_incomplete() -> None:
    for src in ["fi", "echo >", "{ }", "echo a &; b"]:
        with pytest.raises(ShellSyntaxError) as info:
            parse(src, interactive=True)
        assert not isinstance(info.value, IncompleteInput), src


# ---------------------------------------------------------------------------
# nesting limits and size


DEEP = 10_000


@pytest.mark.parametrize("src", [
    "echo " + "$(" * DEEP + "x" + ")" * DEEP,
    "{ " * DEEP + "x; " + "} " * DEEP,
    "( " * DEEP + "x" + " )" * DEEP,
    "if x; then " * DEEP + "x" + "; fi" * DEEP,
    "while x; do " * DEEP + "x" + "; done" * DEEP,
    "echo " + "${x:-" * DEEP + "a" + "}" * DEEP,
    'echo "' + '$(echo "' * DEEP + "x" + '")' * DEEP + '"',
    "[[ " + "( " * DEEP + "a" + " )" * DEEP + " ]]",
    "[[ " + "! " * DEEP + "a ]]",
    "echo " + "{a," * DEEP + "b" + "}" * DEEP,
    "f() { " * DEEP + ":; " + "} " * DEEP,
    "case x in x) " * DEEP + ":" + ";; esac" * DEEP,
    "echo " + "<(" * DEEP + "x" + ")" * DEEP,
])
def test_deep_nesting_is_a_syntax_error_fast(src: str) -> None:
    t = time.perf_counter()
    with pytest.raises(ShellSyntaxError) as info:
        parse(src)
    assert str(info.value) == "maximum nesting depth exceeded"
    assert time.perf_counter() - t < 2.0


def test_max_depth_is_configurable() -> None:
    src = "{ " * 20 + "x; " + "} " * 20
    assert parse(src, max_depth=25)
    with pytest.raises(ShellSyntaxError, match="maximum nesting depth exceeded"):
        parse(src, max_depth=15)


def test_nesting_below_default_limit_parses() -> None:
    n = 900
    prog = parse("echo " + "$(" * n + "x" + ")" * n)
    w = prog.body.items[0][0].first.commands[0].words[1]  # type: ignore[union-attr]
    assert isinstance(w.parts[0], A.CmdSub)


def test_deep_arithmetic_parentheses_stay_flat() -> None:
    # ((((…)))) is one arithmetic command: the parentheses are its text, which
    # kernel.shell.arith (with its own limit) evaluates.
    c = cmd("((" + "(" * DEEP + "1" + ")" * DEEP + "))")
    assert isinstance(c, A.ArithCommand)
    assert text_of(c.expr) == "(" * DEEP + "1" + ")" * DEEP


def test_large_script_parses_in_linear_time() -> None:
    chunk = (
        'for f in "$@"; do\n  if [[ -f $f ]]; then echo "x $f $(basename "$f")" >>log 2>&1; fi\n'
        "done\ncase $x in a|b) echo ab;; *) : ;; esac\ncat <<EOF\nbody $x\nEOF\n"
    )
    small = chunk * 200
    big = chunk * 1000
    t0 = time.perf_counter()
    parse(small)
    t1 = time.perf_counter()
    prog = parse(big)
    t2 = time.perf_counter()
    assert len(prog.body.items) == 1000 * 3
    # five times the input: allow noise, but not quadratic growth (25x)
    assert (t2 - t1) < 12 * (t1 - t0) + 0.5


# ---------------------------------------------------------------------------
# simple commands


def test_simple_command_words() -> None:
    c = simple("echo hello   world")
    assert c.words == [lit("echo"), lit("hello"), lit("world")]
    assert c.assigns == [] and c.redirs == []


def test_assignments_before_command() -> None:
    c = simple("a=1 b= c+=x env")
    assert [(a.name, a.value, a.append) for a in c.assigns] == [
        ("a", lit("1"), False), ("b", A.Word([]), False), ("c", lit("x"), True)]
    assert c.words == [lit("env")]


def test_assignment_after_command_word_is_a_word() -> None:
    c = simple("echo a=1")
    assert c.assigns == [] and [text_of(w) for w in c.words] == ["echo", "a=1"]


def test_array_assignment() -> None:
    a = simple("a=(x 'y z' [3]=w [k]+=v $v)").assigns[0]
    assert a.name == "a" and a.value is None
    assert a.array is not None
    assert [(e.key and text_of(e.key), e.append) for e in a.array] == [
        (None, False), (None, False), ("3", False), ("k", True), (None, False)]
    assert a.array[1].value == A.Word([A.SQ("y z")])
    assert a.array[4].value == A.Word([A.Param("v")])


def test_array_elements_get_brace_expansion() -> None:
    a = simple("a=({1..3})").assigns[0]
    assert a.array is not None
    assert a.array[0].value.parts == [A.BraceRange("1", "3", None, "int")]


def test_subscript_assignment() -> None:
    a = simple("a[i+1]+=x").assigns[0]
    assert (a.name, a.index, a.value, a.append) == ("a", lit("i+1"), lit("x"), True)
    a = simple("a[$k]=v").assigns[0]
    assert a.index == A.Word([A.Param("k")])


def test_subscript_reading_like_bash() -> None:
    a = simple("a[1 + 2]=3").assigns[0]
    assert a.index == lit("1 + 2")
    a = simple("a['k y']=v").assigns[0]
    assert a.index == A.Word([A.SQ("k y")])
    # not an assignment: the bracketed text, blanks included, is one word
    assert words("echo[ a b ]x y") == ["echo[ a b ]x", "y"]
    with pytest.raises(IncompleteInput):
        parse("echo[ a b")


def test_assignment_value_tilde_and_no_braces() -> None:
    a = simple("P=~/bin:~x/y:$P").assigns[0]
    assert a.value is not None
    assert a.value.parts == [A.Tilde(""), A.Lit("/bin:"), A.Tilde("x"), A.Lit("/y:"), A.Param("P")]
    a = simple("x={a,b}").assigns[0]
    assert a.value == lit("{a,b}")


def test_declaration_builtin_arguments_are_assignments() -> None:
    c = simple("declare -a x=(1 2) y=~")
    assert [text_of(w) if i < 2 else None for i, w in enumerate(c.words[:2])] == ["declare", "-a"]
    x = c.words[2].assign
    assert x is not None and x.name == "x" and x.array is not None and len(x.array) == 2
    y = c.words[3].assign
    assert y is not None and y.value == A.Word([A.Tilde("")])


def test_argument_looking_like_assignment_gets_tilde() -> None:
    # bash (not in POSIX mode) expands ~ after = in such arguments
    assert word("a=~/x").parts == [A.Lit("a="), A.Tilde(""), A.Lit("/x")]
    assert word("a=~/x", posix=True).parts == [A.Lit("a=~/x")]


def test_redirections() -> None:
    c = simple("cmd <in >out 2>>err 3<>rw >|clob 4<&0 >&2 5>&- &>both &>>bothapp <<<str")
    got = [(r.fd, r.op, text_of(r.target)) for r in c.redirs]
    assert got == [
        (None, "<", "in"), (None, ">", "out"), (2, ">>", "err"), (3, "<>", "rw"), (None, ">|", "clob"),
        (4, "<&", "0"), (None, ">&", "2"), (5, ">&", "-"), (None, "&>", "both"), (None, "&>>", "bothapp"),
        (None, "<<<", "str")]
    assert c.words == [lit("cmd")]


def test_export_and_local_arguments_carry_assignments() -> None:
    c = simple("export A=1 B+=2 plain")
    assert [w.assign and (w.assign.name, w.assign.append) for w in c.words] == [
        None, ("A", False), ("B", True), None]
    c = simple("local -r x[2]=v")
    assert c.words[2].assign is not None and c.words[2].assign.index == lit("2")


def test_redirection_fd_var_and_position() -> None:
    c = simple("exec {fd}>file")
    r = c.redirs[0]
    assert (r.fd, r.fd_var, r.op, text_of(r.target)) == (None, "fd", ">", "file")
    c = simple(">f echo a")
    assert c.words == [lit("echo"), lit("a")] and c.redirs[0].op == ">"


def test_redirect_targets_braces_and_tilde() -> None:
    c = simple("cat >{a,b} <<<{c,d} 2>~/e")
    assert c.redirs[0].target.parts == [A.BraceExp([lit("a"), lit("b")])]
    assert c.redirs[1].target == lit("{c,d}")
    assert c.redirs[2].target.parts == [A.Tilde(""), A.Lit("/e")]


def test_number_not_touching_redirect_is_a_word() -> None:
    c = simple("echo 2 >f")
    assert c.words == [lit("echo"), lit("2")] and c.redirs[0].fd is None


def test_reserved_words_only_in_command_position() -> None:
    assert words("echo if then fi done { } !") == ["echo", "if", "then", "fi", "done", "{", "}", "!"]
    assert isinstance(cmd("if x; then y; fi"), A.If)
    assert isinstance(cmd("'if' x"), A.SimpleCommand)


def test_comments_and_continuations() -> None:
    assert words("echo a#b # comment") == ["echo", "a#b"]
    assert words("echo a\\\nb c") == ["echo", "ab", "c"]
    assert words("ec\\\nho x") == ["echo", "x"]


def test_list_background_and_andor() -> None:
    prog = parse("a & b; c && d || e")
    items = prog.body.items
    assert [bg for _, bg in items] == [True, False, False]
    ao = items[2][0]
    assert [op for op, _ in ao.rest] == ["&&", "||"]


def test_pipeline_flags() -> None:
    prog = parse("time -p ! a | b |& c")
    p = prog.body.items[0][0].first
    assert (p.time, p.time_posix, p.negate, p.pipe_stderr) == (True, True, True, [False, True])
    assert len(p.commands) == 3
    p = parse("time").body.items[0][0].first
    assert p.time and p.commands == []
    p = parse("! ! true").body.items[0][0].first
    assert not p.negate


def test_time_after_pipe_is_a_command() -> None:
    p = parse("a | time b").body.items[0][0].first
    c = p.commands[1]
    assert isinstance(c, A.SimpleCommand) and words_of(c) == ["time", "b"]


def words_of(c: A.SimpleCommand) -> list[str]:
    return [text_of(w) for w in c.words]


# ---------------------------------------------------------------------------
# words


def test_quoting_parts() -> None:
    w = word("a'b'\"c $x\"\\*$'\\n'")
    assert w.parts == [A.Lit("a"), A.SQ("b"), A.DQ([A.Lit("c "), A.Param("x")]), A.Escaped("*"),
                       A.DollarSQ("\n")]


def test_double_quote_backslash_rules() -> None:
    assert word(r'"\$ \` \" \\ \a"').parts == [A.DQ([A.Lit('$ ` " \\ \\a')])]


def test_ansi_c_decoding() -> None:
    assert word(r"$'\x41\u263a\t\e\cA\101\''").parts == [A.DollarSQ("A\u263a\t\x1b\x01A'")]


def test_locale_string_is_double_quoted() -> None:
    assert word('$"hi $x"').parts == [A.DQ([A.Lit("hi "), A.Param("x")])]


def test_special_parameters() -> None:
    got = [p.name for p in word("$?$$$!$#$@$*$-$0$1${10}").parts]  # type: ignore[union-attr]
    assert got == ["?", "$", "!", "#", "@", "*", "-", "0", "1", "10"]
    assert word("$12").parts == [A.Param("1"), A.Lit("2")]
    assert word("$").parts == [A.Lit("$")]


PARAM_CASES = [
    ("${x}", A.Param("x", braced=True)),
    ("${x:-a b}", A.Param("x", ":-", lit("a b"), braced=True)),
    ("${x-}", A.Param("x", "-", A.Word([]), braced=True)),
    ("${x:=v}", A.Param("x", ":=", lit("v"), braced=True)),
    ("${x?msg}", A.Param("x", "?", lit("msg"), braced=True)),
    ("${x:+alt}", A.Param("x", ":+", lit("alt"), braced=True)),
    ("${#x}", A.Param("x", length=True, braced=True)),
    ("${#}", A.Param("#", braced=True)),
    ("${##}", A.Param("#", length=True, braced=True)),
    ("${#-}", A.Param("-", length=True, braced=True)),
    ("${x%.*}", A.Param("x", "%", lit(".*"), braced=True)),
    ("${x%%.*}", A.Param("x", "%%", lit(".*"), braced=True)),
    ("${x#*/}", A.Param("x", "#", lit("*/"), braced=True)),
    ("${x##*/}", A.Param("x", "##", lit("*/"), braced=True)),
    ("${x/a/b}", A.Param("x", "/", lit("a"), lit("b"), braced=True)),
    ("${x//a/b}", A.Param("x", "//", lit("a"), lit("b"), braced=True)),
    ("${x/#a/b}", A.Param("x", "/#", lit("a"), lit("b"), braced=True)),
    ("${x/%a/b}", A.Param("x", "/%", lit("a"), lit("b"), braced=True)),
    ("${x/a}", A.Param("x", "/", lit("a"), None, braced=True)),
    ("${x/a/}", A.Param("x", "/", lit("a"), A.Word([]), braced=True)),
    ("${x/a/b/c}", A.Param("x", "/", lit("a"), lit("b/c"), braced=True)),
    ("${x:1}", A.Param("x", ":", lit("1"), braced=True)),
    ("${x:1:2}", A.Param("x", ":", lit("1"), lit("2"), braced=True)),
    ("${x: -1}", A.Param("x", ":", lit(" -1"), braced=True)),
    ("${x^}", A.Param("x", "^", braced=True)),
    ("${x^^}", A.Param("x", "^^", braced=True)),
    ("${x,}", A.Param("x", ",", braced=True)),
    ("${x,,[AB]}", A.Param("x", ",,", lit("[AB]"), braced=True)),
    ("${x@Q}", A.Param("x", "@", lit("Q"), braced=True)),
    ("${!x}", A.Param("x", indirect=True, braced=True)),
    ("${!x:-d}", A.Param("x", ":-", lit("d"), indirect=True, braced=True)),
    ("${!pre*}", A.Param("pre", "prefix*", braced=True)),
    ("${!pre@}", A.Param("pre", "prefix@", braced=True)),
    ("${!a[@]}", A.Param("a", "keys", subscript=lit("@"), braced=True)),
    ("${!a[*]}", A.Param("a", "keys", subscript=lit("*"), braced=True)),
    ("${!a[0]}", A.Param("a", subscript=lit("0"), indirect=True, braced=True)),
    ("${a[i+1]}", A.Param("a", subscript=lit("i+1"), braced=True)),
    ("${a[@]}", A.Param("a", subscript=lit("@"), braced=True)),
    ("${#a[@]}", A.Param("a", subscript=lit("@"), length=True, braced=True)),
    ("${a[@]:1:2}", A.Param("a", ":", lit("1"), lit("2"), subscript=lit("@"), braced=True)),
    ("${x:-{a}", A.Param("x", ":-", lit("{a"), braced=True)),
    ("${x!}", A.Param("x!", "bad", lit("x!"), braced=True)),
    ("${1}", A.Param("1", braced=True)),
    ("${@}", A.Param("@", braced=True)),
]


@pytest.mark.parametrize("src,expected", PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_parameter_expansion(src: str, expected: A.Param) -> None:
    assert word(src).parts == [expected]


def test_parameter_word_parts() -> None:
    p = word('${x:-"a b"$y$(z)}').parts[0]
    assert isinstance(p, A.Param) and p.arg is not None
    assert [type(q).__name__ for q in p.arg.parts] == ["DQ", "Param", "CmdSub"]
    p = word("${a[$i]}").parts[0]
    assert isinstance(p, A.Param) and p.subscript == A.Word([A.Param("i")])


def test_single_quotes_in_double_quoted_parameter() -> None:
    # in "${x:-'a'}" the quotes are literal; in "${x#'a'}" they quote the pattern
    (dq,) = word("\"${x:-'a'}\"").parts
    assert isinstance(dq, A.DQ) and dq.parts[0].arg == lit("'a'")  # type: ignore[union-attr]
    (dq,) = word("\"${x#'a'}\"").parts
    assert dq.parts[0].arg == A.Word([A.SQ("a")])  # type: ignore[union-attr]


def test_tilde_in_parameter_default() -> None:
    assert word("${x:-~/d}").parts[0].arg.parts == [A.Tilde(""), A.Lit("/d")]  # type: ignore[union-attr]


def test_command_substitution_is_parsed() -> None:
    (p,) = word("$(echo a; echo b)").parts
    assert isinstance(p, A.CmdSub) and not p.backquote
    assert len(p.body.items) == 2
    (p,) = word("`echo \\`echo hi\\``").parts
    assert isinstance(p, A.CmdSub) and p.backquote and p.error is None
    inner = p.body.items[0][0].first.commands[0].words[1].parts[0]  # type: ignore[union-attr]
    assert isinstance(inner, A.CmdSub) and inner.backquote


def test_backquote_in_double_quotes_unescapes_quotes() -> None:
    (dq,) = word('"`echo \\"a b\\"`"').parts
    sub = dq.parts[0]  # type: ignore[union-attr]
    assert isinstance(sub, A.CmdSub)
    assert sub.body.items[0][0].first.commands[0].words[1] == A.Word([A.DQ([A.Lit("a b")])])  # type: ignore[union-attr]


def test_backquote_syntax_error_is_deferred_like_bash() -> None:
    (p,) = word("`if`").parts
    assert isinstance(p, A.CmdSub) and p.error == "syntax error: unexpected end of file"
    assert p.body.items == []


def test_cmdsub_with_case_and_comment() -> None:
    (p,) = word("$(case x in x) echo;; esac)").parts
    assert isinstance(p, A.CmdSub) and isinstance(p.body.items[0][0].first.commands[0], A.Case)
    (p,) = word("$(echo a # ) not the end\n)").parts
    assert isinstance(p, A.CmdSub)
    assert words_of(p.body.items[0][0].first.commands[0]) == ["echo", "a"]  # type: ignore[arg-type]


def test_arithmetic_substitution() -> None:
    (p,) = word("$(( x + ${y:-1} * $(n) ))").parts
    assert isinstance(p, A.ArithSub)
    assert [type(q).__name__ for q in p.expr.parts] == ["Lit", "Param", "Lit", "CmdSub", "Lit"]
    assert p.expr.parts[0] == A.Lit(" x + ")
    (p,) = word("$[1+2]").parts
    assert isinstance(p, A.ArithSub) and p.expr == lit("1+2")
    (p,) = word('$(( "1" + 2 ))').parts
    assert isinstance(p, A.ArithSub) and p.expr.parts[1] == A.DQ([A.Lit("1")])


def test_dollar_paren_paren_fallback_defers_syntax_errors() -> None:
    (p,) = word("$((;; x )y)").parts
    assert isinstance(p, A.CmdSub) and p.error == "syntax error near unexpected token `;;'"


def test_heredoc_body_lexing_error_is_deferred() -> None:
    (h,) = heredocs("cat <<EOF\n$((1 +\nEOF\n")
    assert isinstance(h.body, A.Word)
    (p,) = h.body.parts
    assert isinstance(p, A.CmdSub) and p.error == "unexpected EOF while looking for matching `)'"


def test_dollar_paren_paren_falls_back_to_subshell() -> None:
    (p,) = word("$((echo a); (echo b))").parts
    assert isinstance(p, A.CmdSub)
    assert [type(ao.first.commands[0]).__name__ for ao, _ in p.body.items] == ["Subshell", "Subshell"]


def test_process_substitution() -> None:
    c = simple("diff <(ls a) >(cat)")
    assert [type(w.parts[0]).__name__ for w in c.words[1:]] == ["ProcSub", "ProcSub"]
    assert [w.parts[0].direction for w in c.words[1:]] == ["<", ">"]  # type: ignore[union-attr]
    w = simple("echo x<(true)").words[1]
    assert isinstance(w.parts[0], A.Lit) and isinstance(w.parts[1], A.ProcSub)


def test_process_substitution_next_to_digits_and_in_parameter_words() -> None:
    c = simple("echo 2>(cat)")
    assert c.redirs == [] and isinstance(c.words[1].parts[1], A.ProcSub)
    p = word("${x:-<(true)}").parts[0]
    assert isinstance(p, A.Param) and p.arg is not None and isinstance(p.arg.parts[0], A.ProcSub)
    (dq,) = word('"${x:-<(true)}"').parts
    assert dq == A.DQ([A.Param("x", ":-", lit("<(true)"), braced=True)])


def test_tilde_only_when_unquoted_prefix() -> None:
    assert word("~").parts == [A.Tilde("")]
    assert word("~user/x").parts == [A.Tilde("user"), A.Lit("/x")]
    assert word("~+").parts == [A.Tilde("+")]
    assert word("a~").parts == [A.Lit("a~")]
    assert word('~"x"').parts == [A.Lit("~"), A.DQ([A.Lit("x")])]
    assert word("'~'").parts == [A.SQ("~")]


def test_glob_characters_stay_literal_and_escaped() -> None:
    assert word("*.t?t[ab]").parts == [A.Lit("*.t?t[ab]")]
    assert word("\\*x").parts == [A.Escaped("*"), A.Lit("x")]


def test_extglob_parts() -> None:
    assert word("x@(a|b)y", extglob=True).parts == [A.Lit("x"), A.ExtGlob("@(a|b)"), A.Lit("y")]
    with pytest.raises(ShellSyntaxError):
        parse("echo @(a|b)")


def test_brace_parts() -> None:
    assert word("{a,b}").parts == [A.BraceExp([lit("a"), lit("b")])]
    assert word("x{1..10..2}").parts == [A.Lit("x"), A.BraceRange("1", "10", 2, "int")]
    assert word("{a..e}").parts == [A.BraceRange("a", "e", None, "char")]
    assert word("{a}").parts == [A.Lit("{a}")]
    assert word('"{a,b}"').parts == [A.DQ([A.Lit("{a,b}")])]
    assert word("{$x,y}").parts == [A.BraceExp([A.Word([A.Param("x")]), lit("y")])]


def test_no_braces_in_case_and_cond_words() -> None:
    c = cmd("case {a,b} in {a,b}) ;; esac")
    assert isinstance(c, A.Case) and c.word == lit("{a,b}") and c.items[0].patterns == [lit("{a,b}")]
    c = cmd("[[ {a,b} ]]")
    assert isinstance(c, A.CondCommand) and c.expr == A.CondWord(lit("{a,b}"))


# ---------------------------------------------------------------------------
# compound commands


def test_if_elif_else() -> None:
    c = cmd("if a; then b; elif c; then d; else e; fi")
    assert isinstance(c, A.If) and len(c.clauses) == 2 and c.else_body is not None
    assert words_of(c.else_body.items[0][0].first.commands[0]) == ["e"]  # type: ignore[arg-type]


def test_while_until() -> None:
    c = cmd("while a; b; do c; done")
    assert isinstance(c, A.While) and not c.until and len(c.cond.items) == 2
    c = cmd("until a; do b; done")
    assert isinstance(c, A.While) and c.until


def test_for_forms() -> None:
    c = cmd("for x in a {1..2} 'b c'; do :; done")
    assert isinstance(c, A.For) and c.var == "x" and c.words is not None
    assert c.words[1].parts == [A.BraceRange("1", "2", None, "int")]
    c = cmd("for x; do :; done")
    assert isinstance(c, A.For) and c.words is None
    c = cmd("for x in; do :; done")
    assert isinstance(c, A.For) and c.words == []
    c = cmd("for x in a; { :; }")
    assert isinstance(c, A.For) and len(c.body.items) == 1


def test_arith_for() -> None:
    c = cmd("for ((i=0; i<$n; i++)); do :; done")
    assert isinstance(c, A.ArithFor)
    assert c.init == lit("i=0") and c.step == lit(" i++")
    assert c.cond == A.Word([A.Lit(" i<"), A.Param("n")])
    c = cmd("for ((;;)); do break; done")
    assert isinstance(c, A.ArithFor) and (c.init, c.cond, c.step) == (None, None, None)


def test_select() -> None:
    c = cmd("select x in a b; do break; done")
    assert isinstance(c, A.Select) and c.var == "x" and c.words == [lit("a"), lit("b")]


def test_case() -> None:
    c = cmd("case $x in (a|b) one;; c) two;& d) three;;& *) esac")
    assert isinstance(c, A.Case) and c.word == A.Word([A.Param("x")])
    assert [(len(i.patterns), i.terminator) for i in c.items] == [(2, ";;"), (1, ";&"), (1, ";;&"), (1, ";;")]
    assert c.items[3].body.items == []


def test_group_subshell_and_redirects() -> None:
    c = cmd("{ a; b; } >out 2>&1")
    assert isinstance(c, A.Group) and len(c.body.items) == 2 and [r.op for r in c.redirs] == [">", ">&"]
    c = cmd("(a) <in")
    assert isinstance(c, A.Subshell) and c.redirs[0].op == "<"


def test_double_paren_subshells_fallback() -> None:
    c = cmd("((a) ; (b))")
    assert isinstance(c, A.Subshell) and isinstance(c.body.items[0][0].first.commands[0], A.Subshell)


def test_arith_command() -> None:
    c = cmd("(( x += $y ))")
    assert isinstance(c, A.ArithCommand) and c.expr == A.Word([A.Lit(" x += "), A.Param("y"), A.Lit(" ")])


def test_function_definitions() -> None:
    c = cmd("f() { echo; } >log")
    assert isinstance(c, A.FunctionDef) and c.name == "f" and isinstance(c.body, A.Group)
    assert [r.op for r in c.redirs] == [">"] and c.body.redirs == []
    assert c.source == "f() { echo; } >log"
    for src in ["function f { :; }", "function f() { :; }", "f () ( : )", "f()\n{\n:\n}"]:
        c = cmd(src)
        assert isinstance(c, A.FunctionDef) and c.name == "f", src
    c = cmd("foo-bar.baz() { :; }")
    assert isinstance(c, A.FunctionDef) and c.name == "foo-bar.baz"


def test_function_source_text() -> None:
    prog = parse("f() {\n  cat <<EOF\nx\nEOF\n} 2>&1; f\nfunction g { :; }\n")
    f = prog.body.items[0][0].first.commands[0]
    assert isinstance(f, A.FunctionDef) and f.source == "f() {\n  cat <<EOF\nx\nEOF\n} 2>&1"
    g = prog.body.items[2][0].first.commands[0]
    assert isinstance(g, A.FunctionDef) and g.source == "function g { :; }"


def test_coproc() -> None:
    c = cmd("coproc cat file")
    assert isinstance(c, A.Coproc) and c.name == "COPROC" and isinstance(c.body, A.SimpleCommand)
    c = cmd("coproc NAME { cat; }")
    assert isinstance(c, A.Coproc) and c.name == "NAME" and isinstance(c.body, A.Group)


def test_cond_expressions() -> None:
    c = cmd("[[ -f a && ( b == c* || ! d ) ]]")
    assert isinstance(c, A.CondCommand)
    assert c.expr == A.CondAnd(
        A.CondUnary("-f", lit("a")),
        A.CondOr(A.CondBinary("==", lit("b"), lit("c*")), A.CondNot(A.CondWord(lit("d")))))


@pytest.mark.parametrize("op", ["==", "=", "!=", "<", ">", "-eq", "-ne", "-lt", "-le", "-gt", "-ge",
                                "-nt", "-ot", "-ef"])
def test_cond_binary_operators(op: str) -> None:
    c = cmd(f"[[ a {op} b ]]")
    assert isinstance(c, A.CondCommand) and c.expr == A.CondBinary(op, lit("a"), lit("b"))


def test_cond_regex_word() -> None:
    c = cmd("[[ $x =~ ^(a|b)[0-9]+\"lit\"$ ]]")
    assert isinstance(c, A.CondCommand) and isinstance(c.expr, A.CondBinary)
    assert c.expr.op == "=~"
    assert c.expr.right == A.Word([A.Lit("^(a|b)[0-9]+"), A.DQ([A.Lit("lit")]), A.Lit("$")])


def test_cond_pattern_allows_extglob() -> None:
    c = cmd("[[ x == @(a|b) ]]")
    assert c.expr.right == A.Word([A.ExtGlob("@(a|b)")])  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# here-documents


def heredocs(src: str, **kw: object) -> list[A.HereDoc]:
    out = []
    for c in cmds(src, **kw):
        for r in getattr(c, "redirs", []):
            if r.heredoc is not None:
                out.append(r.heredoc)
    return out


def test_heredoc_unquoted_body_parts() -> None:
    (h,) = heredocs('cat <<EOF\na $x "q" \\$y \\z `w`\nEOF\n')
    assert not h.quoted and h.delimiter == "EOF"
    assert isinstance(h.body, A.Word)
    assert [type(p).__name__ for p in h.body.parts] == ["Lit", "Param", "Lit", "CmdSub", "Lit"]
    assert h.body.parts[2] == A.Lit(' "q" $y \\z ')


def test_heredoc_quoted_delimiters() -> None:
    for d in ["'EOF'", '"EOF"', "\\EOF", "E'O'F"]:
        (h,) = heredocs(f"cat <<{d}\n$x `y`\nEOF\n")
        assert h.quoted and h.delimiter == "EOF" and h.body == "$x `y`\n", d


def test_heredoc_strip_tabs() -> None:
    (h,) = heredocs("cat <<-EOF\n\t\tone\n\ttwo\n\tEOF\n")
    assert h.strip_tabs and h.body == lit("one\ntwo\n")


def test_two_heredocs_on_one_line_and_following_command() -> None:
    prog = parse("cat <<A <<B; echo x\na\nA\nb\nB\necho after\n")
    c0 = prog.body.items[0][0].first.commands[0]
    assert [r.heredoc.body for r in c0.redirs] == [lit("a\n"), lit("b\n")]  # type: ignore[union-attr]
    assert len(prog.body.items) == 3
    assert words_of(prog.body.items[2][0].first.commands[0]) == ["echo", "after"]  # type: ignore[arg-type]


def test_heredoc_line_continuation_joins_before_delimiter_check() -> None:
    (h,) = heredocs("cat <<EOF\nab\\\nEOF\nEOF\n")
    assert h.body == lit("abEOF\n")
    (h,) = heredocs("cat <<'EOF'\nab\\\nEOF\n")
    assert h.body == "ab\\\n"


def test_heredoc_inside_command_substitution() -> None:
    (p,) = word("$(cat <<EOF\nin $x\nEOF\n)").parts
    assert isinstance(p, A.CmdSub)
    r = p.body.items[0][0].first.commands[0].redirs[0]  # type: ignore[union-attr]
    assert r.heredoc.body == A.Word([A.Lit("in "), A.Param("x"), A.Lit("\n")])


def test_heredoc_cmdsub_syntax_error_is_deferred_like_bash() -> None:
    (h,) = heredocs("cat <<EOF\n$(fi) and $(echo ok)\nEOF\n")
    assert isinstance(h.body, A.Word)
    bad, _and, good, _nl = h.body.parts
    assert isinstance(bad, A.CmdSub) and bad.error == "syntax error near unexpected token `fi'"
    assert isinstance(good, A.CmdSub) and good.error is None and len(good.body.items) == 1


def test_heredoc_body_is_not_parsed_as_commands() -> None:
    (h,) = heredocs("cat <<EOF\nfi ) ;; done\nEOF\n")
    assert h.body == lit("fi ) ;; done\n")


def test_heredoc_in_compound_and_pipeline() -> None:
    prog = parse("while read l; do echo $l; done <<EOF | cat\n1\nEOF\n")
    w = prog.body.items[0][0].first.commands[0]
    assert isinstance(w, A.While) and w.redirs[0].heredoc.body == lit("1\n")  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# positions


def test_positions() -> None:
    prog = parse("echo a\n  if x; then\n    y $z\n  fi")
    i = prog.body.items[1][0].first.commands[0]
    assert isinstance(i, A.If) and (i.line, i.col) == (2, 3)
    y = i.clauses[0][1].items[0][0].first.commands[0]
    assert isinstance(y, A.SimpleCommand) and (y.line, y.col) == (3, 5)
    z = y.words[1].parts[0]
    assert (z.line, z.col) == (3, 7)


def test_positions_inside_substitutions_and_heredocs() -> None:
    prog = parse('echo "ab $(echo $q)"\ncat <<EOF\nx $y\nEOF\n')
    dq = prog.body.items[0][0].first.commands[0].words[1].parts[0]  # type: ignore[union-attr]
    sub = dq.parts[1]
    assert (sub.line, sub.col) == (1, 10)
    q = sub.body.items[0][0].first.commands[0].words[1].parts[0]
    assert (q.line, q.col) == (1, 17)
    body = prog.body.items[1][0].first.commands[0].redirs[0].heredoc.body  # type: ignore[union-attr]
    y = body.parts[1]
    assert isinstance(y, A.Param) and (y.line, y.col) == (3, 3)


def test_positions_do_not_affect_equality() -> None:
    assert A.Lit("x", line=1, col=1) == A.Lit("x", line=9, col=9)


# ---------------------------------------------------------------------------
# incremental parsing and aliases


def test_parse_next_one_command_at_a_time() -> None:
    p = Parser("a; b\n\nif x\nthen y\nfi\nc &\n")
    got = []
    while (cl := p.parse_next()) is not None:
        got.append([type(ao.first.commands[0]).__name__ for ao, _ in cl.items])
    assert got == [["SimpleCommand", "SimpleCommand"], ["If"], ["SimpleCommand"]]


def test_parse_next_does_not_read_ahead() -> None:
    # the second line is a syntax error; the first command is still returned
    p = Parser("echo ok\nfi\n")
    first = p.parse_next()
    assert first is not None and len(first.items) == 1
    with pytest.raises(ShellSyntaxError):
        p.parse_next()


def test_last_source_is_the_consumed_text() -> None:
    p = Parser("echo a; echo b\ncat <<EOF\nbody\nEOF\n\nif x\nthen :; fi")
    spans = []
    while p.parse_next() is not None:
        spans.append(p.last_source)
    assert spans == ["echo a; echo b\n", "cat <<EOF\nbody\nEOF\n", "\nif x\nthen :; fi"]


def test_parse_expansion_text() -> None:
    w = parse_expansion_text('\\u@$HOST:${PWD##*/} $(date) "q" \\$')
    assert [type(p).__name__ for p in w.parts] == ["Lit", "Param", "Lit", "Param", "Lit", "CmdSub", "Lit"]
    assert w.parts[-1] == A.Lit(' "q" $')
    bad = parse_expansion_text("$(fi)")
    assert isinstance(bad.parts[0], A.CmdSub) and bad.parts[0].error is not None


def test_alias_table_consulted_at_parse_time() -> None:
    table: dict[str, str] = {}
    p = Parser("ll x\nll y\n", aliases=table.get)
    c1 = p.parse_next()
    table["ll"] = "ls -l"
    c2 = p.parse_next()
    assert c1 is not None and c2 is not None
    assert words_of(c1.items[0][0].first.commands[0]) == ["ll", "x"]  # type: ignore[arg-type]
    assert words_of(c2.items[0][0].first.commands[0]) == ["ls", "-l", "y"]  # type: ignore[arg-type]


def test_aliases() -> None:
    table = {"ll": "ls -l", "ls": "ls --color", "loop": "loop again", "a": "b", "b": "a",
             "sudo": "sudo ", "e": "", "myif": "if true; then", "x": "echo X"}

    def first(src: str) -> A.Command:
        return parse(src, aliases=table.get).body.items[0][0].first.commands[0]

    assert words_of(first("ll f")) == ["ls", "--color", "-l", "f"]  # type: ignore[arg-type]
    assert words_of(first("loop")) == ["loop", "again"]  # type: ignore[arg-type]
    assert words_of(first("a")) == ["a"]  # type: ignore[arg-type]
    assert words_of(first("sudo x y")) == ["sudo", "echo", "X", "y"]  # type: ignore[arg-type]
    assert words_of(first("echo x")) == ["echo", "x"]  # type: ignore[arg-type]
    assert words_of(first("e echo hi")) == ["echo", "hi"]  # type: ignore[arg-type]
    assert words_of(first("'ll'")) == ["ll"]  # type: ignore[arg-type]
    assert words_of(first("v=1 ll")) == ["ls", "--color", "-l"]  # type: ignore[arg-type]
    assert isinstance(first("myif echo; fi"), A.If)


def test_alias_after_pipe_and_separator() -> None:
    prog = parse("echo | ll; ll && ll", aliases={"ll": "ls -l"}.get)
    firsts = [ao.first for ao, _ in prog.body.items]
    assert words_of(firsts[0].commands[1]) == ["ls", "-l"]  # type: ignore[arg-type]
    assert words_of(prog.body.items[1][0].rest[0][1].commands[0]) == ["ls", "-l"]  # type: ignore[arg-type]


def test_posix_mode_reserved_words_before_aliases() -> None:
    table = {"if": "echo IF"}
    c = parse("if x", aliases=table.get).body.items[0][0].first.commands[0]
    assert isinstance(c, A.SimpleCommand) and words_of(c) == ["echo", "IF", "x"]
    with pytest.raises(IncompleteInput):
        parse("if x", aliases=table.get, posix=True)


def test_alias_to_compound_start() -> None:
    table = {"forever": "while true; do", "stop": "break; done"}
    c = parse("forever echo; stop", aliases=table.get).body.items[0][0].first.commands[0]
    assert isinstance(c, A.While) and len(c.body.items) == 2


def test_extglob_can_change_between_commands() -> None:
    p = Parser("echo ok\necho @(a)\n")
    assert p.parse_next() is not None
    p.extglob = True
    cl = p.parse_next()
    assert cl is not None
    assert cl.items[0][0].first.commands[0].words[1].parts == [A.ExtGlob("@(a)")]  # type: ignore[union-attr]
