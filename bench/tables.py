"""The documentation's tables, made from the committed records in bench/records/.

    python bench/tables.py learning bench/records/learning-1000.json bench/records/learning-steady-3000.json
    python bench/tables.py learning bench/records/learning-1000.json bench/records/learning-landing-*.json \
        --variants landing steady
    python bench/tables.py environments bench/records/learning-cartpole.json bench/records/learning-acrobot.json
    python bench/tables.py instinct bench/records/instinct.json
    python bench/tables.py throughput bench/records/throughput.json
    python bench/tables.py species bench/records/throughput.json
    python bench/tables.py results bench/records/learning-1000.json bench/records/learning-steady-3000.json \
        bench/records/reference.json                     # the README's tables
    python bench/tables.py classic bench/records/learning-cartpole.json bench/records/learning-acrobot.json \
        bench/records/learning-mountaincar.json bench/records/reference.json
    python bench/tables.py instinct_summary bench/records/instinct.json
    python bench/tables.py doses bench/records/doses.json
    python bench/tables.py kinds bench/records/kinds.json
    python bench/tables.py generations bench/records/generations.json
    python bench/tables.py check README.md docs/*.md      # which tables of these pages differ from their records
    python bench/tables.py update README.md docs/*.md     # print them again from their records

Each prints Markdown, the tables of README.md and docs/ as they are: a figure there is a line of
this output (as rl-baselines3-zoo's benchmark table is made from its logs). In a page, each table
stands between ``<!-- table: ARGUMENTS -->`` (this script's arguments that print it, records
relative to the project's folder, patterns allowed) and ``<!-- end of table -->``; ``check`` fails
where one differs from what its records print.
"""
from __future__ import annotations

import argparse
import glob
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, as the other bench scripts

from resonant_vectors.experiments.lab import ci95  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
MARKER, END_MARKER = "<!-- table: ", "<!-- end of table -->"
MARKED_TABLE = re.compile(r"(?P<start><!-- table: (?P<arguments>[^>]*?) -->\n)"
                          r"(?:(?P<table>(?:(?!<!-- (?:table: |end of table)).)*?)\n)??<!-- end of table -->", re.DOTALL)

END_COLUMNS = ("at_rest", "crashed", "flew_off", "ended", "timed_out", "died")


def load(paths: list) -> list:
    """The records, each with the path it was read from (relative to the project's folder where it
    lies in it), for the tables that link to them."""
    records = []
    for path in map(Path, paths):
        where = path.resolve().relative_to(PROJECT) if path.resolve().is_relative_to(PROJECT) else path
        records.append({**json.loads(path.read_text()), "source_path": str(where)})
    return records


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
    return "\n".join(lines)


def server_cpu(records: list) -> str:
    """Per backend and population: training steps/s and the CPU seconds the server (Milvus and its
    keeper) and the trainer's process spent per 1,000 engrams stored, from throughput records."""
    lines = []
    for record in records:
        lines += [f"The server idle kept {record['server_idle_cpu_share']:.2f} of a core busy.", "",
                  "| backend | population | steps/s | server CPU s per 1,000 engrams | trainer CPU s per 1,000 | "
                  "server ÷ trainer |", "|---|---|---|---|---|---|"]
        for backend, figures in record["backends"].items():
            for population, rate in figures["train_steps_per_s"].items():
                server, trainer = (figures[name][population] for name in
                                   ("server_cpu_s_per_1000_engrams", "trainer_cpu_s_per_1000_engrams"))
                lines.append(f"| {backend} | {population} | {rate:,.0f} | {server:.3f} | {trainer:.3f} | "
                             f"{server / trainer:.2f} |")
    return "\n".join(lines)


def species(records: list) -> str:
    """A species of 1 and 2 workers, from throughput records that measured one."""
    lines = []
    for record in records:
        if "species" in record:
            species = record["species"]
            lines += ["| population | workers | steps/s | ÷ one worker |", "|---|---|---|---|"]
            for population, rates in species["species_steps_per_s"].items():
                for workers, rate in rates.items():
                    lines.append(f"| {population} | {workers} | {rate:,.0f} | "
                                 f"{species['ratio_to_one_worker'][population][workers]:.2f}× |")
            pairs = species.get("independent_pair_steps_per_s", {})
            lines += [f"\nPopulation {population}: two independent trainings at once (half the landers each) "
                      f"{rate:,.0f} steps/s; two workers ÷ that: {species['two_workers_to_independent_pair'][population]:.2f}×."
                      for population, rate in pairs.items()]
    return "\n".join(lines)


