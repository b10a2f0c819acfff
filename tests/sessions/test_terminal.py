"""``vfsfuse shell STORE`` through a real PTY, asserting on the screen a terminal emulator
(pyte) shows: prompt, echo, editing keys, history, completion, ^C, ^Z + fg, resize, and the
host terminal given back in its own mode."""

from __future__ import annotations

import time

import pexpect
import pytest

from tests.sessions.conftest import VFSFUSE, Term

UP, LEFT = "\x1b[A", "\x1b[D"


def test_prompt_shows_user_host_and_dir(store, term_factory):
    t = term_factory(store)
    assert t.prompt_line() == "root@sandbox:~#"  # PS1 \u@\h:\w\$ with HOME=/home/user
    t.run("cd /tmp", "root@sandbox:/tmp#")
    t.run("PS1='[\\W|\\s]\\$ '", "[tmp|bash]#")


def test_typed_text_is_echoed_and_runs(store, term_factory):
    t = term_factory(store)
    t.run("echo hello world", "hello world")
    assert "root@sandbox:~# echo hello world" in t.lines()


def test_editing_keys(store, term_factory):
    t = term_factory(store)
    # ^A to the start, insert; ^E to the end; Left and Backspace in the middle; ^W kills a word
    t.send("cho abc junk")
    t.send("\x17")                 # ^W: "cho abc "
    t.send("\x01e")                # ^A e: "echo abc "
    t.send("\x05X" + LEFT + "\x7f")  # ^E X, Left, Backspace (the space): "echo abcX"
    t.run("", "abcX")
    # ^U kills the line, ^Y yanks it back
    t.send("echo one\x15")
    t.wait_for(lambda: t.cursor_line().rstrip().endswith("#"), "an empty line after ^U")
    t.run("\x19", "one")


def test_history_up_arrow_and_history_builtin(store, term_factory):
    t = term_factory(store)
    t.run("echo first-cmd", "first-cmd")
    t.run("echo second-cmd", "second-cmd")
    t.send(UP + UP)
    t.wait_for(lambda: t.cursor_line().endswith("echo first-cmd"), "the first command recalled")
    t.send("\r")
    t.wait_for(lambda: t.text().count("first-cmd") >= 4, "it ran again")
    t.run("history", "4  history")
    assert [ln.split(None, 1) for ln in t.lines() if ln[:5].strip().isdigit()] == [
        ["1", "echo first-cmd"], ["2", "echo second-cmd"], ["3", "echo first-cmd"], ["4", "history"]]


def test_reverse_search(store, term_factory):
    t = term_factory(store)
    t.run("echo needle-77", "needle-77")
    t.run("echo other", "other")
    t.send("\x12need")
    t.wait_for(lambda: "(reverse-i-search)`need': echo needle-77" in t.text(), "the search prompt")
    t.send("\r")
    t.wait_for(lambda: t.text().count("needle-77") >= 3, "the found command ran")


def test_tab_completes_commands_and_paths(store, term_factory):
    t = term_factory(store)
    t.run("mkdir -p /tmp/compdir/sub && echo x > /tmp/compdir/file-one", "root@sandbox:~#")
    t.send("ech\t")
    t.wait_for(lambda: t.cursor_line().endswith("# echo"), "the command completed")
    t.send("/tmp/compd\t")
    t.wait_for(lambda: t.cursor_line().endswith("echo /tmp/compdir/"), "the directory completed")
    t.send("f\t")
    t.wait_for(lambda: t.cursor_line().endswith("echo /tmp/compdir/file-one"), "the file completed")
    t.run("", "/tmp/compdir/file-one")
    # two candidates: the first Tab rings, the second lists them
    t.send("ls /tmp/compdir/\t\t")
    t.wait_for(lambda: any("file-one" in line and "sub" in line for line in t.lines()), "the list")
    t.send("\x03")


def test_ctrl_c_abandons_the_line_and_interrupts_only_the_foreground(store, term_factory):
    t = term_factory(store)
    t.send("echo never")
    t.send("\x03")
    t.wait_for(lambda: any(line.endswith("echo never^C") for line in t.lines()), "^C shown")
    t.run("echo $?", "130")
    # a foreground program (cat reading the terminal) gets SIGINT; the shell survives
    t.send("cat\r")
    time.sleep(0.3)
    t.send("\x03")
    t.run("echo after-cat $?", "after-cat 130")
    # a loop the shell runs itself is interrupted too
    t.send("while :; do :; done\r")
    time.sleep(0.3)
    t.send("\x03")
    t.run("echo after-loop $?", "after-loop 130")


