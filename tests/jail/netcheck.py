"""Run by the host's python3 *inside the jail* (tests/jail/test_jail_net.py); stdlib only.

  netcheck.py lo                  lo's state (UP/DOWN), the interfaces in /proc/net/dev, whether
                                  any IPv6 address exists
  netcheck.py connect HOST PORT   a TCP connect ignoring any proxy: "connected" or the errno name
  netcheck.py selfloop            listen on 127.0.0.1 and connect to it: "selfloop ok" or the errno
  netcheck.py get URL             urllib GET (through $http_proxy): the status, then the body
  netcheck.py tunnel HOST PORT    CONNECT through $https_proxy, send "ping", print what comes back
  netcheck.py routes              the IPv4 routes (main table) and the devices IPv6 routes use
  netcheck.py env                 the proxy variables
"""

import errno
import fcntl
import os
import socket
import struct
import sys


def lo() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        raw = fcntl.ioctl(s, 0x8913, struct.pack("16sh22x", b"lo", 0))  # SIOCGIFFLAGS
    flags = struct.unpack_from("16sh", raw)[1]
    print("lo", "UP" if flags & 1 else "DOWN")
    with open("/proc/net/dev") as f:
        print("ifaces", *[line.split(":")[0].strip() for line in f.read().splitlines()[2:]])
    with open("/proc/net/if_inet6") as f:
        print("inet6", "some" if f.read().strip() else "none")


def connect(host: str, port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect((host, port))
        print("connected")
    except OSError as err:
        print(errno.errorcode.get(err.errno or 0, str(err)))


def selfloop() -> None:
    try:
        srv = socket.create_server(("127.0.0.1", 0))
        c = socket.create_connection(srv.getsockname(), timeout=10)
        a, _ = srv.accept()
        c.sendall(b"x")
        print("selfloop ok" if a.recv(1) == b"x" else "selfloop broken")
    except OSError as err:
        print(errno.errorcode.get(err.errno or 0, str(err)))


def get(url: str) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    except urllib.error.URLError as err:
        print("error", err.reason)
        return
    print(status)
    sys.stdout.write(body.decode("utf-8", "replace"))


def tunnel(host: str, port: int) -> None:
    proxy = os.environ["https_proxy"].removeprefix("http://").rstrip("/")
    phost, pport = proxy.rsplit(":", 1)
    with socket.create_connection((phost, int(pport)), timeout=30) as s:
        s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            piece = s.recv(4096)
            if not piece:
                break
            head += piece
        status, _, rest = head.partition(b"\r\n\r\n")
        print(status.split(b"\r\n")[0].decode())
        if b" 200 " not in status.split(b"\r\n")[0] + b" ":
            print(rest.decode().strip())
            return
        s.sendall(b"ping")
        got = rest
        while len(got) < len(b"echo:ping"):
            piece = s.recv(4096)
            if not piece:
                break
            got += piece
        print(got.decode())


def routes() -> None:
    with open("/proc/net/route") as f:
        print("routes4", len(f.read().splitlines()[1:]))
    with open("/proc/net/ipv6_route") as f:
        print("routes6 via", *sorted({line.split()[-1] for line in f.read().splitlines()}) or ["nothing"])


def env() -> None:
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        print(f"{k}={os.environ.get(k, '<unset>')}")


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "lo":
        lo()
    elif cmd == "connect":
        connect(args[0], int(args[1]))
    elif cmd == "selfloop":
        selfloop()
    elif cmd == "get":
        get(args[0])
    elif cmd == "tunnel":
        tunnel(args[0], int(args[1]))
    elif cmd == "routes":
        routes()
    elif cmd == "env":
        env()


main()
