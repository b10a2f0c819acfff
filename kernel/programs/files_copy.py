"""Programs that change the tree: cp, mv, rm, ln, install, chmod, chown, chgrp (GNU semantics:
the target-directory forms, -r/-a/-p/-f/-i/-n/-v, the same-file and into-itself refusals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.errors import KernelError
from kernel.fs import Attr
from kernel.programs.common import CHUNK, IdNames, Reader, fsencode, quote, strerror
from kernel.programs.files_base import (
    Tool,
    base_name,
    dir_name,
    is_dir_attr,
    join,
    lstat_or_none,
    parse_mode,
)
from kernel.programs.files_basic import mkdir_parents
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.syscalls import O_CREAT, O_TRUNC, O_WRONLY


async def ask(ctx: Any, prompt: str) -> bool:
    """An interactive question on stderr; yes when the answer from stdin starts with y/Y."""
    await ctx.write_all(2, fsencode(prompt))
    line = await Reader(ctx, 0, 1).readline()
    return line[:1] in (b"y", b"Y")


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")


async def _real(ctx: Any, path: str) -> str:
    try:
        return await ctx.realpath(path)
    except KernelError:
        d = dir_name(path)
        try:
            return join(await ctx.realpath(d), base_name(path))
        except KernelError:
            return path


def _targets(operands: list[str], target_dir: str | None, no_target: bool,
             dest_is_dir: bool) -> tuple[list[tuple[str, str]], str | None]:
    """(source, destination) pairs for the ``SRC DEST`` / ``SRC... DIR`` / ``-t DIR`` forms,
    or an error text."""
    if target_dir is not None:
        return [(s, join(target_dir, base_name(s))) for s in operands], None
    if no_target:
        if len(operands) > 2:
            return [], f"extra operand {quote(operands[2])}"
        return [(operands[0], operands[1])], None
    *srcs, dest = operands
    if dest_is_dir:
        return [(s, join(dest, base_name(s))) for s in srcs], None
    if len(srcs) > 1:
        return [], f"target {quote(dest)} is not a directory"
    return [(srcs[0], dest)], None


async def _check_operands(tool: Tool, operands: list[str], target_dir: str | None) -> bool:
    if not operands:
        await tool.usage("missing file operand")
        return False
    if target_dir is None and len(operands) == 1:
        await tool.usage(f"missing destination file operand after {quote(operands[0])}")
        return False
    return True


# ============================================================================ cp

CP = Spec("cp", "[OPTION]... [-T] SOURCE DEST\n  or:  cp [OPTION]... SOURCE... DIRECTORY\n"
          "  or:  cp [OPTION]... -t DIRECTORY SOURCE...", "Copy SOURCE to DEST, or multiple "
          "SOURCE(s) to DIRECTORY.", [
    Opt("a", "archive", help="same as -dR --preserve=all"),
    Opt("d", None, help="same as --no-dereference --preserve=links"),
    Opt("f", "force", help="if an existing destination file cannot be opened, remove it and try again"),
    Opt("i", "interactive", help="prompt before overwrite"),
    Opt("H", None, help="follow command-line symbolic links in SOURCE"),
    Opt("l", "link", help="hard link files instead of copying"),
    Opt("L", "dereference", help="always follow symbolic links in SOURCE"),
    Opt("n", "no-clobber", help="do not overwrite an existing file"),
    Opt("P", "no-dereference", help="never follow symbolic links in SOURCE"),
    Opt("p", None, help="same as --preserve=mode,ownership,timestamps"),
    Opt(None, "preserve", arg="ATTR_LIST", optional_arg=True, help="preserve the specified attributes"),
    Opt(None, "no-preserve", arg="ATTR_LIST", help="don't preserve the specified attributes"),
    Opt("R", "recursive", help="copy directories recursively"),
    Opt("r", None, dest="recursive", help="copy directories recursively"),
    Opt("s", "symbolic-link", help="make symbolic links instead of copying"),
    Opt("t", "target-directory", arg="DIRECTORY", help="copy all SOURCE arguments into DIRECTORY"),
    Opt("T", "no-target-directory", help="treat DEST as a normal file"),
    Opt("u", "update", help="copy only when the SOURCE file is newer than the destination file"),
    Opt("v", "verbose", help="explain what is being done"),
    Opt("x", "one-file-system", help="stay on this file system"),
])


@dataclass
class CopyOpts:
    recursive: bool
    deref: str            # "always", "never", "cmdline"
    preserve_mode: bool
    preserve_owner: bool
    preserve_times: bool
    force: bool
    interactive: bool
    no_clobber: bool
    update: bool
    verbose: bool
    link: bool
    symlink: bool


class Copier:
    """cp's walk: files by 64 KiB blocks, directories recursively, symlinks as links (-P)."""

    def __init__(self, ctx: Any, tool: Tool, o: CopyOpts) -> None:
        self.ctx, self.tool, self.o = ctx, tool, o

    async def copy(self, src: str, dst: str, top: bool) -> bool:
        ctx, o = self.ctx, self.o
        follow = o.deref == "always" or (o.deref == "cmdline" and top)
        try:
            sa = await (ctx.stat(src) if follow else ctx.lstat(src))
        except KernelError as e:
            await self.tool.fail("cannot stat", src, e)
            return False
        if sa.is_dir and not o.recursive and not o.symlink:
            await self.tool.err(f"-r not specified; omitting directory {quote(src)}")
            return False
        da = await lstat_or_none(ctx, dst, follow=True)
        if da is not None:
            if da.ino == sa.ino and not (o.symlink or (o.link and not sa.is_dir)):
                await self.tool.err(f"{quote(src)} and {quote(dst)} are the same file")
                return False
            if sa.is_dir and not da.is_dir:
                await self.tool.err(f"cannot overwrite non-directory {quote(dst)} with directory {quote(src)}")
                return False
            if not sa.is_dir and da.is_dir:
                await self.tool.err(f"cannot overwrite directory {quote(dst)} with non-directory")
                return False
            if not sa.is_dir:
                if o.no_clobber:
                    return True
                if o.update and da.mtime_ns >= sa.mtime_ns:
                    return True
                if o.interactive and not await ask(ctx, f"cp: overwrite {quote(dst)}? "):
                    return True
        if sa.is_dir:
            real_src, real_dst = await _real(ctx, src), await _real(ctx, dst)
            if _inside(real_dst, real_src):
                await self.tool.err(f"cannot copy a directory, {quote(src)}, into itself, {quote(dst)}")
                return False
        if o.symlink:
            return await self._make_link(src, dst, da, symbolic=True)
        if o.link and not sa.is_dir:
            return await self._make_link(src, dst, da, symbolic=False)
        try:
            if sa.is_symlink:
                if da is not None or await lstat_or_none(ctx, dst) is not None:
                    await ctx.unlink(dst)
                await ctx.symlink(await ctx.readlink(src), dst)
            elif sa.is_dir:
                created = da is None
                if created:
                    await ctx.mkdir(dst, 0o700)
                if o.verbose:
                    await ctx.write_all(1, fsencode(f"{quote(src)} -> {quote(dst)}\n"))
                ok = True
                try:
                    names = await ctx.listdir(src)
                except KernelError as e:
                    await self.tool.fail("cannot access", src, e)
                    names = []
                    ok = False
                for n in sorted(names, key=fsencode):
                    ok = await self.copy(join(src, n), join(dst, n), False) and ok
                mode = sa.mode & 0o7777 if o.preserve_mode else (sa.mode & 0o7777 & ~ctx.umask())
                if created or o.preserve_mode:
                    await ctx.chmod(dst, mode)
                await self._attrs(dst, sa, dir_done=True)
                return ok
            else:
                await self._copy_file(src, dst, sa, da)
        except KernelError as e:
            await self.tool.fail("cannot create regular file" if not sa.is_dir else "cannot create directory",
                                 dst, e)
            return False
        if o.verbose and not sa.is_dir:
            await ctx.write_all(1, fsencode(f"{quote(src)} -> {quote(dst)}\n"))
        if not sa.is_symlink:
            await self._attrs(dst, sa)
        return True

    async def _make_link(self, src: str, dst: str, da: Attr | None, symbolic: bool) -> bool:
        ctx = self.ctx
        try:
            if da is not None or await lstat_or_none(ctx, dst) is not None:
                if self.o.force or not symbolic:
                    await ctx.unlink(dst)
            if symbolic:
                await ctx.symlink(src, dst)
            else:
                await ctx.link(src, dst)
        except KernelError as e:
            what = "cannot create symbolic link" if symbolic else "cannot create hard link"
            await self.tool.fail(what, dst, e)
            return False
        if self.o.verbose:
            await ctx.write_all(1, fsencode(f"{quote(src)} -> {quote(dst)}\n"))
        return True

    async def _copy_file(self, src: str, dst: str, sa: Attr, da: Attr | None) -> None:
        ctx = self.ctx
        rfd = await ctx.open(src)
        try:
            try:
                wfd = await ctx.open(dst, O_WRONLY | O_CREAT | O_TRUNC, sa.mode & 0o777)
            except KernelError:
                if not (self.o.force and da is not None):
                    raise
                await ctx.unlink(dst)
                wfd = await ctx.open(dst, O_WRONLY | O_CREAT | O_TRUNC, sa.mode & 0o777)
            try:
                while True:
                    data = await ctx.read(rfd, CHUNK)
                    if not data:
                        break
                    await ctx.write_all(wfd, data)
            finally:
                await ctx.close(wfd)
        finally:
            await ctx.close(rfd)

    async def _attrs(self, dst: str, sa: Attr, dir_done: bool = False) -> None:
        ctx, o = self.ctx, self.o
        try:
            if o.preserve_owner:
                await ctx.chown(dst, sa.uid, sa.gid)
            if o.preserve_mode and not dir_done:
                await ctx.chmod(dst, sa.mode & 0o7777)
            if o.preserve_times:
                await ctx.utimes(dst, sa.atime_ns / 1e9, sa.mtime_ns / 1e9)
        except KernelError as e:
            await self.tool.fail("preserving attributes of", dst, e)


