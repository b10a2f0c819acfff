"""HTTP/1.1 over the socket table: ``curl``, ``wget`` and ``httpd`` (a static file server).

Only ``http://``: TLS would need certificates and a host to talk to, which the policy
gives only through the host adapter.  Names resolve through ``ctx.getaddrinfo`` (the
policy), so ``curl http://example.com`` in mode ``none`` fails the way a host without
DNS does (exit 6).  Bodies stream between the socket and the file in 256 KiB pieces;
nothing holds a whole response in memory.  ``httpd`` serves each connection in a child
process (inetd style: the socket is the child's stdin and stdout), so a slow client
holds up nobody.
"""

from __future__ import annotations

import posixpath
import stat as _stat
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from kernel.errors import KernelError
from kernel.programs.common import error, strerror
from kernel.programs.flags import Opt, Spec, parse_or_exit
from kernel.programs.registry import Program
from kernel.syscalls import (
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    O_CREAT,
    O_RDONLY,
    O_TRUNC,
    O_WRONLY,
    SO_REUSEADDR,
    SOCK_STREAM,
    SOL_SOCKET,
)

PIECE = 262144
MAX_HEADER = 65536
MAX_REDIRECTS = 50
UA = "curl/8.5.0 (vfsfuse)"
TYPES = {".html": "text/html", ".htm": "text/html", ".txt": "text/plain", ".css": "text/css",
         ".js": "text/javascript", ".json": "application/json", ".png": "image/png", ".jpg": "image/jpeg",
         ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml", ".xml": "application/xml",
         ".pdf": "application/pdf", ".tar": "application/x-tar", ".gz": "application/gzip",
         ".zip": "application/zip", ".md": "text/markdown", ".csv": "text/csv", ".py": "text/x-python",
         ".sh": "text/x-shellscript"}
REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 414: "URI Too Long",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented"}


