"""Helpers for holding the SSM path against AWS's own session-manager-plugin.

``real_plugin()`` finds the plugin; ``ConnectProxy`` is the small HTTPS proxy its KMS client
needs here: the plugin's aws-sdk-go ignores endpoint settings and calls
``kms.<region>.amazonaws.com``, so ``HTTPS_PROXY`` sends that CONNECT to the stand-in's TLS
port, whose certificate names that host (see the plugin's README in ../shared).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

from support import REPO


def real_plugin() -> str | None:
    """$SM_DEBUG_SSM_PLUGIN, else ../shared/tools/session-manager-plugin/ beside the clone,
    else /work/shared/tools/...; None when none is there."""
    candidates = [os.environ.get("SM_DEBUG_SSM_PLUGIN")]
    for shared in (REPO.parent / "shared", Path("/work/shared")):
        candidates.append(str(shared / "tools/session-manager-plugin/session-manager-plugin"))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


SKIP_REASON = (
    "AWS's session-manager-plugin is not here (../shared/tools/session-manager-plugin/ or "
    "$SM_DEBUG_SSM_PLUGIN)"
)


class ConnectProxy:
    """A CONNECT-only proxy on loopback that tunnels every CONNECT to one address."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.tunnels: list[str] = []  # the hosts clients asked for
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(request_line) < 2 or request_line[0] != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(request_line[1])
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            with upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.settimeout(None)
                rest = head.split(b"\r\n\r\n", 1)[1]
                if rest:
                    upstream.sendall(rest)
                pipe = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
                pipe.start()
                _pipe(conn, upstream)
                pipe.join(5)

    def close(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self.server.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def kms_proxy_env(standin, proxy: ConnectProxy) -> dict[str, str]:
    """What the plugin needs to reach the stand-in's KMS: the proxy for KMS's AWS name, not
    for loopback (the SSM API and the data channel)."""
    return {
        "HTTPS_PROXY": proxy.url,
        "https_proxy": proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def tls_address(standin) -> tuple[str, int]:
    host, port = standin.tls_url[len("https://") :].rsplit(":", 1)
    return host.strip("[]"), int(port)