def _preserve_list(value: str | None) -> set[str]:
    if value is None:
        return {"mode", "ownership", "timestamps"}
    out = set()
    for word in value.split(","):
        if word == "all":
            out |= {"mode", "ownership", "timestamps", "links", "xattr"}
        else:
            out.add(word)
    return out


async def prog_cp(ctx: Any) -> int:
    args = await parse_or_exit(ctx, CP)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "cp")
    ops = args.operands
    tdir = args.get("target_directory")
    if not await _check_operands(tool, ops, tdir):
        return 1
    preserve: set[str] = set()
    deref = "always"
    recursive = bool(args.get("recursive"))
    for key, value in args.order:
        if key == "archive":
            preserve |= _preserve_list("all")
            recursive = True
            deref = "never"
        elif key == "d":
            deref = "never"
        elif key == "p":
            preserve |= _preserve_list(None)
        elif key == "preserve":
            preserve |= _preserve_list(value)
        elif key == "no_preserve":
            preserve -= _preserve_list(value)
        elif key == "dereference":
            deref = "always"
        elif key == "no_dereference":
            deref = "never"
        elif key == "H":
            deref = "cmdline"
    if recursive and not any(k in ("dereference", "H", "no_dereference", "archive", "d")
                             for k, _ in args.order):
        deref = "never"
    no_clobber = interactive = False
    for key, _ in args.order:
        if key == "no_clobber":
            no_clobber, interactive = True, False
        elif key == "interactive":
            interactive, no_clobber = True, False
        elif key == "force":
            no_clobber = False
    o = CopyOpts(recursive, deref, "mode" in preserve, "ownership" in preserve,
                 "timestamps" in preserve, bool(args.get("force")), interactive, no_clobber,
                 bool(args.get("update")), bool(args.get("verbose")), bool(args.get("link")),
                 bool(args.get("symbolic_link")))
    dest = tdir if tdir is not None else ops[-1]
    dest_attr = await lstat_or_none(ctx, dest, follow=True)
    if tdir is not None and not is_dir_attr(dest_attr):
        await tool.err(f"target directory {quote(tdir)}: " +
                       ("Not a directory" if dest_attr is not None else "No such file or directory"))
        return 1
    srcs = ops if tdir is not None else ops[:-1]
    if args.get("no_target_directory") and tdir is not None:
        return await tool.usage("cannot combine --target-directory (-t) and --no-target-directory (-T)")
    if tdir is None and not args.get("no_target_directory") and len(srcs) > 1 and dest_attr is None:
        await tool.err(f"target {quote(dest)}: No such file or directory")
        return 1
    pairs, problem = _targets(srcs + ([] if tdir is not None else [dest]), tdir,
                              bool(args.get("no_target_directory")), is_dir_attr(dest_attr))
    if problem:
        await tool.err(problem)
        return 1
    copier = Copier(ctx, tool, o)
    for src, dst in pairs:
        if not await copier.copy(src, dst, True):
            tool.status = 1
    return tool.status


