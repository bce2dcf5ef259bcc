"""A Ray cluster of real ``ray start`` nodes on this machine, and extractor sets that fail on purpose.

The extractor sets are module-level functions so that Ray pickles them by reference: the actors import this
module (the driver's ``sys.path`` is propagated to Ray's workers). Markers are files next to the scanned
folder, so that a fault fires once per test whatever process (or retry) meets it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import secrets
from pathlib import Path

from service_helpers import free_port

from tripwire.config import Config
from tripwire.media.item import Item
from tripwire.pipeline.extractors import default_extractors

RAY = str(Path(sys.executable).parent / "ray")
#: seconds each item takes in the slow set: long enough to kill a node or a driver mid-scan
SLOW_S = 0.25


def _ports() -> list[str]:
    """Every port a node opens, free ones: other Ray instances on this machine must not collide with ours."""
    return ["--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
            "--metrics-export-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
            "--min-worker-port", "0", "--max-worker-port", "0"]


class RayNodes:
    """``ray start --head`` and ``ray start --address`` worker nodes, each in its own process group (``--block``)."""

    def __init__(self, head_cpus: int = 2) -> None:
        # a token of our own: Ray's default (~/.ray/auth_token) is shared with whoever else runs Ray here
        self._saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
        os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
        if "ray" in sys.modules:  # imported before (another test): make it read the mode again, as Ray itself does
            from ray._raylet import Config

            Config.initialize("")
        self.temp = tempfile.mkdtemp(prefix="twray", dir="/tmp")  # short: Ray's socket paths have a length limit
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.head = self._start(["--head", "--port", str(self.port),
                                 "--include-dashboard=false", "--dashboard-port", str(free_port()),
                                 "--temp-dir", self.temp, "--num-cpus", str(head_cpus)])
        try:
            self._wait_for(1)
        except BaseException:
            self.stop()  # a head that never answered is not left running
            raise

    def _start(self, args: list[str]) -> subprocess.Popen[bytes]:
        # the nodes' workers import this module (the faults below are pickled by reference)
        path = os.pathsep.join(p for p in (str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": path}
        proc = subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", *args, *_ports()],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        self.nodes.append(proc)
        return proc

    def add_worker(self, cpus: int) -> subprocess.Popen[bytes]:
        """A second node on this machine, as ``ray start --address HEAD`` makes on another machine."""
        proc = self._start(["--address", self.address, "--num-cpus", str(cpus)])
        self._wait_for(len(self.nodes))
        return proc

    def _wait_for(self, nodes: int, timeout: float = 90.0) -> None:
        import ray

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ray.is_initialized() and sum(1 for n in ray.nodes() if n["Alive"]) >= nodes:
                return
            if any(p.poll() is not None for p in self.nodes):
                raise RuntimeError("ray start exited: see its logs under " + self.temp)
            if not ray.is_initialized():
                try:
                    if self._gcs_listening():
                        ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
                    continue
                except (ConnectionError, RuntimeError):
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"Ray did not reach {nodes} node(s) in {timeout:g} s")

    def _gcs_listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a node: ``ray start --block``, its raylet and every worker process it started."""
        if proc in self.nodes:
            self.nodes.remove(proc)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def stop(self) -> None:
        import ray

        ray.shutdown()
        for proc in reversed(list(self.nodes)):
            self.kill(proc)
        shutil.rmtree(self.temp, ignore_errors=True)
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Holder:
    """Holds CPUs of the node it is placed on (a Ray actor), so that the scan's actors go elsewhere."""

    def ready(self) -> bool:
        return True


class _Fault:
    """Does nothing to the item; kills or slows the process it runs in, as the test asks."""

    version = "1"

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.name = f"fault_{mode}"
        self.produces: tuple[str, ...] = ("ray_node",) if mode == "slow" else ()

    def extract(self, item: Item) -> dict[str, str]:
        path = Path(item.path)
        marks = path.parent.parent
        if self.mode == "kill":
            marker = marks / f"{path.name}.killed"
            if path.name.startswith("poison") or (path.name.startswith("victim") and not marker.exists()):
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)  # the actor's process dies mid-item
            return {}
        import ray

        node = ray.get_runtime_context().get_node_id()
        (marks / f"started-{node}").touch()  # the test waits for work on the node it kills
        time.sleep(SLOW_S)
        return {"ray_node": node}


def killing(config: Config) -> list:
    """The default extractors, plus one that kills its worker process at the first ``victim*`` file and at
    every ``poison*`` file."""
    return [*default_extractors(config), _Fault("kill")]


def slow(config: Config) -> list:
    """The default extractors, plus one that notes the node and takes :data:`SLOW_S` per item."""
    return [*default_extractors(config), _Fault("slow")]
