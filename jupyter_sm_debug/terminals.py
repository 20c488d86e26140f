"""Named JupyterLab terminals whose process is a session into a training host.

Terminals are jupyter_server_terminals' own (terminado), so the browser side is
JupyterLab's terminal; we only choose the name, argv and environment. One live terminal
per (job, host, transport): a second attach to the same target returns the live one; one
that asks for another target gets a 409 naming the live target, or replaces the live
terminal when it says so (`replace`). Either way the answer names where the terminal is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal

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
        # The session each of our terminals runs: its target is what a reuse reports.
        self._sessions: dict[str, Session] = {}
        # Per terminal object: what to run once its process has ended (Session.on_end).
        self._on_end: dict[object, object] = {}
        self._on_exit: dict[object, object] = {}  # Session.on_exit, likewise
        self._watched: object = None
        self._original_on_eof: object = None
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
        self._unwatch()
        self._watched = manager
        original = self._original_on_eof = manager.on_eof

        def on_eof(ptywclients) -> None:
            try:
                original(ptywclients)
            finally:
                told = self._on_exit.pop(ptywclients, None)
                if told is not None:
                    try:
                        tail = "".join(list(ptywclients.read_buffer)[-20:])[-2000:]
                        told(getattr(ptywclients.ptyproc, "exitstatus", None), tail)
                    except Exception:  # noqa: BLE001 - bookkeeping must not break terminado
                        self.log.warning("sm-debug: on_exit failed", exc_info=True)
                callback = self._on_end.pop(ptywclients, None)
                if callback is not None:
                    task = asyncio.ensure_future(callback())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

        manager.on_eof = on_eof

    def _unwatch(self) -> None:
        """Give terminado back its own on_eof."""
        if self._watched is not None:
            with contextlib.suppress(AttributeError):
                del self._watched.on_eof  # the instance attribute set by _watch
            if getattr(self._watched, "on_eof", None) != self._original_on_eof:
                self._watched.on_eof = self._original_on_eof
            self._watched = self._original_on_eof = None

    async def close(self, timeout: float = 10.0) -> None:
        """End every terminal this extension started (its process group, so the session
        client's children go with it), run what each session runs at its end (e.g.
        TerminateSession) and give terminado back its on_eof. Called once, when the
        server stops."""
        manager = self._web_app.settings.get("terminal_manager")
        ended = []
        for name, term in list(self._ours.items()):
            if manager is None or manager.terminals.get(name) is not term:
                continue
            ended.append(term)
            with contextlib.suppress(OSError):
                os.killpg(term.ptyproc.pid, signal.SIGHUP)
            try:
                await manager.terminate(name, force=True)
            except Exception:  # noqa: BLE001 - the others still end
                self.log.warning("sm-debug: ending terminal %s failed", name, exc_info=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # terminado reads each one's EOF (and our on_eof runs its callbacks) on the loop.
        while any(term in self._on_end or term in self._on_exit for term in ended):
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        leftovers = [self._on_end.pop(term) for term in list(self._on_end)]
        self._on_exit.clear()
        for callback in leftovers:
            try:
                await asyncio.wait_for(callback(), max(0.1, deadline - loop.time()))
            except Exception:  # noqa: BLE001 - cleanup of one must not stop the rest
                self.log.warning("sm-debug: a session's end failed", exc_info=True)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=max(0.1, deadline - loop.time()))
        self._unwatch()
        self._ours.clear()
        self._sessions.clear()

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

    async def _discard(self, session: Session) -> None:
        """A prepared session that no terminal will run: release what it holds."""
        if session.on_end is not None:
            try:
                await session.on_end()
            except Exception:  # noqa: BLE001 - cleanup must not fail the request
                self.log.warning("sm-debug: cleanup of an unused session failed", exc_info=True)

    async def open(
        self, name: str, session: Session, replace: bool = False
    ) -> tuple[str, bool, Session]:
        """Create terminal `name` running the session, or return the live one (reused=True)
        with the session it really runs."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            manager = self.manager
            if self.live(name):
                current = self._sessions[name]
                if (current.target, current.pin) == (session.target, session.pin):
                    await self._discard(session)
                    return name, True, current
                if not replace:
                    await self._discard(session)
                    raise SMDebugError(
                        409,
                        "terminal_on_other_target",
                        f"The open terminal {name} runs a session to {current.target}, "
                        f"not to {session.target}.",
                        'Close that terminal first, or ask again with "replace": true to '
                        "end it and attach to the new target.",
                    )
            # Everything the server has but the session does not need is removed (None);
            # terminado's own TERM/COLUMNS/LINES for the xterm stay.
            env = dict.fromkeys(key for key in os.environ if key not in TERMINAL_VARIABLES)
            env.update(session.env)
            self._watch(manager)
            try:
                if name in manager.terminals:
                    # A session being replaced, a dead one still listed, or an impostor
                    # local shell: end it properly before reusing its name (creating over a
                    # live name orphans its process).
                    await manager.terminate(name, force=True)
                    await self._wait_released(name)
                manager.create(
                    name=name,
                    shell_command=session.argv,
                    cwd=session.cwd or os.path.expanduser("~"),
                    extra_env=env,
                )
            except BaseException:
                await self._discard(session)
                raise
            self._ours[name] = manager.terminals[name]
            self._sessions[name] = session
            if session.on_end is not None:
                self._on_end[self._ours[name]] = session.on_end
            if session.on_exit is not None:
                self._on_exit[self._ours[name]] = session.on_exit
            self.log.info("sm-debug: terminal %s → %s", name, session.target)
            return name, False, session
