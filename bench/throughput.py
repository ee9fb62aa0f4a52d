"""Training throughput and search latency of both search backends, measured in one run.

    python bench/throughput.py --quick --json bench/results/throughput.json   # about 6 minutes
    python bench/throughput.py --json bench/results/throughput-full.json      # up to 1,000,000 engrams
    python bench/throughput.py --quick --sizes 10000 100000 1000000           # quick training, searches to 1M

It starts its own embedded server in a temporary folder (your .milvus/ memory is not touched) and
measures, for SEARCH_BACKEND "milvus" (a Milvus request per search, the seed's path) and "replica"
(an in-process FAISS copy of the collection, Milvus the store of record):
- env_only_steps_per_s: LunarLander stepped with random actions (the physical limit here);
- train_steps_per_s: a Trainer per population size, engram inserts into Milvus included;
- server_cpu_s_per_1000_engrams / trainer_cpu_s_per_1000_engrams: the CPU seconds (from /proc) the
  embedded server (Milvus and its keeper) and the trainer's process spent per 1,000 engrams stored
  in that training; server_idle_cpu_share: the cores the server keeps busy when nobody asks it
  (each measured once the server is quiet: what earlier measurements left it to do is not counted);
- search_ms_p50 / search_ms_p95: per collection size, one batched decision of 32 landers
  ("batch32") and one lander ("single"), k = MIN_RESULTS, on one collection filled with synthetic
  engrams, sealed, indexed and served by Milvus (the steady state of a long run), and searched
  by both backends;
- limit_ratio: the best train_steps_per_s / env_only_steps_per_s;
- replica_load_s and replica_rss_mb: the seconds a replica takes to load the largest collection
  from Milvus, and the process's resident memory once it holds it;
- the training rate of presets (--presets; by default "landing", which searches once per action);
- default_seconds_per_trial: ``python main.py`` as settings.py sets it (the seed's rule on Milvus,
  one lander), over its first trials;
- replica_vector_env_steps_per_s: populations 8 and 32 with their environments stepped in this
  process (SyncVectorEnv) and in a process each (AsyncVectorEnv);
- species_steps_per_s: a species on the replica backend (``species.train_species``: worker
  processes sharing one collection) at populations 8 and 32, with 1, 2 and the machine's core
  count of workers, each flying the same number of trials; ``ratio_to_one_worker`` divides each by
  the one-worker figure of the same population, measured in this run;
  ``independent_pair_steps_per_s``: two one-worker trainings of separate instances run at once, each
  with half the population and half the trials (the fair ideal on cores shared with one server),
  and ``two_workers_to_independent_pair`` the two workers' rate divided by their sum.
Figures drift with the machine's load: compare ratios from one run, not absolute times.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from resonant_vectors.config import SEARCH_BACKENDS, Settings  # noqa: E402
from resonant_vectors.environments.profiles import make_env  # noqa: E402
from resonant_vectors.experiments import lab as experiments  # noqa: E402
from resonant_vectors.loop.trainer import Trainer  # noqa: E402
from resonant_vectors.memory.seam import Engram  # noqa: E402
from resonant_vectors.memory.store import EngramStore  # noqa: E402
from resonant_vectors.server.supervision import STATE_FILE  # noqa: E402
from resonant_vectors.species.training import train_species  # noqa: E402

POPULATIONS = (1, 8, 32, 64)
CPU_FIGURES = ("server_cpu_s_per_1000_engrams", "trainer_cpu_s_per_1000_engrams")
SPECIES_POPULATIONS = (8, 32)
LANDERS_PER_DECISION = 32
FILL_CHUNK = 5000              # engrams per insert while filling a collection
SETTLE_TIMEOUT_S = 300
SETTLE_TOLERANCE = 0.2         # latency has settled when two probes 5 s apart differ by less than this
QUIET_SHARE = 0.2              # the server is quiet when it keeps less than this share of a core busy...
QUIET_WINDOW_S = 3.0           # ...over this long
QUIET_TIMEOUT_S = 60.0


def env_only_steps_per_s(settings: Settings, steps: int) -> float:
    env = make_env(settings)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - started)


def cpu_s(pid: Optional[int] = None) -> float:
    """CPU seconds (user and system, all threads) the process ``pid`` (this one) has used, from /proc."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def server_cpu_s(data_dir: str) -> float:
    """CPU seconds the embedded server on ``data_dir`` has used: Milvus and its keeper (which relays
    an isolated server's traffic)."""
    state = json.loads((Path(data_dir) / STATE_FILE).read_text())
    return cpu_s(state["pid"]) + cpu_s(state["keeper_pid"])


