"""A network with latency: SSH's counterpart of the stand-in's channel_latency fault."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

from .procs import Cleanup


class DelayProxy:
    """A TCP proxy on loopback that delays every byte by `one_way` seconds in each direction,
    in order and without a bandwidth limit (a link with a round trip of 2 x one_way): SSH's
    counterpart of the stand-in's channel_latency fault. Runs its own event loop in a thread;
    `address` is where to connect instead of the target."""

    def __init__(self, stack: Cleanup, target: tuple[str, int], one_way: float):
        self.target, self.one_way = target, one_way
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)
        stack.callback(self.close)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.address = ("127.0.0.1", self.server.sockets[0].getsockname()[1])
            ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    async def _serve(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        both = (client_writer, server_writer)
        for writer in both:
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            self._pipe(client_reader, server_writer, both),
            self._pipe(server_reader, client_writer, both),
            return_exceptions=True,
        )
        for writer in both:
            writer.close()

    async def _pipe(self, reader, writer, both) -> None:
        """reader -> writer, each chunk `one_way` seconds after it was read; an EOF goes on
        as an EOF (half-close), a reset closes both sides."""
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                if queue.empty():
                    await writer.drain()

        task = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(1 << 16)
                queue.put_nowait((self.loop.time() + self.one_way, data))
                if not data:
                    break
            await task
        except (OSError, ConnectionError):
            for each in both:
                each.close()
        finally:
            task.cancel()

    def close(self) -> None:
        def stop():
            self.server.close()
            self.loop.stop()

        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(stop)
        self.thread.join(5)
