"""Worker processes seen from outside, through /proc: a worker's prefork children, and which
process holds the client end of a loopback TCP connection (so a target can kill the very
process that is delivering to it)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

from tests.support.fleet import WorkerProcess


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kill_if_ours(pids: Iterable[int], marker: str = "celery") -> None:
    """SIGKILL each pid still alive that is still the process we started (its command line
    names ``marker``; a recycled pid would not)."""
    for pid in pids:
        if is_alive(pid) and marker in cmdline(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _socket_inode(client_port: int, server_port: int) -> str | None:
    """The inode of the socket whose local end is 127.0.0.1:client_port talking to
    127.0.0.1:server_port."""
    local = f"0100007F:{client_port:04X}"
    remote = f"0100007F:{server_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(local[-13:]) and fields[2].endswith(remote[-13:]):
                return fields[9]
    return None


def socket_owner(client_port: int, server_port: int, candidates: Iterable[int]) -> int | None:
    """Which of ``candidates`` holds the client end of that loopback connection."""
    inode = _socket_inode(client_port, server_port)
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for pid in candidates:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) == wanted:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


class Fleet:
    """Worker processes of one test: started, killed, stopped, and at the end every process
    we started (including orphaned prefork children of a killed main process) gone."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.workers: list[WorkerProcess] = []
        self._seen: set[int] = set()

    def start(
        self, name: str, *, concurrency: int = 2, wait: bool = True, **options: object
    ) -> WorkerProcess:
        worker = WorkerProcess(
            self.env,
            name=name,
            concurrency=concurrency,
            log_path=self.log_dir / f"worker-{name}.log",
            **options,  # type: ignore[arg-type]
        )
        self.workers.append(worker)
        worker.start()
        if wait:
            worker.wait_ready(60)
        self.note_children()
        return worker

    def note_children(self) -> None:
        for worker in self.workers:
            if worker.process is not None:
                self._seen.update(children(worker.process.pid))

    def children(self, worker: WorkerProcess) -> list[int]:
        assert worker.process is not None
        kids = children(worker.process.pid)
        self._seen.update(kids)
        return kids

    def all_children(self) -> list[int]:
        return [pid for worker in self.workers if worker.process for pid in self.children(worker)]

    def kill_main(self, worker: WorkerProcess) -> list[int]:
        """kill -9 of the main process only; returns its children, now orphans."""
        orphans = self.children(worker)
        worker.kill()
        return orphans

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop(30)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("worker-*.log")))

    def close(self) -> None:
        self.note_children()
        for worker in self.workers:
            worker.stop(30)
        kill_if_ours(self._seen)