# ============================================================================ mv

MV = Spec("mv", "[OPTION]... [-T] SOURCE DEST\n  or:  mv [OPTION]... SOURCE... DIRECTORY\n"
          "  or:  mv [OPTION]... -t DIRECTORY SOURCE...", "Rename SOURCE to DEST, or move "
          "SOURCE(s) to DIRECTORY.", [
    Opt("f", "force", help="do not prompt before overwriting"),
    Opt("i", "interactive", help="prompt before overwrite"),
    Opt("n", "no-clobber", help="do not overwrite an existing file"),
    Opt("t", "target-directory", arg="DIRECTORY", help="move all SOURCE arguments into DIRECTORY"),
    Opt("T", "no-target-directory", help="treat DEST as a normal file"),
    Opt("u", "update", help="move only when the SOURCE file is newer than the destination file"),
    Opt("v", "verbose", help="explain what is being done"),
])


async def prog_mv(ctx: Any) -> int:
    args = await parse_or_exit(ctx, MV)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "mv")
    ops = args.operands
    tdir = args.get("target_directory")
    if not await _check_operands(tool, ops, tdir):
        return 1
    mode = "force"
    for key, _ in args.order:
        if key in ("force", "interactive", "no_clobber"):
            mode = key
    dest = tdir if tdir is not None else ops[-1]
    dest_attr = await lstat_or_none(ctx, dest, follow=True)
    if tdir is not None and not is_dir_attr(dest_attr):
        await tool.err(f"target directory {quote(tdir)}: " +
                       ("Not a directory" if dest_attr is not None else "No such file or directory"))
        return 1
    srcs = ops if tdir is not None else ops[:-1]
    if tdir is None and not args.get("no_target_directory") and len(srcs) > 1 and dest_attr is None:
        await tool.err(f"target {quote(dest)}: No such file or directory")
        return 1
    pairs, problem = _targets(srcs + ([] if tdir is not None else [dest]), tdir,
                              bool(args.get("no_target_directory")), is_dir_attr(dest_attr))
    if problem:
        await tool.err(problem)
        return 1
    for src, dst in pairs:
        try:
            sa = await ctx.lstat(src)
        except KernelError as e:
            await tool.fail("cannot stat", src, e)
            continue
        da = await lstat_or_none(ctx, dst)
        if da is not None:
            if da.ino == sa.ino:
                await tool.err(f"{quote(src)} and {quote(dst)} are the same file")
                continue
            if mode == "no_clobber":
                continue
            if args.get("update") and not sa.is_dir and da.mtime_ns >= sa.mtime_ns:
                continue
            if mode == "interactive" and not await ask(ctx, f"mv: overwrite {quote(dst)}? "):
                continue
            if sa.is_dir and not da.is_dir:
                await tool.err(f"cannot overwrite non-directory {quote(dst)} with directory {quote(src)}")
                continue
            if not sa.is_dir and da.is_dir:
                await tool.err(f"cannot overwrite directory {quote(dst)} with non-directory")
                continue
        if sa.is_dir and _inside(await _real(ctx, dst), await _real(ctx, src)):
            await tool.err(f"cannot move {quote(src)} to a subdirectory of itself, {quote(dst)}")
            continue
        try:
            await ctx.rename(src, dst)
        except KernelError as e:
            if e.code != "EXDEV":
                await tool.fail(f"cannot move {quote(src)} to", dst, e)
                continue
            o = CopyOpts(True, "never", True, True, True, True, False, False, False, False, False, False)
            if da is not None and not da.is_dir:
                await ctx.unlink(dst)
            if not await Copier(ctx, tool, o).copy(src, dst, True):
                continue
            await _remove_tree(ctx, tool, src)
        if args.get("verbose"):
            await ctx.write_all(1, fsencode(f"renamed {quote(src)} -> {quote(dst)}\n"))
    return tool.status


