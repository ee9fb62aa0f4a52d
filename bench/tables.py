"""The documentation's tables, made from the committed records in bench/records/.

    python bench/tables.py learning bench/records/learning-1000.json bench/records/learning-steady-3000.json
    python bench/tables.py learning bench/records/learning-1000.json bench/records/learning-landing-*.json \
        --variants landing steady
    python bench/tables.py environments bench/records/learning-cartpole.json bench/records/learning-acrobot.json
    python bench/tables.py instinct bench/records/instinct.json
    python bench/tables.py throughput bench/records/throughput.json

Each prints Markdown, the tables of README.md and docs/ as they are: a figure there is a line of
this output (as rl-baselines3-zoo's benchmark table is made from its logs).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

END_COLUMNS = ("at_rest", "crashed", "flew_off", "ended", "timed_out", "died")


def load(paths: list) -> list:
    return [json.loads(Path(path).read_text()) for path in paths]


def interval(value, half_width, digits: int = 1) -> str:
    if half_width is None:
        return f"{value:+.{digits}f}"
    return f"{value:+.{digits}f} ± {half_width:.{digits}f}"


def ends(shares: dict) -> str:
    """End causes as percentages, the common ones first."""
    return ", ".join(f"{name.replace('_', ' ')} {100 * shares[name]:.0f}%" for name in END_COLUMNS
                     if shares.get(name, 0) >= 0.005)


def mean_shares(runs: list, key: str) -> dict:
    causes = {cause for run in runs for cause in run[key]}
    return {cause: sum(run[key].get(cause, 0.0) for run in runs) / len(runs) for cause in causes}


def first_reaching(runs: list, target: str) -> str:
    values = [run["first_reaching"].get(target) for run in runs]
    return " / ".join("never" if value is None else str(value) for value in values)


def label(record: dict, variant: str) -> str:
    """A variant's name with the settings its record changed in every variant (``--set``), but where
    its searches ran (the figures do not depend on it)."""
    changes = [f"{name}={value}" for name, value in record.get("changes", {}).items() if name != "search_backend"]
    return f"`{variant}`" + (f" + {', '.join(changes)}" if changes else "")


def figures(record: dict, entry: dict) -> str:
    """A variant's cells shared by the learning tables: trials × seeds, last-100 training, greedy
    evaluation, solved."""
    return (f"{record['trials']} × {len(entry['seeds'])} | "
            f"{interval(entry['last100_mean'], entry['last100_mean_ci95'])} | "
            f"{interval(entry['eval_mean'], entry['eval_mean_ci95'])} | {100 * entry['eval_solved_rate']:.0f}%")


def learning(records: list, variants: Optional[list] = None) -> str:
    """One row per variant of each record (or per one of ``variants``): training, greedy evaluation,
    how trials ended, when +100/+200."""
    lines = ["| variant | trials × seeds | last-100 training | greedy evaluation | solved (evaluation) | "
             "evaluation ended | first trial at rolling +100 / +200 (per seed) |",
             "|---|---|---|---|---|---|---|"]
    for record in records:
        for variant, entry in record["variants"].items():
            if variants and variant not in variants:
                continue
            runs = entry["seeds"]
            reach = " · ".join(first_reaching(runs, target) for target in runs[0]["first_reaching"])
            lines.append(f"| {label(record, variant)} | {figures(record, entry)} | "
                         f"{ends(mean_shares(runs, 'eval_ends'))} | {reach} |")
    return "\n".join(lines)


def per_seed(records: list) -> str:
    """Each seed's figures and its curve in blocks of 100 trials."""
    lines = ["| variant | seed | last-100 | evaluation (std) | solved | blocks of 100 trials |", "|---|---|---|---|---|---|"]
    for record in records:
        for variant, entry in record["variants"].items():
            for run in entry["seeds"]:
                lines.append(f"| `{variant}` | {run['seed']} | {run['last100_mean']:+.1f} | {run['eval_mean']:+.1f} "
                             f"({run['eval_std']:.0f}) | {100 * run['eval_solved_rate']:.0f}% | "
                             f"{' '.join(f'{block:+.0f}' for block in run['blocks'])} |")
    return "\n".join(lines)