# Rows of other code beside the project's, from bench/records/reference.json: who, its entry, its budget.
EXTERNAL_LUNAR_LANDER = (("DQN", "dqn_100k_steps", "100k steps"), ("PPO", "ppo_1_02M_steps_16_envs", "1.02M steps"))
REFERENCE_RUN, REFERENCE_TRIALS = "learning_291_trials", 291  # the reference implementation's own run


def is_reference(record: dict) -> bool:
    return "rl_baselines3_zoo" in record


def frames_cell(record: dict, entry: dict) -> str:
    """Training trials, and the frames they took (the unit of DQN's and PPO's budgets) where recorded."""
    frames = [run["frames"] for run in entry["seeds"] if "frames" in run]
    if len(frames) < len(entry["seeds"]):
        return f"{record['trials']}"
    return f"{record['trials']} ({sum(frames) / len(frames) / 1e6:.2f}M frames)"


def rule_name(record: dict, entry: dict, variant: str) -> str:
    """The seed's rule is the default; where it did not run on the default backend, that is said."""
    if variant != "seed":
        return f"`{variant}`"
    backend = entry.get("search_backend", record.get("changes", {}).get("search_backend", "milvus"))
    return "the seed's (the default)" + ("" if backend == "milvus" else f", on the {backend} backend")


def results(records: list) -> str:
    """The README's LunarLander table: each variant's greedy evaluation, the best row in bold, then
    the rows of other code from the reference record, marked external."""
    lines = ["| rule | training trials | evaluation | landed | the episodes not at rest | record |",
             "|---|---|---|---|---|---|"]
    own = [(record, variant, entry) for record in records if not is_reference(record)
           for variant, entry in record["variants"].items()]
    best = max(entry["eval_mean"] for _, _, entry in own)
    cited = None
    for record, variant, entry in own:
        cells = [rule_name(record, entry, variant), frames_cell(record, entry),
                 interval(entry["eval_mean"], entry["eval_mean_ci95"]), f"{100 * entry['eval_solved_rate']:.0f}%"]
        if entry["eval_mean"] == best:
            cells = [f"**{cell}**" for cell in cells]
        not_at_rest = {cause: share for cause, share in mean_shares(entry["seeds"], "eval_ends").items()
                       if cause != "at_rest"}
        link = "〃" if record["source_path"] == cited else f"[{Path(record['source_path']).name}]({record['source_path']})"
        cited = record["source_path"]
        lines.append(f"| {' | '.join(cells)} | {ends(not_at_rest) or '–'} | {link} |")
    for reference in filter(is_reference, records):
        lines += external_lunar_lander_rows(reference)
    return "\n".join(lines)


def external_lunar_lander_rows(reference: dict) -> list:
    mine = reference["reference_implementation"][REFERENCE_RUN]
    link = f"[{Path(reference['source_path']).name}]({reference['source_path']})"
    rows = [f"| external: the reference implementation, its seed-era code run unchanged (mean of its training "
            f"trials) | {REFERENCE_TRIALS} | {mine['mean']:+.1f} | {100 * mine['landings'] / REFERENCE_TRIALS:.0f}% | – | "
            f"{link} |"]
    for name, key, budget in EXTERNAL_LUNAR_LANDER:
        agent = reference["stable_baselines3"][key]
        rows.append(f"| external: {name}, Stable-Baselines3 (zoo settings, {agent['episodes']:,} episodes) | {budget} | "
                    f"{agent['eval_100_episodes_mean']:+.1f} (std {agent['eval_std']:.1f}) | "
                    f"{100 * agent['eval_solved_rate']:.0f}% | – | 〃 |")
    return rows