async def _remove_tree(ctx: Any, tool: Tool, path: str) -> bool:
    try:
        a = await ctx.lstat(path)
        if a.is_dir:
            for n in await ctx.listdir(path):
                await _remove_tree(ctx, tool, join(path, n))
            await ctx.rmdir(path)
        else:
            await ctx.unlink(path)
        return True
    except KernelError as e:
        await tool.fail("cannot remove", path, e)
        return False


# ============================================================================ rm

RM = Spec("rm", "[OPTION]... [FILE]...", "Remove (unlink) the FILE(s).", [
    Opt("f", "force", help="ignore nonexistent files and arguments, never prompt"),
    Opt("i", None, help="prompt before every removal"),
    Opt("I", None, help="prompt once before removing more than three files, or when removing recursively"),
    Opt(None, "interactive", arg="WHEN", optional_arg=True, help="prompt according to WHEN: never, once, always"),
    Opt(None, "one-file-system", help="stay on the file system of each argument"),
    Opt(None, "no-preserve-root", help="do not treat '/' specially"),
    Opt(None, "preserve-root", arg="all", optional_arg=True, help="do not remove '/' (default)"),
    Opt("r", "recursive", help="remove directories and their contents recursively"),
    Opt("R", None, dest="recursive", help="remove directories and their contents recursively"),
    Opt("d", "dir", help="remove empty directories"),
    Opt("v", "verbose", help="explain what is being done"),
])


class Remover:
    def __init__(self, ctx: Any, tool: Tool, recursive: bool, force: bool, prompt: str,
                 dirs: bool, verbose: bool) -> None:
        self.ctx, self.tool = ctx, tool
        self.recursive, self.force, self.prompt, self.dirs, self.verbose = recursive, force, prompt, dirs, verbose

    async def remove(self, path: str) -> bool:
        ctx = self.ctx
        try:
            a = await ctx.lstat(path)
        except KernelError as e:
            if self.force and e.code in ("ENOENT", "ENOTDIR"):
                return True
            await self.tool.fail("cannot remove", path, e)
            return False
        if a.is_dir:
            if not self.recursive:
                if self.dirs:
                    return await self._rmdir(path)
                await self.tool.err(f"cannot remove {quote(path)}: Is a directory")
                return False
            if self.prompt == "always" and not await ask(ctx, f"rm: descend into directory {quote(path)}? "):
                return False
            try:
                names = await ctx.listdir(path)
            except KernelError as e:
                await self.tool.fail("cannot remove", path, e)
                return False
            ok = True
            for n in sorted(names, key=fsencode):
                ok = await self.remove(join(path, n)) and ok
            if not ok:
                return False
            if self.prompt == "always" and not await ask(ctx, f"rm: remove directory {quote(path)}? "):
                return False
            return await self._rmdir(path)
        if self.prompt == "always":
            kind = "regular empty file" if a.is_reg and a.size == 0 else (
                "regular file" if a.is_reg else "symbolic link" if a.is_symlink else "file")
            if not await ask(ctx, f"rm: remove {kind} {quote(path)}? "):
                return True
        try:
            await ctx.unlink(path)
        except KernelError as e:
            await self.tool.fail("cannot remove", path, e)
            return False
        if self.verbose:
            await ctx.write_all(1, fsencode(f"removed {quote(path)}\n"))
        return True

    async def _rmdir(self, path: str) -> bool:
        try:
            await self.ctx.rmdir(path)
        except KernelError as e:
            await self.tool.fail("cannot remove", path, e)
            return False
        if self.verbose:
            await self.ctx.write_all(1, fsencode(f"removed directory {quote(path)}\n"))
        return True


