"""The stand-in's SSM agent for port-forwarding sessions (AWS-StartPortForwardingSession).

Like amazon-ssm-agent newer than 3.0.196.0 (the plugin multiplexes from there): a handshake
whose SessionType action is "Port" with the session's properties (portNumber, type
LocalPortForwarding), then smux v1 inside the data channel's Output payloads
(``ssm.muxchannel``, the carrier the built-in client uses too; AWS's plugin, with its own
smux, judges this side in the conformance tests). Each stream the client opens is connected
to 127.0.0.1:portNumber in the host (the hosts' network is this machine's loopback); a port
nothing listens on gets the ConnectToPortError flag, then the stream's FIN
(``handleServerConnections``). Outgoing data goes in messages of the agent's
StreamDataPayloadSize (1 KiB).

smux keep-alive as the agent sets it up (``MuxPortSession.initialize``): on for a client
whose HandshakeResponse says ClientVersion 1.2.331.0 or lower, off above. While on, smux
(xtaci/smux ``Session.keepalive``) sends a NOP every KeepAliveInterval and closes the
session when a KeepAliveTimeout tick finds that nothing arrived since the previous tick,
which ends the port session (the registry's ``smux_keepalive_*`` knobs: 10 s and 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Optional

from ...ssm import protocol as p
from ...ssm import smux
from ...ssm.channel import EncryptionConfirmed, HandshakeAnswered, StreamData
from ...ssm.muxchannel import MuxChannel
from .agent import AgentBase
from .sessions import SsmSession

# port.go's muxKeepAliveDisabledAfterThisClientVersion
KEEPALIVE_DISABLED_AFTER_CLIENT = (1, 2, 331, 0)


class PortAgent(AgentBase):
    """One port session's agent (lifecycle and resume: ``AgentBase``)."""

    def __init__(self, standin: Any, session: SsmSession, loop: Any) -> None:
        super().__init__(standin, session, loop)
        self.carrier = MuxChannel(
            self.channel, client=False, on_stream=self._serve_stream, hold=self.batched
        )
        self.keepalive = False  # smux keep-alive on (decided by the client's version)
        self._next_ping: Optional[float] = None
        self._next_check: Optional[float] = None
        self._data_ready = False  # smux's dataReady: a frame arrived since the last check

    def _start(self) -> None:
        # The document's properties with the session's parameters, as the agent sends them.
        properties = {"portNumber": str(self.session.port), "type": "LocalPortForwarding"}
        if self.session.local_port:
            properties["localPortNumber"] = self.session.local_port
        # The registry's KMS knob encrypts port sessions too (the agent's data channel runs
        # one handshake, KMS included, whatever the session type: PerformHandshake).
        self.channel.request_handshake(
            p.PORT_SESSION_TYPE, kms_key_id=self.registry.kms_key_id, properties=properties
        )

    def _on_event(self, event: Any) -> None:
        if isinstance(event, HandshakeAnswered):
            if not event.ok:
                reason = event.problem or "the client refused the port session"
                self.end(f"Handshake failed: {reason}")
            elif not event.challenged:  # with KMS: once the challenge is answered
                self._start_mux(event.response.client_version)
                self.channel.complete_handshake()
        elif isinstance(event, EncryptionConfirmed):
            if not event.ok:
                self.end("Handshake failed: Encryption challenge does not match!")
            else:
                self._start_mux(self.channel.client_version)
                self.channel.complete_handshake()
        elif isinstance(event, StreamData):
            if event.payload_type == p.PayloadType.OUTPUT:
                self._data_ready = True
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

    def _start_mux(self, client_version: str) -> None:
        """MuxPortSession.initialize: smux keep-alive unless the client is newer than
        1.2.331.0 (an unreadable version compares as older)."""
        self.keepalive = p.version_tuple(client_version) <= KEEPALIVE_DISABLED_AFTER_CLIENT
        if self.keepalive:
            now = time.monotonic()
            self._next_ping = now + self.registry.smux_keepalive_interval
            self._next_check = now + self.registry.smux_keepalive_timeout

    def _keepalive_tick(self) -> bool:
        """xtaci/smux Session.keepalive: a NOP every interval; at every timeout tick,
        close unless something arrived since the last one. False: the session closed."""
        if not self.keepalive or self._next_ping is None or self._next_check is None:
            return True
        now = time.monotonic()
        if now >= self._next_ping:
            self.carrier.mux.send(smux.frame(smux.NOP, 0))
            self._next_ping = now + self.registry.smux_keepalive_interval
        if now >= self._next_check:
            if not self._data_ready:
                self.end("")  # smux closed the session: the port session is over
                return False
            self._data_ready = False
            self._next_check = now + self.registry.smux_keepalive_timeout
        return True

    def _after_tick(self) -> None:
        if self._keepalive_tick():
            self.carrier.update_room()

    def _release(self) -> None:
        self.carrier.close()

    async def _serve_stream(self, stream: smux.Stream) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.session.port)
        except OSError:
            # handleServerConnections: the ConnectToPortError flag, then the stream closed
            with self.batched():
                self.channel.send_stream(
                    p.PayloadType.FLAG, p.flag_payload(p.PayloadTypeFlag.CONNECT_TO_PORT_ERROR)
                )
                stream.close()
            return
        await self.carrier.splice(stream, reader, writer)
