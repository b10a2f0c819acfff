"""``stty`` and ``clear``: the kernel PTY's line discipline through ``ctx``'s termios calls.

stty shows GNU's layout; the flags the kernel does not model (parity, baud, flow control)
print as a fresh Linux PTY has them and cannot be changed (``stty: invalid argument``)."""

from __future__ import annotations

from typing import Any

from kernel.errors import KernelError
from kernel.programs.common import error, strerror

# modelled flag -> termios attribute
_FLAGS = {"icrnl": "icrnl", "opost": "opost", "onlcr": "onlcr", "icanon": "icanon", "echo": "echo",
          "echoe": "echoe", "echoctl": "echoctl", "isig": "isig", "tostop": "tostop"}
_CHARS = {"intr": "VINTR", "quit": "VQUIT", "erase": "VERASE", "kill": "VKILL", "eof": "VEOF",
          "susp": "VSUSP", "werase": "VWERASE"}
_SANE = {"icrnl": True, "opost": True, "onlcr": True, "icanon": True, "echo": True, "echoe": True,
         "echoctl": True, "isig": True, "tostop": False}
_SANE_CC = {"VINTR": 0x03, "VQUIT": 0x1C, "VERASE": 0x7F, "VKILL": 0x15, "VEOF": 0x04,
            "VSUSP": 0x1A, "VWERASE": 0x17}


def char_name(c: int | None) -> str:
    """``^C``, ``^?``, ``<undef>`` as stty prints control characters."""
    if c is None or c < 0:
        return "<undef>"
    if c == 0x7F:
        return "^?"
    if c < 0x20:
        return "^" + chr(c + 0x40)
    return chr(c)


def parse_char(text: str) -> int | None:
    """stty's character syntax: ``^C``, ``^?``, ``undef``, a single character, or a number."""
    if text in ("undef", "^-", ""):
        return None
    if len(text) == 2 and text[0] == "^":
        return 0x7F if text[1] == "?" else ord(text[1].upper()) & 0x1F
    if len(text) == 1:
        return ord(text)
    return int(text, 0)


def _flag(t: Any, name: str) -> str:
    return name if getattr(t, _FLAGS[name]) else "-" + name


def listing(t: Any, rows: int, cols: int, everything: bool) -> str:
    cc = t.cc
    if not everything:
        diffs = [_flag(t, n) for n in _FLAGS if getattr(t, _FLAGS[n]) != _SANE[n]]
        diffs += [f"{n} = {char_name(cc.get(k))};" for n, k in _CHARS.items()
                  if cc.get(k) != _SANE_CC[k]]
        return "speed 38400 baud; line = 0;\n" + (" ".join(diffs) + "\n" if diffs else "")
    chars = " ".join(f"{n} = {char_name(cc.get(k))};" for n, k in list(_CHARS.items())[:5])
    return (
        f"speed 38400 baud; rows {rows}; columns {cols}; line = 0;\n"
        f"{chars} eol = <undef>; eol2 = <undef>; swtch = <undef>; start = ^Q; stop = ^S;\n"
        f"susp = {char_name(cc.get('VSUSP'))}; rprnt = ^R; werase = {char_name(cc.get('VWERASE'))}; "
        "lnext = ^V; discard = ^O; min = 1; time = 0;\n"
        "-parenb -parodd -cmspar cs8 -hupcl -cstopb cread -clocal -crtscts\n"
        f"-ignbrk -brkint -ignpar -parmrk -inpck -istrip -inlcr -igncr {_flag(t, 'icrnl')} ixon -ixoff "
        "-iuclc -ixany -imaxbel iutf8\n"
        f"{_flag(t, 'opost')} -olcuc -ocrnl {_flag(t, 'onlcr')} -onocr -onlret -ofill -ofdel nl0 cr0 "
        "tab0 bs0 vt0 ff0\n"
        f"{_flag(t, 'isig')} {_flag(t, 'icanon')} iexten {_flag(t, 'echo')} {_flag(t, 'echoe')} echok "
        f"-echonl -noflsh -xcase {_flag(t, 'tostop')} -echoprt {_flag(t, 'echoctl')} echoke -flusho "
        "-extproc\n")


class SttyError(Exception):
    """A setting stty does not know; ``str`` is the argument."""