async def prog_rm(ctx: Any) -> int:
    args = await parse_or_exit(ctx, RM)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "rm")
    force = False
    prompt = "never"
    for key, value in args.order:
        if key == "force":
            force, prompt = True, "never"
        elif key == "i":
            prompt, force = "always", False
        elif key == "I":
            prompt, force = "once", False
        elif key == "interactive":
            prompt = {"never": "never", "no": "never", "none": "never", "once": "once",
                      "always": "always", "yes": "always", None: "always"}.get(value, "always")
    if not args.operands:
        if force:
            return 0
        return await tool.usage("missing operand")
    recursive = bool(args.get("recursive"))
    if prompt == "once" and (recursive or len(args.operands) > 3):
        what = f"recursively {len(args.operands)} argument" if recursive else f"{len(args.operands)} arguments"
        if recursive and len(args.operands) == 1:
            what = "1 argument recursively"
        elif recursive:
            what = f"{len(args.operands)} arguments recursively"
        if not await ask(ctx, f"rm: remove {what}? "):
            return 0
    rm = Remover(ctx, tool, recursive, force, prompt if prompt == "always" else "never",
                 bool(args.get("dir")), bool(args.get("verbose")))
    for name in args.operands:
        base = name.rstrip("/").rsplit("/", 1)[-1]
        if base in (".", ".."):
            await tool.err(f"refusing to remove '.' or '..' directory: skipping {quote(name)}")
            continue
        if recursive and not args.get("no_preserve_root"):
            try:
                if await ctx.realpath(name) == "/":
                    await tool.err(f"it is dangerous to operate recursively on {quote(name)}"
                                   + ("" if name == "/" else " (same as '/')"))
                    await tool.err("use --no-preserve-root to override this failsafe")
                    continue
            except KernelError:
                pass
        if not await rm.remove(name):
            tool.status = 1
    return tool.status


# ============================================================================ ln

LN = Spec("ln", "[OPTION]... [-T] TARGET LINK_NAME\n  or:  ln [OPTION]... TARGET\n"
          "  or:  ln [OPTION]... TARGET... DIRECTORY\n  or:  ln [OPTION]... -t DIRECTORY TARGET...",
          "Create links; hard links by default, symbolic links with --symbolic.", [
    Opt("f", "force", help="remove existing destination files"),
    Opt("i", "interactive", help="prompt whether to remove destinations"),
    Opt("L", "logical", help="dereference TARGETs that are symbolic links"),
    Opt("n", "no-dereference", help="treat LINK_NAME as a normal file if it is a symbolic link to a directory"),
    Opt("P", "physical", help="make hard links directly to symbolic links"),
    Opt("r", "relative", help="with -s, create links relative to link location"),
    Opt("s", "symbolic", help="make symbolic links instead of hard links"),
    Opt("t", "target-directory", arg="DIRECTORY", help="specify the DIRECTORY in which to create the links"),
    Opt("T", "no-target-directory", help="treat LINK_NAME as a normal file always"),
    Opt("v", "verbose", help="print name of each linked file"),
])


def _relative_to(target: str, link_dir: str) -> str:
    t = [p for p in target.split("/") if p]
    b = [p for p in link_dir.split("/") if p]
    i = 0
    while i < len(t) and i < len(b) and t[i] == b[i]:
        i += 1
    return "/".join([".."] * (len(b) - i) + t[i:]) or "."


async def prog_ln(ctx: Any) -> int:
    args = await parse_or_exit(ctx, LN)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "ln")
    ops = args.operands
    tdir = args.get("target_directory")
    if not ops:
        return await tool.usage("missing file operand")
    symbolic = bool(args.get("symbolic"))
    if len(ops) == 1 and tdir is None:
        if args.get("no_target_directory"):
            return await tool.usage(f"missing destination file operand after {quote(ops[0])}")
        pairs = [(ops[0], base_name(ops[0]))]
    else:
        dest = tdir if tdir is not None else ops[-1]
        follow = not args.get("no_dereference")
        da = await lstat_or_none(ctx, dest, follow=follow)
        if tdir is not None and not is_dir_attr(da):
            await tool.err(f"target directory {quote(tdir)}: " +
                           ("Not a directory" if da is not None else "No such file or directory"))
            return 1
        srcs = ops if tdir is not None else ops[:-1]
        if tdir is None and len(srcs) > 1 and da is None and not args.get("no_target_directory"):
            await tool.err(f"target {quote(dest)}: No such file or directory")
            return 1
        pairs, problem = _targets(srcs + ([] if tdir is not None else [dest]), tdir,
                                  bool(args.get("no_target_directory")), is_dir_attr(da))
        if problem:
            await tool.err(problem)
            return 1
    for target, link in pairs:
        try:
            if not symbolic:
                ta = await (ctx.stat(target) if args.get("logical") else ctx.lstat(target))
                if ta.is_dir:
                    await tool.err(f"{quote(target)}: hard link not allowed for directory")
                    continue
            existing = await lstat_or_none(ctx, link)
            if existing is not None:
                if args.get("interactive") and not await ask(ctx, f"ln: replace {quote(link)}? "):
                    continue
                if args.get("force") or args.get("interactive"):
                    if existing.is_dir:
                        await tool.err(f"{quote(link)}: cannot overwrite directory")
                        continue
                    await ctx.unlink(link)
            value = target
            if symbolic and args.get("relative"):
                from kernel.programs.files_basic import canonicalize
                abs_t = await canonicalize(ctx, target, "m")
                abs_dir = await canonicalize(ctx, dir_name(link), "m")
                value = _relative_to(abs_t, abs_dir)
            if symbolic:
                await ctx.symlink(value, link)
            elif args.get("logical"):
                from kernel.programs.files_basic import canonicalize
                await ctx.link(await canonicalize(ctx, target, "e"), link)
            else:
                await ctx.link(target, link)
        except KernelError as e:
            if symbolic:
                await tool.fail("failed to create symbolic link", link, e)
            elif e.code == "EEXIST":
                await tool.err(f"failed to create hard link {quote(link)}: {strerror(e)}")
            else:
                await tool.err(f"failed to create hard link {quote(link)} => {quote(target)}: {strerror(e)}")
            continue
        if args.get("verbose"):
            arrow = "->" if symbolic else "=>"
            await ctx.write_all(1, fsencode(f"{quote(link)} {arrow} {quote(value)}\n"))
    return tool.status


