"""The project's ``gym/`` folder is found even where a legacy ``gym`` package is installed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_an_installed_gym_package_does_not_shadow_the_projects(tmp_path):
    stub = tmp_path / "site" / "gym"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('"""A stand-in for the legacy OpenAI Gym."""\n')
    imported = subprocess.run(
        [sys.executable, "-c", "import gym.lander_environment as m; print(m.ENV_ID)"], cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(stub.parent)}, capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "LunarLander-v3"
