"""The built-in client of Session Manager port forwarding (AWS-StartPortForwardingSession):
one session whose every connection is one smux stream, as the plugin's MuxPortForwarding
does (agents newer than 3.0.196.0), so many browser connections share one session.
In-process and asyncio: the Jupyter server runs it next to its proxy; the session's token
never leaves the process.

    forward = PortForwardClient(start_session_response)
    await forward.connect()                     # the session, no listener
    reader, writer = await forward.open_stream()  # one connection to the port, as asyncio streams
    ...
    await forward.close()

``start()`` also opens a listener on this machine's loopback whose connections become
streams (what the plugin does); the proxy needs none, it uses ``open_stream``.

Older agents (one TCP connection per session, no smux) are refused with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, Dict, Optional

from . import encryption, smux
from . import protocol as p
from .channel import (
    CLIENT,
    CLIENT_VERSION,
    RESEND_INTERVAL,
    ChannelClosedEvent,
    DataChannel,
    HandshakeCompleted,
    HandshakeRequested,
    ResendTimeout,
    StreamData,
)
from .muxchannel import MuxChannel, StreamWriter
from .wsclient import WebSocket

HANDSHAKE_TIMEOUT = 30.0
# The plugin's TCPMultiplexingWithSmuxKeepAliveDisabledAfterThisAgentVersion: up to this
# agent its smux keeps keep-alive on (muxportforwarding.go's initialize), so we send NOPs.
KEEPALIVE_DISABLED_AFTER_AGENT = (3, 1, 1511, 0)
KEEPALIVE_INTERVAL = 10.0  # xtaci/smux DefaultConfig's KeepAliveInterval


class PortForwardError(Exception):
    pass


class PortForwardClient:
    def __init__(
        self,
        info: Dict[str, str],
        target: str = "",
        log: Any = None,
        generate_data_key: Optional[encryption.GenerateDataKey] = None,
    ):
        """``generate_data_key``: kms:GenerateDataKey for a KMS-encrypted session, as
        attach and run take it (``encryption.kms_data_key``); without it such a session
        fails its handshake with the reason."""
        self.info = info
        self.target = target
        self.log = log
        self.channel = DataChannel(
            CLIENT,
            self._send_frame,
            session_id=info.get("SessionId", ""),
            target_id=target,
            port_forwarding=True,
            generate_data_key=generate_data_key,
        )
        self.carrier = MuxChannel(self.channel, client=True)
        self.ws: Any = None
        self.server: Optional[asyncio.AbstractServer] = None
        self.local_port = 0
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._connections: set[asyncio.Task] = set()
        # smux keep-alive NOPs: None decides by the agent's version, as the plugin does.
        self.keepalive: Optional[bool] = None
        self._next_ping = 0.0

    # -- the data channel ----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """The session and a loopback listener whose connections become streams; returns
        the listener's port."""
        await self.connect()
        self.server = await asyncio.start_server(self._on_connection, host, port)
        self.local_port = self.server.sockets[0].getsockname()[1]
        return self.local_port

    async def connect(self) -> None:
        """The session: data channel, handshake, agent version check. No listener."""
        try:
            self.ws = await WebSocket.connect(self.info["StreamUrl"], timeout=15)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the stream is one message
            raise PortForwardError(f"Cannot open the session's data channel: {exc}") from None
        opening = p.open_data_channel_message(
            self.info["TokenValue"], str(uuid.uuid4()), CLIENT_VERSION
        )
        self.ws.send_text(opening)
        self._tasks = [
            asyncio.ensure_future(self._read_loop()),
            asyncio.ensure_future(self._tick_loop()),
        ]
        try:
            await asyncio.wait_for(self._ready.wait(), HANDSHAKE_TIMEOUT)
        except asyncio.TimeoutError:
            await self.close()
            raise PortForwardError(
                self.close_reason or "The agent did not start the port session."
            ) from None
        if self.closed.is_set():
            raise PortForwardError(self.close_reason or "The session ended at once.")
        if self.keepalive is None:
            self.keepalive = p.version_tuple(self.channel.agent_version) <= (
                KEEPALIVE_DISABLED_AFTER_AGENT
            )
        self._next_ping = asyncio.get_running_loop().time() + KEEPALIVE_INTERVAL
        if p.version_tuple(self.channel.agent_version) <= p.MUX_AFTER:
            await self.close()
            raise PortForwardError(
                f"The SSM agent ({self.channel.agent_version or 'unknown version'}) is "
                "3.0.196.0 or older and forwards one connection per session; the built-in "
                "client needs its multiplexed mode (newer agents)."
            )

    async def open_stream(self) -> tuple[asyncio.StreamReader, StreamWriter]:
        """A new connection to the port in the host: one smux stream of this session, as an
        asyncio.StreamReader and a StreamWriter-like object (write, drain, write_eof,
        close). No local listener is involved. Raises PortForwardError once the session
        has ended."""
        if not self._ready.is_set() or self.closed.is_set():
            raise PortForwardError(self.close_reason or "The port session is not open.")
        try:
            return self.carrier.open_stream()
        except smux.SmuxError:
            raise PortForwardError(self.close_reason or "The port session ended.") from None

    def _send_frame(self, frame: bytes) -> None:
        if self.ws is not None and not self.closed.is_set():
            self.ws.send_binary(frame)

    async def _read_loop(self) -> None:
        try:
            while True:
                # A stream whose reader is full holds the whole session back (smux.py): the
                # agent's window fills and it waits, as with xtaci/smux's receive buffer.
                await self.carrier.mux.readable.wait()
                message = await self.ws.read_message()
                if message is None:
                    self._finish("The data channel closed.")
                    return
                if isinstance(message, str):
                    continue
                try:
                    events = self.channel.receive(message)
                except p.MalformedPayload as exc:
                    self._fail(p.unreadable(exc))
                    return
                except p.ProtocolError:
                    continue  # a frame that fails validation: log-and-drop, as the plugin
                for event in events:
                    self._on_event(event)
                self.carrier.update_room()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - whatever broke, the session is over
            self._fail(f"The port session failed: {exc or type(exc).__name__}")

    def _on_event(self, event: Any) -> None:
        if isinstance(event, HandshakeRequested):
            errors = [a.error for a in event.response.actions if a.error]
            if errors:
                self._finish("; ".join(errors))
        elif isinstance(event, HandshakeCompleted):
            self._ready.set()
        elif isinstance(event, StreamData):
            if event.payload_type == p.PayloadType.OUTPUT:
                try:
                    self.carrier.feed(event.payload)
                except smux.SmuxError as exc:
                    self._finish(str(exc))
            elif event.payload_type == p.PayloadType.FLAG:
                with contextlib.suppress(p.ProtocolError):
                    flag = p.parse_flag(event.payload)
                    if flag == p.PayloadTypeFlag.CONNECT_TO_PORT_ERROR and self.log:
                        self.log.info("sm-debug: the agent could not connect to the port")
        elif isinstance(event, ChannelClosedEvent):
            self._finish(event.closed.output or "The session ended.")

    async def _tick_loop(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(RESEND_INTERVAL)
            try:
                self.channel.tick()
            except ResendTimeout:
                self._finish("The agent stopped acknowledging.")
            if self.keepalive and self._ready.is_set() and not self.closed.is_set():
                now = asyncio.get_running_loop().time()
                if now >= self._next_ping:
                    # xtaci/smux Session.keepalive: a NOP (stream id 0) every interval
                    self.carrier.mux.send(smux.frame(smux.NOP, 0))
                    self._next_ping = now + KEEPALIVE_INTERVAL
            self.carrier.update_room()

    def _fail(self, reason: str) -> None:
        """The session cannot go on: ended here and at the agent, the connection closed.
        ``alive`` is False from now on, and ``close_reason`` says why."""
        if not self.closed.is_set() and self.ws is not None:
            with contextlib.suppress(Exception):
                self.channel.send_stream(
                    p.PayloadType.FLAG, p.flag_payload(p.PayloadTypeFlag.TERMINATE_SESSION)
                )
        self._finish(reason)
        if self.log:
            self.log.warning("sm-debug: SSM port session ended: %s", reason)
        if self.ws is not None:
            self.ws.close()

    def _finish(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            self._ready.set()
            self.carrier.close()
            if self.server is not None:
                self.server.close()

    # -- the optional listener ------------------------------------------------------------------

    async def _on_connection(self, reader, writer) -> None:
        if self.closed.is_set():
            writer.close()
            return
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            stream = self.carrier.mux.open_stream()
            await self.carrier.splice(stream, reader, writer)
        except smux.SmuxError:
            writer.close()
        finally:
            self._connections.discard(task)

    # -- the end --------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self.closed.is_set()

    async def close(self) -> None:
        """TerminateSession flag to the agent, then everything local ends."""
        if not self.closed.is_set() and self.ws is not None:
            self.channel.send_stream(
                p.PayloadType.FLAG, p.flag_payload(p.PayloadTypeFlag.TERMINATE_SESSION)
            )
        self._finish("closed")
        for task in [*self._tasks, *self._connections]:
            task.cancel()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
        if self.ws is not None:
            self.ws.close()