def apply(t: Any, words: list[str], size: list[int]) -> None:
    """Change *t* (and *size* = [rows, cols]) by stty's setting words."""
    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        neg = w.startswith("-")
        name = w[1:] if neg else w
        if name in _FLAGS:
            setattr(t, _FLAGS[name], not neg)
        elif w == "raw" or w == "-cooked":
            t.icrnl = t.opost = t.icanon = t.isig = False
        elif w in ("-raw", "cooked"):
            t.icrnl = t.opost = t.icanon = t.isig = True
        elif w == "sane":
            for k, v in _SANE.items():
                setattr(t, k, v)
            t.cc.update(_SANE_CC)
        elif w in ("cbreak", "-cbreak"):
            t.icanon = neg
        elif w in ("nl", "-nl"):
            t.icrnl = neg
            t.onlcr = neg
        elif w in ("rows", "cols", "columns") and i < len(words) and words[i].isdigit():
            size[0 if w == "rows" else 1] = int(words[i])
            i += 1
        elif name in _CHARS and not neg and i < len(words):
            try:
                c = parse_char(words[i])
            except ValueError:
                raise SttyError(words[i]) from None
            if c is None:
                t.cc.pop(_CHARS[name], None)
            else:
                t.cc[_CHARS[name]] = c
            i += 1
        elif name in ("ixon", "iutf8", "iexten", "echok", "echoke", "cs8", "cread") and not neg:
            pass  # on, as on every Linux PTY, and not modelled further
        else:
            raise SttyError(w)


async def prog_stty(ctx: Any) -> int:
    argv = list(ctx.argv[1:])
    if argv[:1] in (["--help"], ["--version"]):
        text = ("Usage: stty [SETTING]...\n  or:  stty OPTION\nPrint or change terminal "
                "characteristics.\n\n  -a, --all    print all current settings in human-readable form\n"
                "  -g, --save   print all current settings in a stty-readable form\n"
                if argv[0] == "--help" else "stty (vfsfuse 0.1)\n")
        await ctx.write_all(1, text)
        return 0
    try:
        t = ctx.tcgetattr(0)
        rows, cols = ctx.get_winsize(0)
    except KernelError as e:
        await error(ctx, "stty", f"'standard input': {strerror(e)}")
        return 1
    if not argv or argv in (["-a"], ["--all"]):
        await ctx.write_all(1, listing(t, rows, cols, bool(argv)))
        return 0
    if argv == ["size"]:
        await ctx.write_all(1, f"{rows} {cols}\n")
        return 0
    if argv in (["-g"], ["--save"]):
        flags = ":".join(n if getattr(t, a) else "-" + n for n, a in _FLAGS.items())
        await ctx.write_all(1, flags + "\n")
        return 0
    if len(argv) == 1 and ":" in argv[0]:
        argv = argv[0].split(":")
    size = [rows, cols]
    try:
        apply(t, argv, size)
    except SttyError as e:
        await error(ctx, "stty", f"invalid argument '{e}'\nTry 'stty --help' for more information.")
        return 1
    try:
        await ctx.tcsetattr(0, t)
        if size != [rows, cols]:
            await ctx.set_winsize(0, size[0], size[1])
    except KernelError as e:
        await error(ctx, "stty", f"'standard input': {strerror(e)}")
        return 1
    return 0


# (clear, clear scrollback) per terminal type, as ncurses' terminfo has them
_CLEAR = {
    "xterm": ("\x1b[H\x1b[2J", "\x1b[3J"), "xterm-256color": ("\x1b[H\x1b[2J", "\x1b[3J"),
    "xterm-color": ("\x1b[H\x1b[2J", ""), "rxvt": ("\x1b[H\x1b[2J", ""),
    "rxvt-unicode": ("\x1b[H\x1b[2J", ""), "screen": ("\x1b[H\x1b[J", ""),
    "screen-256color": ("\x1b[H\x1b[J", ""), "tmux": ("\x1b[H\x1b[J", "\x1b[3J"),
    "tmux-256color": ("\x1b[H\x1b[J", "\x1b[3J"), "linux": ("\x1b[H\x1b[J", "\x1b[3J"),
    "vt100": ("\x1b[H\x1b[J", ""), "vt102": ("\x1b[H\x1b[J", ""), "vt220": ("\x1b[H\x1b[J", ""),
    "ansi": ("\x1b[H\x1b[J", ""),
}


async def prog_clear(ctx: Any) -> int:
    """ncurses' clear for the common terminal types; ``-x`` keeps the scrollback."""
    argv = list(ctx.argv[1:])
    keep = False
    term = ctx.getenv("TERM")
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "-x":
            keep = True
        elif a == "-V":
            await ctx.write_all(1, "ncurses 6.4 (vfsfuse)\n")
            return 0
        elif a.startswith("-T") and (len(a) > 2 or i < len(argv)):
            term = a[2:] if len(a) > 2 else argv[i]
            i += 0 if len(a) > 2 else 1
        else:
            await ctx.write_all(2, "Usage: clear [options]\n\nOptions:\n  -T TERM     use this "
                                   "instead of $TERM\n  -V          print curses-version\n  -x        "
                                   "  do not try to clear scrollback\n")
            return 1
    if not term:
        await ctx.write_all(2, "TERM environment variable not set.\n")
        return 1
    if term == "dumb":
        return 1
    codes = _CLEAR.get(term)
    if codes is None:
        await ctx.write_all(2, f"'{term}': unknown terminal type.\n")
        return 1
    await ctx.write_all(1, codes[0] + ("" if keep else codes[1]))
    return 0


PROGRAMS = {"stty": prog_stty, "clear": prog_clear}
