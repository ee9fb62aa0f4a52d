"""The embedded Milvus: a real Milvus 2.3 standalone server from the PyPI package ``milvus``.

Why its own module: starting, reusing, securing and stopping a server process is a responsibility
of its own, apart from storing engrams. With no ``MILVUS_URI`` the store calls
``embedded_server_uri`` and ``embedded_server_token``:

- **private**: Milvus 2.3 binds its gRPC ports on all interfaces whatever its ``*.ip`` settings say
  (milvus-io/milvus#26538), so on Linux the server runs in a network namespace of its own that has
  only a loopback interface (an unprivileged user + network namespace, as ``unshare -rn`` makes).
  Nothing it listens on is reachable from the host, let alone the network. Clients come in through
  one port on the host's 127.0.0.1, which the keeper (below) relays into the namespace. Where no
  such namespace can be made, the server runs as before, with its ports open, and says so once;
- **authenticated**: the proxy asks for a user and password; the folder's first start makes a
  random password for ``root``, kept in ``DIR/credential.json`` (owner-only), and every client of
  the folder uses it (``embedded_server_token``). Once it is set, the non-secret marker
  ``DIR/password-set`` says so: a folder whose ``credential.json`` is missing, or holds a password
  the server refuses, is never given a new one; the start stops at once with an error that names
  the file (the memory is intact; put the original back). A folder made before authentication
  (root still on Milvus's default password) is upgraded at its next start, its engrams kept;
- **its owner's**: the keeper and Milvus run with umask 077, and the keeper takes group's and
  others' access away from the folder's tree at each start (earlier versions left it readable by
  all), so no other local user can copy the memory's segments or logs;
- its data lives in ``MILVUS_DATA_DIR`` (default ``.milvus/`` in the project, git-ignored), so the
  memory survives between runs; a server already up on that folder is reused;
- a small keeper process (``python -m resonant_vectors.server keep DIR GRACE FD``, in its own session so a
  terminal's Ctrl-C does not reach it) owns the server. Every program using the folder holds a
  shared lock on ``server.users``; the kernel releases it when the program ends, however it ends
  (even ``kill -9``), or the program calls ``release_embedded_server``. The keeper stops the server
  ``MILVUS_IDLE_GRACE`` seconds after the last user left, so a command run right after another
  reuses it; it stops it so that the next start need not wait (see ``EmbeddedMilvus.stop``). The
  server dies with its keeper (Linux's parent-death signal);
- a server that dies while in use (a crash, an OOM kill) is restarted by the keeper, behind the
  same port, and the stores reconnect (see ``engram.EngramStore``). A start that cannot succeed
  (a refused password; a server that will not come up within ``START_TIMEOUT_S``, retries
  included) is not retried: the keeper stops the server, writes why into ``server.json`` and
  exits, and a program waiting for it raises that reason at once;
- its logs are bounded: Milvus rotates its own, the keeper moves aside any other log past
  ``LOG_LIMIT_BYTES`` when it starts the server.

A start takes seconds (longest on a fresh folder; a command soon after another reuses the server
kept for the idle grace). A server killed with its keeper leaves sessions that the next start
waits out, which is why a clean stop deletes them first.
"""
from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import re
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from resonant_vectors.processes import locked_by_another, module_command, module_environment, process_alive, process_start_time
from resonant_vectors.server.credential import (
    CREDENTIAL_FILE,
    DEFAULT_PASSWORD,
    USER,
    CredentialError,
    missing_message,
    note_password_set,
    owner_only,
    password_was_set,
    read_credential,
    refused_message,
    refuses_login,
    write_credential,
)
from resonant_vectors.server.errors import EmbeddedMilvusError
from resonant_vectors.server.isolation import (
    NAMESPACE_HEALTH_PORT,
    NAMESPACE_PROXY_PORT,
    Namespace,
    die_with_parent,
    exec_isolated,
    isolation_available,
)
from resonant_vectors.server.relay import SERVER_LOOPBACK, Relay

