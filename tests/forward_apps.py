"""Apps that run inside a stand-in host for the port-forwarding tests: an HTTP server and a
websocket echo (tornado, the host's Python), started through the host's own shell."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from support import free_port  # noqa: F401 - the forward tests import it from here

APP = r"""
import sys, threading, os
from tornado import ioloop, web, websocket

BIG = bytes(range(256)) * (int(sys.argv[2]) // 256)

class Hello(web.RequestHandler):
    def get(self):
        self.write("hello from " + os.environ.get("SM_CURRENT_HOST", "?") + " " + self.request.path)

class Big(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/octet-stream")
        for i in range(0, len(BIG), 1 << 20):
            self.write(BIG[i:i + (1 << 20)])

class Echo(web.RequestHandler):
    def post(self):
        self.write(self.request.body)

class Away(web.RequestHandler):
    def get(self):
        self.redirect("/hello/after-redirect")

class WsEcho(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))

class Hostile(web.RequestHandler):
    # Headers that would act on the whole origin if a proxy passed them on.
    def get(self):
        self.set_header("Set-Cookie", "planted=1; Path=/")
        self.add_header("Set-Cookie", "_xsrf=forged; Path=/")
        self.set_header("Service-Worker-Allowed", "/")
        self.set_header("Clear-Site-Data", '"cookies", "storage"')
        self.set_header("Content-Security-Policy", "sandbox allow-scripts allow-same-origin")
        self.set_header("Content-Security-Policy-Report-Only", "default-src 'none'")
        self.set_header("Refresh", "0; url=/lab")
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Access-Control-Allow-Credentials", "true")
        self.set_header("Strict-Transport-Security", "max-age=31536000")
        self.set_header("Alt-Svc", 'h2="evil.example:443"')
        self.set_header("NEL", '{"report_to":"x","max_age":86400}')
        self.set_header("Report-To", '{"group":"x","max_age":86400,"endpoints":[]}')
        self.set_header("X-App", "kept")
        self.write("<!doctype html><p>hostile</p>")

class Seen(web.RequestHandler):
    # What reached the app: its query and headers, as JSON.
    def get(self):
        self.write({"uri": self.request.uri, "query": self.request.query,
                    "headers": [list(item) for item in self.request.headers.get_all()]})
    post = get

class Stream(web.RequestHandler):
    # N bytes made as they are sent, each MiB flushed: no copy of the body in the app.
    async def get(self, size):
        size = int(size)
        block = bytes(range(256)) * 4096
        if self.get_argument("chunked", None) is None:
            self.set_header("Content-Length", str(size))
        self.set_header("Content-Type", "application/octet-stream")
        while size > 0:
            self.write(block[:size])
            size -= len(block)
            await self.flush()

@web.stream_request_body
class Count(web.RequestHandler):
    # Counts a streamed request body without keeping it.
    def prepare(self):
        self.request.connection.set_max_body_size(1 << 40)
        self.count = 0
    def data_received(self, chunk):
        self.count += len(chunk)
    def post(self):
        self.write({"count": self.count})
    put = post

def watch_stdin(loop):
    sys.stdin.read()  # the test closes our stdin to end us
    loop.add_callback(loop.stop)

routes = [(r"/hostile", Hostile), (r"/seen", Seen), (r"/stream/([0-9]+)", Stream),
          (r"/count", Count)]
routes += [(r"/big", Big), (r"/echo", Echo), (r"/away", Away), (r"/ws", WsEcho), (r"/.*", Hello)]
app = web.Application(routes)
app.listen(int(sys.argv[1]), address="127.0.0.1")
loop = ioloop.IOLoop.current()
threading.Thread(target=watch_stdin, args=(loop,), daemon=True).start()
print("LISTENING", flush=True)
loop.start()
"""


class HostApp:
    # tornado on `port` inside the host, until stop().

    def __init__(self, standin, job: str, host: str, big_bytes: int = 32 << 20):
        self.port = free_port()
        self.host = host
        env, cwd = standin.host_env(job, host)
        Path(cwd, "forward_app.py").write_text(APP)
        self.process = subprocess.Popen(
            standin.host_shell_argv(job, host), env=env, cwd=cwd, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        command = f"exec {sys.executable} forward_app.py {self.port} {big_bytes}\n"
        self.process.stdin.write(command.encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the app in {host} did not start")

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


BIG_SAMPLE = bytes(range(256))
