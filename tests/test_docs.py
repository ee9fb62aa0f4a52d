"""The documentation keeps up with the code: every setting is documented, every page linked, and
every figure's record is in the repository."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import settings
from resonant_vectors.experiments.lab import write_record
from resonant_vectors.experiments.provenance import MEASURED_PACKAGES, code_version

PROJECT = Path(__file__).resolve().parent.parent
DOCS = PROJECT / "docs"
MARKED_TABLE = re.compile(r"<!-- table: .*? -->\n.*?\n<!-- end of table -->", re.DOTALL)  # bench/tables.py's


def documented_settings() -> set:
    """The names in the first column of the settings page's tables."""
    rows = [line.split("|")[1] for line in (DOCS / "settings.md").read_text().splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}


def test_every_setting_of_settings_py_is_documented():
    names = {name for name in vars(settings) if name.isupper() and not name.startswith("_")}
    assert names - documented_settings() == set()


def test_the_settings_page_names_no_setting_that_is_gone():
    names = {name for name in vars(settings) if name.isupper() and not name.startswith("_")}
    assert documented_settings() - names == set()


def test_every_docs_page_is_linked_from_the_readme():
    readme = (PROJECT / "README.md").read_text()
    assert [page.name for page in DOCS.glob("*.md") if f"docs/{page.name}" not in readme] == []


def test_every_record_the_docs_name_is_committed():
    named = set()
    for page in [PROJECT / "README.md", *DOCS.glob("*.md")]:
        named |= set(re.findall(r"bench/records/[\w.-]+\.json", page.read_text()))
    assert named and [record for record in named if not (PROJECT / record).exists()] == []


def test_the_docs_speak_as_the_library():
    pattern = re.compile(r"\bI (would|think|tried)\b|previous round|the issue", re.IGNORECASE)
    spoken = [f"{page.name}: {line.strip()}" for page in [PROJECT / "README.md", *DOCS.glob("*.md")]
              for line in page.read_text().splitlines() if pattern.search(line)]
    assert spoken == []


def test_the_readme_states_each_time_as_its_record_measured_it():
    record = json.loads((PROJECT / "bench/records/readme-times.json").read_text())
    readme = (PROJECT / "README.md").read_text()
    assert record["times"] and [entry["stated"] for entry in record["times"] if entry["stated"] not in readme] == []


def test_every_table_of_the_readme_and_docs_is_what_its_records_print():
    pages = ["README.md", *sorted(str(page.relative_to(PROJECT)) for page in DOCS.glob("*.md"))]
    checked = subprocess.run([sys.executable, "bench/tables.py", "check", *pages], cwd=PROJECT,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_every_figure_with_an_interval_in_a_table_is_printed_from_a_record():
    unmarked = []
    for page in [PROJECT / "README.md", *DOCS.glob("*.md")]:
        text = MARKED_TABLE.sub("", page.read_text())
        unmarked += [f"{page.name}: {line[:80]}" for line in text.splitlines() if line.startswith("|") and "±" in line]
    assert unmarked == []


def test_a_table_changed_by_hand_is_found_and_printed_again_from_its_record(tmp_path):
    page = tmp_path / "learning.md"
    page.write_text((DOCS / "learning.md").read_text().replace("| `steady` | 3000 × 3 | +", "| `steady` | 3000 × 3 | +9"))
    check = [sys.executable, "bench/tables.py", "check", str(page)]
    drifted = subprocess.run(check, cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert drifted.returncode == 1 and "learning-steady-3000.json" in drifted.stderr
    subprocess.run([sys.executable, "bench/tables.py", "update", str(page)], cwd=PROJECT, check=True, timeout=60)
    assert page.read_text() == (DOCS / "learning.md").read_text()


def test_a_table_marker_without_its_end_is_an_error_not_a_table_left_unchecked(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- table: doses bench/records/doses.json -->\n| a table that is never checked |\n")
    checked = subprocess.run([sys.executable, "bench/tables.py", "check", str(page)], cwd=PROJECT,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 2 and "1 table marker(s), 0 end marker(s)" in checked.stderr


def test_a_record_says_which_code_and_which_versions_made_it(tmp_path):
    write_record({"figure": 1.0}, tmp_path / "record.json")
    record = json.loads((tmp_path / "record.json").read_text())
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert record["figure"] == 1.0 and record["code_version"]["commit"] == head
    assert set(record["versions"]) == {"python", *MEASURED_PACKAGES} and None not in record["versions"].values()


def test_a_record_over_seeds_says_whether_they_were_held_out_from_tuning(tmp_path):
    for seeds, held_out in (([100, 101, 102], True), ([4, 100], False)):
        write_record({"seeds": seeds}, tmp_path / "record.json")
        assert json.loads((tmp_path / "record.json").read_text())["seeds_held_out"] is held_out


def test_a_changed_checkout_is_recorded_as_dirty_and_no_checkout_as_unknown(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    (checkout / "code.py").write_text("A = 1\n")
    for arguments in (["init", "-q"], ["add", "code.py"], ["commit", "-q", "-m", "code"]):
        subprocess.run([*git, *arguments], check=True)
    assert code_version(checkout)["dirty"] is False
    (checkout / "code.py").write_text("A = 2\n")
    assert code_version(checkout)["dirty"] is True
    assert code_version(tmp_path / "elsewhere") == {"commit": None, "dirty": None}
