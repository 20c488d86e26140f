"""A built-in AWS Session Manager client, so Attach over SSM works without
session-manager-plugin. ``protocol`` is the wire format, ``channel`` the data-channel state,
``encryption`` the KMS data key and AES-GCM of encrypted sessions, ``client`` the console
program (``python -m jupyter_sm_debug.ssm.client``), and ``watch`` the wrapper that runs AWS's
plugin in a PTY of its own and says in the tab when it brings up no shell.

Importing this package imports nothing else: the client process must start fast.
"""
