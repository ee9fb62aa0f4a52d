"""The documentation keeps up with the code: every setting is documented, every page linked, and
every figure's record is in the repository."""
from __future__ import annotations

import re
from pathlib import Path

import settings

PROJECT = Path(__file__).resolve().parent.parent
DOCS = PROJECT / "docs"


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