# ============================================================================ install

INSTALL = Spec("install", "[OPTION]... [-T] SOURCE DEST\n  or:  install [OPTION]... SOURCE... DIRECTORY\n"
               "  or:  install [OPTION]... -t DIRECTORY SOURCE...\n  or:  install [OPTION]... -d DIRECTORY...",
               "Copy files and set attributes.", [
    Opt(None, "backup", arg="CONTROL", optional_arg=True, help="(ignored)"),
    Opt("b", None, help="(ignored)"),
    Opt("c", None, help="(ignored)"),
    Opt("C", "compare", help="(copies always)"),
    Opt("d", "directory", help="treat all arguments as directory names; create all components"),
    Opt("D", None, help="create all leading components of DEST except the last"),
    Opt("g", "group", arg="GROUP", help="set group ownership, instead of process' current group"),
    Opt("m", "mode", arg="MODE", help="set permission mode (as in chmod), instead of rwxr-xr-x"),
    Opt("o", "owner", arg="OWNER", help="set ownership (super-user only)"),
    Opt("p", "preserve-timestamps", help="apply access/modification times of SOURCE files"),
    Opt("s", "strip", help="(ignored)"),
    Opt("t", "target-directory", arg="DIRECTORY", help="copy all SOURCE arguments into DIRECTORY"),
    Opt("T", "no-target-directory", help="treat DEST as a normal file"),
    Opt("v", "verbose", help="print the name of each created file or directory"),
])


async def prog_install(ctx: Any) -> int:
    args = await parse_or_exit(ctx, INSTALL)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "install")
    mode = 0o755
    if args.get("mode") is not None:
        try:
            mode = parse_mode(args["mode"], 0, False)
        except ValueError:
            await tool.err(f"invalid mode {quote(args['mode'])}")
            return 1
    names = IdNames()
    await names.load(ctx)
    uid = gid = -1
    if args.get("owner") is not None:
        u = names.uid_of(args["owner"])
        if u is None:
            await tool.err(f"invalid user {quote(args['owner'])}")
            return 1
        uid = u
    if args.get("group") is not None:
        g = names.gid_of(args["group"])
        if g is None:
            await tool.err(f"invalid group {quote(args['group'])}")
            return 1
        gid = g
    verbose = tool if args.get("verbose") else None
    ops = args.operands
    if args.get("directory"):
        if not ops:
            return await tool.usage("missing file operand")
        for d in ops:
            try:
                await mkdir_parents(ctx, verbose, d, mode, parent_mode=None)
                await ctx.chmod(d, mode)
                if uid != -1 or gid != -1:
                    await ctx.chown(d, uid, gid)
            except KernelError as e:
                await tool.fail("cannot create directory", d, e)
        return tool.status
    tdir = args.get("target_directory")
    if not await _check_operands(tool, ops, tdir):
        return 1
    if args.get("D"):
        lead = tdir if tdir is not None else (ops[-1] if len(ops) == 2 and not ops[-1].endswith("/")
                                              else ops[-1])
        parent = lead if tdir is not None or len(ops) > 2 else dir_name(lead)
        try:
            await mkdir_parents(ctx, verbose, parent, None)
        except KernelError as e:
            await tool.fail("cannot create directory", parent, e)
            return 1
    dest = tdir if tdir is not None else ops[-1]
    da = await lstat_or_none(ctx, dest, follow=True)
    if tdir is not None and not is_dir_attr(da):
        await tool.err(f"target directory {quote(tdir)}: " +
                       ("Not a directory" if da is not None else "No such file or directory"))
        return 1
    srcs = ops if tdir is not None else ops[:-1]
    if tdir is None and len(srcs) > 1 and not is_dir_attr(da):
        await tool.err(f"target {quote(dest)}: " + ("Not a directory" if da is not None
                                                     else "No such file or directory"))
        return 1
    pairs, problem = _targets(srcs + ([] if tdir is not None else [dest]), tdir,
                              bool(args.get("no_target_directory")), is_dir_attr(da))
    if problem:
        await tool.err(problem)
        return 1
    o = CopyOpts(False, "always", False, False, bool(args.get("preserve_timestamps")), True, False,
                 False, False, False, False, False)
    copier = Copier(ctx, tool, o)
    for src, dst in pairs:
        try:
            sa = await ctx.stat(src)
        except KernelError as e:
            await tool.fail("cannot stat", src, e)
            continue
        if sa.is_dir:
            await tool.err(f"omitting directory {quote(src)}")
            continue
        existing = await lstat_or_none(ctx, dst)
        if existing is not None and not existing.is_dir:
            try:
                await ctx.unlink(dst)
            except KernelError:
                pass
        if not await copier.copy(src, dst, True):
            continue
        try:
            await ctx.chmod(dst, mode)
            if uid != -1 or gid != -1:
                await ctx.chown(dst, uid, gid)
        except KernelError as e:
            await tool.fail("cannot change permissions of", dst, e)
        if verbose:
            await ctx.write_all(1, fsencode(f"{quote(src)} -> {quote(dst)}\n"))
    return tool.status


