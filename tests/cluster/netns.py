"""Hosts on one machine: Linux network namespaces joined by veth pairs to a bridge in a hub
namespace, on a private range that exists only inside those namespaces.

Nothing touches the root namespace's network: every link is created inside a namespace of the
test's own (``ip -n``), and names carry the test process's id so that concurrent runs never
meet. :meth:`Hosts.close` stops every process started through :meth:`Hosts.spawn` (its whole
process group) and deletes every namespace (which deletes the links inside), also after a
failure. Filesystems are shared: a folder has the same path on every "host".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def unavailable_reason() -> str | None:
    """Why network namespaces cannot be built here (None: they can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    probe = f"vt-{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Hosts:
    """Named hosts (one namespace each) on one /24, plus the hub namespace with the bridge."""

    prefix: str  # e.g. vt-1234: namespaces are vt-1234-hub, vt-1234-a, ...
    subnet: str  # first three octets, e.g. 10.77.3
    addresses: dict[str, str] = field(default_factory=dict)  # host name -> IPv4
    processes: list[subprocess.Popen] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")  # servers on the host's name need it too

    def build(self, hosts: Sequence[str]) -> None:
        self.add_namespace(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for number, host in enumerate(hosts, start=1):
            namespace, port = self.namespace(host), f"p{number}"
            self.add_namespace(namespace)
            # Both ends are born inside namespaces: the root namespace never sees them.
            _ip("-n", self.hub, "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", namespace)  # fmt: skip
            _ip("-n", self.hub, "link", "set", port, "master", "br0")
            _ip("-n", self.hub, "link", "set", port, "up")
            address = f"{self.subnet}.{number}"
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            self.addresses[host] = address

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def spawn(
        self, host: str, argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
    ) -> subprocess.Popen:
        """Start ``argv`` on ``host`` in its own process group (``ip netns exec`` execs it, so
        the PID is the program's own); output goes to ``log``."""
        with open(log, "ab") as out:
            process = subprocess.Popen(
                self.command(host, argv), env=dict(env), cwd=cwd, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.processes.append(process)
        return process

    def run(
        self, host: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout_s: float
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` on ``host`` to the end (its process group is killed on a timeout)."""
        process = subprocess.Popen(
            self.command(host, argv), env=dict(env), cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        try:
            out, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(process, signal.SIGKILL)
            out, _ = process.communicate()
            message = f"{argv[:3]} on {host} ran over {timeout_s} s:\n{out[-4000:]}"
            raise RuntimeError(message) from None
        return subprocess.CompletedProcess(process.args, process.returncode, out, None)

    def close(self) -> list[str]:
        """Stop every process (SIGTERM to its group, SIGKILL after 15 s), delete every
        namespace; returns what could not be cleaned (empty when all went)."""
        problems = []
        for process in self.processes:
            kill_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            kill_group(process, signal.SIGKILL)  # whatever of the group is left
            if process.poll() is None:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    problems.append(f"process {process.pid} did not stop")
        for name in reversed(self.namespaces):
            done = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
            if done.returncode != 0:
                problems.append(f"namespace {name}: {done.stderr.strip()}")
        return problems


def kill_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    """Signal ``process``'s whole group (it leads one: started with start_new_session); the
    group may outlive its leader (a nanny's worker), so it is signalled either way."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


@contextlib.contextmanager
def hosts(names: Sequence[str]) -> Iterator[Hosts]:
    """Namespaces ``vt-<pid>-<name>`` on ``10.77.<pid % 250>.0/24``, cleaned up however the
    block ends."""
    pid = os.getpid()
    net = Hosts(prefix=f"vt-{pid}", subnet=f"10.77.{pid % 250}")
    try:
        net.build(names)
        yield net
    finally:
        problems = net.close()
        if problems:
            raise RuntimeError("cluster cleanup: " + "; ".join(problems))
