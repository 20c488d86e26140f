"""The local half of a kernel on a host: a real Jupyter kernel process (ipykernel's
machinery, started by the Jupyter server's own kernel manager) whose cells run in an
interpreter inside the container (agent.py).

It reaches that interpreter through the server's relay: a Unix socket in a 0700 directory
(``SM_DEBUG_KERNEL_RELAY``) whose every connection the server joins to a new authenticated
stream to the agent. It never sees the agent's token, and it opens no port.

Everything from the container is untrusted: frames are bounded (MAX_FRAME), outputs pass
through sanitize.clean_bundle / clean_error before they are published.

Run as ``python -m jupyter_sm_debug.kernels.kernel -f {connection_file}``.
"""

from __future__ import annotations

import asyncio
import codeop
import contextlib
import itertools
import json
import os
import signal
import struct
import sys
import warnings
from typing import Any, Optional

from ipykernel.kernelbase import Kernel

from . import LABEL_VARIABLE, RELAY_VARIABLE
from .sanitize import MAX_MESSAGE, clean_bundle, clean_error, cut

MAX_FRAME = 2 * MAX_MESSAGE  # base64 and JSON escapes on top of a bounded output
REPLY_TIMEOUT = 30.0
START_TIMEOUT = 150.0  # the agent is pushed while this process starts (push: 60 s at most)
REATTACH_SECONDS = 60.0  # how long a dropped stream is tried again before giving up
INPUT_POLL = 0.02


class Lost(Exception):
    """The interpreter in the container is out of reach; the message says why, in words."""


def frame(message: dict) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">I", len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> dict:
    head = await reader.readexactly(4)
    size = struct.unpack(">I", head)[0]
    if size > MAX_FRAME:  # read past it, never kept
        while size:
            size -= len(await reader.readexactly(min(size, 1 << 20)))
        return {"op": "oversize", "size": struct.unpack(">I", head)[0]}
    message = json.loads(await reader.readexactly(size))
    if not isinstance(message, dict):
        raise Lost("the container sent something that is not a message")
    return message


async def open_relay(
    path: str, first: dict, timeout: float = REPLY_TIMEOUT
) -> tuple[Any, Any, dict]:
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
    writer.write(frame(first))
    await writer.drain()
    answer = await asyncio.wait_for(read_frame(reader), timeout)
    return reader, writer, answer


