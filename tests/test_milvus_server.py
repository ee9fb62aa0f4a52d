"""The embedded Milvus is reused while it is up and lives exactly as long as the programs using it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymilvus import MilvusClient

from engram import GRPC_OPTIONS
from milvus_server import STATE_FILE, embedded_server_uri

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_MILVUS_PORT = 19530


def python(code: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **options)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def wait_until_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not alive(pid)


def test_another_program_reuses_the_running_server(milvus_data_dir):
    uri = embedded_server_uri(milvus_data_dir)
    child = python(f"from milvus_server import embedded_server_uri; print(embedded_server_uri({milvus_data_dir!r}))")
    assert child.communicate(timeout=60)[0].strip() == uri


def test_a_second_server_on_another_folder_runs_beside_the_first_and_stops_with_its_program(tmp_path):
    child = python("import json\n"
                   f"from milvus_server import embedded_server_uri; embedded_server_uri({str(tmp_path)!r})\n"
                   f"print(json.loads(open({str(tmp_path / STATE_FILE)!r}).read())['pid'], flush=True)")
    output, errors = child.communicate(timeout=240)
    assert child.returncode == 0, errors
    assert wait_until_gone(int(output), 10)
    assert not (tmp_path / STATE_FILE).exists()


def test_the_server_dies_with_a_program_killed_without_cleanup(tmp_path):
    child = python("import sys, time\n"
                   f"from milvus_server import embedded_server_uri; embedded_server_uri({str(tmp_path)!r})\n"
                   "print('up', flush=True); time.sleep(600)")
    assert child.stdout.readline().strip() == "up", child.stderr.read()
    server_pid = json.loads((tmp_path / STATE_FILE).read_text())["pid"]
    assert alive(server_pid)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert wait_until_gone(server_pid, 10)


def test_the_server_lives_until_the_last_of_its_users_leaves(tmp_path):
    user = ("import sys, time\n"
            f"from milvus_server import embedded_server_uri; print(embedded_server_uri({str(tmp_path)!r}), flush=True)\n"
            "sys.stdin.readline()\n")
    first = python(user, stdin=subprocess.PIPE)
    uri = first.stdout.readline().strip()
    server_pid = json.loads((tmp_path / STATE_FILE).read_text())["pid"]
    second = python(user, stdin=subprocess.PIPE)
    assert second.stdout.readline().strip() == uri
    first.communicate("\n", timeout=30)
    time.sleep(2)
    assert alive(server_pid)
    assert MilvusClient(uri=uri, timeout=60, grpc_options=GRPC_OPTIONS).list_collections() == []
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
        child = python(f"from milvus_server import embedded_server_uri; print(embedded_server_uri({str(tmp_path)!r}))")
        output, errors = child.communicate(timeout=240)
    assert child.returncode == 0, errors
    assert output.strip().startswith("http://127.0.0.1:") and not output.strip().endswith(f":{taken}")