def _short(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def classic(records: list) -> str:
    """The README's table of other environments: each variant's evaluation with each seed's, the last
    variant's solved rate, beside rl-baselines3-zoo's agents (external, one trained agent each)."""
    zoo = next(record for record in records if is_reference(record))["rl_baselines3_zoo"]
    own = [record for record in records if not is_reference(record)]
    variants = list(own[0]["variants"])
    lines = ["| environment (solved at) | trials | " + " | ".join(f"`{variant}`, evaluation (per seed)" for variant in variants)
             + f" | solved (`{variants[-1]}`) | external: zoo DQN / PPO |", "|---|---|" + "---|" * (len(variants) + 2)]
    for record in own:
        entries = [record["variants"][variant] for variant in variants]
        threshold = next(iter(entries[0]["seeds"][0]["first_reaching"]), "–")
        cells = [f"{interval(entry['eval_mean'], entry['eval_mean_ci95'])} "
                 f"({' / '.join(_short(run['eval_mean']) for run in entry['seeds'])})" for entry in entries]
        agents = " / ".join(_short(zoo[kind][record["env_id"]]["mean"]) for kind in ("dqn", "ppo"))
        lines.append(f"| {record['env_id']} ({threshold}) | {record['trials']} | {' | '.join(cells)} | "
                     f"{100 * entries[-1]['eval_solved_rate']:.0f}% | {agents} |")
    return "\n".join(lines)


def instinct_summary(records: list) -> str:
    """The README's instinct table: newcomers and a similar animal on a trained and an empty memory."""
    lines = ["| who flies | on the trained memory | on an empty memory |", "|---|---|---|"]
    for record in records:
        groups, similar = record["groups"], ", ".join(f"{name} {value:g}" for name, value in record["similar"].items())

        def cell(group: str, landed: str = "") -> str:
            return f"{groups[group]['mean']:+.1f}, {100 * groups[group]['solved_rate']:.0f}%{landed}"

        lines += [f"| {record['newcomers']} newcomers | {cell('newcomers_trained_memory', ' landed')} | "
                  f"{cell('newcomers_empty_memory')} |",
                  f"| {record['newcomers']} of a similar animal ({similar}) | {cell('similar_trained_memory')} | "
                  f"{cell('similar_empty_memory')} |",
                  f"| (the trained population's last trials) | {cell('trained_last')} | |"]
    return "\n".join(lines)


def doses(records: list) -> str:
    """The doses experiment: per memory, its past trials and landings, the newcomers' figures and the
    benefit over an empty memory (95% intervals over seeds)."""
    lines = ["| past trials | past landings (mean) | newcomers' mean reward | landed | benefit over an empty memory "
             "| landing benefit |", "|---|---|---|---|---|---|"]
    for record in records:
        empty = [seed["empty"] for seed in record["per_seed"]]
        lines.append(f"| 0 (an empty memory) | 0 | {sum(group['mean'] for group in empty) / len(empty):+.1f} | "
                     f"{100 * sum(group['solved_rate'] for group in empty) / len(empty):.0f}% | – | – |")
        for row in record["by_dose"]:
            landing = f"{100 * row['landing_benefit']:+.0f} points" + (
                f" ± {100 * row['landing_benefit_ci95']:.0f}" if row["landing_benefit_ci95"] is not None else "")
            lines.append(f"| {row['dose']:,} | {row['past_landings']:,.1f} | {row['mean']:+.1f} | "
                         f"{100 * row['solved_rate']:.0f}% | {interval(row['benefit'], row['benefit_ci95'])} | "
                         f"{landing} |")
    return "\n".join(lines)


KIND_UNITS = {"gravity": "gravity {:+g}", "wind": "wind power {:g}, turbulence 0", "mass": "body mass ×{:g}"}


def kinds(records: list) -> str:
    """The kinds experiment: per kind, its distance from the trained one, the newcomers' mean reward
    on the trained and on an empty memory, and the benefit (95% intervals over seeds)."""
    lines = ["| kind | distance from the trained kind | on the trained memory | on an empty memory "
             "| benefit | landing benefit |", "|---|---|---|---|---|---|"]
    for record in records:
        for row in record["by_kind"]:
            lines.append(f"| {_kind_name(row)} | {'–' if row['distance'] is None else format(row['distance'], 'g')} | "
                         f"{row['trained_memory_mean']:+.1f} | {row['empty_memory_mean']:+.1f} | "
                         f"{interval(row['benefit'], row['benefit_ci95'])} | "
                         f"{interval(100 * row['landing_benefit'], _times_100(row['landing_benefit_ci95']), 0)} points |")
    return "\n".join(lines)


def _kind_name(row: dict) -> str:
    changes = row["changes"]
    if row["family"] == "wiring":
        return f"wired otherwise (ACTION_MAP {changes['action_map']})"
    if not changes:
        return "the trained kind (gravity −10, no wind, its own mass)"
    value = {"gravity": changes.get("gravity"), "wind": changes.get("wind_power"),
             "mass": changes.get("lander_mass")}[row["family"]]
    return KIND_UNITS[row["family"]].format(value)


def _times_100(value):
    return None if value is None else 100 * value


def generations(records: list) -> str:
    """The generations experiment: per generation, each line's errors in its first trials (95%
    intervals over seeds), its mean reward there, and the trained and isolated lines' trials to a
    first landing per seed ("–": none)."""
    lines = ["| generation | errors: trained line | control line | isolated line | mean reward: trained / control / "
             "isolated | first landing, trained line (per seed) | isolated line |", "|---|---|---|---|---|---|---|"]
    for record in records:
        for row in record["by_generation"]:
            errors = " | ".join(interval(row[line]["errors"], row[line]["errors_ci95"]).lstrip("+")
                                for line in ("trained", "control", "isolated"))
            means = " / ".join(f"{row[line]['mean']:+.0f}" for line in ("trained", "control", "isolated"))
            landings = " | ".join(" / ".join("–" if value is None else str(value)
                                             for value in row[line]["first_landing"])
                                  for line in ("trained", "isolated"))
            lines.append(f"| {row['generation']} | {errors} | {means} | {landings} |")
    return "\n".join(lines)


LATE_TRIALS = 100  # a shared-versus-isolated lander's last trials, where both arms explore alike


def shared(records: list) -> str:
    """The shared-versus-isolated experiment: per arm, the landers' mean reward over all their trials
    and over their last 100 (where exploration has settled in both arms), the share of landers that
    landed and that reached a rolling +100 within their trials, and the trials they needed (a lander
    that never did counts as all its trials), each with its 95% interval over seeds."""
    lines = ["| arm | landers x trials each | mean reward | over their last 100 trials | landers that landed "
             "| trials to the first landing | landers at a rolling +100 | trials to it |",
             "|---|---|---|---|---|---|---|---|"]
    for record in records:
        for arm, figures in record["arms"].items():
            late = [float(np.mean([np.mean(lander["rewards"][-LATE_TRIALS:]) for lander in seed_result[arm]["landers"]]))
                    for seed_result in record["per_seed"]]
            marks = " | ".join(_shared_mark(figures, mark) for mark in ("first_landing", "rolling_target"))
            lines.append(f"| {arm} | {record['landers']} x {record['trials']} | "
                         f"{interval(figures['mean'], figures['mean_ci95'])} | {interval(np.mean(late), ci95(late))} "
                         f"| {marks} |")
    return "\n".join(lines)


def repeatability(records: list) -> str:
    """Per record of bench/repeatability.py: the commit, whether its two trainings were equal, each
    evaluation's mean and landings, and which evaluations flew alike."""
    lines = ["| code | trainings equal | first memory | the same memory again | second training's memory "
             "| the same memory alike | the second training alike |", "|---|---|---|---|---|---|---|"]
    for record in records:
        cells = [f"{record['evaluations'][label]['mean']:+.2f} ({record['evaluations'][label]['solved_rate']:.0%})"
                 for label in ("first", "first_again", "second")]
        yes_no = [("yes" if record[key] else "**no**") for key in
                  ("trainings_equal", "same_memory_evaluated_alike", "second_training_evaluated_alike")]
        lines.append(f"| {record['code_version']['commit'][:7]} | {yes_no[0]} | {' | '.join(cells)} | "
                     f"{yes_no[1]} | {yes_no[2]} |")
    return "\n".join(lines)


def _shared_mark(figures: dict, mark: str) -> str:
    share = interval(_times_100(figures[f"{mark}_reached"]), _times_100(figures[f"{mark}_reached_ci95"]), 0)
    trials = interval(figures[f"{mark}_censored_mean"], figures[f"{mark}_censored_mean_ci95"])
    return f"{share.lstrip('+')}% | {trials.lstrip('+')}"


# Issue 24's targets: environment, trials, the variant measured, the goal and the mark on the way. A
# mark holds a mean to reach, and optionally a landing rate, a mean for every seed, or the flag
# (MountainCar: a training trial better than -200 on every seed).
TARGETS = (
    ("MountainCar-v0", 500, "curious", {"mean": -110}, {"mean": -150, "flag": True}),
    ("Acrobot-v1", 500, "curious", {"mean": -100}, {"each_seed": -150}),
    ("CartPole-v1", 300, "curious", {"mean": 475}, {"mean": 450}),
    ("LunarLander-v3", 3000, "steady", {"mean": 250, "landed": 0.95}, {"mean": 230, "landed": 0.85}),
    ("LunarLander-v3", 1000, "steady", {"mean": 200, "landed": 0.70}, {"mean": 170, "landed": 0.60}),
)


def _mark(mark: dict) -> str:
    parts = [f"≥ {mark['mean']:+g}" if "mean" in mark else f"≥ {mark['each_seed']:+g} on every seed"]
    parts += [f"≥ {100 * mark['landed']:.0f}% landed"] if "landed" in mark else []
    parts += ["every seed reaching the flag"] if mark.get("flag") else []
    return ", ".join(parts)


def _reached(entry: dict, mark: dict) -> bool:
    runs = entry["seeds"]
    return (entry["eval_mean"] >= mark.get("mean", -float("inf"))
            and entry["eval_solved_rate"] >= mark.get("landed", 0.0)
            and all(run["eval_mean"] >= mark.get("each_seed", -float("inf")) for run in runs)
            and (not mark.get("flag") or all(max(run["rewards"]) > -200 for run in runs)))


def targets(records: list) -> str:
    """Each target met or missed, from the learning records of its environment and trials."""
    lines = ["| environment | within | variant | goal | on the way | measured (per seed) | |", "|---|---|---|---|---|---|---|"]
    for env_id, trials, variant, goal, way in TARGETS:
        record = next((record for record in records if record.get("env_id") == env_id and record["trials"] == trials
                       and variant in record["variants"]), None)
        if record is None:
            continue
        entry = record["variants"][variant]
        per_seed = " / ".join(f"{run['eval_mean']:+.0f}" for run in entry["seeds"])
        verdict = "goal met" if _reached(entry, goal) else "on the way" if _reached(entry, way) else "missed"
        lines.append(f"| {env_id} | {trials} trials | `{variant}` | {_mark(goal)} | {_mark(way)} | "
                     f"{interval(entry['eval_mean'], entry['eval_mean_ci95'])}, {100 * entry['eval_solved_rate']:.0f}% "
                     f"solved ({per_seed}) | {verdict} |")
    return "\n".join(lines)


TABLES = {"learning": learning, "per_seed": per_seed, "environments": environments, "instinct": instinct,
          "throughput": throughput, "server_cpu": server_cpu, "species": species, "results": results, "classic": classic,
          "instinct_summary": instinct_summary, "doses": doses, "kinds": kinds, "generations": generations, "shared": shared,
          "repeatability": repeatability,
          "targets": targets}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(TABLES) + ["check", "update"],
                        help="the table to print; check or update: the marked tables of the pages given")
    parser.add_argument("records", nargs="+", help="JSON records (bench/records/...); pages for check and update")
    parser.add_argument("--variants", nargs="+", help="learning: only these variants' rows")
    return parser


