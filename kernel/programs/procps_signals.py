"""Signal names and numbers as procps's tools spell them (Linux numbering; 29 is ``POLL``,
as procps lists it, and ``IO`` is accepted as its other name)."""

from __future__ import annotations

NAMES: list[tuple[int, str]] = [
    (1, "HUP"), (2, "INT"), (3, "QUIT"), (4, "ILL"), (5, "TRAP"), (6, "ABRT"), (7, "BUS"),
    (8, "FPE"), (9, "KILL"), (10, "USR1"), (11, "SEGV"), (12, "USR2"), (13, "PIPE"),
    (14, "ALRM"), (15, "TERM"), (16, "STKFLT"), (17, "CHLD"), (18, "CONT"), (19, "STOP"),
    (20, "TSTP"), (21, "TTIN"), (22, "TTOU"), (23, "URG"), (24, "XCPU"), (25, "XFSZ"),
    (26, "VTALRM"), (27, "PROF"), (28, "WINCH"), (29, "POLL"), (30, "PWR"), (31, "SYS"),
]
BY_NAME = {name: num for num, name in NAMES}
BY_NAME.update({"IOT": 6, "CLD": 17, "IO": 29, "UNUSED": 31})
BY_NUM = {num: name for num, name in NAMES}
RTMIN, RTMAX = 34, 64


def number(spec: str) -> int | None:
    """``9``, ``KILL``, ``SIGKILL``, ``kill``, ``RTMIN+2`` -> the number; None if unknown."""
    if spec.isdigit():
        n = int(spec)
        return n if 0 <= n <= RTMAX else None
    s = spec.upper()
    if s.startswith("SIG"):
        s = s[3:]
    if s in BY_NAME:
        return BY_NAME[s]
    for base, start, sign in (("RTMIN", RTMIN, 1), ("RTMAX", RTMAX, -1)):
        if s == base:
            return start
        if s.startswith(base + ("+" if sign > 0 else "-")) and s[len(base) + 1:].isdigit():
            n = start + sign * int(s[len(base) + 1:])
            return n if RTMIN <= n <= RTMAX else None
    return None


def name(num: int) -> str | None:
    return BY_NUM.get(num)


def list_text() -> str:
    """``kill -l``: the names on two lines, as procps prints them."""
    names = [n for _, n in NAMES]
    return " ".join(names[:16]) + "\n" + " ".join(names[16:]) + "\n"


def table_text() -> str:
    """``kill -L``: numbers and names, seven to a line."""
    out = []
    for i, (num, nm) in enumerate(NAMES):
        out.append(f"{num:2d} {nm}\n" if i % 7 == 6 else f"{num:2d} {nm:<8}")
    text = "".join(out)
    return text if text.endswith("\n") else text + "\n"
