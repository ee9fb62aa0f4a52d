"""``Settings``: the values of ``settings.py`` as one typed, validated object.

Why a separate module: ``settings.py`` is the file users edit, so it holds plain names only.
Code takes a ``Settings`` argument instead of reading globals, so a notebook can run two
configurations side by side, and every value is checked once, where it enters.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from resonant_vectors.environments.profiles import (
    DEFAULT_ENV_ID,
    LANDER_ONLY,
    EnvironmentProfile,
    UnsupportedEnvironmentError,
    profile,
)
from resonant_vectors.errors import ResonantVectorsError

COLLECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")  # Milvus's rule for collection names
INSTANCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,246}$")    # room for the species ledger's "_species"
SPECIES_SUFFIX = "_species"    # an instance's species ledger is the collection <instance>_species
BOOK_SUFFIX = "_book"          # an instance's species' book is the collection <instance>_book
SETTINGS_MODULE = "settings"  # settings.py: the one file users edit
DEFAULTS_MODULE = "resonant_vectors.defaults"  # the package's copy of it, where no settings.py is on the path
PRESETS_NAME = "PRESETS"  # the table of named presets in settings.py (not a setting itself)
NEIGHBOUR_WEIGHTINGS = ("uniform", "distance")
OUTCOME_RULES = ("reward", "return")
SEARCH_BACKENDS = ("milvus", "replica")
VECTOR_ENVS = ("sync", "async")
STATE_SCALINGS = ("fixed", "spread")
LISTS = ("vector_component_weights", "action_map")  # settings given as lists, kept as tuples
INDEX_TYPES = ("IVF_FLAT", "FLAT")  # Milvus indexes the replica mirrors (FLAT: exact search, slow past 100k engrams)
METRIC_TYPES = ("L2",)              # distance weighting and the replica read L2's squared distances


class SettingsError(ResonantVectorsError, ValueError):
    """One or more settings are invalid; the message lists every problem found."""


def user_settings() -> ModuleType:
    """``settings.py``, the file users edit, where Python finds it (the repository's folder, or a
    notebook's); else the package's own defaults (``resonant_vectors/defaults.py``, the same file as
    the repository's ``settings.py``). Why not a plain import: a file that does not run (a syntax
    error, a misspelt name) must be one message naming its line, not Python's traceback."""
    try:
        return importlib.import_module(SETTINGS_MODULE)
    except ModuleNotFoundError as error:
        if error.name != SETTINGS_MODULE:
            raise
        return importlib.import_module(DEFAULTS_MODULE)
    except SyntaxError as error:
        raise SettingsError(f"{error.filename}, line {error.lineno}: {error.msg}: {(error.text or '').strip()!r}. "
                            "Fix that line of settings.py.") from None
    except Exception as error:  # whatever the file's own code raised
        frames = [frame for frame in traceback.extract_tb(error.__traceback__)
                  if Path(frame.filename).name == f"{SETTINGS_MODULE}.py"]
        where = f"{frames[-1].filename}, line {frames[-1].lineno}" if frames else f"{SETTINGS_MODULE}.py"
        raise SettingsError(f"{where}: {type(error).__name__}: {error}. Fix that line of settings.py.") from None


def presets() -> dict:
    """The named presets of ``settings.py`` (``PRESETS``)."""
    return getattr(user_settings(), PRESETS_NAME, {})


def _located(message: str, module: ModuleType, names: set) -> str:
    """A settings error's message with each setting that ``module`` set named with its file and line:
    ``NOISE (settings.py, line 12):``, so that a value of the file is not taken for a flag's."""
    path = getattr(module, "__file__", None)
    source = Path(path).read_text().splitlines() if path else []
    for name in sorted(names, key=len, reverse=True):
        line = next((number for number, text in enumerate(source, 1)
                     if re.match(rf"{name.upper()}\s*=", text)), None)
        if line is not None:
            message = re.sub(rf"(?<![A-Z_]){name.upper()}:", f"{name.upper()} ({Path(path).name}, line {line}):", message)
    return message


def _preset_values(presets: dict, preset: str, names: set) -> dict:
    """The values the named preset sets (lowercase names); none for the empty preset."""
    if preset in ("", None):
        return {}
    if preset not in presets:
        raise SettingsError(f"PRESET: unknown preset {preset!r}; expected \"\" or one of "
                            f"{', '.join(map(repr, presets)) or '(none defined)'} from settings.PRESETS")
    values = {name.lower(): value for name, value in presets[preset].items()}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SettingsError(f"PRESETS[{preset!r}] sets unknown setting(s) {', '.join(n.upper() for n in unknown)}")
    return values


@dataclass(frozen=True)
class Settings:
    """The run's settings; see ``settings.py`` for what each one means and its default.

    Build it with ``Settings.from_module(**overrides)``; the fields have no defaults of their own
    so that ``settings.py`` stays the one place a default is written.
    """

    env_id: str
    state_vector_size: Optional[int]
    output_vector_size: Optional[int]
    noise: float
    noise_final: Optional[float]
    noise_decay_trials: int
    neighbour_weighting: str
    min_results: int
    per_action_memory: bool
    untried_action_score: float
    epsilon: float
    epsilon_final: Optional[float]
    epsilon_decay_trials: int
    probabilistic_choice: bool
    vector_component_weights: Optional[tuple]
    success_component_weight: float
    max_trial_length: Optional[int]
    action_repeat: int
    state_scaling: str
    use_hit_points: bool
    hit_points: float
    metabolic_cost: float
    population_size: int
    workers: int
    vector_env: str
    success_window: int
    success_margin: float
    outcome_rule: str
    discount: float
    bootstrap_steps: int
    outcome_reward_scale: float
    success_weight: float
    novelty_bonus: float
    novelty_radius: float
    revalue_every: int
    revalue_sweeps: int
    revalue_blend: float
    preset: str
    instance_name: str
    trials: int
    seed: Optional[int]
    display: bool
    read_only: bool
    drop_collection: bool
    kept_runs: int
    tensorboard: bool
    gravity: Optional[float]
    enable_wind: Optional[bool]
    wind_power: Optional[float]
    turbulence_power: Optional[float]
    lander_mass: Optional[float]
    action_map: Optional[tuple]
    milvus_uri: str
    milvus_token: str
    milvus_data_dir: str
    milvus_idle_grace: float
    milvus_connect_timeout: float
    milvus_retry_timeout: float
    index_type: str
    metric_type: str
    index_nlist: int
    search_nprobe: int
    seal_every: int
    search_backend: str
    replica_refresh: float

    @classmethod
    def from_module(cls, module: Optional[ModuleType] = None, **overrides: Any) -> "Settings":
        """Read every UPPERCASE name of ``module`` (``settings.py`` by default), then apply overrides.

        :param overrides: lowercase setting names, e.g. ``noise=0.2``. ``None`` is a value like any
            other (``seed=None`` means fresh entropy, ``noise_final=None`` no schedule): leave a
            name out to keep the module's value (``main.py`` leaves out the flags not typed).
        """
        module = module or user_settings()
        values = {name.lower(): value for name, value in vars(module).items()
                  if name.isupper() and not name.startswith("_") and name != PRESETS_NAME}
        unknown = sorted(set(values) - cls.field_names())
        if unknown:
            raise SettingsError(
                f"{module.__name__} sets unknown setting(s) {', '.join(n.upper() for n in unknown)}; "
                f"expected only names from: {', '.join(sorted(n.upper() for n in cls.field_names()))}. "
                "Fix the spelling or remove the line.")
        preset = overrides.get("preset", values.get("preset", ""))
        preset_values = _preset_values(getattr(module, PRESETS_NAME, {}), preset, cls.field_names())
        values.update(preset_values)
        values.update(overrides)
        try:
            return cls.from_dict(values)
        except SettingsError as error:
            from_file = set(values) - set(preset_values) - set(overrides)
            raise SettingsError(_located(str(error), module, from_file)) from None

    @classmethod
    def from_dict(cls, values: dict) -> "Settings":
        """Build from lowercase names (e.g. a run's saved settings), refusing unknown names."""
        unknown = sorted(set(values) - cls.field_names())
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; "
                                f"expected names from: {', '.join(sorted(cls.field_names()))}")
        return cls(**values)

    @classmethod
    def field_names(cls) -> set:
        return {f.name for f in dataclasses.fields(cls)}

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some settings changed (validated like the original)."""
        unknown = sorted(set(changes) - self.field_names())
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; expected names from: "
                                f"{', '.join(sorted(self.field_names()))}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """Plain values, for saving with a run."""
        values = dataclasses.asdict(self)
        for name in LISTS:
            if values[name] is not None:
                values[name] = list(values[name])
        return values

    # --- what follows from the environment ---
    @property
    def environment(self) -> EnvironmentProfile:
        """``ENV_ID``'s profile: observation scales, success range, "solved", actions (``environments.profiles``)."""
        return profile(self.env_id)

    @property
    def resonator_size(self) -> int:
        """A resonator's length: the environment's state and the success value (``STATE_VECTOR_SIZE``)."""
        return self.environment.state_size + 1

    @property
    def action_count(self) -> int:
        """The environment's number of actions (``OUTPUT_VECTOR_SIZE``)."""
        return self.environment.actions

    @property
    def state_weights(self) -> tuple:
        """The resonator's weight of each state component (``VECTOR_COMPONENT_WEIGHTS``; None: all 1)."""
        return self.vector_component_weights or (1.0,) * self.environment.state_size

    @property
    def spread_weights(self) -> Optional[tuple]:
        """With ``STATE_SCALING = "spread"``, each resonator component's weight (the state's and the
        success value's), by which the memory rescales what it learns of their spread; else None."""
        if self.state_scaling != "spread":
            return None
        return (*self.state_weights, self.success_component_weight)

    @property
    def trial_length(self) -> Optional[int]:
        """Steps per trial at most: ``MAX_TRIAL_LENGTH``; the environment's own limit where it is None,
        or where it is the seed's (400, LunarLander's) on an environment that is not the seed's."""
        if self.max_trial_length is None or self.max_trial_length == _seed_value("max_trial_length", self.env_id):
            return self.environment.trial_length
        return self.max_trial_length

    def __post_init__(self) -> None:
        for name in LISTS:
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = _problems(self)
        if problems:
            raise SettingsError("invalid settings:\n  - " + "\n  - ".join(problems)
                                + "\nFix them in settings.py (or the flags/arguments that set them).")


