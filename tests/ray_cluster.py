"""A real two-node Ray cluster on this machine, in a private network namespace, started and stopped by a test.

Ray binds the machine's interface address even when told 127.0.0.1, so the nodes live in a network namespace of
their own (`unshare -n`) whose only interface is loopback: the head and the second node both take 127.0.0.1, and
nothing they open is reachable from outside. Every command that talks to the cluster enters that namespace with
`nsenter`. Stopping kills exactly the processes inside the namespace: what the test started, nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 6379


def _ray() -> str:
    return str(Path(sys.executable).parent / "ray")


class LoopbackCluster:
    def __init__(self, logs: Path):
        self.logs = logs
        # Ray keeps its sockets under its temp dir, and a socket's path may not exceed 107 bytes: pytest's folders
        # (deeper still under pytest-xdist) are too long, so the session lives in a short folder of its own.
        self.temp = Path(tempfile.mkdtemp(prefix="ray-"))
        # `unshare -n` execs `sleep` in a new network namespace: that process anchors it for `nsenter`.
        self.anchor = subprocess.Popen(["unshare", "-n", "sleep", "infinity"])
        time.sleep(0.2)
        self.namespace = os.readlink(f"/proc/{self.anchor.pid}/ns/net")
        self.check("ip", "link", "set", "lo", "up")
        self.nodes: list[subprocess.Popen] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{PORT}"

    def command(self, *args: str) -> list[str]:
        return ["nsenter", "-t", str(self.anchor.pid), "-n", *args]

    def check(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), check=True, capture_output=True, text=True, **kwargs)

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), capture_output=True, text=True, **kwargs)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(*args), start_new_session=True, **kwargs)

    def add_node(self, head: bool = False) -> subprocess.Popen:
        """A node of 1 CPU, its processes kept in the foreground (`--block`) so the test owns them."""
        role = (["--head", f"--port={PORT}", "--include-dashboard=false", f"--temp-dir={self.temp}"] if head
                else [f"--address={self.address}"])
        log = open(self.logs / f"node-{len(self.nodes)}.log", "w")  # noqa: SIM115  (closed with the node)
        node = self.popen(_ray(), "start", *role, "--node-ip-address=127.0.0.1", "--num-cpus=1", "--block",
                          "--object-store-memory=100000000", "--disable-usage-stats", stdout=log,
                          stderr=subprocess.STDOUT, env=os.environ | {"RAY_USAGE_STATS_ENABLED": "0"})
        self.nodes.append(node)
        self.wait_for_nodes(sum(n.poll() is None for n in self.nodes))
        return node

    def alive_nodes(self) -> int:
        probe = ("import ray; ray.init(address='auto', log_to_driver=False); "
                 "print(sum(n['Alive'] for n in ray.nodes()))")
        try:  # ray.init waits for a head that is not up yet: a probe that hangs counts as no node
            result = self.run(sys.executable, "-c", probe, env=os.environ | {"RAY_ADDRESS": self.address}, timeout=30)
        except subprocess.TimeoutExpired:
            return 0
        return int(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else 0

    def wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.alive_nodes() != count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Ray cluster did not reach {count} live nodes in {timeout} s")
            time.sleep(1)

    def processes(self) -> list[int]:
        """Every process in the cluster's network namespace but its anchor."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != self.anchor.pid:
                try:
                    if os.readlink(entry / "ns" / "net") == self.namespace:
                        pids.append(int(entry.name))
                except OSError:
                    continue  # gone, or not ours to read
        return pids

    def descendants(self, pid: int) -> list[int]:
        """``pid``'s processes, children first found through /proc (Ray's workers included)."""
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                parents.setdefault(ppid, []).append(int(entry.name))
        found, frontier = [], [pid]
        while frontier:
            current = frontier.pop()
            found.append(current)
            frontier.extend(parents.get(current, []))
        return found

    def kill_node(self, node: subprocess.Popen) -> None:
        """Stop a node the way a machine dies: SIGKILL to its raylet and every worker under it."""
        for pid in self.descendants(node.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait()

    def stop(self) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for node in self.nodes:
            node.wait()
        self.anchor.kill()
        self.anchor.wait()
        shutil.rmtree(self.temp, ignore_errors=True)