SERVER_MODULE = "resonant_vectors.server"  # run as python -m: the keeper, and the helper that executes Milvus
START_TIMEOUT_S = 180          # a restart after a crash waits for stale sessions to expire
IDLE_GRACE_S = 60.0            # keep an unused server this long, so the next command reuses it
SESSION_TTL_S = 10             # Milvus's default 30 s makes every restart after a crash take ~50 s
TIME_TICK_INTERVAL_MS = 20     # default 200 ms: a search after an insert waited ~400 ms, now ~40 ms
STATE_FILE = "server.json"     # pids and port of the server running on a data folder
LOCK_FILE = "server.lock"      # serialises starting a server on one data folder (and the keeper's exit)
USERS_FILE = "server.users"    # each program using the server holds a shared lock on it
KEEPER_LOCK_FILE = "keeper.lock"  # held by the one keeper of a data folder while it lives
KEEPER_LOG = "logs/keeper.log"
KEEPER_POLL_S = 0.5            # how often the keeper looks for users and for a dead server
CLIENT_WAIT_MARGIN_S = 15      # a program waits this much beyond the keeper's start timeout, to hear why it failed
SERVER_DATA_FOLDER = "data"    # where the server stores the memory (etcd, the message log), inside its folder
LOGIN_RECHECK_S = 1.0          # a refused login is asked again after this before the start gives up on it
OWNER_ONLY_UMASK = 0o077       # what the keeper and Milvus create in the folder is readable by its owner only
MAX_FAILED_RESTARTS = 3        # the keeper gives up after this many starts in a row fail
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
ETCD_PEER_PORT = 2380          # the embedded etcd's peer port, or the next free one above the client's
SESSION_PREFIX = b"by-dev/meta/session/"  # where Milvus 2.3 registers its components in etcd
LOG_LIMIT_BYTES = 20 * 2 ** 20  # a log beyond this is moved to *.old when the server starts
# Milvus starts new log files at every start (standalone-<node id>.log, and its C++ part's
# milvus.<host>.<user>.log.<level>.<time>.<pid>): the newest few of each kind are kept.
PER_START_LOGS = ("standalone-*.log*", "milvus.*.log.INFO.*", "milvus.*.log.WARNING.*", "milvus.*.log.ERROR.*")
PER_START_LOGS_KEPT = 3
MILVUS_LOG_MB, MILVUS_LOG_BACKUPS = 32, 2  # Milvus's own rotation: at most ~96 MB of milvus*.log
# The Milvus binary and its libraries (246 MB, 6 s to unpack) are unpacked once per user and
# Milvus version, not once per data folder.
BINARY_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "resonant-vectors"
# Without a namespace, ports are probed free and then bound by Milvus: this machine-wide lock
# keeps another start from probing the same ones meanwhile.
MACHINE_START_LOCK = Path(tempfile.gettempdir()) / "resonant-vectors-milvus-start.lock"
# That lock does not cover every program that takes a port (an isolated server's relay, anyone
# else's server): Milvus's proxy, finding its port taken, listens on a free one of its own, and
# says which only in this line of its log.
PROXY_LISTENS = re.compile(rb'\["Proxy server listen on tcp"\] \[port=(\d+)\]')
SERVER_LOG = "milvus-stdout.log"  # in the folder's logs/: Milvus's own log, appended at every start


