"""What this server trusts about a job's SSH hosts: where each host's sshd is, and which
pinned host keys a real sshd has proven. One store per server (JobsService.ssh_trust).

- A target (address, port, host key) a host announced in its log is remembered by
  (job, host): a later attach to the same container needs no log lookup.
- (job, host, target) whose sshd proved the pinned key in this server's life: a later
  session pins the same key (its ssh still refuses any other) without the check's extra
  handshake.

Both are dropped when the job ends (`forget_job`, called by the description cache), and
when a session's ssh finds the key refused (`refused`): nothing remembered outlives the
container it was learnt from, or a sign that it is not the one answering.
"""

from __future__ import annotations

from typing import Hashable


class SSHTrust:
    def __init__(self) -> None:
        self._targets: dict[tuple[str, str], Hashable] = {}
        self._verified: set[tuple[str, str, Hashable]] = set()

    def target(self, job: str, host: str):
        """The target `host` of `job` announced before, or None."""
        return self._targets.get((job, host))

    def remember(self, job: str, host: str, target: Hashable) -> None:
        self._targets[(job, host)] = target

    def forget(self, job: str, host: str, target: Hashable | None = None) -> None:
        """Forget the host's target (only if it is still `target`, when given)."""
        if target is None or self._targets.get((job, host)) == target:
            self._targets.pop((job, host), None)

    def verified(self, job: str, host: str, target: Hashable) -> bool:
        """Whether the sshd at `target` proved its pinned key in this server's life."""
        return (job, host, target) in self._verified

    def mark_verified(self, job: str, host: str, target: Hashable) -> None:
        self._verified.add((job, host, target))

    def unverify(self, job: str, host: str, target: Hashable) -> None:
        self._verified.discard((job, host, target))

    def refused(self, job: str, host: str, target: Hashable) -> None:
        """A session's ssh refused the host's key: trust nothing remembered about it."""
        self.unverify(job, host, target)
        self.forget(job, host, target)

    def forget_job(self, job: str) -> None:
        """The job has ended: its hosts' containers are gone."""
        for key in [key for key in self._targets if key[0] == job]:
            self._targets.pop(key, None)
        self._verified = {entry for entry in self._verified if entry[0] != job}