class FetchError(Exception):
    """curl's numbered errors: ``curl: (code) text``."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


@dataclass
class Response:
    status: int = 0
    reason: str = ""
    version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw_head: bytes = b""
    size: int = 0
    url: str = ""

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


class SockReader:
    """Buffered reads from a socket fd."""

    def __init__(self, ctx: Any, fd: int) -> None:
        self.ctx, self.fd, self.buf = ctx, fd, b""

    async def fill(self) -> bool:
        data = await self.ctx.read(self.fd, PIECE)
        if not data:
            return False
        self.buf = self.buf + data if self.buf else data
        return True

    async def until(self, marker: bytes, limit: int) -> bytes | None:
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i + len(marker)], self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit or not await self.fill():
                return None

    async def take(self, n: int) -> bytes:
        """Up to *n* bytes (fewer only at EOF)."""
        if not self.buf and not await self.fill():
            return b""
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _split_url(url: str) -> tuple[str, int, str, str]:
    """(host, port, path+query, Host header) of an http URL; FetchError otherwise."""
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
    except ValueError:
        raise FetchError(3, "URL rejected: Malformed input to a URL function") from None
    if parts.scheme.lower() != "http":
        raise FetchError(1, f'Protocol "{parts.scheme}" not supported')
    host = parts.hostname
    if not host:
        raise FetchError(3, "URL rejected: No host part in the URL")
    try:
        port = parts.port or 80
    except ValueError:
        raise FetchError(3, "URL rejected: Port number was not a decimal number between 0 and 65535") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    hostport = parts.netloc.rsplit("@", 1)[-1]
    return host, port, quote(path, safe="/?&=%:@!$'()*+,;~-._"), hostport


async def _connect(ctx: Any, host: str, port: int) -> int:
    try:
        infos = await ctx.getaddrinfo(host, port, AF_UNSPEC, SOCK_STREAM)
    except KernelError:
        raise FetchError(6, f"Could not resolve host: {host}") from None
    last: KernelError | None = None
    for fam, _t, _p, _c, addr in infos:
        sock = await ctx.socket(fam, SOCK_STREAM)
        try:
            await ctx.connect(sock, addr)
            return sock
        except KernelError as e:
            last = e
            await ctx.close(sock)
    why = strerror(last) if last is not None else "no address"
    raise FetchError(7, f"Failed to connect to {host} port {port} after 0 ms: {why}")


async def _send_all(ctx: Any, fd: int, data: bytes) -> None:
    await ctx.write_all(fd, data)


async def http_request(ctx: Any, method: str, url: str, headers: list[str], body: bytes | None,
                       sink: Any, *, body_fd: int | None = None, body_len: int = 0,
                       on_head: Any = None) -> Response:
    """One request; ``await on_head(resp)`` once the head is in, then the body of the
    answer goes to ``await sink(data)``."""
    host, port, path, hostport = _split_url(url)
    sock = await _connect(ctx, host, port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {hostport}", f"User-Agent: {UA}", "Accept: */*"]
        names = {h.split(":", 1)[0].strip().lower() for h in headers}
        lines = [ln for ln in lines if ln.split(":", 1)[0].lower() not in names or ln.startswith(method)]
        lines += [h for h in headers if ":" in h and h.split(":", 1)[1].strip()]
        length = len(body) if body is not None else body_len if body_fd is not None else None
        if length is not None:
            if body is not None and "content-type" not in names:
                lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"Content-Length: {length}")
        await _send_all(ctx, sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if body:
            await _send_all(ctx, sock, body)
        elif body_fd is not None:
            while True:
                piece = await ctx.read(body_fd, PIECE)
                if not piece:
                    break
                await _send_all(ctx, sock, piece)
        reader = SockReader(ctx, sock)
        resp = Response(url=url)
        while True:
            head = await reader.until(b"\r\n\r\n", MAX_HEADER)
            if head is None:
                raise FetchError(52, "Empty reply from server")
            status_line, *rest = head.decode("latin-1").split("\r\n")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise FetchError(1, "Received HTTP/0.9 when not allowed")
            resp.version, resp.status = parts[0], int(parts[1])
            resp.reason = parts[2] if len(parts) > 2 else ""
            resp.headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in rest if ln)]
            resp.raw_head = head
            if resp.status != 100:
                break
        if on_head is not None:
            await on_head(resp)
        if method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = await reader.until(b"\r\n", 1024)
                if line is None:
                    raise FetchError(18, "transfer closed with outstanding read data remaining")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    await reader.until(b"\r\n\r\n", MAX_HEADER) if reader.buf[:2] != b"\r\n" else await reader.take(2)
                    break
                left = size
                while left:
                    piece = await reader.take(min(left, PIECE))
                    if not piece:
                        raise FetchError(18, "transfer closed with outstanding read data remaining")
                    left -= len(piece)
                    resp.size += len(piece)
                    await sink(piece)
                await reader.until(b"\r\n", 2)
            return resp
        cl = resp.header("content-length")
        if cl is not None and cl.isdigit():
            left = int(cl)
            while left:
                piece = await reader.take(min(left, PIECE))
                if not piece:
                    raise FetchError(18, f"end of response with {left} bytes missing")
                left -= len(piece)
                resp.size += len(piece)
                await sink(piece)
            return resp
        while True:
            piece = await reader.take(PIECE)
            if not piece:
                return resp
            resp.size += len(piece)
            await sink(piece)
    finally:
        await ctx.close(sock)


# ------------------------------------------------------------------------------------- curl
CURL_SPEC = Spec("curl", "[options...] <url>", "Transfer a URL (http:// only, through the sandbox's network policy).", [
    Opt("o", "output", arg="file", help="write to file instead of stdout"),
    Opt("O", "remote-name", help="write output to a file named as the remote file"),
    Opt("L", "location", help="follow redirects"),
    Opt("s", "silent", help="silent mode"),
    Opt("S", "show-error", help="show error even when -s is used"),
    Opt("f", "fail", help="fail fast with no output on HTTP errors"),
    Opt("H", "header", arg="header", action="append", help="pass custom header(s) to server"),
    Opt("d", "data", arg="data", action="append", help="HTTP POST data (@file reads a file)"),
    Opt(None, "data-binary", arg="data", action="append", dest="data", help="HTTP POST binary data"),
    Opt("X", "request", arg="method", help="specify request method to use"),
    Opt("w", "write-out", arg="format", help="use output FORMAT after completion"),
    Opt("I", "head", help="show document info only"),
    Opt("i", "include", help="include protocol response headers in the output"),
    Opt("T", "upload-file", arg="file", help="transfer local FILE to destination (PUT)"),
])


def _write_out(fmt: str, resp: Response) -> str:
    values = {"http_code": f"{resp.status:03d}", "response_code": f"{resp.status:03d}",
              "size_download": str(resp.size), "url_effective": resp.url,
              "content_type": resp.header("content-type") or ""}
    out = fmt.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")
    for k, v in values.items():
        out = out.replace("%{" + k + "}", v)
    return out


async def curl_main(ctx: Any) -> int:
    args = await parse_or_exit(ctx, CURL_SPEC)
    if isinstance(args, int):
        return args
    silent, show_err = bool(args.get("silent")), bool(args.get("show_error"))

    async def fail(code: int, text: str) -> int:
        if not silent or show_err:
            await error(ctx, "curl", f"({code}) {text}")
        return code

    if not args.operands:
        return await fail(2, "no URL specified")
    url = args.operands[0]
    out_fd, owned = 1, False
    try:
        body: bytes | None = None
        if args.get("data"):
            pieces = []
            for d in args["data"]:
                if d.startswith("@"):
                    fd = 0 if d == "@-" else await ctx.open(d[1:])
                    pieces.append((await ctx.read_all(fd)).replace(b"\r", b"").replace(b"\n", b""))
                    if fd:
                        await ctx.close(fd)
                else:
                    pieces.append(d.encode())
            body = b"&".join(pieces)
        upload_fd, upload_len = None, 0
        if args.get("upload_file"):
            upload_fd = await ctx.open(args["upload_file"])
            upload_len = (await ctx.fstat(upload_fd)).size
            if not url.rstrip("/").rsplit("/", 1)[-1] or url.endswith("/"):
                url = url.rstrip("/") + "/" + posixpath.basename(args["upload_file"])
        method = args.get("request") or ("HEAD" if args.get("head") else "PUT" if upload_fd is not None
                                        else "POST" if body is not None else "GET")
        if args.get("output") or args.get("remote_name"):
            name = args.get("output") or posixpath.basename(urlsplit(url).path if "[" not in url else "") or ""
            if not name:
                return await fail(23, "Remote file name has no length")
            out_fd, owned = await ctx.open(name, O_WRONLY | O_CREAT | O_TRUNC), True
        headers = args.get("header") or []
        show_head = bool(args.get("include") or args.get("head"))
        follow = bool(args.get("location"))
        fail_http = bool(args.get("fail"))

        def skipped(resp: Response) -> bool:
            """A redirect that -L follows or an error -f hides prints no body."""
            return ((follow and resp.status in (301, 302, 303, 307, 308) and resp.header("location") is not None)
                    or (fail_http and resp.status >= 400))

        current = Response()

        async def on_head(resp: Response) -> None:
            nonlocal current
            current = resp
            if show_head and not (fail_http and resp.status >= 400):
                await ctx.write_all(out_fd, resp.raw_head)

        async def sink(data: bytes) -> None:
            if not skipped(current):
                await ctx.write_all(out_fd, data)

        for _ in range(MAX_REDIRECTS + 1):
            resp = await http_request(ctx, method, url, headers, body, sink, body_fd=upload_fd,
                                      body_len=upload_len, on_head=on_head)
            location = resp.header("location")
            if follow and resp.status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                if resp.status in (301, 302, 303) and method == "POST" or resp.status == 303:
                    method, body = "GET" if method != "HEAD" else "HEAD", None
                continue
            break
        else:
            return await fail(47, f"Maximum ({MAX_REDIRECTS}) redirects followed")
        if args.get("fail") and resp.status >= 400:
            return await fail(22, f"The requested URL returned error: {resp.status}")
        if args.get("write_out"):
            await ctx.write_all(1, _write_out(args["write_out"], resp))
        return 0
    except FetchError as e:
        return await fail(e.code, str(e))
    except KernelError as e:
        return await fail(23, f"Failure writing output to destination: {strerror(e)}")
    finally:
        if owned:
            await ctx.close(out_fd)


# ------------------------------------------------------------------------------------- wget
WGET_SPEC = Spec("wget", "[OPTION]... [URL]...", "The non-interactive network downloader (http:// only).", [
    Opt("O", "output-document", arg="FILE", help="write documents to FILE ('-' for stdout)"),
    Opt("q", "quiet", help="quiet (no output)"),
])


async def wget_main(ctx: Any) -> int:
    args = await parse_or_exit(ctx, WGET_SPEC)
    if isinstance(args, int):
        return args
    if not args.operands:
        await error(ctx, "wget", "missing URL")
        return 1
    quiet = bool(args.get("quiet"))

    async def say(text: str) -> None:
        if not quiet:
            await ctx.write_all(2, text)

    status = 0
    for url in args.operands:
        try:
            remote = posixpath.basename(urlsplit(url if "://" in url else "http://" + url).path)
        except ValueError:
            await error(ctx, "wget", f"{url}: Invalid URL")
            status = 1
            continue
        name = args.get("output_document") or remote or "index.html"
        fd = 1 if name == "-" else await ctx.open(name, O_WRONLY | O_CREAT | O_TRUNC)
        try:
            await say(f"--  {url}\n")
            keep = [True]

            async def on_head(resp: Response, keep: list[bool] = keep) -> None:
                # like wget: neither error pages nor redirect bodies are saved
                keep[0] = resp.status < 300

            async def sink(data: bytes, keep: list[bool] = keep, fd: int = fd) -> None:
                if keep[0]:
                    await ctx.write_all(fd, data)

            for _ in range(20):
                resp = await http_request(ctx, "GET", url, [], None, sink, on_head=on_head)
                loc = resp.header("location")
                if resp.status in (301, 302, 303, 307, 308) and loc:
                    url = urljoin(url, loc)
                    await say(f"Location: {loc} [following]\n")
                    continue
                break
            await say(f"HTTP request sent, awaiting response... {resp.status} {resp.reason}\n")
            if resp.status >= 400:
                await say(f"ERROR {resp.status}: {resp.reason}.\n")
                status = 8
                continue
            await say(f"Saving to: '{name}'\n\n'{name}' saved [{resp.size}]\n")
        except FetchError as e:
            await error(ctx, "wget", str(e))
            status = 4
        finally:
            if fd != 1:
                await ctx.close(fd)
    return status


# ------------------------------------------------------------------------------------- httpd
HTTPD_SPEC = Spec("httpd", "[-p PORT] [-d DIR] [-b ADDR] [-n COUNT]",
                  "Serve the files of a sandbox directory over HTTP/1.1 (GET and HEAD).", [
                      Opt("p", "port", arg="PORT", help="port to listen on (default 8080)"),
                      Opt("d", "dir", arg="DIR", help="directory to serve (default: the current one)"),
                      Opt("b", "bind", arg="ADDR", help="address to listen on (default 0.0.0.0)"),
                      Opt("n", "count", arg="COUNT", help="exit after serving COUNT connections"),
                      Opt(None, "serve", help="(internal) answer the request on stdin/stdout"),
                  ])


async def _respond(ctx: Any, code: int, body: bytes, head_only: bool, ctype: str = "text/plain") -> None:
    reason = REASONS.get(code, "Error")
    head = (f"HTTP/1.1 {code} {reason}\r\nServer: vfsfuse-httpd\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    await ctx.write_all(1, head if head_only else head + body)


async def _serve_one(ctx: Any, root: str) -> int:
    reader = SockReader(ctx, 0)
    head = await reader.until(b"\r\n\r\n", MAX_HEADER)
    if head is None:
        await _respond(ctx, 400, b"bad request\n", False)
        return 0
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        await _respond(ctx, 400, b"bad request\n", False)
        return 0
    method, target = parts[0], parts[1]
    head_only = method == "HEAD"
    if method not in ("GET", "HEAD"):
        await _respond(ctx, 501, b"not implemented\n", False)
        return 0
    rel = "/" + posixpath.normpath("/" + unquote(target.split("?", 1)[0])).lstrip("/")
    path = posixpath.join(root, rel.lstrip("/")) if rel != "/" else root
    try:
        st = await ctx.stat(path)
        if _stat.S_ISDIR(st.mode):
            if not target.split("?", 1)[0].endswith("/"):
                loc = target.split("?", 1)[0] + "/"
                head_b = (f"HTTP/1.1 301 Moved Permanently\r\nLocation: {loc}\r\nContent-Length: 0\r\n"
                          f"Connection: close\r\n\r\n").encode()
                await ctx.write_all(1, head_b)
                return 0
            index = posixpath.join(path, "index.html")
            try:
                st = await ctx.stat(index)
                path = index
            except KernelError:
                names = sorted(await ctx.listdir(path))
                items = "".join(f'<li><a href="{quote(n)}">{n}</a></li>\n' for n in names)
                page = f"<html><body><h1>Index of {rel}</h1><ul>\n{items}</ul></body></html>\n".encode()
                await _respond(ctx, 200, page, head_only, "text/html")
                return 0
        fd = await ctx.open(path, O_RDONLY)
    except KernelError as e:
        code = 404 if e.code in ("ENOENT", "ENOTDIR") else 403 if e.code == "EACCES" else 500
        await _respond(ctx, code, f"{REASONS[code].lower()}\n".encode(), head_only)
        return 0
    ctype = TYPES.get(posixpath.splitext(path)[1].lower(), "application/octet-stream")
    await ctx.write_all(1, (f"HTTP/1.1 200 OK\r\nServer: vfsfuse-httpd\r\nContent-Type: {ctype}\r\n"
                            f"Content-Length: {st.size}\r\nConnection: close\r\n\r\n").encode())
    if not head_only:
        while True:
            piece = await ctx.read(fd, PIECE)
            if not piece:
                break
            await ctx.write_all(1, piece)
    await ctx.close(fd)
    return 0


async def httpd_main(ctx: Any) -> int:
    args = await parse_or_exit(ctx, HTTPD_SPEC)
    if isinstance(args, int):
        return args
    root = args.get("dir") or ctx.getcwd()
    if args.get("serve"):
        try:
            return await _serve_one(ctx, root)
        except KernelError as e:
            if e.code in ("EPIPE", "ECONNRESET"):
                return 0
            raise
    try:
        port = int(args.get("port") or 8080)
        count = int(args["count"]) if args.get("count") else None
    except ValueError:
        await error(ctx, "httpd", "invalid port or count")
        return 1
    host = args.get("bind") or "0.0.0.0"
    try:
        infos = await ctx.getaddrinfo(host, port, AF_UNSPEC, SOCK_STREAM, flags=1)
        fam, addr = infos[0][0], infos[0][4]
        sock = await ctx.socket(fam if fam in (AF_INET, AF_INET6) else AF_INET, SOCK_STREAM)
        await ctx.setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, 1)
        await ctx.bind(sock, addr)
        await ctx.listen(sock, 128)
        await ctx.stat(root)
    except KernelError as e:
        await error(ctx, "httpd", f"cannot serve {root} on {host}:{port}: {strerror(e)}")
        return 1
    abs_root = root if root.startswith("/") else posixpath.join(ctx.getcwd(), root)
    served = 0
    children = 0
    while count is None or served < count:
        conn, _peer = await ctx.accept(sock)
        try:
            await ctx.spawn(["httpd", "--serve", "-d", abs_root], stdin=conn, stdout=conn)
            children += 1
        finally:
            await ctx.close(conn)
        served += 1
        while children:
            pid, _status = await ctx.waitpid(-1, 1)  # WNOHANG
            if not pid:
                break
            children -= 1
    while children:
        await ctx.waitpid(-1, 0)
        children -= 1
    return 0


PROGRAMS: dict[str, Program] = {"curl": curl_main, "wget": wget_main, "httpd": httpd_main}