def _environment_problems(s: Settings) -> list:
    """What the environment refuses: an unknown id, sizes and weights of another shape, settings of
    LunarLander's on another environment. Empty when ``ENV_ID`` itself is wrong (one message then)."""
    try:
        environment = profile(s.env_id) if isinstance(s.env_id, str) else None
    except UnsupportedEnvironmentError as error:
        return [f"ENV_ID: {error}"]
    if environment is None:
        return [f"ENV_ID: expected a Gymnasium environment id such as 'LunarLander-v3', got {s.env_id!r}"]
    size, actions, weights = environment.state_size, environment.actions, s.vector_component_weights
    rules = [
        (_follows_environment(s, "state_vector_size", size + 1),
         f"STATE_VECTOR_SIZE = {s.state_vector_size!r} contradicts ENV_ID = {s.env_id!r}, whose resonators have "
         f"{size + 1} numbers ({size} state dims + 1 success dim); expected {size + 1} (or None: follow the "
         "environment)"),
        (_follows_environment(s, "output_vector_size", actions),
         f"OUTPUT_VECTOR_SIZE = {s.output_vector_size!r} contradicts ENV_ID = {s.env_id!r}, which has {actions} "
         f"actions; expected {actions} (or None: follow the environment)"),
        (weights is None or (isinstance(weights, tuple) and len(weights) == size and all(map(_is_number, weights))),
         f"VECTOR_COMPONENT_WEIGHTS: expected None (all 1) or {size} finite numbers (one per state dim of "
         f"{s.env_id}), got {weights!r}"),
        (s.action_map is None or (isinstance(s.action_map, tuple) and sorted(s.action_map) == list(range(actions))
                                  and all(isinstance(a, int) and not isinstance(a, bool) for a in s.action_map)),
         f"ACTION_MAP: expected None (the actions as numbered) or each of {s.env_id}'s actions 0 … {actions - 1} "
         f"once, in the order the brain's actions fire them, e.g. {list(reversed(range(actions)))}; "
         f"got {s.action_map!r}"),
    ]
    if environment.is_lunar_lander:
        rules += [
            (s.gravity is None or (_is_number(s.gravity) and -12 < s.gravity < 0),
             f"GRAVITY: expected None (LunarLander's -10) or a finite number between -12 and 0, got {s.gravity!r}"),
            (s.enable_wind is None or isinstance(s.enable_wind, bool),
             f"ENABLE_WIND: expected None (off), True or False, got {s.enable_wind!r}"),
            (s.wind_power is None or (_is_number(s.wind_power) and 0 <= s.wind_power <= 20),
             f"WIND_POWER: expected None (15) or a finite number from 0 to 20, got {s.wind_power!r}"),
            (s.turbulence_power is None or (_is_number(s.turbulence_power) and 0 <= s.turbulence_power <= 2),
             f"TURBULENCE_POWER: expected None (1.5) or a finite number from 0 to 2, got {s.turbulence_power!r}"),
            (s.lander_mass is None or (_is_number(s.lander_mass) and 0.25 <= s.lander_mass <= 4),
             f"LANDER_MASS: expected None (LunarLander's own) or a factor of its body's mass from 0.25 to 4, "
             f"got {s.lander_mass!r}"),
        ]
    else:
        rules += [(getattr(s, name) is None,
                   f"{name.upper()}: it is LunarLander's, and {s.env_id} has no such setting; expected None "
                   f"(or train LunarLander-v3), got {getattr(s, name)!r}") for name in LANDER_ONLY]
    return [message for ok, message in rules if not ok]


