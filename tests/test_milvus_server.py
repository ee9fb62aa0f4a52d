"""The embedded Milvus is reused while it is up, lives as long as the programs using it (and a short
idle grace), is reachable from this machine's loopback only, with its folder's password, and starts
beside other servers without colliding."""
from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pymilvus import MilvusClient, MilvusException

from resonant_vectors.config import Settings
from resonant_vectors.memory.milvus.collection import GRPC_OPTIONS, connect
from resonant_vectors.processes import process_alive
from resonant_vectors.server.credential import CREDENTIAL_FILE
from resonant_vectors.server.errors import EmbeddedMilvusError
from resonant_vectors.server.supervision import (
    LOG_LIMIT_BYTES,
    STATE_FILE,
    embedded_server_kept,
    embedded_server_token,
    embedded_server_uri,
    release_embedded_server,
)

PROJECT = Path(__file__).resolve().parent.parent
SERVER = "resonant_vectors.server.supervision"  # the module the helper programs below import
DEFAULT_MILVUS_PORT = 19530
NO_GRACE = "idle_grace_s=0"  # the tests' own servers stop as soon as their program ends
# A server started and its password refused, said within this: far less than the 180 s start timeout
# a retried start would take, with room for a machine loaded by the suite's other servers.
STARTED_AND_REFUSED_S = 90
TCP_LISTEN = "0A"             # the state column of a listening socket in /proc/net/tcp


def python(code: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **options)


def client(uri: str, data_dir, token: str | None = None) -> MilvusClient:
    token = embedded_server_token(data_dir) if token is None else token
    return MilvusClient(uri=uri, token=token, timeout=60, grpc_options=GRPC_OPTIONS)


def state(data_dir) -> dict:
    return json.loads((Path(data_dir) / STATE_FILE).read_text())


def alive(pid: int) -> bool:
    """The project's own liveness check: a process that ends while it is asked is not alive (no race)."""
    return process_alive(pid)


def wait_until_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not alive(pid)


def test_another_program_reuses_the_running_server(milvus_data_dir):
    uri = embedded_server_uri(milvus_data_dir)
    child = python(f"from {SERVER} import embedded_server_uri; print(embedded_server_uri({milvus_data_dir!r}))")
    assert child.communicate(timeout=60)[0].strip() == uri


def test_a_second_server_on_another_folder_runs_beside_the_first_and_stops_with_its_program(tmp_path):
    child = python("import json\n"
                   f"from {SERVER} import embedded_server_uri; embedded_server_uri({str(tmp_path)!r}, {NO_GRACE})\n"
                   f"print(json.loads(open({str(tmp_path / STATE_FILE)!r}).read())['pid'], flush=True)")
    output, errors = child.communicate(timeout=240)
    assert child.returncode == 0, errors
    assert wait_until_gone(int(output), 10)
    assert not (tmp_path / STATE_FILE).exists()


def test_the_server_dies_with_a_program_killed_without_cleanup(tmp_path):
    child = python("import sys, time\n"
                   f"from {SERVER} import embedded_server_uri; embedded_server_uri({str(tmp_path)!r}, {NO_GRACE})\n"
                   "print('up', flush=True); time.sleep(600)")
    assert child.stdout.readline().strip() == "up", child.stderr.read()
    server_pid = json.loads((tmp_path / STATE_FILE).read_text())["pid"]
    assert alive(server_pid)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert wait_until_gone(server_pid, 10)


def test_the_server_lives_until_the_last_of_its_users_leaves(tmp_path):
    user = ("import sys, time\n"
            f"from {SERVER} import embedded_server_uri; print(embedded_server_uri({str(tmp_path)!r}, {NO_GRACE}), flush=True)\n"
            "sys.stdin.readline()\n")
    first = python(user, stdin=subprocess.PIPE)
    uri = first.stdout.readline().strip()
    server_pid = json.loads((tmp_path / STATE_FILE).read_text())["pid"]
    second = python(user, stdin=subprocess.PIPE)
    assert second.stdout.readline().strip() == uri
    first.communicate("\n", timeout=30)
    time.sleep(2)
    assert alive(server_pid)
    assert client(uri, tmp_path).list_collections() == []
    second.communicate("\n", timeout=30)
    assert wait_until_gone(server_pid, 10)


