"""Training throughput and search latency on the embedded Milvus, measured in one run.

    python bench/throughput.py --quick --json bench/results/throughput.json   # about 3 minutes
    python bench/throughput.py --json bench/results/throughput-full.json      # up to 1,000,000 engrams

It starts its own embedded server in a temporary folder (your .milvus/ memory is not touched) and
measures:
- env_only_steps_per_s: LunarLander stepped with random actions (the physical limit here);
- train_steps_per_s: a Trainer per population size, engram inserts included;
- search_ms_p50 / search_ms_p95: per collection size, one batched decision of 32 landers
  ("batch32") and one lander ("single"), k = MIN_RESULTS, once a collection filled with synthetic
  engrams is sealed, indexed and served (the steady state of a long run);
- limit_ratio: the best train_steps_per_s / env_only_steps_per_s.
Figures drift with the machine's load: compare ratios from one run, not absolute times.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from config import Settings  # noqa: E402
from engram import Engram, EngramStore  # noqa: E402
from gym.lander_environment import make_lander  # noqa: E402
from Trainer import Trainer  # noqa: E402

REFERENCE_STEPS_PER_S = 33.0   # BASELINES.md: the reference implementation here (another run)
LANDERS_PER_DECISION = 32
FILL_CHUNK = 2000              # engrams per insert while filling a collection
SETTLE_TIMEOUT_S = 300
SETTLE_TOLERANCE = 0.2         # latency has settled when two probes 5 s apart differ by less than this


def env_only_steps_per_s(settings: Settings, steps: int) -> float:
    env = make_lander(settings)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - started)


def train_steps_per_s(settings: Settings, population: int, seconds: float) -> float:
    trainer = Trainer(f"bench_train_{population}", settings=settings.replace(population_size=population),
                      quiet=True)
    started = time.monotonic()
    trainer.train(1_000_000, callback=lambda record: time.monotonic() - started < seconds)
    rate = trainer.steps_taken / (time.monotonic() - started)
    trainer.close()
    trainer.store.drop()
    return rate


def fill(store: EngramStore, target: int, rng: np.random.Generator) -> None:
    """Insert synthetic engrams (uniform in [-1, 1]^9) until the store holds ``target``."""
    count = store.get_count()
    while count < target:
        vectors = rng.uniform(-1, 1, (min(FILL_CHUNK, target - count), store.dimension)).astype(np.float32)
        count += store.insert_many(Engram(tuple(v), i % 4, 0.0) for i, v in enumerate(vectors.tolist()))


def settle(store: EngramStore, rng: np.random.Generator) -> float:
    """Seal everything, then wait until Milvus serves it indexed; return the seconds waited.

    Filling inserts ~40x faster than training does, so seals and index loading lag behind; the
    figures wanted are the steady state a long training run sees. Milvus reports an index as
    built before the query node serves it, so "settled" is read off the latency itself.
    """
    started = time.monotonic()
    store.flush()
    while store.client.describe_index(store.name, "vector")["pending_index_rows"] > 0:
        time.sleep(1)
    previous = np.median(search_latencies_ms(store, LANDERS_PER_DECISION, 5, rng))
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        time.sleep(5)
        latest = np.median(search_latencies_ms(store, LANDERS_PER_DECISION, 5, rng))
        if abs(latest - previous) < SETTLE_TOLERANCE * previous:
            break
        previous = latest
    return time.monotonic() - started


def search_latencies_ms(store: EngramStore, nq: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    times = []
    for _ in range(repeats):
        queries = rng.uniform(-1, 1, (nq, store.dimension)).astype(np.float32)
        started = time.perf_counter()
        store.nearest_many(queries, store.settings.min_results)
        times.append(1000 * (time.perf_counter() - started))
    return np.array(times)


def measure_search(settings: Settings, sizes: list, repeats: int) -> tuple:
    store = EngramStore("bench_search", reset=True, settings=settings)
    rng = np.random.default_rng(1)
    p50, p95 = {}, {}
    for size in sizes:
        fill(store, size, rng)
        settled_in = settle(store, rng)
        p50[str(size)], p95[str(size)] = {}, {}
        for label, nq in (("batch32", LANDERS_PER_DECISION), ("single", 1)):
            times = search_latencies_ms(store, nq, repeats, rng)
            p50[str(size)][label] = round(float(np.percentile(times, 50)), 2)
            p95[str(size)][label] = round(float(np.percentile(times, 95)), 2)
        print(f"  {size:>9,} engrams: batch32 p50 {p50[str(size)]['batch32']:7.1f} ms, "
              f"single p50 {p50[str(size)]['single']:6.1f} ms (settled in {settled_in:.0f} s)", flush=True)
    store.drop()
    return p50, p95


def run(quick: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="rv-bench-") as data_dir:
        settings = Settings.from_module(milvus_data_dir=data_dir, milvus_uri="", display=False, seed=0)
        print("LunarLander alone ...", flush=True)
        env_rate = env_only_steps_per_s(settings, 20_000 if quick else 100_000)
        train = {}
        for population in (1, 8, 32, 64):
            print(f"training, population {population} ...", flush=True)
            train[str(population)] = round(train_steps_per_s(settings, population, 20 if quick else 120), 1)
        print("search latency ...", flush=True)
        sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
        p50, p95 = measure_search(settings, sizes, repeats=40 if quick else 200)
    return {"quick": quick, "env_only_steps_per_s": round(env_rate, 1), "train_steps_per_s": train,
            "search_ms_p50": p50, "search_ms_p95": p95,
            "limit_ratio": round(max(train.values()) / env_rate, 4),
            "settings": {"min_results": settings.min_results, "search_nprobe": settings.search_nprobe,
                         "index_nlist": settings.index_nlist, "seal_every": settings.seal_every}}


def print_table(result: dict) -> None:
    env_rate = result["env_only_steps_per_s"]
    print(f"\nLunarLander alone: {env_rate:,.0f} steps/s")
    print("population  train steps/s  ÷ env alone  ÷ reference 33 steps/s (BASELINES.md, another run)")
    for population, rate in result["train_steps_per_s"].items():
        print(f"{population:>10}  {rate:>13,.0f}  {rate / env_rate:>11.3f}  {rate / REFERENCE_STEPS_PER_S:>8.1f}x")
    print("engrams     batch32 p50/p95 ms   single p50/p95 ms")
    for size, p50 in result["search_ms_p50"].items():
        p95 = result["search_ms_p95"][size]
        print(f"{int(size):>9,}  {p50['batch32']:>8.1f} /{p95['batch32']:>7.1f}   {p50['single']:>7.1f} /{p95['single']:>6.1f}")
    print(f"limit_ratio (best training ÷ env alone): {result['limit_ratio']:.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs and 10k/100k engrams (about 3 min)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    result = run(arguments.quick)
    print_table(result)
    if arguments.json:
        Path(arguments.json).parent.mkdir(parents=True, exist_ok=True)
        Path(arguments.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {arguments.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
