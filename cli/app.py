"""The ``vfsfuse`` click group, its exit codes and its one error policy.

Command modules (``store_cmds``, ``mount_cmds``, ...) register on ``vfsfuse`` with its own
decorators (``@vfsfuse.command("gc")``); ``cli.main`` imports them all.

Every expected failure (a ``KernelError``, a host ``OSError``, a bad store) ends
as one line on stderr, ``vfsfuse: CODE: message``, and a documented exit code;
a traceback is shown only for real bugs and only with ``VFSFUSE_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
import sys

import click

from kernel.errors import KernelError, unwrap_group

EXIT_OK = 0
EXIT_REPAIRED = 1
EXIT_USAGE = 2
EXIT_PROBLEMS = 4
EXIT_ERROR = 8
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer

EPILOG = """\b
Exit codes:
  0    success (fsck: the store is clean)
  1    fsck --repair: problems found and all repaired
  2    usage error (bad command, option or argument)
  4    problems left: fsck found problems it did not (or could not) repair;
       load: referenced blocks are missing from the block store
  8    the operation failed; the reason is one line on stderr,
       "vfsfuse: CODE: message" (e.g. ENOENT, EEXIST, EBUSY for a mounted store)
  70   internal error (a bug; set VFSFUSE_DEBUG=1 to see the traceback)
  130  interrupted
  141  stdout was closed early (e.g. vfsfuse dump STORE | head)

\b
Paths: STORE is a store directory (made by mkfs); STORE:/path names a file
inside an unmounted store; a path inside a mount names a file of the mounted
store (found through MOUNT/.vfs).
"""


class CliError(click.ClickException):
    """An expected failure: one line on stderr and a chosen exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a ClassVar; ours varies

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"vfsfuse: {self.message}", err=True)


def _leaf(exc: BaseException) -> BaseException:
    """The first interesting exception inside (nested) exception groups from trio nurseries."""
    return unwrap_group(exc, (KernelError, OSError, KeyboardInterrupt, CliError))


def translate(exc: BaseException) -> click.ClickException | None:
    """Map an exception escaping a command to the CLI error it stands for (None: a bug)."""
    exc = _leaf(exc)
    if isinstance(exc, click.ClickException):
        return exc
    if isinstance(exc, KernelError):
        return CliError(str(exc), EXIT_ERROR)
    if isinstance(exc, KeyboardInterrupt):
        return CliError("interrupted", EXIT_INTERRUPTED)
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0, "EIO")
        what = f"{exc.filename}: " if exc.filename else ""
        return CliError(f"{code}: {what}{exc.strerror or exc}", EXIT_ERROR)
    return None


# click shows a group's help (exit 2) when it is run without a subcommand: not an error line
_SHOW_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _usage(exc: click.UsageError) -> click.ClickException:
    """A usage error as one line that names the help to read (click prints three)."""
    if isinstance(exc, _SHOW_HELP):
        return exc
    where = exc.ctx.command_path if exc.ctx is not None else "vfsfuse"
    return CliError(f"usage: {exc.format_message()} (see '{where} --help')", EXIT_USAGE)


class VfsGroup(click.Group):
    """A click group that turns expected exceptions into one-line errors."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:  # bad options of the group itself
            raise _usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.UsageError as exc:
            raise _usage(exc) from None
        except BrokenPipeError:
            # `vfsfuse dump STORE | head`: the reader left; stop quietly like other tools
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise click.exceptions.Exit(EXIT_BROKEN_PIPE) from None
        except BaseException as exc:  # noqa: BLE001 - the CLI's single error boundary
            mapped = translate(exc)
            if mapped is not None and mapped is not exc:
                raise mapped from None
            if mapped is not None:
                raise
            if isinstance(exc, (SystemExit, GeneratorExit)):
                raise
            if os.environ.get("VFSFUSE_DEBUG"):
                raise
            raise CliError(f"internal error: {type(exc).__name__}: {exc} "
                           "(set VFSFUSE_DEBUG=1 for a traceback)", EXIT_INTERNAL) from None


@click.group(cls=VfsGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vfsfuse", prog_name="vfsfuse")
def vfsfuse() -> None:
    """A chunked, content-addressed filesystem in a store directory, mountable with FUSE."""
