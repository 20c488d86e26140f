"""A built-in AWS Session Manager client, so Attach, run and forward over SSM work without
session-manager-plugin.

- ``protocol``: the wire format and the protocol's constants (defined there once);
  ``handshake``: the handshake's and the KMS challenge's payloads;
- ``channel``: the data-channel state, either end (the stand-in's agents use it too);
- ``encryption``: the KMS data key and AES-GCM of encrypted sessions;
- ``wsframe``: RFC 6455 framing (and the opening handshake) for both clients; ``wsclient``
  the asyncio websocket on it;
- ``session``: a shell session's data channel driven from a terminal or pipes; ``client``
  the console program around it (``python -m jupyter_sm_debug.ssm.client``);
- ``run``: one command through a shell session (the marker protocol);
- ``smux`` and ``muxchannel``: port sessions' multiplexer and its carrier over a data
  channel (client and stand-in agent); ``portforward``: the port-forward client;
- ``watch``: the wrapper that runs AWS's plugin in a PTY of its own and says in the tab
  when it brings up no shell.

Importing this package imports nothing else: the client process must start fast.
"""