class RemoteKernel(Kernel):
    implementation = "sm-debug-remote-python"
    implementation_version = "1"
    language = "python"
    language_info = {
        "name": "python",
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "pygments_lexer": "ipython3",
        "nbconvert_exporter": "python",
    }

    @property
    def banner(self) -> str:
        started = self._started or {}
        return (
            f"Python {started.get('python', '?')} on {self.label} "
            f"({started.get('executable', 'the container')}), through jupyter-sm-debug"
        )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.relay = os.environ.get(RELAY_VARIABLE, "")
        self.label = os.environ.get(LABEL_VARIABLE, "the container")
        self._writer: Any = None
        self._attach: Optional[dict] = None
        self._started: Optional[dict] = None
        self._connecting: Optional[asyncio.Future] = None
        self._cell: Optional[asyncio.Queue] = None
        self._replies: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._lost: Optional[str] = None
        self._closing = False
        self._connected: Optional[asyncio.Event] = None  # set while a stream is up

    # -- the stream to the interpreter -----------------------------------------------------

    def start(self) -> None:
        super().start()
        signal.signal(signal.SIGINT, self._on_sigint)
        self.io_loop.add_callback(self._ready_quietly)

    async def _ready_quietly(self) -> None:
        with contextlib.suppress(Lost):  # said at the first request
            await self._ready()

    async def _ready(self) -> None:
        if self._lost:
            raise Lost(self._lost)
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        await asyncio.shield(self._connecting)

    async def _connect(self) -> None:
        try:
            start = {"op": "start"}
            reader, writer, attached = await open_relay(self.relay, start, START_TIMEOUT)
            if attached.get("op") != "attached":
                raise Lost("the container did not start an interpreter")
            started = await asyncio.wait_for(read_frame(reader), REPLY_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
            self._lose(f"could not start Python there ({type(e).__name__}: {e})")
            raise Lost(self._lost) from None
        except Lost as error:
            self._lose(str(error))
            raise
        self._attach = {"op": "attach", "id": attached.get("id"), "key": attached.get("key")}
        self._started = started if started.get("op") == "started" else {}
        self._writer = writer
        self._up().set()
        asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                message = await read_frame(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError, Lost) as error:
                if self._closing:
                    return
                reader = await self._reattach(error)
                if reader is None:
                    return
                continue
            self._route(message)

    async def _reattach(self, why: BaseException) -> Optional[asyncio.StreamReader]:
        """The stream dropped: the same interpreter again (the agent keeps it GRACE s)."""
        deadline = asyncio.get_running_loop().time() + REATTACH_SECONDS
        self._writer = None
        self._up().clear()
        self._note(f"[sm-debug] lost the connection to {self.label}; reconnecting...\n")
        while asyncio.get_running_loop().time() < deadline and not self._closing:
            try:
                reader, writer, answer = await open_relay(self.relay, self._attach or {})
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, Lost):
                await asyncio.sleep(2.0)
                continue
            if answer.get("op") == "attached":
                self._writer = writer
                self._up().set()
                self._note(f"[sm-debug] reconnected to {self.label}.\n")
                return reader
            writer.close()
            break
        self._lose(f"the connection dropped ({type(why).__name__}: {why}) and the interpreter "
                   "could not be reached again")  # fmt: skip
        return None

    def _lose(self, why: str) -> None:
        if self._lost:
            return
        self._lost = why
        self._up().set()  # whoever waits for the stream learns it is lost
        for future in self._replies.values():
            if not future.done():
                future.set_exception(Lost(why))
        if self._cell is not None:
            self._cell.put_nowait({"op": "lost"})
        # The kernel process ends so the notebook shows it died (the server restarts it:
        # a fresh interpreter, if the host can still be reached).
        asyncio.get_running_loop().call_later(2.0, os._exit, 1)

    def _route(self, message: dict) -> None:
        op = message.get("op")
        if op == "reply":
            future = self._replies.pop(message.get("rid"), None)
            if future is not None and not future.done():
                future.set_result(message)
        elif op == "oversize":
            self._note(f"[sm-debug] an output of {message['size'] >> 20} MiB from "
                       f"{self.label} was dropped (at most {MAX_FRAME >> 20} MiB)\n")  # fmt: skip
        elif op in ("stream", "display_data", "execute_result", "error", "input_request", "done"):
            if self._cell is not None:
                self._cell.put_nowait(message)
            elif op == "stream":
                self._publish_stream(message)  # a background thread's output, between cells

    def _up(self) -> asyncio.Event:
        if self._connected is None:
            self._connected = asyncio.Event()
        return self._connected

    async def _send(self, message: dict) -> None:
        if self._writer is None and not self._lost:  # reconnecting: wait for it
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._up().wait(), REATTACH_SECONDS + REPLY_TIMEOUT)
        if self._writer is None:
            raise Lost(self._lost or "the connection did not come back")
        self._writer.write(frame(message))
        await self._writer.drain()

    async def _ask(self, message: dict) -> dict:
        await self._ready()
        rid = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._replies[rid] = future
        await self._send({**message, "rid": rid})
        try:
            return await asyncio.wait_for(future, REPLY_TIMEOUT)
        finally:
            self._replies.pop(rid, None)

    # -- publishing ----------------------------------------------------------------------------

    def _say(self, name: str, text: str) -> None:
        self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def _note(self, text: str) -> None:
        """Our own words on stderr, in the running cell's output when there is one (the
        reader task has no request of its own for them to answer)."""
        if self._cell is not None:
            self._cell.put_nowait({"op": "stream", "name": "stderr", "text": text})
        else:
            self._say("stderr", text)

    def _publish_stream(self, message: dict) -> None:
        name = "stderr" if message.get("name") == "stderr" else "stdout"
        self._say(name, cut(message.get("text", ""), MAX_MESSAGE))

    def _lost_reply(self) -> dict:
        text = (
            f"The kernel lost its Python on {self.label}: {self._lost}. Its variables are "
            "gone; the kernel restarts with a new interpreter there if the host can be reached."
        )
        self._say("stderr", text + "\n")
        return {
            "status": "error", "execution_count": self.execution_count,
            "ename": "KernelLost", "evalue": text, "traceback": [text],
        }  # fmt: skip

    # -- the requests ----------------------------------------------------------------------------

    async def do_execute(
        self, code, silent, store_history=True, user_expressions=None, allow_stdin=False,
        *, cell_meta=None, cell_id=None,
    ):  # fmt: skip
        try:
            await self._ready()
        except Lost:
            return self._lost_reply()
        self._cell = cell = asyncio.Queue()
        asking: Optional[asyncio.Task] = None
        error: Optional[dict] = None
        try:
            await self._send({"op": "execute", "code": code, "rid": next(self._ids)})
            while True:
                message = await cell.get()
                op = message.get("op")
                if op == "done":
                    break
                if op == "lost":
                    return self._lost_reply()
                if op == "stream" and not silent:
                    self._publish_stream(message)
                elif op == "display_data" and not silent:
                    data = clean_bundle(message.get("data"))
                    self.send_response(
                        self.iopub_socket, "display_data", {"data": data, "metadata": {}}
                    )
                elif op == "execute_result" and not silent:
                    content = {
                        "execution_count": self.execution_count,
                        "data": clean_bundle(message.get("data")),
                        "metadata": {},
                    }
                    self.send_response(self.iopub_socket, "execute_result", content)
                elif op == "error":
                    error = clean_error(message)
                    self.send_response(self.iopub_socket, "error", error)
                elif op == "input_request":
                    if asking is not None:
                        asking.cancel()
                    asking = asyncio.ensure_future(self._input(message, allow_stdin))
                    asking.add_done_callback(self._input_done)
        except Lost:
            return self._lost_reply()
        finally:
            self._cell = None
            if asking is not None:
                asking.cancel()
        if error is not None:
            return {"status": "error", "execution_count": self.execution_count, **error}
        return {
            "status": "ok", "execution_count": self.execution_count,
            "payload": [], "user_expressions": {},
        }  # fmt: skip

    async def _input(self, message: dict, allowed: bool) -> None:
        """input() in the container: an input_request to the front end, polled without
        blocking the loop (the cell may end meanwhile: interrupted, or the stream lost)."""
        if not allowed:
            self._say("stderr", "[sm-debug] this front end does not take input()\n")
            await self._send({"op": "input_reply", "eof": True})
            return
        import zmq

        socket = self.stdin_socket
        while socket.poll(0):
            socket.recv_multipart()
        content = {
            "prompt": cut(message.get("prompt", ""), 4096),
            "password": bool(message.get("password")),
        }
        self.session.send(
            socket, "input_request", content, self._input_parent(), ident=self._input_ident()
        )
        while True:
            if socket.poll(0, zmq.POLLIN):
                _, reply = self.session.recv(socket)
                if reply is not None:
                    break
            await asyncio.sleep(INPUT_POLL)
        value = (reply.get("content") or {}).get("value", "")
        if value == "\x04":
            await self._send({"op": "input_reply", "eof": True})
        else:
            await self._send({"op": "input_reply", "value": str(value)})

    def _input_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("sm-debug: input() failed", exc_info=task.exception())

    def _input_parent(self) -> dict:
        return self.get_parent("shell")

    def _input_ident(self) -> Any:
        if hasattr(self, "_shell_parent_ident") and hasattr(self, "_get_shell_context_var"):
            return self._get_shell_context_var(self._shell_parent_ident)  # ipykernel 7
        return self._parent_ident["shell"]  # ipykernel 6

    async def do_complete(self, code, cursor_pos):
        cursor = len(code) if cursor_pos is None else cursor_pos
        empty = {"matches": [], "cursor_start": cursor, "cursor_end": cursor,
                 "metadata": {}, "status": "ok"}  # fmt: skip
        try:
            answer = await self._ask({"op": "complete", "code": code, "cursor": cursor})
        except (Lost, asyncio.TimeoutError):
            return empty
        matches = [cut(m, MAX_LINE_COMPLETION) for m in answer.get("matches", [])[:2000]
                   if isinstance(m, str)]  # fmt: skip
        start = answer.get("cursor_start", cursor)
        start = start if isinstance(start, int) and 0 <= start <= cursor else cursor
        return {**empty, "matches": matches, "cursor_start": start}

    async def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        cursor = len(code) if cursor_pos is None else cursor_pos
        try:
            answer = await self._ask(
                {"op": "inspect", "code": code, "cursor": cursor, "detail": detail_level}
            )
        except (Lost, asyncio.TimeoutError):
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        found = bool(answer.get("found"))
        data = clean_bundle(answer.get("data")) if found else {}
        return {"status": "ok", "found": found, "data": data, "metadata": {}}

    async def do_is_complete(self, code):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                compiled = codeop.compile_command(code, "<cell>", "exec")
            except (SyntaxError, ValueError, OverflowError):
                return {"status": "invalid"}
        if compiled is None or code.rstrip("\n") != code and code.endswith(" "):
            return {"status": "incomplete", "indent": ""}
        return {"status": "complete"}

    # -- interrupt and shutdown ------------------------------------------------------------------

    def _on_sigint(self, *_: Any) -> None:
        self.io_loop.add_callback_from_signal(self._interrupt)

    async def _interrupt(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Lost, OSError):
                await self._send({"op": "interrupt"})

    def pre_handler_hook(self) -> None:
        """Keep our SIGINT handler while a request runs (the base class would raise
        KeyboardInterrupt in this process; the cell runs in the container)."""

    def post_handler_hook(self) -> None:
        pass

    async def interrupt_request(self, stream, ident, parent):
        """From the control thread: forward to the interpreter on the kernel's loop."""
        self.io_loop.add_callback(self._interrupt)
        self.session.send(stream, "interrupt_reply", {"status": "ok"}, parent, ident=ident)

    async def do_shutdown(self, restart):
        """The interpreter ends with its process group (a restart starts a fresh one)."""
        self._closing = True
        if self._writer is not None:
            with contextlib.suppress(Lost, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(self._send({"op": "shutdown"}), 5)
            self._writer.close()
        return {"status": "ok", "restart": restart}


MAX_LINE_COMPLETION = 4096


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=RemoteKernel)


if __name__ == "__main__":
    sys.exit(main())
