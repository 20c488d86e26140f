"""Named JupyterLab terminals whose process is a session into a training host.

Terminals are jupyter_server_terminals' own (terminado), so the browser side is
JupyterLab's terminal; we only choose the name, argv and environment. One live terminal
per (job, host, transport): a second attach returns the live one.
"""

from __future__ import annotations

import asyncio
import os
import re

from .connect import Session
from .errors import SMDebugError

TERMINAL_VARIABLES = {"TERM", "COLUMNS", "LINES", "TERMINADO_DIMENSIONS", "TERMINADO_URL"}


def terminal_name(job: str, host: str, transport: str) -> str:
    """Readable and `\\w+`-safe. Job names never hold '_', so mapping '-' to '_' is 1:1."""
    return "smdebug_" + re.sub(r"\W", "_", f"{job}__{host}__{transport}")


class TerminalSessions:
    def __init__(self, web_app, log):
        self._web_app = web_app
        self.log = log
        self._locks: dict[str, asyncio.Lock] = {}
        # The terminal objects this extension created. A terminal with one of our names that
        # is not in here is a plain local shell (JupyterLab's restorer or `terminal:open`
        # recreate vanished names that way): never hand that out as a container session.
        self._ours: dict[str, object] = {}
        # Per terminal object: what to run once its process has ended (Session.on_end).
        self._on_end: dict[object, object] = {}
        self._watched: object = None
        self._tasks: set = set()

    @property
    def manager(self):
        manager = self._web_app.settings.get("terminal_manager")
        if manager is None:
            raise SMDebugError(
                503,
                "terminals_disabled",
                "Terminals are disabled on this Jupyter server.",
                "Enable them (ServerApp.terminals_enabled = True) and install terminado.",
            )
        return manager

    def _watch(self, manager) -> None:
        """Hear about every terminal whose process ended: terminado calls on_eof when it
        reads the end of the PTY (after an exit, a kill or DELETE /api/terminals)."""
        if self._watched is manager:
            return
        self._watched = manager
        original = manager.on_eof

        def on_eof(ptywclients) -> None:
            try:
                original(ptywclients)
            finally:
                callback = self._on_end.pop(ptywclients, None)
                if callback is not None:
                    task = asyncio.ensure_future(callback())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

        manager.on_eof = on_eof

    def live(self, name: str) -> bool:
        """A running session that this extension started under that name."""
        term = self.manager.terminals.get(name)
        return bool(term is not None and term is self._ours.get(name) and term.ptyproc.isalive())

    async def _wait_released(self, name: str, timeout: float = 3.0) -> None:
        """terminado drops a name when it reads the old process's EOF; creating before that
        would let the late EOF drop the new terminal instead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while name in self.manager.terminals:
            if loop.time() > deadline:
                raise SMDebugError(
                    409,
                    "terminal_busy",
                    f"The old terminal {name} is still shutting down.",
                    "Try again in a few seconds.",
                )
            await asyncio.sleep(0.05)

    async def open(self, name: str, session: Session) -> tuple[str, bool]:
        """Create terminal `name` running the session, or return the live one (reused=True)."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            manager = self.manager
            if self.live(name):
                return name, True
            if name in manager.terminals:
                # A dead session still listed, or an impostor local shell: end it properly
                # before reusing its name (creating over a live name orphans its process).
                await manager.terminate(name, force=True)
                await self._wait_released(name)
            # Everything the server has but the session does not need is removed (None);
            # terminado's own TERM/COLUMNS/LINES for the xterm stay.
            env = dict.fromkeys(key for key in os.environ if key not in TERMINAL_VARIABLES)
            env.update(session.env)
            self._watch(manager)
            manager.create(
                name=name,
                shell_command=session.argv,
                cwd=session.cwd or os.path.expanduser("~"),
                extra_env=env,
            )
            self._ours[name] = manager.terminals[name]
            if session.on_end is not None:
                self._on_end[self._ours[name]] = session.on_end
            self.log.info("sm-debug: terminal %s → %s", name, session.target)
            return name, False