def first_free_port(start: int) -> socket.socket:
    """A socket listening on the first free port from ``start``: the port a new server would take."""
    for port in range(start, start + 100):
        squatter = socket.socket()
        try:
            squatter.bind(("127.0.0.1", port))
        except OSError:
            squatter.close()
            continue
        squatter.listen()
        return squatter
    raise RuntimeError(f"no free port from {start}")


def test_a_port_taken_by_another_program_is_avoided(tmp_path):
    with first_free_port(DEFAULT_MILVUS_PORT) as squatter:
        taken = squatter.getsockname()[1]
        child = python(f"from {SERVER} import embedded_server_uri; print(embedded_server_uri({str(tmp_path)!r}, {NO_GRACE}))")
        output, errors = child.communicate(timeout=240)
    assert child.returncode == 0, errors
    assert output.strip().startswith("http://127.0.0.1:") and not output.strip().endswith(f":{taken}")


def socket_inodes(pid: int) -> set:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def children(pid: int) -> list:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


def listening_addresses(table_of: int) -> dict:
    """Socket inode → local address of each listening TCP socket in the network namespace of
    process ``table_of``, as /proc shows it (hex; 0100007F is 127.0.0.1)."""
    listening = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{table_of}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == TCP_LISTEN:
                listening[fields[9]] = fields[1].split(":")[0]
    return listening


LOOPBACK_HEX = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def user_namespaces_work() -> bool:
    """Whether this machine lets a program make a private network namespace (checked apart)."""
    probe = subprocess.run([sys.executable, "-c", "from resonant_vectors.server.isolation import enter_private_network\n"
                                                  "enter_private_network()"], cwd=PROJECT, capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux") or not user_namespaces_work(),
                    reason="no user namespaces here: the README says what stays open then")
def test_nothing_of_the_server_listens_beyond_this_machines_loopback(milvus_data_dir):
    embedded_server_uri(milvus_data_dir)
    running = state(milvus_data_dir)
    assert running["isolated"]
    ours = [running["keeper_pid"], running["pid"], *children(running["pid"])]
    inodes = set().union(*(socket_inodes(pid) for pid in ours))
    on_the_host = {inode: address for inode, address in listening_addresses(os.getpid()).items() if inode in inodes}
    assert list(on_the_host.values()) == ["0100007F"]  # the one forwarded port, on 127.0.0.1
    assert os.readlink(f"/proc/{running['pid']}/ns/net") != os.readlink("/proc/self/ns/net")
    interfaces = [line.split(":")[0].strip() for line in
                  Path(f"/proc/{running['pid']}/net/dev").read_text().splitlines()[2:]]
    assert interfaces == ["lo"]


def test_the_server_refuses_a_client_without_the_folders_password(milvus_data_dir):
    uri = embedded_server_uri(milvus_data_dir)
    credential = Path(milvus_data_dir) / CREDENTIAL_FILE
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    for wrong in ("", "root:Milvus"):
        with pytest.raises(MilvusException):
            client(uri, milvus_data_dir, token=wrong).list_collections()
    assert isinstance(client(uri, milvus_data_dir).list_collections(), list)


OPENER = (  # a program that opens the memory in a folder, creates the collections named, lists them, ends
    "import sys\n"
    "from pymilvus import MilvusClient\n"
    f"from {SERVER} import embedded_server_token, embedded_server_uri\n"
    f"uri = embedded_server_uri(sys.argv[1], {NO_GRACE})\n"
    "client = MilvusClient(uri=uri, token=embedded_server_token(sys.argv[1]), timeout=60)\n"
    "for name in sys.argv[2:]:\n"
    "    client.create_collection(name, dimension=9)\n"
    "print(sorted(client.list_collections()))\n")


def open_memory(folder: Path, *created: str) -> list:
    """The collections in the memory of ``folder`` (after creating ``created``), its server stopped after."""
    opened = subprocess.run([sys.executable, "-c", OPENER, str(folder), *created], cwd=PROJECT,
                            capture_output=True, text=True, timeout=240)
    assert opened.returncode == 0, opened.stderr
    assert wait_until_stopped(folder, 20)
    return json.loads(opened.stdout.replace("'", '"'))