def table(arguments: argparse.Namespace) -> str:
    records = load(arguments.records)
    if arguments.table == "learning":
        return learning(records, arguments.variants)
    return TABLES[arguments.table](records)


def printed(marker_arguments: str) -> str:
    """The table a page's marker asks for: its arguments, records found from the project's folder."""
    arguments = parser().parse_args(shlex.split(marker_arguments))
    arguments.records = [path for pattern in arguments.records
                         for path in (sorted(glob.glob(str(PROJECT / pattern))) or [str(PROJECT / pattern)])]
    return table(arguments)


def marked_tables(page: Path) -> list:
    """A page's marked tables; a marker without its end is an error, not a table left unchecked."""
    text = page.read_text()
    found = list(MARKED_TABLE.finditer(text))
    if len(found) != text.count(MARKER) or len(found) != text.count(END_MARKER):
        raise ValueError(f"{page}: {text.count(MARKER)} table marker(s), {text.count(END_MARKER)} end marker(s) and "
                         f"{len(found)} whole marked table(s); each table needs both, on lines of their own")
    return found


def drifted(page: Path) -> list:
    """The markers of a page whose table is not what its records print: (arguments, printed)."""
    return [(marked["arguments"], expected) for marked in marked_tables(page)
            if (marked["table"] or "") != (expected := printed(marked["arguments"]))]


def update(page: Path) -> int:
    """Print a page's marked tables again from their records; how many changed."""
    changed = len(drifted(page))
    page.write_text(MARKED_TABLE.sub(lambda marked: f"{marked['start']}{printed(marked['arguments'])}\n{END_MARKER}",
                                     page.read_text()))
    return changed


def check_pages(pages: list) -> int:
    stale = [(page, arguments) for page in map(Path, pages) for arguments, _ in drifted(page)]
    for page, arguments in stale:
        print(f"{page}: the table of `bench/tables.py {arguments}` differs from its records; "
              f"run `python bench/tables.py update {page}`", file=sys.stderr)
    return 1 if stale else 0


def main(argv=None) -> int:
    arguments = parser().parse_args(argv)
    try:
        if arguments.table == "check":
            return check_pages(arguments.records)
        if arguments.table == "update":
            for page in arguments.records:
                print(f"{page}: {update(Path(page))} table(s) printed again")
            return 0
        print(table(arguments))
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {type(error).__name__}: {error} (a record of another benchmark?)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
