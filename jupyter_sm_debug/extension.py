"""The server extension as a jupyter_server ExtensionApp: its settings, its routes, and one
place where everything it starts is released (`stop_extension`).

What the extension starts and where it ends:
- AWS clients and their worker threads (JobsService): `JobsService.close`.
- Port forwards (ssh processes, SSM port sessions): `ForwardRegistry.close_all`.
- Terminals running SSH or SSM session clients, and their SSM sessions:
  `TerminalSessions.close` (the terminal's process group ends; TerminateSession runs).
- Kernels on hosts: their agents in the containers, relays, kernel specs and the hold's
  sessions: `KernelsService.close` (the kernel processes are the kernel manager's).
- The transports' session threads and SSH session directories: `connect.registry.shutdown`.
A new resource is released in `stop_extension`, nowhere else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from jupyter_server.extension.application import ExtensionApp

from .api.routes import route_table
from .config import SMDebug
from .connect import registry as transports
from .forwards import ForwardRegistry
from .jobs import JobsService
from .kernels.service import KernelsService
from .terminals import TerminalSessions

STOP_TIMEOUT = 20.0  # seconds each release may take when the server stops


@dataclass
class State:
    """What the handlers share, kept in web_app.settings["sm_debug"]."""

    config: SMDebug
    jobs: JobsService
    terminals: TerminalSessions
    forwards: ForwardRegistry
    kernels: KernelsService


class SMDebugApp(ExtensionApp):
    """The /sm-debug REST API. Its options are `c.SMDebug.*` (config.py), read from the
    server's configuration as before."""

    name = "jupyter_sm_debug"
    # Only the API: no page, no static files, no templates of its own.
    load_other_extensions = True

    state: State | None = None  # type: ignore[assignment]

    def initialize_settings(self) -> None:
        config = SMDebug(parent=self.serverapp)
        log = self.serverapp.log
        jobs = JobsService(config, log)
        self.state = State(
            config=config,
            jobs=jobs,
            terminals=TerminalSessions(self.serverapp.web_app, log),
            forwards=ForwardRegistry(config, jobs, log),
            kernels=KernelsService(
                self.serverapp.kernel_manager, self.serverapp.kernel_spec_manager, log
            ),
        )
        self.settings["sm_debug"] = self.state
        # The handlers read it from the web app's settings (ExtensionApp copies its own
        # settings there when it loads, and this keeps it there if the order changes).
        self.serverapp.web_app.settings["sm_debug"] = self.state

    def initialize_handlers(self) -> None:
        self.handlers.extend(route_table("/"))

    async def stop_extension(self) -> None:
        """Release everything the extension started: forwards, terminals with their
        sessions, AWS clients and their threads. Each step is bounded and logged; one that
        fails does not keep the others from running."""
        state, self.state = self.state, None
        if state is None:
            return
        for what, step in (
            ("forwards", state.forwards.close_all),
            ("terminals", state.terminals.close),
            ("kernels", state.kernels.close),
        ):
            try:
                await asyncio.wait_for(step(), STOP_TIMEOUT)
            except Exception:  # noqa: BLE001 - stopping goes on
                self.log.warning("sm-debug: closing %s failed", what, exc_info=True)
        state.jobs.close()
        transports.shutdown()
        self.log.info("jupyter_sm_debug: stopped")