def environments(records: list) -> str:
    lines = ["| environment | variant | trials × seeds | last-100 training | greedy evaluation | solved | "
             "first trial at the threshold (per seed) |", "|---|---|---|---|---|---|---|"]
    for record in records:
        for variant, entry in record["variants"].items():
            runs = entry["seeds"]
            target = next(iter(runs[0]["first_reaching"]), None)
            lines.append(f"| {record['env_id']} | {label(record, variant)} | {figures(record, entry)} | "
                         f"{first_reaching(runs, target) if target else '–'} |")
    return "\n".join(lines)


def instinct(records: list) -> str:
    labels = {"newcomers_empty_memory": "newcomers on an empty memory",
              "newcomers_trained_memory": "newcomers on the trained memory",
              "trained_last": "the trained population, its last trials",
              "similar_empty_memory": "a similar animal on an empty memory",
              "similar_trained_memory": "a similar animal on the trained memory"}
    lines = []
    for record in records:
        lines += [f"`{record['variant']}`, {len(record['seeds'])} seeds × {record['trials']} training trials, "
                  f"{record['newcomers']} newcomers × {record['first_trials']} trials, similar animal {record['similar']}:",
                  "", "| group | mean reward | solved | how its trials ended |", "|---|---|---|---|"]
        for key, group_name in labels.items():
            group = record["groups"][key]
            solved = f"{100 * group['solved_rate']:.0f}%" + (f" ± {100 * group['solved_rate_ci95']:.0f}"
                                                             if group["solved_rate_ci95"] is not None else "")
            lines.append(f"| {group_name} | {interval(group['mean'], group['mean_ci95'])} | {solved} | "
                         f"{ends(group['ends']) if 'ends' in group else '–'} |")
        target = record["per_seed"][0]["generations"]["target"]
        lines += ["", f"| generation | first trial at rolling {target:+g} (per seed) | mean of its first 100 trials |",
                  "|---|---|---|"]
        for generation, entry in record["generations"].items():
            reach = " / ".join("never" if value is None else str(value) for value in entry["first_reaching"])
            lines.append(f"| {generation} | {reach} | {entry['first100_mean']:+.1f} |")
    return "\n".join(lines)


def throughput(records: list) -> str:
    lines = []
    for record in records:
        lines.append(f"LunarLander alone: {record['env_only_steps_per_s']:,.0f} steps/s.")
        if "backends" in record:
            milvus, replica = record["backends"]["milvus"], record["backends"]["replica"]
            lines += ["", "| population | milvus steps/s | replica steps/s | replica ÷ milvus |", "|---|---|---|---|"]
            for population, rate in milvus["train_steps_per_s"].items():
                fast = replica["train_steps_per_s"][population]
                lines.append(f"| {population} | {rate:,.0f} | {fast:,.0f} | {fast / rate:.1f}× |")
            lines += ["", "| engrams | batch of 32, p50: milvus | replica | one lander, p50: milvus | replica |",
                      "|---|---|---|---|---|"]
            for size, p50 in milvus["search_ms_p50"].items():
                other = replica["search_ms_p50"][size]
                lines.append(f"| {int(size):,} | {p50['batch32']:.1f} ms | {other['batch32']:.2f} ms | "
                             f"{p50['single']:.1f} ms | {other['single']:.3f} ms |")
            lines.append(f"\nThe replica loaded {replica['replica_engrams']:,} engrams in {replica['replica_load_s']:.1f} s "
                         f"(the process then held {replica['replica_rss_mb']:,.0f} MiB).")
        if "species" in record:
            species = record["species"]
            lines += ["", "| population | workers | steps/s | ÷ one worker |", "|---|---|---|---|"]
            for population, rates in species["species_steps_per_s"].items():
                for workers, rate in rates.items():
                    lines.append(f"| {population} | {workers} | {rate:,.0f} | "
                                 f"{species['ratio_to_one_worker'][population][workers]:.2f}× |")
    return "\n".join(lines)


def main(argv=None) -> int:
    tables = {"learning": learning, "per_seed": per_seed, "environments": environments, "instinct": instinct,
              "throughput": throughput}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(tables))
    parser.add_argument("records", nargs="+", help="JSON records (bench/records/...)")
    parser.add_argument("--variants", nargs="+", help="learning: only these variants' rows")
    arguments = parser.parse_args(argv)
    try:
        if arguments.table == "learning":
            print(learning(load(arguments.records), arguments.variants))
        else:
            print(tables[arguments.table](load(arguments.records)))
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {type(error).__name__}: {error} (a record of another benchmark?)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