# ============================================================================ chmod

CHMOD = Spec("chmod", "[OPTION]... MODE[,MODE]... FILE...\n  or:  chmod [OPTION]... OCTAL-MODE FILE...\n"
             "  or:  chmod [OPTION]... --reference=RFILE FILE...", "Change the mode of each FILE to MODE.", [
    Opt("c", "changes", help="like verbose but report only when a change is made"),
    Opt("f", "silent", dest="quiet", help="suppress most error messages"),
    Opt(None, "quiet", dest="quiet", help="suppress most error messages"),
    Opt("v", "verbose", help="output a diagnostic for every file processed"),
    Opt(None, "reference", arg="RFILE", help="use RFILE's mode instead of MODE values"),
    Opt("R", "recursive", help="change files and directories recursively"),
])

_MODE_CHARS = set("rwxXstugoa+-=,01234567")


def _split_mode_arg(argv: list[str]) -> tuple[list[str], str | None]:
    """chmod accepts ``-w``/``-x,g+r`` as a MODE although it looks like options: take the
    first such argument out before option parsing (GNU does the same)."""
    out = [argv[0]]
    mode = None
    rest = iter(argv[1:])
    for a in rest:
        if a == "--":
            out.append(a)
            out.extend(rest)
            break
        if mode is None and a.startswith("-") and len(a) > 1 and a[1] in "rwxXst" and set(a[1:]) <= _MODE_CHARS:
            mode = a
            continue
        out.append(a)
    return out, mode


async def prog_chmod(ctx: Any) -> int:
    argv, dash_mode = _split_mode_arg(list(ctx.argv))
    args = await parse_or_exit(ctx, CHMOD, argv)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, "chmod")
    ops = list(args.operands)
    ref_mode = None
    if args.get("reference") is not None:
        try:
            ref_mode = (await ctx.stat(args["reference"])).mode & 0o7777
        except KernelError as e:
            await tool.fail("failed to get attributes of", args["reference"], e)
            return 1
        mode_text = None
    else:
        if dash_mode is not None:
            mode_text = dash_mode
        elif ops:
            mode_text = ops.pop(0)
        else:
            return await tool.usage("missing operand")
    if not ops:
        if mode_text is not None:
            return await tool.usage(f"missing operand after {quote(mode_text)}")
        return await tool.usage("missing operand")
    if mode_text is not None:
        try:
            parse_mode(mode_text, 0o644, False)
        except ValueError:
            return await tool.usage(f"invalid mode: {quote(mode_text)}")
    umask = ctx.umask()
    quiet = bool(args.get("quiet"))

    async def apply(path: str, top: bool) -> None:
        try:
            a = await (ctx.stat(path) if top else ctx.lstat(path))
        except KernelError as e:
            tool.status = 1
            if not quiet:
                await tool.fail("cannot access", path, e)
            return
        if a.is_symlink:
            return  # symlinks met during -R are not followed, as GNU
        old = a.mode & 0o7777
        if ref_mode is not None:
            new = ref_mode
        else:
            assert mode_text is not None  # a mode or --reference is required above
            new = parse_mode(mode_text, old, a.is_dir, umask)
        if new != old:
            try:
                await ctx.chmod(path, new)
            except KernelError as e:
                tool.status = 1
                if not quiet:
                    await tool.fail("changing permissions of", path, e)
                return
        if args.get("verbose") or (args.get("changes") and new != old):
            from kernel.programs.common import mode_string
            if new != old:
                text = (f"mode of {quote(path)} changed from {old:04o} ({mode_string(a.mode)[1:]}) "
                        f"to {new:04o} ({mode_string((a.mode & ~0o7777) | new)[1:]})")
            else:
                text = f"mode of {quote(path)} retained as {old:04o} ({mode_string(a.mode)[1:]})"
            await ctx.write_all(1, fsencode(text + "\n"))
        if args.get("recursive") and a.is_dir:
            try:
                names = await ctx.listdir(path)
            except KernelError as e:
                tool.status = 1
                await tool.fail("cannot read directory", path, e)
                return
            for n in sorted(names, key=fsencode):
                await apply(join(path, n), False)

    for p in ops:
        await apply(p, True)
    return tool.status


# ============================================================================ chown, chgrp

