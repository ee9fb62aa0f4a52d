"""What the embedded server's forwarded port costs a search, measured in one run (Linux).

    python bench/relay.py --json bench/results/relay.json   # about a minute

It starts its own embedded server in a temporary folder, fills a collection with 10,000 random
engrams (IVF_FLAT, L2, nprobe 16, as the store does), and times single searches of k=300 that ask
for the action and outcome, alternately through the forwarded port on the host (the keeper's
relay) and directly on the server's loopback inside its namespace (a child process that joins the
namespace with `nsenter`). Latency percentiles in ms for each, and their difference.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from pymilvus import DataType, MilvusClient  # noqa: E402

from resonant_vectors.experiments.lab import write_record  # noqa: E402
from resonant_vectors.server.isolation import NAMESPACE_PROXY_PORT  # noqa: E402
from resonant_vectors.server.supervision import STATE_FILE, embedded_server_token, embedded_server_uri, release_embedded_server  # noqa: E402

ENGRAMS = 10_000      # rows in the searched collection
K = 300               # neighbours per search (MIN_RESULTS)
SEARCHES = 500        # timed single searches per path and round
ROUNDS = 2            # forwarded, direct, forwarded, direct: load drifts alike for both
COLLECTION = "relay_bench"


def fill(client: MilvusClient) -> None:
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=9)
    schema.add_field("action", DataType.INT16)
    schema.add_field("outcome", DataType.FLOAT)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 1024})
    client.create_collection(COLLECTION, schema=schema, index_params=index)
    vectors = np.random.default_rng(0).uniform(-1, 1, (ENGRAMS, 9)).astype(np.float32)
    client.insert(COLLECTION, [{"id": i, "vector": v.tolist(), "action": i % 4, "outcome": 0.0}
                               for i, v in enumerate(vectors)])
    client.flush(COLLECTION)
    client.load_collection(COLLECTION)


def search_times_ms(uri: str, token: str) -> list:
    client = MilvusClient(uri=uri, token=token, timeout=60)
    queries = np.random.default_rng(1).uniform(-1, 1, (SEARCHES, 9)).astype(np.float32).tolist()
    times = []
    for query in [queries[0]] * 20 + queries:  # the first 20 warm the connection up
        started = time.perf_counter()
        client.search(COLLECTION, [query], limit=K, output_fields=["action", "outcome"],
                      search_params={"metric_type": "L2", "params": {"nprobe": 16}})
        times.append((time.perf_counter() - started) * 1000)
    return times[20:]


def direct_times_ms(server_pid: int, token: str) -> list:
    """Searches from a child inside the server's namespace, on its own loopback."""
    child = subprocess.run(["nsenter", "-t", str(server_pid), "-U", "-n", "--preserve-credentials",
                            sys.executable, __file__, "--direct", token], capture_output=True, text=True, check=True)
    return json.loads(child.stdout)


def percentiles(times: list) -> dict:
    return {"p50": round(float(np.percentile(times, 50)), 3), "p95": round(float(np.percentile(times, 95)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--direct", metavar="TOKEN", help=argparse.SUPPRESS)  # the child's side
    arguments = parser.parse_args()
    if arguments.direct:
        print(json.dumps(search_times_ms(f"http://127.0.0.1:{NAMESPACE_PROXY_PORT}", arguments.direct)))
        return
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as folder:
        uri, token = embedded_server_uri(folder, idle_grace_s=0), embedded_server_token(folder)
        server_pid = json.loads((Path(folder) / STATE_FILE).read_text())["pid"]
        fill(MilvusClient(uri=uri, token=token, timeout=60))
        forwarded, direct = [], []
        for _ in range(ROUNDS):
            forwarded += search_times_ms(uri, token)
            direct += direct_times_ms(server_pid, token)
        release_embedded_server(folder)
    figures = {"engrams": ENGRAMS, "k": K, "searches": SEARCHES * ROUNDS,
               "forwarded_ms": percentiles(forwarded), "direct_ms": percentiles(direct),
               "relay_cost_ms_p50": round(float(np.percentile(forwarded, 50) - np.percentile(direct, 50)), 3)}
    print(json.dumps(figures, indent=1))
    if arguments.json:
        write_record(figures, Path(arguments.json))  # with the command and the code that measured them


if __name__ == "__main__":
    main()
