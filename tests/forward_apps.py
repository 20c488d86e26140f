"""Apps that run inside a stand-in host for the port-forwarding tests: an HTTP server and a
websocket echo (tornado, the host's Python), started through the host's own shell."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

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

def watch_stdin(loop):
    sys.stdin.read()  # the test closes our stdin to end us
    loop.add_callback(loop.stop)

routes = [(r"/big", Big), (r"/echo", Echo), (r"/away", Away), (r"/ws", WsEcho), (r"/.*", Hello)]
app = web.Application(routes)
app.listen(int(sys.argv[1]), address="127.0.0.1")
loop = ioloop.IOLoop.current()
threading.Thread(target=watch_stdin, args=(loop,), daemon=True).start()
print("LISTENING", flush=True)
loop.start()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HostApp:
    """tornado on `port` inside the host, until stop()."""

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
