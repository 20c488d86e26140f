"""A built-in AWS Session Manager client, so Attach over SSM works without
session-manager-plugin. ``protocol`` is the wire format, ``channel`` the data-channel state,
``client`` the console program (``python -m jupyter_sm_debug.ssm.client``).

Importing this package imports nothing else: the client process must start fast.
"""