def processes_of(folder: Path) -> list:
    """The live processes of the server on ``folder``: its keeper names it, Milvus works in it."""
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            arguments = process.joinpath("cmdline").read_bytes().decode(errors="replace").split("\0")
            if (str(folder) in arguments or os.readlink(process / "cwd") == str(folder)) and alive(int(process.name)):
                found.append(int(process.name))
        except OSError:  # ended meanwhile
            continue
    return found


def wait_until_stopped(folder: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while processes_of(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not processes_of(folder)


def evaluate_failing_on(folder: Path) -> tuple:
    """The error of ``python main.py evaluate`` on the embedded memory in ``folder`` (its one line, no
    traceback) and how long the command took."""
    started = time.monotonic()
    command = subprocess.run([sys.executable, "main.py", "evaluate", "--episodes", "1"], cwd=PROJECT,
                             env=dict(os.environ, MILVUS_DATA_DIR=str(folder), MILVUS_URI=""),
                             capture_output=True, text=True, timeout=240)
    assert command.returncode == 2 and "Traceback" not in command.stderr, command.stderr
    return command.stderr.strip().splitlines()[-1], time.monotonic() - started


@pytest.fixture(scope="module")
def secured_memory(tmp_path_factory) -> Path:
    """A folder whose password was set at its first start, holding the collection 'kept'; its server stopped."""
    folder = tmp_path_factory.mktemp("secured").resolve()
    assert open_memory(folder, "kept") == ["kept"]
    return folder


def test_a_missing_credential_is_named_at_once_nothing_replaces_it_and_putting_it_back_opens_the_memory(
        secured_memory, tmp_path):
    credential = secured_memory / CREDENTIAL_FILE
    original = tmp_path / CREDENTIAL_FILE
    credential.rename(original)
    try:
        error, seconds = evaluate_failing_on(secured_memory)
        assert seconds < 30
        assert error.startswith(f"error: {credential} is missing") and "intact" in error and "back" in error, error
        assert f"move {secured_memory} aside" in error
        assert not credential.exists()
        assert wait_until_stopped(secured_memory, 5), "a keeper or Milvus of the folder is left running"
    finally:
        original.rename(credential)
    assert open_memory(secured_memory) == ["kept"]


def test_a_wrong_credential_is_named_at_once_and_left_as_it_is(secured_memory, tmp_path):
    credential = secured_memory / CREDENTIAL_FILE
    original = tmp_path / CREDENTIAL_FILE
    credential.rename(original)
    wrong = json.dumps(dict(json.loads(original.read_text()), password="not-the-folders-password"))
    credential.write_text(wrong)
    try:
        error, seconds = evaluate_failing_on(secured_memory)
        assert seconds < STARTED_AND_REFUSED_S
        assert str(credential) in error and "refuse" in error and "intact" in error, error
        assert credential.read_text() == wrong
        assert wait_until_stopped(secured_memory, 5), "a keeper or Milvus of the folder is left running"
    finally:
        original.replace(credential)


def test_a_program_joining_a_running_server_with_a_wrong_credential_is_told_at_once(secured_memory):
    # A server of its own: the test server's credential is read by every process of the suite.
    credential = secured_memory / CREDENTIAL_FILE
    original = credential.read_text()
    with embedded_server_kept(secured_memory, idle_grace_s=0):
        credential.write_text(json.dumps(dict(json.loads(original), password="not-the-folders-password")))
        started = time.monotonic()
        try:
            with pytest.raises(EmbeddedMilvusError, match=f"{credential}.*intact"):
                connect(Settings.from_module(milvus_data_dir=str(secured_memory), milvus_uri=""))
        finally:
            credential.write_text(original)
            release_embedded_server(secured_memory)
    assert time.monotonic() - started < 10
    assert wait_until_stopped(secured_memory, 20)


def test_an_error_pymilvus_raised_as_its_own_cause_is_not_taken_for_a_refused_password():
    from resonant_vectors.server.credential import refuses_login

    unreachable = MilvusException(code=2, message="Fail connecting to server")
    unreachable.__cause__ = unreachable  # as pymilvus's `raise e from e` leaves it
    assert not refuses_login(unreachable)


def loose_modes(folder: Path) -> list:
    """Everything under ``folder`` (itself included) that its owner's group or others may use. (Milvus
    makes its segment files 0777 less the umask: 0700, its owner's alone like the 0600 of the rest.)"""
    loose = []
    for path in [folder, *folder.rglob("*")]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # a server's file, gone meanwhile
            continue
        if not stat.S_ISLNK(mode) and mode & 0o077:
            loose.append(f"{stat.S_IMODE(mode):o} {path}")
    return loose


def test_the_memory_is_readable_by_its_owner_only(milvus_data_dir):
    client(embedded_server_uri(milvus_data_dir), milvus_data_dir).list_collections()
    assert loose_modes(Path(milvus_data_dir)) == []


def test_a_folder_left_readable_by_all_is_made_its_owners_at_its_next_start(secured_memory):
    for path in [secured_memory, *secured_memory.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)  # as the versions before this one left them
    assert open_memory(secured_memory) == ["kept"]
    assert loose_modes(secured_memory) == []


def cpu_burner() -> subprocess.Popen:
    """Something busy beside the starts, as a training would be."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


SEARCHER = ("import sys\n"
            "from pymilvus import MilvusClient\n"
            f"from {SERVER} import embedded_server_token, embedded_server_uri\n"
            "folder = sys.argv[1]\n"
            f"uri = embedded_server_uri(folder, {NO_GRACE})\n"
            "client = MilvusClient(uri=uri, token=embedded_server_token(folder), timeout=60)\n"
            "client.create_collection('engrams', dimension=9)\n"
            "client.insert('engrams', [{'id': 1, 'vector': [0.5] * 9}])\n"
            "hits = client.search('engrams', [[0.5] * 9], limit=1, consistency_level='Strong')\n"
            "print(hits[0][0]['id'])\n")


def test_four_servers_started_at_once_on_four_folders_all_answer_a_search(tmp_path):
    busy = cpu_burner()
    try:
        for round_ in range(2):
            folders = [tmp_path / f"round{round_}_folder{i}" for i in range(4)]
            starts = [subprocess.Popen([sys.executable, "-c", SEARCHER, str(folder)], cwd=PROJECT,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                      for folder in folders]
            answers = [start.communicate(timeout=240) for start in starts]
            assert [output.strip() for output, _ in answers] == ["1"] * 4, [errors for _, errors in answers]
    finally:
        busy.kill()
        busy.wait()


OLD_FOLDER_MAKER = (  # what the project ran before: the package's server, no password, 100 engrams
    "import sys\n"
    "from resonant_vectors.server.isolation import enter_private_network\n"
    "enter_private_network()  # its fixed etcd port would collide with other servers' otherwise\n"
    "from milvus import MilvusServer, MilvusServerConfig\n"
    "from pymilvus import MilvusClient\n"
    "config = MilvusServerConfig()\n"
    "config.set('common.session.ttl', 10)  # as the project set it then\n"
    "old = MilvusServer(config)\n"
    "old.set_base_dir(sys.argv[1])\n"
    "old.start()\n"
    "client = MilvusClient(uri=f'http://127.0.0.1:{old.listen_port}', timeout=60)\n"
    "client.create_collection('engrams', dimension=9)\n"
    "client.insert('engrams', [{'id': i, 'vector': [i / 100] * 9} for i in range(100)])\n"
    "client.flush('engrams')\n"
    "old.stop()\n")


def test_a_folder_made_before_authentication_starts_and_keeps_its_engrams(tmp_path):
    maker = subprocess.run([sys.executable, "-c", OLD_FOLDER_MAKER, str(tmp_path)], cwd=PROJECT,
                           capture_output=True, text=True, timeout=240)
    assert maker.returncode == 0, maker.stderr
    uri = embedded_server_uri(tmp_path, idle_grace_s=0)
    try:
        after = client(uri, tmp_path)
        after.load_collection("engrams")
        assert after.query("engrams", filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 100
    finally:
        release_embedded_server(tmp_path)


def test_a_program_started_right_after_a_server_crash_gets_a_server_at_once(tmp_path):
    holder = python(f"import sys\nfrom resonant_vectors.server.supervision import embedded_server_uri\n"
                    f"print(embedded_server_uri({str(tmp_path)!r}, {NO_GRACE}), flush=True)\nsys.stdin.readline()",
                    stdin=subprocess.PIPE)
    uri = holder.stdout.readline().strip()
    os.kill(state(tmp_path)["pid"], signal.SIGKILL)
    latecomer = python(f"from {SERVER} import embedded_server_uri; print(embedded_server_uri({str(tmp_path)!r}))")
    output, errors = latecomer.communicate(timeout=90)  # a start, not the 180 s start timeout
    holder.communicate("\n", timeout=30)
    assert output.strip() == uri, errors


def test_a_released_server_stops_while_its_program_goes_on(tmp_path):
    child = python("import sys, json\n"
                   f"from {SERVER} import embedded_server_uri, release_embedded_server\n"
                   f"embedded_server_uri({str(tmp_path)!r}, {NO_GRACE})\n"
                   f"print(json.loads(open({str(tmp_path / STATE_FILE)!r}).read())['pid'], flush=True)\n"
                   f"release_embedded_server({str(tmp_path)!r})\n"
                   "sys.stdin.readline()", stdin=subprocess.PIPE)
    server_pid = int(child.stdout.readline())
    assert wait_until_gone(server_pid, 10)
    assert child.poll() is None
    child.communicate("\n", timeout=30)


def test_closing_the_last_trainer_of_a_notebook_gives_up_its_share_unless_the_notebook_keeps_the_server(
        settings, tmp_path):
    from resonant_vectors.loop.trainer import Trainer

    own = settings.replace(milvus_data_dir=str(tmp_path), milvus_idle_grace=0.0, max_trial_length=5)
    with embedded_server_kept(tmp_path, idle_grace_s=0):
        with Trainer("alone", settings=own, quiet=True) as trainer:
            trainer.train(1)
            server_pid = json.loads((tmp_path / STATE_FILE).read_text())["pid"]
        assert not wait_until_gone(server_pid, 3)  # kept: six of the keeper's looks at its users later
    assert wait_until_gone(server_pid, 10)  # the Trainer gave up its share too, while the notebook goes on


def test_a_command_run_soon_after_another_reuses_the_server_kept_for_the_idle_grace(tmp_path):
    program = ("import json\nfrom resonant_vectors.server.supervision import embedded_server_uri\n"
               f"embedded_server_uri({str(tmp_path)!r}, idle_grace_s=15)\n"  # more than the next program's start
               f"print(json.loads(open({str(tmp_path / STATE_FILE)!r}).read())['pid'])")
    first = python(program).communicate(timeout=240)[0]
    second = python(program).communicate(timeout=60)[0]
    assert first.strip() and second.strip() == first.strip()
    assert wait_until_gone(int(first), 35)


def test_the_servers_logs_are_bounded_at_each_start(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for start in range(10):  # what ten earlier starts left
        old = logs / f"standalone-{start}.log"
        old.write_text("a start's log\n")
        os.utime(old, (start, start))
    (logs / "milvus-stdout.log").write_bytes(b"x" * (LOG_LIMIT_BYTES + 1))
    embedded_server_uri(tmp_path, idle_grace_s=0)
    release_embedded_server(tmp_path)
    assert len(list(logs.glob("standalone-*.log"))) <= 4  # the newest three kept, and this start's own
    assert not (logs / "standalone-0.log").exists()
    assert (logs / "milvus-stdout.log.old").stat().st_size == LOG_LIMIT_BYTES + 1
    assert (logs / "milvus-stdout.log").stat().st_size < LOG_LIMIT_BYTES


IN_A_USER_NAMESPACE_WITHOUT_MORE = (  # a program's start: no further namespace can be made
    "import ctypes, os, sys\n"
    "uid, gid = os.getuid(), os.getgid()\n"
    "assert ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0  # CLONE_NEWUSER\n"
    "for name, text in (('setgroups', 'deny'), ('uid_map', f'{uid} {uid} 1'), ('gid_map', f'{gid} {gid} 1')):\n"
    "    open(f'/proc/self/{name}', 'w').write(text)\n"
    "open('/proc/sys/user/max_user_namespaces', 'w').write('0')\n")

WITHOUT_USER_NAMESPACES = IN_A_USER_NAMESPACE_WITHOUT_MORE + (
    f"from {SERVER} import embedded_server_token, embedded_server_uri\n"
    "from pymilvus import MilvusClient\n"
    f"uri = embedded_server_uri(sys.argv[1], {NO_GRACE})\n"
    "print(MilvusClient(uri=uri, token=embedded_server_token(sys.argv[1]), timeout=60).list_collections())\n"
    "try:\n"
    "    MilvusClient(uri=uri, timeout=10).list_collections()\n"
    "except Exception:\n"
    "    print('refused without the password')\n")


def run_program(code: str, data_dir) -> subprocess.CompletedProcess:
    """One of the programs above, on this data folder, to its end (a start without a namespace included)."""
    return subprocess.run([sys.executable, "-c", code, str(data_dir)], cwd=PROJECT, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="user namespaces are Linux's")
def test_without_user_namespaces_the_server_still_starts_with_its_password_and_says_what_is_open(tmp_path):
    program = run_program(WITHOUT_USER_NAMESPACES, tmp_path)
    assert program.returncode == 0, program.stderr
    assert program.stdout.split("\n")[:2] == ["[]", "refused without the password"]
    assert "listens on all interfaces" in program.stderr


SQUATTING_THE_PROXY_PORT = IN_A_USER_NAMESPACE_WITHOUT_MORE + (  # takes the port Milvus was given before it binds it
    "import re, socket, threading, time\n"
    "from pathlib import Path\n"
    f"from {SERVER} import embedded_server_token, embedded_server_uri\n"
    "from pymilvus import MilvusClient\n"
    "squatter, config = socket.socket(), Path(sys.argv[1]) / 'configs' / 'milvus.yaml'\n"
    "def squat():\n"
    "    while True:\n"
    "        said = re.search(r'\\nproxy:\\n(?:.*\\n)*?  port: (\\d+)', config.read_text() if config.exists() else '')\n"
    "        if said:\n"
    "            squatter.bind(('127.0.0.1', int(said.group(1))))\n"
    "            squatter.listen()\n"
    "            return print(said.group(1))\n"
    "        time.sleep(0.005)\n"
    "threading.Thread(target=squat, daemon=True).start()\n"
    f"uri = embedded_server_uri(sys.argv[1], {NO_GRACE})\n"
    "print(uri.rsplit(':', 1)[1])\n"
    "print(MilvusClient(uri=uri, token=embedded_server_token(sys.argv[1]), timeout=60).list_collections())\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="user namespaces are Linux's")
def test_without_user_namespaces_a_port_taken_before_milvus_binds_it_is_not_mistaken_for_the_server(tmp_path):
    program = run_program(SQUATTING_THE_PROXY_PORT, tmp_path)
    assert program.returncode == 0, program.stderr
    squatted, served, collections = program.stdout.split("\n")[:3]
    assert served != squatted
    assert collections == "[]"


def test_until_the_password_is_set_only_the_keeper_gets_through_its_forwarded_port():
    from resonant_vectors.server.relay import Relay

    with socket.create_server(("127.0.0.1", 0)) as greeter:
        def greet() -> None:
            while True:
                connection, _ = greeter.accept()
                with connection:
                    connection.sendall(b"hello")

        threading.Thread(target=greet, daemon=True).start()
        relay = Relay(lambda port: socket.create_connection(greeter.getsockname()))
        other_program = ("import socket\n"
                         f"print(socket.create_connection(('127.0.0.1', {relay.port})).recv(5).decode())")
        assert python(other_program).communicate(timeout=30)[0].strip() == ""
        with socket.create_connection(("127.0.0.1", relay.port)) as own:
            assert own.recv(5) == b"hello"
        relay.only_own_connections = False
        assert python(other_program).communicate(timeout=30)[0].strip() == "hello"