def wait_for_quiet_server(data_dir: str) -> None:
    """Wait (at most ``QUIET_TIMEOUT_S``) until the server has done what earlier measurements left it:
    a server just started, or one compacting and collecting dropped collections, kept most of a core
    busy for a minute, and that work was counted against whichever measurement came next."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while time.monotonic() < deadline:
        before = server_cpu_s(data_dir)
        time.sleep(QUIET_WINDOW_S)
        if (server_cpu_s(data_dir) - before) / QUIET_WINDOW_S < QUIET_SHARE:
            return


def server_idle_cpu_share(settings: Settings, seconds: float) -> float:
    """The cores the embedded server keeps busy while nothing asks it anything (its own timers)."""
    trainer = Trainer("bench_idle", settings=settings, quiet=True)
    wait_for_quiet_server(settings.milvus_data_dir)
    before = server_cpu_s(settings.milvus_data_dir)
    time.sleep(seconds)
    share = (server_cpu_s(settings.milvus_data_dir) - before) / seconds
    trainer.close()
    trainer.store.drop()
    return share


def train_figures(settings: Settings, label: str, seconds: float) -> dict:
    """A Trainer's steps per second, and the CPU seconds the server and this process (the trainer,
    its environments included) spent per 1,000 engrams it stored (one per decision)."""
    trainer = Trainer(f"bench_train_{label}", settings=settings, quiet=True)
    wait_for_quiet_server(settings.milvus_data_dir)
    server_before, own_before = server_cpu_s(settings.milvus_data_dir), cpu_s()
    started = time.monotonic()
    trainer.train(1_000_000, callback=lambda record: time.monotonic() - started < seconds)
    rate = trainer.steps_taken / (time.monotonic() - started)
    thousands = trainer.steps_taken / 1000
    figures = {"steps_per_s": round(rate, 1),
               "server_cpu_s_per_1000_engrams": round((server_cpu_s(settings.milvus_data_dir) - server_before)
                                                      / thousands, 4),
               "trainer_cpu_s_per_1000_engrams": round((cpu_s() - own_before) / thousands, 4)}
    trainer.close()
    trainer.store.drop()
    return figures


def default_seconds_per_trial(settings: Settings, trials: int) -> float:
    """What ``python main.py`` costs: settings.py as it is (the seed's rule, every decision a Milvus
    search, one lander), seconds per trial over its first ``trials`` trials."""
    trainer = Trainer("bench_default", settings=settings, quiet=True)
    started = time.monotonic()
    trainer.train(trials)
    seconds = time.monotonic() - started
    trainer.close()
    trainer.store.drop()
    return seconds / trials


def species_steps_per_s(settings: Settings, workers: int, trials: int, runs_dir: Path, label: str = "") -> float:
    """A species' training rate: its trials' steps over the time its workers flew them."""
    label = label or f"bench_species_{settings.population_size}_{workers}"
    species = settings.replace(instance_name=label, workers=workers, trials=trials, search_backend="replica")
    return train_species(species, runs_dir, quiet=True)["steps_per_s"]


def _one_of_a_pair(task: tuple) -> float:
    """One of ``independent_pair_steps_per_s``'s trainings, in a process of its own."""
    settings, label, trials, runs_dir = task
    return species_steps_per_s(Settings.from_dict(settings), 1, trials, Path(runs_dir), label)