def _chown_spec(prog: str) -> Spec:
    what = "OWNER[:[GROUP]]" if prog == "chown" else "GROUP"
    return Spec(prog, f"[OPTION]... {what} FILE...\n  or:  {prog} [OPTION]... --reference=RFILE FILE...",
                "Change the owner and/or group of each FILE." if prog == "chown"
                else "Change the group of each FILE to GROUP.", [
        Opt("c", "changes", help="like verbose but report only when a change is made"),
        Opt("f", "silent", dest="quiet", help="suppress most error messages"),
        Opt(None, "quiet", dest="quiet", help="suppress most error messages"),
        Opt("v", "verbose", help="output a diagnostic for every file processed"),
        Opt("h", "no-dereference", help="affect symbolic links instead of any referenced file"),
        Opt(None, "dereference", help="affect the referent of each symbolic link (the default)"),
        Opt(None, "reference", arg="RFILE", help="use RFILE's owner and group"),
        Opt("R", "recursive", help="operate on files and directories recursively"),
        Opt("H", None, help="(with -R) traverse command-line symlinks to directories"),
        Opt("L", None, help="(with -R) traverse every symbolic link to a directory"),
        Opt("P", None, help="(with -R) do not traverse any symbolic links (default)"),
    ])


CHOWN = _chown_spec("chown")
CHGRP = _chown_spec("chgrp")


async def _chown_main(ctx: Any, prog: str) -> int:
    args = await parse_or_exit(ctx, CHOWN if prog == "chown" else CHGRP)
    if isinstance(args, int):
        return args
    tool = Tool(ctx, prog)
    names = IdNames()
    await names.load(ctx)
    ops = list(args.operands)
    uid = gid = -1
    if args.get("reference") is not None:
        try:
            ra = await ctx.stat(args["reference"])
        except KernelError as e:
            await tool.fail("failed to get attributes of", args["reference"], e)
            return 1
        uid, gid = (ra.uid if prog == "chown" else -1), ra.gid
        spec_text = None
    else:
        if not ops:
            return await tool.usage("missing operand")
        spec_text = ops.pop(0)
        if prog == "chgrp":
            g = names.gid_of(spec_text)
            if g is None:
                await tool.err(f"invalid group: {quote(spec_text)}")
                return 1
            gid = g
        else:
            sep = ":" if ":" in spec_text else ("." if "." in spec_text and names.uid_of(spec_text) is None
                                                else None)
            user, group = (spec_text.split(sep, 1) if sep else (spec_text, None))
            if user:
                u = names.uid_of(user)
                if u is None:
                    await tool.err(f"invalid user: {quote(spec_text)}")
                    return 1
                uid = u
            if group:
                g = names.gid_of(group)
                if g is None:
                    await tool.err(f"invalid group: {quote(spec_text)}")
                    return 1
                gid = g
            elif group == "" and user:
                gid = uid  # OWNER: means the owner's login group; without passwd, the same number
    if not ops:
        if spec_text is not None:
            return await tool.usage(f"missing operand after {quote(spec_text)}")
        return await tool.usage("missing operand")
    quiet = bool(args.get("quiet"))
    no_deref = bool(args.get("no_dereference"))

    async def apply(path: str, top: bool) -> None:
        try:
            a = await (ctx.stat(path) if top and not no_deref else ctx.lstat(path))
        except KernelError as e:
            tool.status = 1
            if not quiet:
                await tool.fail("cannot access", path, e)
            return
        if not (a.is_symlink and (no_deref or not top)):
            try:
                await ctx.chown(path, uid, gid)
            except KernelError as e:
                tool.status = 1
                if not quiet:
                    what = "ownership" if prog == "chown" else "group"
                    await tool.fail(f"changing {what} of", path, e)
                return
            changed = (uid not in (-1, a.uid)) or (gid not in (-1, a.gid))
            if args.get("verbose") or (args.get("changes") and changed):
                if prog == "chgrp":
                    old, new = names.group(a.gid), names.group(gid)
                    text = (f"changed group of {quote(path)} from {old} to {new}" if changed
                            else f"group of {quote(path)} retained as {old}")
                else:
                    o = names.user(a.uid) + (":" + names.group(a.gid) if gid != -1 else "")
                    n = names.user(uid if uid != -1 else a.uid) + (":" + names.group(gid) if gid != -1 else "")
                    text = (f"changed ownership of {quote(path)} from {o} to {n}" if changed
                            else f"ownership of {quote(path)} retained as {o}")
                await ctx.write_all(1, fsencode(text + "\n"))
        if args.get("recursive") and a.is_dir:
            for n in sorted(await ctx.listdir(path), key=fsencode):
                await apply(join(path, n), False)

    for p in ops:
        await apply(p, True)
    return tool.status


async def prog_chown(ctx: Any) -> int:
    return await _chown_main(ctx, "chown")


async def prog_chgrp(ctx: Any) -> int:
    return await _chown_main(ctx, "chgrp")


PROGRAMS = {
    "cp": prog_cp, "mv": prog_mv, "rm": prog_rm, "ln": prog_ln, "install": prog_install,
    "chmod": prog_chmod, "chown": prog_chown, "chgrp": prog_chgrp,
}
