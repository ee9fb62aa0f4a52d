"""The embedded Milvus: a real Milvus 2.3 standalone server from the PyPI package ``milvus``.

Why its own module: starting, reusing and stopping a server process is a responsibility of its
own, apart from storing engrams. With no ``MILVUS_URI`` the store calls ``embedded_server_uri``:

- the server listens on loopback only (every component's address is pinned to 127.0.0.1);
- its data lives in ``MILVUS_DATA_DIR`` (default ``.milvus/`` in the project, git-ignored), so the
  memory survives between runs;
- a server already up on that folder (started by another program) is reused;
- the server lives as long as some program uses it, and no longer: a small keeper process
  (``python milvus_server.py keep DIR``, in its own session so a terminal's Ctrl-C does not reach
  it) owns the server. Every program using the folder holds a shared lock on ``server.users``; the
  kernel releases it when the program ends, however it ends (even ``kill -9``), and the keeper
  stops the server within half a second of the last release. The server dies with its keeper
  (Linux's parent-death signal), so killing the keeper kills the server too;
- a server that dies while in use (a crash, an OOM kill) is restarted by the keeper on the same
  ports, and the stores reconnect (see ``engram.EngramStore``).

Measured here (Milvus 2.3.5 from ``milvus`` 2.3.5): a fresh start takes about 7 s. Milvus does not
shut down cleanly on SIGTERM (it hangs or aborts), so stopping kills it after flushing; the next
start on the same folder then waits for the old server's sessions to expire, about 25 s with the
10 s session lease set here (about 50 s with Milvus's default of 30 s).
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

SERVER_LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 180          # a restart after a crash waits for stale sessions to expire
SESSION_TTL_S = 10             # Milvus's default 30 s makes every restart take ~50 s
TIME_TICK_INTERVAL_MS = 20     # default 200 ms: a search after an insert waited ~400 ms, now ~40 ms
STATE_FILE = "server.json"     # pids and ports of the server running on a data folder
LOCK_FILE = "server.lock"      # serialises starting a server on one data folder (and the keeper's exit)
USERS_FILE = "server.users"    # each program using the server holds a shared lock on it
KEEPER_LOCK_FILE = "keeper.lock"  # held by the one keeper of a data folder while it lives
KEEPER_LOG = "logs/keeper.log"
KEEPER_POLL_S = 0.5            # how often the keeper looks for users and for a dead server
MAX_FAILED_RESTARTS = 3        # the keeper gives up after this many starts in a row fail
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
PR_SET_PDEATHSIG = 1           # prctl option: signal the child when its parent dies
ETCD_PEER_PORT = 2380          # the embedded etcd's peer port, or the next free one above the client's


class EmbeddedMilvusError(RuntimeError):
    """The embedded Milvus server could not be started."""


class EmbeddedMilvus:
    """One embedded Milvus server process on one data folder.

    :param data_dir: folder for the server's binaries, configuration, logs and data.
    """

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.process: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.health_port: Optional[int] = None
        self._users_lock = None
        self._keeper_lock = None

    @property
    def uri(self) -> str:
        return f"http://{SERVER_LOOPBACK}:{self.port}"

    def start_or_reuse(self) -> str:
        """Return the URI of the server on this folder, starting one (with its keeper) if none is up.

        From this call until the program ends, the program counts as a user of the server.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._start_lock():
            self._join_users()
            running = self._running_server() or self._wait_for_keeper() or self._start_keeper()
            self.port = running["port"]
        return self.uri

    def _join_users(self) -> None:
        """Hold a shared lock on the users file for the rest of this program's life."""
        if self._users_lock is None:
            self._users_lock = open(self.data_dir / USERS_FILE, "a")
            fcntl.flock(self._users_lock, fcntl.LOCK_SH)

    def _start_keeper(self) -> dict:
        """Start the keeper, which starts the server; wait until the server is healthy."""
        print(f"starting the embedded Milvus server in {self.data_dir} (about 10 s; up to a minute "
              "after an unclean stop)", file=sys.stderr, flush=True)
        self._state_path().unlink(missing_ok=True)
        log_path = self.data_dir / KEEPER_LOG
        log_path.parent.mkdir(exist_ok=True)
        with open(log_path, "ab") as log:
            keeper = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "keep", str(self.data_dir)],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        return self._wait_until_served(keeper)

    def _wait_for_keeper(self) -> Optional[dict]:
        """When a keeper is alive but its server is not up (it is restarting it), wait for it:
        a second keeper would run a second server on the same data."""
        with open(self.data_dir / KEEPER_LOCK_FILE, "a") as keeper_lock:
            try:
                fcntl.flock(keeper_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._wait_until_served(None)
            fcntl.flock(keeper_lock, fcntl.LOCK_UN)
        return None

    def _wait_until_served(self, keeper: Optional[subprocess.Popen]) -> dict:
        log_path = self.data_dir / KEEPER_LOG
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            running = self._running_server()
            if running is not None:
                return running
            if keeper is not None and keeper.poll() is not None:
                raise EmbeddedMilvusError(f"the embedded Milvus server could not start: "
                                          f"{_last_line(log_path)} (see {log_path} and {self.data_dir / 'logs'})")
            time.sleep(0.2)
        if keeper is not None:
            keeper.kill()
        raise EmbeddedMilvusError(f"the embedded Milvus server did not become healthy within {START_TIMEOUT_S} s; "
                                  f"see {log_path} and {self.data_dir / 'logs'}")

    # --- the keeper's side ---
    def keep(self) -> None:
        """Run the server until no program uses it; restart it if it dies meanwhile."""
        self._keeper_lock = open(self.data_dir / KEEPER_LOCK_FILE, "a")
        try:
            fcntl.flock(self._keeper_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until the keeper ends
        except BlockingIOError:
            raise EmbeddedMilvusError(f"another keeper already runs a server on {self.data_dir}") from None
        self._start_with_retries()
        failed_restarts = 0
        while True:
            time.sleep(KEEPER_POLL_S)
            with self._start_lock():
                if self._unused():
                    self.stop()
                    return
            if self.process.poll() is not None:
                failed_restarts = failed_restarts + 1 if not self._restart() else 0
                if failed_restarts >= MAX_FAILED_RESTARTS:
                    self._state_path().unlink(missing_ok=True)
                    raise EmbeddedMilvusError(f"the server died and {MAX_FAILED_RESTARTS} restarts failed")

    def _start_with_retries(self) -> None:
        """Start the server; Milvus 2.3 sometimes aborts while starting on a folder left by a killed
        server (seen once here), and a second try then succeeds."""
        for attempt in range(1, MAX_FAILED_RESTARTS + 1):
            try:
                self._start()
                return
            except EmbeddedMilvusError as error:
                if attempt == MAX_FAILED_RESTARTS:
                    raise
                print(f"{error}; trying again", flush=True)

    def _unused(self) -> bool:
        with open(self.data_dir / USERS_FILE, "a") as users:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(users, fcntl.LOCK_UN)
            return True

    def _restart(self) -> bool:
        """Start the dead server again on the same ports; True once it is healthy."""
        print(f"the server exited with code {self.process.returncode}; restarting it", flush=True)
        self._state_path().unlink(missing_ok=True)
        try:
            self.process = self._launch(self.health_port)
            self._wait_until_healthy(self.health_port)
        except EmbeddedMilvusError as error:
            print(error, flush=True)
            return False
        self._write_state()
        return True

    def stop(self) -> None:
        """Stop the server (the keeper does this once no program uses it; collections are flushed
        by their users first)."""
        if self.process is None:
            return
        self._state_path().unlink(missing_ok=True)
        self.process.kill()  # SIGTERM hangs in Milvus 2.3; data already flushed is safe
        self.process.wait(timeout=30)
        self.process = None

    def _start(self) -> None:
        from milvus import MilvusServerConfig, _initialize_data_files  # the PyPI package `milvus`

        config = MilvusServerConfig(data_dir=str(self.data_dir))
        self._apply_loopback_config(config)
        config.resolve()  # picks free ports, writes configs/milvus.yaml
        self._configure_embedded_etcd(config)
        _initialize_data_files(str(self.data_dir))  # unpacks the Milvus binary once
        self.health_port, probe = config.resolve_port(9091)
        probe.close()
        self.process = self._launch(self.health_port)
        self.port = int(config.get("proxy_port"))
        self._wait_until_healthy(self.health_port)
        self._write_state()

    def _write_state(self) -> None:
        self._state_path().write_text(json.dumps({"pid": self.process.pid, "keeper_pid": os.getpid(),
                                                  "port": self.port, "health_port": self.health_port}))

    def _configure_embedded_etcd(self, config) -> None:
        """Give Milvus's in-process etcd loopback URLs on free ports.

        Why: the package's configuration has no ``etcd.config.path``, so etcd starts with its own
        defaults (client 2379, peer 2380) whatever port was resolved, and a second embedded server
        on this machine died at start ("bind: address already in use").
        """
        client_port = int(config.get("etcd_port"))
        client = f"http://{SERVER_LOOPBACK}:{client_port}"
        peer_port, probe = config.resolve_port(max(ETCD_PEER_PORT, client_port + 1))
        probe.close()
        peer = f"http://{SERVER_LOOPBACK}:{peer_port}"
        etcd_config = self.data_dir / "configs" / "etcd.yaml"
        etcd_config.write_text(f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
                               f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
                               f"initial-cluster: default={peer}\n")
        milvus_config = self.data_dir / "configs" / "milvus.yaml"
        text = milvus_config.read_text()
        milvus_config.write_text(text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_config}\n", 1))

    @staticmethod
    def _apply_loopback_config(config) -> None:
        for component in COMPONENTS:
            config.set(f"{component}.ip", SERVER_LOOPBACK)
        config.set("common.session.ttl", SESSION_TTL_S)
        config.set("proxy.timeTickInterval", TIME_TICK_INTERVAL_MS)

    def _launch(self, health_port: int) -> subprocess.Popen:
        binary = self.data_dir / "bin" / "milvus"
        env = dict(os.environ, DEPLOY_MODE="STANDALONE", METRICS_PORT=str(health_port),
                   MILVUS_RUN_DIR=str(self.data_dir / "run"),
                   LD_LIBRARY_PATH=f"{binary.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}")
        logs = self.data_dir / "logs"
        with open(logs / "milvus-stdout.log", "ab") as out, open(logs / "milvus-stderr.log", "ab") as err:
            process = subprocess.Popen([str(binary), "run", "standalone"], cwd=self.data_dir, env=env,
                                       stdout=out, stderr=err, preexec_fn=_die_with_parent)
        return process

    def _wait_until_healthy(self, health_port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedMilvusError(
                    f"the embedded Milvus server exited with code {self.process.returncode} while starting; "
                    f"see {self.data_dir / 'logs'}. If the folder is damaged, move it aside to start afresh.")
            if _healthy(health_port):
                return
            time.sleep(0.2)
        self.process.kill()
        raise EmbeddedMilvusError(
            f"the embedded Milvus server did not become healthy within {START_TIMEOUT_S} s; "
            f"see {self.data_dir / 'logs'}")

    def _running_server(self) -> Optional[dict]:
        """The state of a healthy server already running on this folder, if any."""
        try:
            state = json.loads(self._state_path().read_text())
        except (FileNotFoundError, ValueError):
            return None
        if _process_alive(state.get("pid")) and _healthy(state.get("health_port")):
            return state
        return None

    def _state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        with open(self.data_dir / LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills the server if its keeper dies."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _healthy(health_port: Optional[int]) -> bool:
    if not health_port:
        return False
    try:
        with urllib.request.urlopen(f"http://{SERVER_LOOPBACK}:{health_port}/healthz", timeout=2) as answer:
            return b"OK" in answer.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _process_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


_servers: dict = {}


def embedded_server_uri(data_dir: str | os.PathLike) -> str:
    """The URI of the embedded server on ``data_dir``, started once per program."""
    key = Path(data_dir).resolve()
    if key not in _servers:
        _servers[key] = EmbeddedMilvus(key)
    return _servers[key].start_or_reuse()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "keep":
        sys.exit("usage: python milvus_server.py keep DATA_DIR  (started by the store, not by hand)")
    try:
        EmbeddedMilvus(sys.argv[2]).keep()
    except EmbeddedMilvusError as failure:
        sys.exit(str(failure))