def independent_pair_steps_per_s(settings: Settings, trials: int, runs_dir: Path) -> float:
    """Two one-worker trainings of separate instances run at once, each with half the population and
    half the trials: the fair ideal of a species of two workers on cores shared with one server. The
    sum of their rates, each over its own flight (a pair that does not overlap whole reads a little
    high)."""
    half = settings.replace(population_size=settings.population_size // 2).as_dict()
    tasks = [(half, f"bench_pair_{settings.population_size}_{index}", trials // 2, str(runs_dir)) for index in (0, 1)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(_one_of_a_pair, tasks))


def measure_species(settings: Settings, trials: int) -> dict:
    """Workers 1, 2 and the core count at each population of ``SPECIES_POPULATIONS``, and two
    independent trainings at once beside two workers."""
    counts = sorted({1, 2, os.cpu_count() or 1})
    rates, ratios, pairs, to_pair = {}, {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="rv-bench-runs-") as runs_dir:
        for population in SPECIES_POPULATIONS:
            rates[str(population)], ratios[str(population)] = {}, {}
            for workers in counts:
                print(f"species, population {population}, {workers} worker(s) ...", flush=True)
                rate = species_steps_per_s(settings.replace(population_size=population), workers, trials,
                                           Path(runs_dir))
                rates[str(population)][str(workers)] = round(rate, 1)
                ratios[str(population)][str(workers)] = round(rate / rates[str(population)]["1"], 3)
            print(f"two independent trainings at once, population {population // 2} each ...", flush=True)
            pairs[str(population)] = round(independent_pair_steps_per_s(
                settings.replace(population_size=population), trials, Path(runs_dir)), 1)
            to_pair[str(population)] = round(rates[str(population)]["2"] / pairs[str(population)], 3)
    return {"trials": trials, "species_steps_per_s": rates, "ratio_to_one_worker": ratios,
            "independent_pair_steps_per_s": pairs, "two_workers_to_independent_pair": to_pair}


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
    while store.collection.pending_index_rows() > 0:
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


def percentiles(store: EngramStore, repeats: int, rng: np.random.Generator) -> tuple:
    p50, p95 = {}, {}
    for label, nq in (("batch32", LANDERS_PER_DECISION), ("single", 1)):
        times = search_latencies_ms(store, nq, repeats, rng)
        p50[label], p95[label] = round(float(np.percentile(times, 50)), 3), round(float(np.percentile(times, 95)), 3)
    return p50, p95


def resident_mb() -> float:
    """This process's resident memory (Linux's VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_search(settings: Settings, sizes: list, repeats: int) -> dict:
    """Both backends' search latencies on one collection at each size; the replica's load time."""
    store = EngramStore("bench_search", reset=True, settings=settings, search_backend="milvus")
    rng = np.random.default_rng(1)
    figures = {backend: {"search_ms_p50": {}, "search_ms_p95": {}} for backend in SEARCH_BACKENDS}
    for size in sizes:
        fill(store, size, rng)
        settled_in = settle(store, rng)
        figures["milvus"]["search_ms_p50"][str(size)], figures["milvus"]["search_ms_p95"][str(size)] = \
            percentiles(store, repeats, rng)
        started = time.perf_counter()
        replica = EngramStore("bench_search", settings=settings, search_backend="replica")
        load_s = time.perf_counter() - started
        figures["replica"]["search_ms_p50"][str(size)], figures["replica"]["search_ms_p95"][str(size)] = \
            percentiles(replica, repeats, rng)
        figures["replica"]["replica_load_s"] = round(load_s, 2)
        figures["replica"]["replica_rss_mb"] = round(resident_mb(), 1)
        figures["replica"]["replica_engrams"] = size
        del replica
        print(f"  {size:>9,} engrams: batch32 p50 milvus {figures['milvus']['search_ms_p50'][str(size)]['batch32']:7.2f} ms, "
              f"replica {figures['replica']['search_ms_p50'][str(size)]['batch32']:6.2f} ms; replica loaded in "
              f"{load_s:.1f} s (settled in {settled_in:.0f} s)", flush=True)
    store.drop()
    return figures


def run(quick: bool, presets: list, sizes: Optional[list] = None, species_only: bool = False) -> dict:
    # Its own server, stopped as soon as the bench lets go of it (no idle grace), in a folder removed after.
    with tempfile.TemporaryDirectory(prefix="rv-bench-", ignore_cleanup_errors=True) as data_dir:
        settings = Settings.from_module(milvus_data_dir=data_dir, milvus_uri="", display=False, seed=0,
                                        milvus_idle_grace=0.0)
        print("LunarLander alone ...", flush=True)
        env_rate = env_only_steps_per_s(settings, 20_000 if quick else 100_000)
        species = measure_species(settings, 240 if quick else 1200)
        if species_only:
            return {"quick": quick, "env_only_steps_per_s": round(env_rate, 1), "species": species}
        seconds = 20 if quick else 120
        backends = {}
        print("the server, idle ...", flush=True)
        idle_share = round(server_idle_cpu_share(settings, 10 if quick else 30), 3)
        for backend in SEARCH_BACKENDS:
            figures = {}
            for population in POPULATIONS:
                print(f"training, {backend}, population {population} ...", flush=True)
                figures[str(population)] = train_figures(
                    settings.replace(search_backend=backend, population_size=population),
                    f"{backend}_{population}", seconds)
            train = {population: entry["steps_per_s"] for population, entry in figures.items()}
            backends[backend] = {"train_steps_per_s": train, "limit_ratio": round(max(train.values()) / env_rate, 4),
                                 **{name: {population: entry[name] for population, entry in figures.items()}
                                    for name in CPU_FIGURES}}
        vector_envs = {}
        for population in SPECIES_POPULATIONS:  # whether a process per environment pays (AsyncVectorEnv)
            print(f"training, replica, population {population}, async environments ...", flush=True)
            vector_envs[str(population)] = {"sync": backends["replica"]["train_steps_per_s"][str(population)],
                                            "async": round(train_figures(settings.replace(
                                                search_backend="replica", population_size=population,
                                                vector_env="async"), f"async_{population}", seconds)["steps_per_s"], 1)}
        print("the default training (python main.py) ...", flush=True)
        default_trial_s = round(default_seconds_per_trial(settings, 50 if quick else 200), 3)
        preset_rates = {}
        for preset in presets:
            print(f"training, preset {preset!r}, population 8 ...", flush=True)
            preset_settings = Settings.from_module(preset=preset, milvus_data_dir=data_dir, milvus_uri="",
                                                   display=False, seed=0, population_size=8, milvus_idle_grace=0.0)
            preset_rates[preset] = round(train_figures(preset_settings, preset, seconds)["steps_per_s"], 1)
        print("search latency ...", flush=True)
        sizes = sizes or ([10_000, 100_000] if quick else [10_000, 100_000, 1_000_000])
        for backend, figures in measure_search(settings, sizes, repeats=40 if quick else 200).items():
            backends[backend].update(figures)
    return {"quick": quick, "env_only_steps_per_s": round(env_rate, 1), "server_idle_cpu_share": idle_share,
            "backends": backends,
            "presets_population_8_steps_per_s": preset_rates, "species": species,
            "replica_vector_env_steps_per_s": vector_envs, "default_seconds_per_trial": default_trial_s,
            "settings": {"min_results": settings.min_results, "search_nprobe": settings.search_nprobe,
                         "index_nlist": settings.index_nlist, "seal_every": settings.seal_every}}


def print_species(species: dict) -> None:
    print(f"species on the replica, {species['trials']} trials each: steps/s (÷ one worker)")
    for population, rates in species["species_steps_per_s"].items():
        cells = ", ".join(f"{workers} worker(s) {rate:,.0f} ({species['ratio_to_one_worker'][population][workers]:.2f}x)"
                          for workers, rate in rates.items())
        print(f"  population {population}: {cells}")
        if "independent_pair_steps_per_s" in species:
            print(f"    two independent trainings at once: {species['independent_pair_steps_per_s'][population]:,.0f}; "
                  f"two workers ÷ that: {species['two_workers_to_independent_pair'][population]:.2f}x")


def print_table(result: dict) -> None:
    if "backends" not in result:
        print_species(result["species"])
        return
    env_rate = result["env_only_steps_per_s"]
    milvus, replica = result["backends"]["milvus"], result["backends"]["replica"]
    print(f"\nLunarLander alone: {env_rate:,.0f} steps/s")
    print("population  milvus steps/s  replica steps/s  replica ÷ milvus  replica ÷ env alone")
    for population, rate in milvus["train_steps_per_s"].items():
        fast = replica["train_steps_per_s"][population]
        print(f"{population:>10}  {rate:>14,.0f}  {fast:>15,.0f}  {fast / rate:>15.1f}x  {fast / env_rate:>19.3f}")
    print(f"CPU seconds per 1,000 engrams stored (the server idle keeps {result['server_idle_cpu_share']:.2f} "
          f"of a core busy):")
    print("population  milvus: server  trainer   replica: server  trainer")
    for population in milvus["train_steps_per_s"]:
        print(f"{population:>10}  {milvus[CPU_FIGURES[0]][population]:>14.3f}  {milvus[CPU_FIGURES[1]][population]:>7.3f}"
              f"   {replica[CPU_FIGURES[0]][population]:>15.3f}  {replica[CPU_FIGURES[1]][population]:>7.3f}")
    print("engrams     batch32 p50/p95 ms: milvus | replica     single p50/p95 ms: milvus | replica")
    for size, p50 in milvus["search_ms_p50"].items():
        p95, r50, r95 = milvus["search_ms_p95"][size], replica["search_ms_p50"][size], replica["search_ms_p95"][size]
        print(f"{int(size):>9,}  {p50['batch32']:>7.2f} /{p95['batch32']:>7.2f} | {r50['batch32']:>6.2f} /"
              f"{r95['batch32']:>6.2f}     {p50['single']:>6.2f} /{p95['single']:>6.2f} | {r50['single']:>5.3f} /"
              f"{r95['single']:>5.3f}")
    print(f"limit_ratio (best training ÷ env alone): milvus {milvus['limit_ratio']:.4f}, "
          f"replica {replica['limit_ratio']:.4f}")
    print(f"replica: loaded {replica['replica_engrams']:,} engrams in {replica['replica_load_s']:.1f} s; "
          f"resident memory then {replica['replica_rss_mb']:,.0f} MiB")
    for preset, rate in result["presets_population_8_steps_per_s"].items():
        print(f"preset {preset!r}, population 8: {rate:,.0f} steps/s")
    print(f"the default training (python main.py): {result['default_seconds_per_trial']:.2f} s per trial")
    for population, rates in result["replica_vector_env_steps_per_s"].items():
        print(f"replica, population {population}: SyncVectorEnv {rates['sync']:,.0f}, AsyncVectorEnv "
              f"{rates['async']:,.0f} steps/s ({rates['async'] / rates['sync']:.2f}x)")
    print_species(result["species"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 s runs and 10k/100k engrams (about 6 min)")
    parser.add_argument("--presets", nargs="*", default=["landing"],
                        help="presets whose training rate to measure too (default: landing)")
    parser.add_argument("--sizes", nargs="+", type=int,
                        help="collection sizes for the search latencies and the replica's load "
                             "(default: 10000 100000, and 1000000 without --quick)")
    parser.add_argument("--species-only", action="store_true",
                        help="measure only LunarLander alone and the species of worker processes")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    result = run(arguments.quick, arguments.presets, arguments.sizes, arguments.species_only)
    print_table(result)
    if arguments.json:
        experiments.write_record(result, Path(arguments.json))
        print(f"wrote {arguments.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