def _seed_value(name: str, env_id: str) -> Optional[int]:
    """The seed's value of a size setting (``settings.py``'s 9, 4 and 400: LunarLander's own), which on
    another environment stands for that environment's own; None on the seed's environment itself."""
    if env_id == DEFAULT_ENV_ID or not isinstance(env_id, str):
        return None
    lander = profile(DEFAULT_ENV_ID)
    return {"state_vector_size": lander.state_size + 1, "output_vector_size": lander.actions,
            "max_trial_length": lander.trial_length}[name]


def _follows_environment(s: Settings, name: str, own: int) -> bool:
    """A size setting agrees with the environment: its own value, None, or the seed's value (see ``_seed_value``)."""
    value = getattr(s, name)
    return not isinstance(value, bool) and value in (None, own, _seed_value(name, s.env_id))


def _problems(s: Settings) -> list:
    """One message per invalid setting: what was given and what is expected."""
    rules = [
        (_is_number(s.noise) and s.noise >= 0, f"NOISE: expected a finite number >= 0, got {s.noise!r}"),
        (s.noise_final is None or (_is_number(s.noise_final) and s.noise_final >= 0),
         f"NOISE_FINAL: expected None or a number >= 0, got {s.noise_final!r}"),
        (_is_int(s.noise_decay_trials) and s.noise_decay_trials >= 1,
         f"NOISE_DECAY_TRIALS: expected a whole number >= 1, got {s.noise_decay_trials!r}"),
        (s.neighbour_weighting in NEIGHBOUR_WEIGHTINGS,
         f"NEIGHBOUR_WEIGHTING: expected one of {NEIGHBOUR_WEIGHTINGS}, got {s.neighbour_weighting!r}"),
        (_is_number(s.untried_action_score), f"UNTRIED_ACTION_SCORE: expected a finite number, got {s.untried_action_score!r}"),
        (_is_number(s.novelty_bonus) and s.novelty_bonus >= 0,
         f"NOVELTY_BONUS: expected a finite number >= 0 (0: no bonus), got {s.novelty_bonus!r}"),
        (_is_number(s.novelty_radius) and s.novelty_radius > 0,
         f"NOVELTY_RADIUS: expected a distance > 0, got {s.novelty_radius!r}"),
        (_is_number(s.epsilon) and 0 <= s.epsilon <= 1, f"EPSILON: expected a probability from 0 to 1, got {s.epsilon!r}"),
        (s.epsilon_final is None or (_is_number(s.epsilon_final) and 0 <= s.epsilon_final <= 1),
         f"EPSILON_FINAL: expected None or a probability from 0 to 1, got {s.epsilon_final!r}"),
        (_is_int(s.epsilon_decay_trials) and s.epsilon_decay_trials >= 1,
         f"EPSILON_DECAY_TRIALS: expected a whole number >= 1, got {s.epsilon_decay_trials!r}"),
        (_is_int(s.min_results) and 1 <= s.min_results <= 16384,
         f"MIN_RESULTS: expected a whole number from 1 to 16384 (Milvus's limit), got {s.min_results!r}"),
        (_is_number(s.success_component_weight),
         f"SUCCESS_COMPONENT_WEIGHT: expected a finite number, got {s.success_component_weight!r}"),
        (s.max_trial_length is None or (_is_int(s.max_trial_length) and s.max_trial_length >= 1),
         f"MAX_TRIAL_LENGTH: expected None (the environment's own limit) or a whole number >= 1, "
         f"got {s.max_trial_length!r}"),
        (_is_number(s.hit_points) and s.hit_points > 0, f"HIT_POINTS: expected a finite number > 0, got {s.hit_points!r}"),
        (_is_number(s.metabolic_cost) and s.metabolic_cost >= 0,
         f"METABOLIC_COST: expected a finite number >= 0, got {s.metabolic_cost!r}"),
        (s.vector_env in VECTOR_ENVS, f"VECTOR_ENV: expected one of {VECTOR_ENVS}, got {s.vector_env!r}"),
        (_is_int(s.action_repeat) and 1 <= s.action_repeat <= 100,
         f"ACTION_REPEAT: expected a whole number of frames from 1 to 100, got {s.action_repeat!r}"),
        (s.state_scaling in STATE_SCALINGS, f"STATE_SCALING: expected one of {STATE_SCALINGS}, got {s.state_scaling!r}"),
        (s.state_scaling != "spread" or s.search_backend == "replica",
         f"STATE_SCALING = \"spread\" needs SEARCH_BACKEND = \"replica\" (the memory's vectors are rescaled in this "
         f"process as their spread is learned; Milvus searches them as stored), got {s.search_backend!r}"),
        (_is_int(s.workers) and 1 <= s.workers <= 64,
         f"WORKERS: expected a whole number from 1 to 64, got {s.workers!r}"),
        (not _is_int(s.workers) or not _is_int(s.population_size) or s.population_size < 1
         or s.workers <= s.population_size,
         f"WORKERS = {s.workers!r}: each worker flies at least one lander; expected at most POPULATION_SIZE "
         f"({s.population_size!r}) workers"),
        (not _is_int(s.workers) or s.workers == 1 or not s.read_only,
         f"READ_ONLY with WORKERS = {s.workers!r}: a species' workers train one memory; expected WORKERS = 1 to "
         "read a memory (python main.py evaluate, or --read-only without --workers)"),
        (not _is_int(s.workers) or s.workers == 1 or s.revalue_every == 0,
         f"REVALUE_EVERY = {s.revalue_every!r} with WORKERS = {s.workers!r}: re-valuation rewrites every outcome "
         "and would race the other workers' writes; expected REVALUE_EVERY = 0 with several workers"),
        (_is_int(s.population_size) and 1 <= s.population_size <= 1024,
         f"POPULATION_SIZE: expected a whole number from 1 to 1024, got {s.population_size!r}"),
        (_is_int(s.success_window) and s.success_window >= 1,
         f"SUCCESS_WINDOW: expected a whole number >= 1, got {s.success_window!r}"),
        (_is_number(s.success_margin), f"SUCCESS_MARGIN: expected a finite number, got {s.success_margin!r}"),
        (s.outcome_rule in OUTCOME_RULES, f"OUTCOME_RULE: expected one of {OUTCOME_RULES}, got {s.outcome_rule!r}"),
        (_is_number(s.discount) and 0 <= s.discount <= 1, f"DISCOUNT: expected a finite number from 0 to 1, got {s.discount!r}"),
        (_is_int(s.bootstrap_steps) and s.bootstrap_steps >= 0,
         f"BOOTSTRAP_STEPS: expected a whole number >= 0 (0: the full return), got {s.bootstrap_steps!r}"),
        (_is_number(s.outcome_reward_scale) and s.outcome_reward_scale > 0,
         f"OUTCOME_REWARD_SCALE: expected a finite number > 0, got {s.outcome_reward_scale!r}"),
        (_is_number(s.success_weight), f"SUCCESS_WEIGHT: expected a finite number, got {s.success_weight!r}"),
        (_is_int(s.revalue_every) and s.revalue_every >= 0,
         f"REVALUE_EVERY: expected a whole number of trials >= 0 (0: never), got {s.revalue_every!r}"),
        (_is_int(s.revalue_sweeps) and s.revalue_sweeps >= 1,
         f"REVALUE_SWEEPS: expected a whole number >= 1, got {s.revalue_sweeps!r}"),
        (_is_number(s.revalue_blend) and 0 < s.revalue_blend <= 1,
         f"REVALUE_BLEND: expected a finite number more than 0 and at most 1, got {s.revalue_blend!r}"),
        (s.revalue_every == 0 or (s.outcome_rule == "return" and s.success_weight == 0),
         f"REVALUE_EVERY = {s.revalue_every!r} needs OUTCOME_RULE = \"return\" and SUCCESS_WEIGHT = 0 (re-valued "
         f"outcomes are returns / OUTCOME_REWARD_SCALE, without success weighting), got {s.outcome_rule!r} and "
         f"{s.success_weight!r}"),
        (s.revalue_every == 0 or s.search_backend == "replica",
         f"REVALUE_EVERY = {s.revalue_every!r} needs SEARCH_BACKEND = \"replica\" (a pass searches the memory "
         f"once per action for every engram), got {s.search_backend!r}"),
        (isinstance(s.instance_name, str) and INSTANCE_NAME.match(s.instance_name) is not None,
         f"INSTANCE_NAME: expected letters, digits and '_' (at most 247, not starting with a digit: it names "
         f"a Milvus collection, and <name>_species its species' ledger), got {s.instance_name!r}"),
        (not isinstance(s.instance_name, str) or not s.instance_name.endswith((SPECIES_SUFFIX, BOOK_SUFFIX)),
         f"INSTANCE_NAME = {s.instance_name!r}: a name ending in {SPECIES_SUFFIX!r} or {BOOK_SUFFIX!r} is the "
         f"collection of another instance's species' ledger or book (and a fresh start of that instance's "
         f"species would replace it); expected another name"),
        (_is_int(s.trials) and s.trials >= 0, f"TRIALS: expected a whole number >= 0, got {s.trials!r}"),
        (s.seed is None or (_is_int(s.seed) and s.seed >= 0),
         f"SEED: expected a whole number >= 0 (Gymnasium's and NumPy's seeds), or None for fresh entropy, "
         f"got {s.seed!r}"),
        (_is_number(s.milvus_connect_timeout) and s.milvus_connect_timeout > 0,
         f"MILVUS_CONNECT_TIMEOUT: expected a finite number of seconds > 0, got {s.milvus_connect_timeout!r}"),
        (_is_number(s.milvus_idle_grace) and s.milvus_idle_grace >= 0,
         f"MILVUS_IDLE_GRACE: expected a finite number of seconds >= 0, got {s.milvus_idle_grace!r}"),
        (_is_number(s.milvus_retry_timeout) and s.milvus_retry_timeout > 0,
         f"MILVUS_RETRY_TIMEOUT: expected a finite number of seconds > 0, got {s.milvus_retry_timeout!r}"),
        (_is_int(s.kept_runs) and s.kept_runs >= 0,
         f"KEPT_RUNS: expected a whole number >= 0 (0: a fresh start drops the earlier memory), got {s.kept_runs!r}"),
        (_is_int(s.index_nlist) and 1 <= s.index_nlist <= 65536,
         f"INDEX_NLIST: expected a whole number from 1 to 65536, got {s.index_nlist!r}"),
        (_is_int(s.search_nprobe) and 1 <= s.search_nprobe <= 65536,
         f"SEARCH_NPROBE: expected a whole number from 1 to 65536, got {s.search_nprobe!r}"),
        (s.index_type in INDEX_TYPES, f"INDEX_TYPE: expected one of {INDEX_TYPES}, got {s.index_type!r}"),
        (s.metric_type in METRIC_TYPES, f"METRIC_TYPE: expected one of {METRIC_TYPES}, got {s.metric_type!r}"),
        (s.search_backend in SEARCH_BACKENDS,
         f"SEARCH_BACKEND: expected one of {SEARCH_BACKENDS}, got {s.search_backend!r}"),
        (_is_number(s.replica_refresh) and 0 < s.replica_refresh <= 3600,
         f"REPLICA_REFRESH: expected a finite number of seconds, more than 0 and at most 3600, got {s.replica_refresh!r}"),
        (_is_int(s.seal_every) and s.seal_every >= 1024,
         f"SEAL_EVERY: expected a whole number >= 1024 (smaller segments are never indexed), got {s.seal_every!r}"),
    ]
    bools = ["per_action_memory", "probabilistic_choice", "use_hit_points", "display", "read_only", "drop_collection",
             "tensorboard"]
    rules += [(isinstance(getattr(s, name), bool), f"{name.upper()}: expected True or False, "
                                                    f"got {getattr(s, name)!r}") for name in bools]
    strings = ["preset", "milvus_uri", "milvus_token", "milvus_data_dir"]
    rules += [(isinstance(getattr(s, name), str), f"{name.upper()}: expected a string, "
                                                   f"got {getattr(s, name)!r}") for name in strings]
    return [message for ok, message in rules if not ok] + _environment_problems(s)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