class EmbeddedMilvus:
    """One embedded Milvus server process on one data folder.

    :param data_dir: folder for the server's binaries, configuration, credential, logs and data.
    :param idle_grace_s: a keeper started from here keeps the unused server this long.
    """

    def __init__(self, data_dir: str | os.PathLike, idle_grace_s: float = IDLE_GRACE_S) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.idle_grace_s = idle_grace_s
        self.process: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.isolated = False
        self._users_lock = None
        self._keeper: Optional[subprocess.Popen] = None
        self._warned_open = False
        self._relay: Optional[Relay] = None
        self._namespace: Optional[Namespace] = None
        self._keeper_lock_fd: Optional[int] = None
        self._log_offset = 0  # where the latest start's lines begin in its log

    @property
    def uri(self) -> str:
        return f"http://{SERVER_LOOPBACK}:{self.port}"

    def start_or_reuse(self) -> str:
        """Return the URI of the server on this folder, starting one (with its keeper) if none is up.

        From this call until the program ends or calls ``release``, it counts as a user of the
        server. Waiting for a starting server happens outside the start lock, so the keeper can
        always take it.
        """
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if password_was_set(self.data_dir):
            read_credential(self.data_dir)  # a missing or damaged one is said before anything starts
        self._join_users()
        deadline = time.monotonic() + START_TIMEOUT_S + CLIENT_WAIT_MARGIN_S
        self._keeper = None
        running = None
        while running is None:
            with self._start_lock():
                running = self._running_server()
                if running is None and not self._keeper_alive():
                    self._start_keeper()
            running = running or self._wait_until_served(deadline)
        self.port = running["port"]
        self._notice_if_open(running)
        return self.uri

    def release(self) -> None:
        """Stop counting as a user: the keeper stops the server once no program uses it."""
        if self._users_lock is not None:
            self._users_lock.close()  # closing the file drops its lock
            self._users_lock = None

    def _join_users(self) -> None:
        """Hold a shared lock on the users file until this program ends or releases it."""
        if self._users_lock is None:
            self._users_lock = open(self.data_dir / USERS_FILE, "a", opener=owner_only)
            fcntl.flock(self._users_lock, fcntl.LOCK_SH)

    def _notice_if_open(self, running: dict) -> None:
        if not running.get("isolated", True) and not self._warned_open:
            self._warned_open = True
            print(f"notice: no private network namespace on this machine (Linux user namespaces are "
                  f"off or missing), so the embedded Milvus on {self.data_dir} listens on all "
                  "interfaces; it asks for the folder's password, but its internal ports do not. "
                  "See README, 'Where Milvus runs'.", file=sys.stderr, flush=True)

    def _start_keeper(self) -> None:
        """Start the keeper, which starts the server; it inherits the keeper lock taken here, so
        no second keeper can start before it runs."""
        print(f"starting the embedded Milvus server in {self.data_dir} (about 10 s)", file=sys.stderr, flush=True)
        self._state_path().unlink(missing_ok=True)
        log_path = self.data_dir / KEEPER_LOG
        log_path.parent.mkdir(mode=0o700, exist_ok=True)
        _move_aside_if_large(log_path)
        with open(self.data_dir / KEEPER_LOCK_FILE, "a", opener=owner_only) as keeper_lock, \
                open(log_path, "ab", opener=owner_only) as log:
            fcntl.flock(keeper_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._keeper = subprocess.Popen(
                module_command(SERVER_MODULE, "keep", str(self.data_dir), str(self.idle_grace_s),
                               str(keeper_lock.fileno())), env=module_environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                pass_fds=(keeper_lock.fileno(),), umask=OWNER_ONLY_UMASK)

    def wait_until_stopped(self, timeout_s: float) -> bool:
        """See ``wait_until_stopped`` (the module's)."""
        deadline = time.monotonic() + timeout_s
        while self.data_dir.is_dir() and self._keeper_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(KEEPER_POLL_S)
        return True

    def _keeper_alive(self) -> bool:
        with open(self.data_dir / KEEPER_LOCK_FILE, "a", opener=owner_only) as keeper_lock:
            return locked_by_another(keeper_lock)

    def _wait_until_served(self, deadline: float) -> Optional[dict]:
        """The running server once its keeper has it up; None if another program's keeper ended
        without a failure (it stopped idle as this program came). A keeper that gave up wrote why
        before it ended, and that is raised at once."""
        log_path = self.data_dir / KEEPER_LOG
        while time.monotonic() < deadline:
            running = self._running_server()
            if running is not None:
                return running
            if not self._keeper_alive():
                failure = self._read_state().get("failed")
                if self._keeper is not None:  # this program's keeper: reap it
                    self._keeper.wait(timeout=10)
                    failure = failure or (f"the embedded Milvus server could not start: {_last_line(log_path)} "
                                          f"(see {log_path} and {self.data_dir / 'logs'})")
                if failure:
                    raise EmbeddedMilvusError(failure)
                return None
            time.sleep(0.1)
        raise EmbeddedMilvusError(f"the embedded Milvus server did not become healthy within {START_TIMEOUT_S} s; "
                                  f"see {log_path} and {self.data_dir / 'logs'}")

    def _running_server(self) -> Optional[dict]:
        """The state of the server on this folder if its keeper has it up (the keeper writes the
        state once the server is healthy and removes it as soon as the server dies)."""
        state = self._read_state()
        if process_alive(state.get("pid"), state.get("started")) and \
                process_alive(state.get("keeper_pid"), state.get("keeper_started")):
            return state
        return None

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_path().read_text())
        except (FileNotFoundError, ValueError):
            return {}

    # --- the keeper's side ---
    def keep(self, keeper_lock_fd: int) -> None:
        """Run the server until no program has used it for the idle grace; restart it if it dies.

        A dead server is handled first, before any lock: a program starting meanwhile waits for
        the state file, not for the keeper.

        :param keeper_lock_fd: the keeper lock, taken by the program that started this keeper.
        """
        self._keeper_lock_fd = keeper_lock_fd
        self._state_path().unlink(missing_ok=True)
        try:
            self._start_secured()
            self._serve()
        except Exception as failure:
            self._give_up(failure)
            raise

    def _start_secured(self) -> None:
        """Start the server and make sure of its password, within START_TIMEOUT_S in all; only then
        are other programs let in and told the port."""
        deadline = time.monotonic() + START_TIMEOUT_S
        self.isolated = isolation_available()
        if not self.isolated:
            print("no user + network namespace here: the server's ports are open on all interfaces", flush=True)
        new_memory = self._holds_no_memory()
        self._start_with_retries(deadline)
        self._secure(deadline, new_memory)
        if self._relay is not None:
            self._relay.only_own_connections = False
        self._write_state()

    def _serve(self) -> None:
        failed_restarts, last_used = 0, time.monotonic()
        while True:
            time.sleep(KEEPER_POLL_S)
            if self.process is None or self.process.poll() is not None:
                failed_restarts = failed_restarts + 1 if not self._restart() else 0
                if failed_restarts >= MAX_FAILED_RESTARTS:
                    raise EmbeddedMilvusError(f"the embedded Milvus server on {self.data_dir} died and "
                                              f"{MAX_FAILED_RESTARTS} restarts failed; see {self.data_dir / 'logs'}")
                continue
            if not self._unused():
                last_used = time.monotonic()
            elif time.monotonic() - last_used >= self.idle_grace_s and self._stop_if_unused():
                return

    def _give_up(self, failure: Exception) -> None:
        """Stop the server for good and write why where programs waiting for it read it: a start
        that could not succeed is not tried again by this keeper (the next program's start may)."""
        if self.process is not None and self.process.poll() is None:
            self.stop()
        self._kill()
        reason = str(failure) if isinstance(failure, EmbeddedMilvusError) else \
            f"the embedded Milvus server could not start: {failure!r} (see {self.data_dir / KEEPER_LOG})"
        self._state_path().write_text(json.dumps({"failed": reason, "keeper_pid": os.getpid()}))

    def _stop_if_unused(self) -> bool:
        """Under the start lock, so that no program joins between the check and the stop; the keeper
        lock goes before the start lock, so a program that takes it next starts a new keeper."""
        with self._start_lock():
            if not self._unused():
                return False
            self.stop()
            os.close(self._keeper_lock_fd)
            return True

    def _start_with_retries(self, deadline: float) -> None:
        """Start the server; a start that fails (a port taken meanwhile without a namespace, or
        Milvus 2.3 aborting on a folder left by a killed server, seen once) is retried afresh,
        until the deadline."""
        for attempt in range(1, MAX_FAILED_RESTARTS + 1):
            try:
                self._start(deadline)
                return
            except EmbeddedMilvusError as error:
                self._kill()
                if attempt == MAX_FAILED_RESTARTS or time.monotonic() >= deadline:
                    raise
                print(f"{error}; trying again", flush=True)

    def _unused(self) -> bool:
        with open(self.data_dir / USERS_FILE, "a") as users:
            return not locked_by_another(users)

    def _restart(self) -> bool:
        """Start the dead server again (behind the same port); True once it is healthy."""
        if self.process is not None:  # else a restart before this one failed
            print(f"the server exited with code {self.process.returncode}; restarting it", flush=True)
        self._state_path().unlink(missing_ok=True)
        self._kill()  # reaps it and closes its namespace
        try:
            self._launch()
            self._wait_until_healthy(time.monotonic() + START_TIMEOUT_S)
            self._follow_the_proxy()
        except EmbeddedMilvusError as error:
            print(error, flush=True)
            self._kill()
            return False
        self._write_state()
        return True

    def stop(self) -> None:
        """Stop the server (the keeper does this once no program uses it; collections are flushed
        by their users first).

        Milvus 2.3 does not stop cleanly (SIGTERM hangs or aborts), so it is killed; its
        components' etcd sessions are deleted first, or the next start would wait for them to
        expire (a start after a kill took about twice as long as after this stop).
        """
        if self.process is None:
            return
        self._state_path().unlink(missing_ok=True)
        self._forget_sessions()
        self._kill()

    def _kill(self) -> None:
        if self.process is not None:
            self.process.kill()  # data already flushed is safe; the rest is replayed from the log
            self.process.wait(timeout=30)
            self.process = None
        if self._namespace is not None:
            self._namespace.close()
            self._namespace = None

    def _start(self, deadline: float) -> None:
        from milvus import MilvusServerConfig  # the PyPI package `milvus`

        config = MilvusServerConfig(data_dir=str(self.data_dir))
        self._apply_config(config)
        with _machine_start_lock(held=not self.isolated):
            if self.isolated:
                config.resolve_storage()  # the namespace's ports are Milvus's defaults
                config.write_config()
                self.proxy_port, self.health_port = NAMESPACE_PROXY_PORT, NAMESPACE_HEALTH_PORT
            else:
                config.resolve()  # picks free ports, writes configs/milvus.yaml
                self.proxy_port = int(config.get("proxy_port"))
                self.health_port = _free_port(config, 9091)
            self.etcd_port = int(config.get("etcd_port"))
            self._configure_embedded_etcd(config)
            _make_owner_only(self.data_dir)  # the package copies its glog.conf with the mode it has (0644)
            self._launch()
            self._wait_until_healthy(deadline)
            self._follow_the_proxy()
        if self.isolated and self._relay is None:
            self._relay = Relay(self._dial)
        self.port = self._relay.port if self.isolated else self.proxy_port

    def _holds_no_memory(self) -> bool:
        """Whether no server has yet stored anything in this folder: its first start creates
        root with Milvus's default password."""
        data = self.data_dir / SERVER_DATA_FOLDER
        return not data.is_dir() or not any(data.iterdir())

    def _secure(self, deadline: float, new_memory: bool) -> None:
        """Make sure root's password is the one in credential.json (see ``_secure_once``).

        Two answers are passing states, tried again until the deadline:
        - after a server was killed, its stale proxy session fails a password change ("node not
          found") until it expires;
        - while the password changes, the proxy's credential cache may refuse, for one request, a
          login it accepted a moment before; pymilvus then raises gRPC's UNAUTHENTICATED as it is,
          not as a ``MilvusException``.

        Each try is safe to repeat: the new password is in credential.json before it is set. A
        ``CredentialError`` (a refused password or a missing credential) is not tried again: no
        retry helps.
        """
        import grpc
        from pymilvus import MilvusException

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # it logs a traceback per refused try
        while True:
            try:
                self._secure_once(new_memory, deadline)
                return
            except (MilvusException, grpc.RpcError) as error:
                if time.monotonic() > deadline:
                    raise EmbeddedMilvusError(f"could not set the password of the embedded server on "
                                              f"{self.data_dir}: {error}") from None
                time.sleep(1)

    def _secure_once(self, new_memory: bool, deadline: float) -> None:
        """A folder whose password was set must have credential.json, and the server must accept its
        password. A folder still on Milvus's default password (its first start, or its first since
        authentication came) gets a random one, written to credential.json before it is set, so a
        start that ends in between loses nothing. The marker is written once the password is set."""
        if password_was_set(self.data_dir) or (self.data_dir / CREDENTIAL_FILE).exists():
            credential = read_credential(self.data_dir)
            if not self._accepts(credential["password"]):
                if password_was_set(self.data_dir):
                    raise CredentialError(refused_message(self.data_dir))
                self._set_root_password(credential["password"])  # noted by a start that ended before setting it
        elif self._accepts_default_password(new_memory, deadline):
            credential = {"user": USER, "password": secrets.token_urlsafe(24), "applied": False}
            write_credential(self.data_dir, credential)
            self._set_root_password(credential["password"])
        else:  # set by a version before the marker, whose credential.json has gone since
            raise CredentialError(missing_message(self.data_dir))
        note_password_set(self.data_dir, credential)

    def _accepts_default_password(self, new_memory: bool, deadline: float) -> bool:
        """Whether root still has Milvus's default password. On a memory this start created it has:
        there, a refusal means the proxy has not loaded its credentials yet (seen on a loaded
        machine, a second after it reported healthy), so it is asked again until the deadline."""
        while not self._accepts(DEFAULT_PASSWORD):
            if not new_memory:
                return False
            if time.monotonic() > deadline:
                raise EmbeddedMilvusError(f"the new embedded Milvus server on {self.data_dir} kept refusing Milvus's "
                                          f"default password for root until the start's {START_TIMEOUT_S} s were up. "
                                          f"The folder holds no memory yet: start again (on a less loaded machine, "
                                          f"if it is busy), and if it fails again, see {self.data_dir / 'logs'}")
            time.sleep(LOGIN_RECHECK_S)
        return True

    def _accepts(self, password: str) -> bool:
        client = self._logged_in(password)
        if client is not None:
            client.close()
        return client is not None

    def _logged_in(self, password: str):
        """A client logged in as root with ``password``; None if the server refuses it twice (asked
        again after a moment, so a proxy that answered before it could check is not taken at its word)."""
        from pymilvus import MilvusClient, MilvusException

        for attempt in range(2):
            if attempt:
                time.sleep(LOGIN_RECHECK_S)
            try:
                return MilvusClient(uri=self.uri, token=f"{USER}:{password}", timeout=10)
            except MilvusException as error:
                if not refuses_login(error):
                    raise
        return None

    def _set_root_password(self, password: str) -> None:
        """Give root ``password``, logged in with Milvus's default or with ``password`` itself (a
        start that ended before noting it), each tried as the old one too: a proxy may still cache
        the previous password. ``CredentialError`` if the server refuses both logins."""
        from pymilvus import MilvusException

        failure = None
        for login in (DEFAULT_PASSWORD, password):
            client = self._logged_in(login)
            if client is None:
                continue
            try:
                for old in (DEFAULT_PASSWORD, password):
                    try:
                        client.update_password(USER, old, password)
                        return
                    except MilvusException as error:
                        failure = error
            finally:
                client.close()
        if failure is None:
            raise CredentialError(refused_message(self.data_dir))
        raise failure

    def _write_state(self) -> None:
        self._state_path().write_text(json.dumps({"pid": self.process.pid, "started": process_start_time(self.process.pid),
                                                  "keeper_pid": os.getpid(), "keeper_started": process_start_time(),
                                                  "port": self.port, "isolated": self.isolated}))

    def _configure_embedded_etcd(self, config) -> None:
        """Give Milvus's in-process etcd loopback URLs.

        Why: the package's configuration has no ``etcd.config.path``, so etcd starts with its own
        defaults (client 2379, peer 2380) whatever port was resolved; without a namespace a second
        embedded server on this machine died at start ("bind: address already in use").
        """
        client = f"http://{SERVER_LOOPBACK}:{self.etcd_port}"
        peer_port = ETCD_PEER_PORT if self.isolated else _free_port(config, max(ETCD_PEER_PORT, self.etcd_port + 1))
        peer = f"http://{SERVER_LOOPBACK}:{peer_port}"
        etcd_config = self.data_dir / "configs" / "etcd.yaml"
        etcd_config.write_text(f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
                               f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
                               f"initial-cluster: default={peer}\n")
        milvus_config = self.data_dir / "configs" / "milvus.yaml"
        text = milvus_config.read_text()
        milvus_config.write_text(text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_config}\n", 1))

    @staticmethod
    def _apply_config(config) -> None:
        for component in COMPONENTS:
            config.set(f"{component}.ip", SERVER_LOOPBACK)
        config.set("common.session.ttl", SESSION_TTL_S)
        config.set("proxy.timeTickInterval", TIME_TICK_INTERVAL_MS)
        config.set("authorization_enabled", True)
        config.set("etcd_log_level", "warn")  # etcd's log is not rotated: info grew it at every start
        config.set("log.file.maxSize", MILVUS_LOG_MB)
        config.set("log.file.maxBackups", MILVUS_LOG_BACKUPS)
        config.set("log.stdout", "false")  # the rotated files have it all; stdout would grow unbounded

    def _launch(self) -> None:
        """Start Milvus through this module's ``exec`` helper, which sets the parent-death signal
        and, when isolated, moves into a fresh namespace first."""
        binary = _unpacked_binary()
        env = module_environment(dict(os.environ, DEPLOY_MODE="STANDALONE", METRICS_PORT=str(self.health_port),
                                      MILVUS_RUN_DIR=str(self.data_dir / "run"),
                                      LD_LIBRARY_PATH=f"{binary.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}"))
        helper = module_command(SERVER_MODULE)
        logs = self.data_dir / "logs"
        _prune_logs(logs)
        if self.isolated:
            self._namespace = Namespace()
            helper += ["exec-isolated", str(self._namespace.inner_fd)]
        else:
            helper += ["exec"]
        with open(logs / SERVER_LOG, "ab") as out, open(logs / "milvus-stderr.log", "ab") as err:
            self._log_offset = out.tell()
            self.process = subprocess.Popen(helper + [str(binary), "run", "standalone"], cwd=self.data_dir,
                                            env=env, stdout=out, stderr=err, pass_fds=self._inherited_fds())
        if self._namespace is not None:
            self._namespace.handed_over()

    def _inherited_fds(self) -> tuple:
        return (self._namespace.inner_fd,) if self._namespace is not None else ()

    def _dial(self, port: int, timeout: float = 5.0) -> socket.socket:
        """A TCP connection to ``port`` on the server's loopback (inside its namespace if isolated)."""
        if not self.isolated:
            return socket.create_connection((SERVER_LOOPBACK, port), timeout=timeout)
        namespace = self._namespace
        if namespace is None:
            raise ConnectionError("the server is restarting")
        connection = namespace.socket()
        connection.settimeout(timeout)
        try:
            connection.connect((SERVER_LOOPBACK, port))
        except OSError:
            connection.close()
            raise
        return connection

    def _follow_the_proxy(self) -> None:
        """Use the port the proxy of this start listens on. Without a namespace, a port probed free
        can be taken before Milvus binds it (see ``PROXY_LISTENS``); the keeper then asked a
        stranger for root's password and took its refusal for a missing credential. A server that
        is healthy has logged its proxy's port. Inside a namespace, no other program can take it."""
        if self.isolated:
            return
        with open(self.data_dir / "logs" / SERVER_LOG, "rb") as log:
            log.seek(self._log_offset)
            said = PROXY_LISTENS.findall(log.read())
        if said:
            self.proxy_port = self.port = int(said[-1])

    def _wait_until_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedMilvusError(
                    f"the embedded Milvus server exited with code {self.process.returncode} while starting; "
                    f"see {self.data_dir / 'logs'}. If the folder is damaged, move it aside to start afresh.")
            if self._healthy():
                return
            time.sleep(0.2)
        raise EmbeddedMilvusError(
            f"the embedded Milvus server did not become healthy within {START_TIMEOUT_S} s; "
            f"see {self.data_dir / 'logs'}")

    def _healthy(self) -> bool:
        try:
            return b"OK" in _http(self._dial(self.health_port, timeout=2), "GET", "/healthz")
        except OSError:
            return False

    def _forget_sessions(self) -> None:
        """Delete the components' session keys through etcd's JSON gateway, in one transaction
        (Milvus exits as soon as one of its sessions goes). A server that no longer answers leaves
        them to expire, and the next start waits for that."""
        prefix_end = SESSION_PREFIX[:-1] + bytes([SESSION_PREFIX[-1] + 1])
        try:
            sessions = self._etcd("/v3/kv/range", {"key": SESSION_PREFIX, "range_end": prefix_end, "keys_only": True})
            deletes = [{"request_delete_range": {"key": entry["key"]}}
                       for entry in sessions.get("kvs", []) if "lease" in entry]
            self._etcd("/v3/kv/txn", {"success": deletes})
        except (OSError, ValueError) as error:
            print(f"could not clear the server's sessions ({error}); the next start waits for them", flush=True)

    def _etcd(self, path: str, request: dict) -> dict:
        body = {key: base64.b64encode(value).decode() if isinstance(value, bytes) else value
                for key, value in request.items()}
        return json.loads(_http(self._dial(self.etcd_port), "POST", path, json.dumps(body).encode()))

    def _state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        with open(self.data_dir / LOCK_FILE, "w", opener=owner_only) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _unpacked_binary() -> Path:
    """The Milvus executable, unpacked from the package into the user's cache at its first use
    (under a lock: two first starts at once must not write the same files)."""
    from milvus import __version__, _initialize_data_files

    home = BINARY_CACHE / f"milvus-{__version__}"
    done = home / "unpacked"  # written last: checking the files' checksums would cost 0.5 s a start
    if not done.exists():
        home.mkdir(parents=True, exist_ok=True)
        with open(home / "unpack.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _initialize_data_files(str(home))  # skips files a start before us unpacked
            done.touch()
    return home / "bin" / "milvus"


def _free_port(config, start: int) -> int:
    port, probe = config.resolve_port(start)
    probe.close()
    return port


@contextmanager
def _machine_start_lock(held: bool) -> Iterator[None]:
    """Without namespaces: one start on this machine at a time, from probing ports to a healthy
    server. Created writable for everyone, since other users' starts probe the same ports."""
    if not held:
        yield
        return
    descriptor = os.open(MACHINE_START_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _http(connection: socket.socket, method: str, path: str, body: bytes = b"") -> bytes:
    """The body of a small HTTP/1.0 exchange on an open connection (which it closes)."""
    with connection:
        connection.sendall(f"{method} {path} HTTP/1.0\r\nHost: {SERVER_LOOPBACK}\r\nContent-Type: application/json"
                           f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer.partition(b"\r\n\r\n")[2]


def _make_owner_only(data_dir: Path) -> None:
    """Take group's and others' access away from the folder and everything in it (the versions
    before this one left directories 0755 and files 0644); links have no modes of their own."""
    for folder, _, files in os.walk(data_dir):
        for path in (folder, *(os.path.join(folder, name) for name in files)):
            try:
                mode = os.lstat(path).st_mode
                if mode & 0o077 and not stat.S_ISLNK(mode):
                    os.chmod(path, stat.S_IMODE(mode) & 0o700)
            except FileNotFoundError:  # a log moved aside meanwhile
                continue


def _prune_logs(logs: Path) -> None:
    """Bound the logs before a start: the newest few of Milvus's per-start files, and the
    appended ones moved aside once large."""
    for pattern in PER_START_LOGS:
        for old in sorted(logs.glob(pattern), key=lambda path: path.stat().st_mtime)[:-PER_START_LOGS_KEPT]:
            old.unlink(missing_ok=True)
    for name in ("milvus-stdout.log", "milvus-stderr.log", "etcd.log"):
        _move_aside_if_large(logs / name)


def _move_aside_if_large(path: Path) -> None:
    if path.exists() and path.stat().st_size > LOG_LIMIT_BYTES:
        os.replace(path, path.with_name(path.name + ".old"))


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"


# --- a private network namespace (Linux), made without the `ip` or `unshare` commands ---


_servers: dict = {}


def embedded_server_uri(data_dir: str | os.PathLike, idle_grace_s: float = IDLE_GRACE_S) -> str:
    """The URI of the embedded server on ``data_dir``, started once per program.

    :param idle_grace_s: if this starts the server, it is kept this long after its last user left.
    """
    key = Path(data_dir).resolve()
    if key not in _servers:
        _servers[key] = EmbeddedMilvus(key, idle_grace_s)
    return _servers[key].start_or_reuse()


def embedded_server_token(data_dir: str | os.PathLike) -> str:
    """The ``user:password`` token of the embedded server on ``data_dir`` (made at its first start)."""
    return f"{USER}:{read_credential(Path(data_dir).resolve())['password']}"


def release_embedded_server(data_dir: str | os.PathLike) -> None:
    """This program no longer uses the server on ``data_dir``: once no program does, its keeper
    stops it after the idle grace. A later ``embedded_server_uri`` joins (or starts) it again."""
    server = _servers.pop(Path(data_dir).resolve(), None)
    if server is not None:
        server.release()


@contextmanager
def embedded_server_kept(data_dir: str | os.PathLike, idle_grace_s: float = IDLE_GRACE_S) -> Iterator[str]:
    """Keep the embedded server on ``data_dir`` up while the block runs, and yield its URI.

    Why: a program that opens and closes many memories one after another (a notebook, a test
    session) gives up its share each time its last store closes, and a pause longer than the idle
    grace then costs a new start. This share is a user of its own, apart from the stores' one, so
    ``release_embedded_server`` does not end it.
    """
    holder = EmbeddedMilvus(data_dir, idle_grace_s)
    try:
        yield holder.start_or_reuse()
    finally:
        holder.release()


def wait_until_stopped(data_dir: str | os.PathLike, timeout_s: float = START_TIMEOUT_S) -> bool:
    """Wait until no keeper runs a server on ``data_dir`` (its lock is free once it has stopped the
    server and ended): a folder about to be removed is then removed from under no one. True if it
    stopped within ``timeout_s``."""
    return EmbeddedMilvus(data_dir).wait_until_stopped(timeout_s)


def main(arguments: list) -> None:
    if len(arguments) == 4 and arguments[0] == "keep":
        EmbeddedMilvus(arguments[1], float(arguments[2])).keep(int(arguments[3]))
    elif len(arguments) >= 3 and arguments[0] == "exec-isolated":
        exec_isolated(int(arguments[1]), arguments[2:])
    elif len(arguments) >= 2 and arguments[0] == "exec":
        die_with_parent()
        os.execv(arguments[1], arguments[1:])
    else:
        sys.exit("usage: python -m resonant_vectors.server keep DATA_DIR IDLE_GRACE_S LOCK_FD  (started by the store, "
                 "not by hand)")

