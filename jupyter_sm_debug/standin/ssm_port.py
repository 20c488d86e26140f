"""The stand-in's SSM agent for port-forwarding sessions (AWS-StartPortForwardingSession).

Like amazon-ssm-agent 3.0.222.0 and later: a handshake whose SessionType action is "Port"
with the session's properties (portNumber, type LocalPortForwarding), then smux v1 inside
the data channel's Output payloads (``ssm.muxchannel``, the carrier the built-in client
uses too; AWS's plugin, with its own smux, judges this side in the conformance tests);
each stream the client opens is connected to 127.0.0.1:portNumber in the host (the hosts'
network is this machine's loopback), and a port nothing listens on closes that stream at
once. Outgoing data goes in messages of the agent's StreamDataPayloadSize (1 KiB).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..ssm import protocol as p
from ..ssm import smux
from ..ssm.channel import HandshakeAnswered, StreamData
from ..ssm.muxchannel import MuxChannel
from .ssm_agent import AgentBase
from .ssm_sessions import SsmSession


class PortAgent(AgentBase):
    """One port session's agent (lifecycle and resume: ``AgentBase``)."""

    def __init__(self, standin: Any, session: SsmSession, loop: Any) -> None:
        super().__init__(standin, session, loop)
        self.carrier = MuxChannel(
            self.channel, client=False, on_stream=self._serve_stream, hold=self.batched
        )

    def _start(self) -> None:
        # The document's properties with the session's parameters, as the agent sends them.
        properties = {"portNumber": str(self.session.port), "type": "LocalPortForwarding"}
        if self.session.local_port:
            properties["localPortNumber"] = self.session.local_port
        self.channel.request_handshake(p.PORT_SESSION_TYPE, properties=properties)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, HandshakeAnswered):
            if event.ok:
                self.channel.complete_handshake()
            else:
                self.end("Handshake failed: the client refused the port session")
        elif isinstance(event, StreamData):
            if event.payload_type == p.PayloadType.OUTPUT:
                try:
                    self.carrier.feed(event.payload)
                except smux.SmuxError:
                    self.end("The client sent a malformed smux frame.")
            elif event.payload_type == p.PayloadType.FLAG:
                with contextlib.suppress(p.ProtocolError):
                    if p.parse_flag(event.payload) == p.PayloadTypeFlag.TERMINATE_SESSION:
                        self.end("")

    def _received(self) -> None:
        self.carrier.update_room()

    def _after_tick(self) -> None:
        self.carrier.update_room()

    def _release(self) -> None:
        self.carrier.close()

    async def _serve_stream(self, stream: smux.Stream) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.session.port)
        except OSError:
            stream.close()  # nothing listens: the client sees the connection end
            return
        await self.carrier.splice(stream, reader, writer)