def test_ctrl_z_stops_and_fg_resumes(store, term_factory):
    t = term_factory(store)
    t.send("cat\r")
    time.sleep(0.3)
    t.send("\x1a")
    t.wait_for(lambda: "Stopped" in t.text() and t.count_prompts() >= 2, "the job stopped")
    t.run("jobs", "[1]+  Stopped")
    t.send("fg\r")
    t.wait_for(lambda: t.cursor_line().strip() == "" or "cat" in t.cursor_line(), "cat back in front")
    time.sleep(0.3)
    t.send("typed-after-fg\r")
    t.wait_for(lambda: t.text().count("typed-after-fg") >= 2, "cat echoes the line back")
    t.send("\x04")  # EOF ends cat
    t.run("echo fg-done $?", "fg-done 0")


def test_resize_updates_columns_and_lines(store, term_factory):
    t = term_factory(store)
    t.run("echo size $COLUMNS x $LINES", "size 80 x 40")
    t.resize(30, 100)
    t.run("echo now $COLUMNS x $LINES", "now 100 x 30")


def test_long_line_wraps_and_edits(store, term_factory):
    t = term_factory(store, cols=40)
    word = "w" * 50
    t.send(f"echo {word}")
    t.send("\x01\x06\x06\x06\x06\x06")  # to the start, then right past "echo "
    t.send("Z")
    t.run("", "Z" + word[:20])


def test_exit_status_and_terminal_restored(store, host_env):
    # the host terminal is raw while attached; afterwards stty shows it cooked again
    child = pexpect.spawn("sh", ["-c", f"{VFSFUSE} shell {store}; echo rc=$?; stty -a"], env=host_env,
                          dimensions=(24, 80), timeout=30)
    child.expect("sandbox:")
    child.send("exit 7\r")
    child.expect(r"rc=7")
    child.expect(pexpect.EOF)
    out = child.before.decode()
    assert " icanon" in out and " echo " in out and "-icanon" not in out


@pytest.mark.slow
def test_hangup_restores_terminal(store, host_env):
    child = pexpect.spawn("sh", ["-c", f"{VFSFUSE} shell {store} & p=$!; sleep 3; kill -TERM $p; "
                                       "wait $p; echo rc=$?; stty -a"],
                          env=host_env, dimensions=(24, 80), timeout=30)
    child.expect(r"rc=\d+")
    child.expect(pexpect.EOF)
    assert "-icanon" not in child.before.decode()


def test_store_in_use_is_one_line(store, host_env):
    t1 = Term(store, dict(host_env)).start()
    try:
        child = pexpect.spawn(VFSFUSE, ["shell", store], env=host_env, timeout=20)
        child.expect(pexpect.EOF)
        out = child.before.decode().strip()
        child.close()
        assert child.exitstatus == 8, out
        assert out.startswith("vfsfuse: EBUSY:") and len(out.splitlines()) == 1, out
    finally:
        t1.close()


@pytest.mark.parametrize("ps1, shown", [("\\u\\$ ", "root# "), ("[\\w] ", "[~] "), ("$PWD> ", "/home/user> ")])
def test_prompt_escapes(store, term_factory, ps1, shown):
    t = term_factory(store)
    t.send(f"PS1='{ps1}'\r")
    t.wait_for(lambda: any(line.startswith(shown.rstrip()) for line in t.lines()), repr(shown))


def test_ctrl_c_spares_background_jobs(store, term_factory):
    t = term_factory(store)
    t.run("sleep 30 &", "[1]")
    t.send("cat\r")
    time.sleep(0.3)
    t.send("\x03")
    t.run("jobs", "Running")
    assert any(line.startswith("[1]") and "Running" in line for line in t.lines())


def test_shell_starts_in_store_path(store, term_factory):
    t = term_factory(f"{store}:/tmp")
    assert t.prompt_line() == "root@sandbox:/tmp#"


def test_background_job_announced_and_reported_done(store, term_factory):
    t = term_factory(store)
    t.run("true &", "[1] ")
    t.wait_for(lambda: True, "")
    t.run("echo next", "next")
    assert any(line.startswith("[1]+  Done") for line in t.lines()), t.text()


def test_continuation_prompt(store, term_factory):
    t = term_factory(store)
    t.send("for i in 1 2; do\r")
    t.wait_for(lambda: t.cursor_line().startswith(">"), "the PS2 prompt")
    t.send("echo loop-$i\r")
    t.send("done\r")
    t.wait_for(lambda: "loop-2" in t.text() and t.at_prompt(), "the loop's output")
    assert "loop-1" in t.lines()


def test_bashrc_inside_the_sandbox_is_read(store, term_factory):
    import vfsfuse

    with vfsfuse.Sandbox(store) as sb:
        sb.write_file("/home/user/.bashrc", "PS1='rc-prompt\\$ '\nalias hi='echo hello-from-alias'\n")
    t = term_factory(store, expect_prompt="rc-prompt")
    t.run("hi", "hello-from-alias")
