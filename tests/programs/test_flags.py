"""The shared flag parser: GNU getopt_long rules and messages (checked against GNU head)."""

from __future__ import annotations

import subprocess

import pytest

from kernel.programs.flags import Opt, Spec, UsageError, parse

HEAD = Spec("head", "[OPTION]... [FILE]...", "Print the first 10 lines of each FILE.", [
    Opt("c", "bytes", arg="NUM", help="print the first NUM bytes"),
    Opt("n", "lines", arg="NUM", help="print the first NUM lines"),
    Opt("q", "quiet", help="never print headers", dest="quiet"),
    Opt(None, "silent", dest="quiet", help="same as --quiet"),
    Opt("v", "verbose", help="always print headers"),
    Opt("z", "zero-terminated", help="line delimiter is NUL"),
])


def test_clusters_attached_and_separate_arguments():
    a = parse(HEAD, ["head", "-qn5", "f", "-c", "7", "--lines=3", "g"])
    assert a["quiet"] is True and a["lines"] == "3" and a["bytes"] == "7"
    assert a.operands == ["f", "g"]
    assert a.order[:2] == [("quiet", True), ("lines", "5")]


def test_double_dash_and_single_dash():
    a = parse(HEAD, ["head", "-", "--", "-n", "--x"])
    assert a.operands == ["-", "-n", "--x"] and "lines" not in a


def test_unique_prefix_and_ambiguity():
    assert parse(HEAD, ["head", "--li", "4"])["lines"] == "4"
    with pytest.raises(UsageError, match="ambiguous"):
        parse(HEAD, ["head", "--v"])  # --verbose, --version


def test_no_permute_stops_at_first_operand():
    spec = Spec("env", "", "", [Opt("i", "ignore-environment")], permute=False)
    a = parse(spec, ["env", "-i", "cmd", "-i"])
    assert a["ignore_environment"] is True and a.operands == ["cmd", "-i"]


def test_counts_and_appends():
    spec = Spec("x", "", "", [Opt("v", action="count"), Opt("e", "regexp", arg="P", action="append")])
    a = parse(spec, ["x", "-vv", "-e", "a", "--regexp=b", "-v"])
    assert a["v"] == 3 and a["regexp"] == ["a", "b"]


@pytest.mark.parametrize("argv", [["-x"], ["--frob"], ["-n"], ["--lines"], ["--quiet=1"], ["--v"]])
def test_messages_match_gnu_head(argv):
    gnu = subprocess.run(["head", *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert gnu.returncode == 1
    with pytest.raises(UsageError) as info:
        parse(HEAD, ["head", *argv])
    first = gnu.stderr.splitlines()[0]
    assert first == f"head: {info.value}"


def test_help_is_generated_from_the_options():
    text = HEAD.help_text()
    assert text.startswith("Usage: head [OPTION]... [FILE]...\n")
    assert "-n, --lines=NUM" in text and "--silent" in text and "--help" in text
