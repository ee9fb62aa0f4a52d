"""Every knob of Resonant Vectors, in one place.

Edit the values here; ``main.py``'s flags override them for one run, and a notebook can
build variants with ``Settings.from_module(noise=0.2)`` without editing this file. Where no settings.py is
on Python's path (a notebook elsewhere), ``resonant_vectors`` reads its own copy of this file.
Names are read by ``config.Settings``: an UPPERCASE name here that it does not know is an error.
"""
import os

# --- The environment ---
ENV_ID = "LunarLander-v3"        # any Gymnasium environment with Box observations and Discrete actions, e.g.
                                 # CartPole-v1, Acrobot-v1, MountainCar-v0 (their scales: environments/profiles.py)

# --- The memory (resonator vectors and the decision) ---
STATE_VECTOR_SIZE = 9            # resonator dimension: the state dims + 1 success dim (LunarLander: 9; on another
                                 # ENV_ID the seed's 9, or None, means its own; another number must match it)
OUTPUT_VECTOR_SIZE = 4           # number of actions (LunarLander: 4: noop, left, main, right engine; on another
                                 # ENV_ID the seed's 4, or None, means its own; another number must match it)
NOISE = 0.1                      # std of the Gaussian noise added to each action's score
NOISE_FINAL = None               # None: NOISE throughout; else the noise falls linearly from NOISE to this...
NOISE_DECAY_TRIALS = 200         # ...over this many trials (a noise schedule), then stays there
NEIGHBOUR_WEIGHTING = "uniform"  # "uniform": every neighbour counts alike; "distance": by 1 / (L2 distance + 0.001)
MIN_RESULTS = 300                # neighbours fetched per decision (k of the nearest-neighbour search; per action
                                 # with PER_ACTION_MEMORY)
PER_ACTION_MEMORY = False        # False: one shared search, its neighbours split by action (the seed); True: each
                                 # action scored from the MIN_RESULTS nearest engrams that took it (a search each)
UNTRIED_ACTION_SCORE = 0.0       # the score of an action no neighbour took (0: the seed); higher makes it tried
EPSILON = 0.0                    # chance of a uniformly random action instead of the best (epsilon-greedy); 0: off
EPSILON_FINAL = None             # None: EPSILON throughout; else it falls linearly from EPSILON to this...
EPSILON_DECAY_TRIALS = 200       # ...over this many trials, then stays there (evaluation never explores)
PROBABILISTIC_CHOICE = False     # sample an action in proportion to (score - min) instead of argmax
VECTOR_COMPONENT_WEIGHTS = None  # weight of each normalised state dim in the resonator (a list, one per dim); None: all 1.0
SUCCESS_COMPONENT_WEIGHT = 1.0   # weight of the success value in the resonator (0: success plays no part in nearness)
STATE_SCALING = "fixed"          # "fixed": the environment's documented scales (environments/profiles.py); "spread": each
                                 # continuous dim also divided by its spread in the memory, learned as it grows (replica)

# --- Trials ---
MAX_TRIAL_LENGTH = 400           # frames per trial at most (the seed's 400; on another ENV_ID the seed's 400, or None,
                                 # means that environment's own limit)
ACTION_REPEAT = 1                # frames each decision's action is held for, rewards summed (1: a decision every frame)
USE_HIT_POINTS = True            # end a trial as a death when hit points fall below 0
HIT_POINTS = 1000                # hit points at the start of a trial
METABOLIC_COST = 0.2             # hit points lost each step on top of the step's reward
POPULATION_SIZE = 1              # landers acting at once on one shared memory (1 = the seed)
WORKERS = 1                      # processes that train one species on this machine, sharing its memory (main.py
                                 # --workers; each flies its share of the population); 1 = one process, the seed's
VECTOR_ENV = "sync"              # how a population's environments step: "sync" (one process, gymnasium.vector's
                                 # SyncVectorEnv) or "async" (a process per environment, AsyncVectorEnv)

# --- Success and credit ---
SUCCESS_WINDOW = 20              # trials in the running mean of success
SUCCESS_MARGIN = 0.05            # decisions query at mean success + this ("aim a little higher")
OUTCOME_RULE = "reward"          # "reward": the step's own reward (the seed); "return": the discounted return from it
DISCOUNT = 0.99                  # gamma of the "return" rule: return = r_t + gamma r_t+1 + gamma^2 r_t+2 ... to the trial's end
BOOTSTRAP_STEPS = 0              # "return" rule: 0 = to the trial's end; N = N steps, then the memory's value of that state
OUTCOME_REWARD_SCALE = 20.0      # the reward (or return) is divided by this, then clipped to [-1, 1]
SUCCESS_WEIGHT = 0.5             # outcome x (1 + this x trial success), clipped to [-1, 1]
NOVELTY_BONUS = 0.0              # reward added to each step's credit by how new its situation was to the memory (the
                                 # distance to its nearest engrams, see NOVELTY_RADIUS): exploration where the memory is
                                 # ignorant, fading as it covers the space; 0: none (the seed). Evaluation adds none
NOVELTY_RADIUS = 0.1             # the neighbours' distance (normalised state units) at which a situation is wholly new
REVALUE_EVERY = 0                # every this many trials, re-value every outcome from the memory (agent/revaluation.py):
                                 # reward / scale + DISCOUNT x the best action's value where the step led; 0: never
REVALUE_SWEEPS = 2               # sweeps of re-valuation per pass (each reads the outcomes the last one wrote)
REVALUE_BLEND = 0.5              # how far an outcome moves to its re-valued target per sweep (1: all the way)

# --- Presets: named sets of the values above, measured with bench/learning.py (docs/learning.md) ---
PRESET = ""                      # "" = the values in this file; a name from PRESETS applies its values on top
PRESETS = {
    # "episodic" (docs/learning.md): credit by the discounted return, the 50 nearest weighted by distance,
    # success out of the resonator, and the noise falling from 0.3 to 0.01 over 300 trials.
    "episodic": {
        "OUTCOME_RULE": "return", "DISCOUNT": 0.98, "OUTCOME_REWARD_SCALE": 200.0, "SUCCESS_WEIGHT": 0.0,
        "MIN_RESULTS": 50, "NEIGHBOUR_WEIGHTING": "distance", "SUCCESS_COMPONENT_WEIGHT": 0.0,
        "NOISE": 0.3, "NOISE_FINAL": 0.01, "NOISE_DECAY_TRIALS": 300,
    },
    # "landing" (docs/learning.md): each action scored from its own 50 nearest engrams on the
    # in-process replica, the angle and angular velocity weighted x2, credit by the discounted return,
    # epsilon-greedy exploration, LunarLander's own 1000-step limit and no hit points.
    "landing": {
        "SEARCH_BACKEND": "replica", "PER_ACTION_MEMORY": True, "MIN_RESULTS": 50, "NEIGHBOUR_WEIGHTING": "distance",
        "VECTOR_COMPONENT_WEIGHTS": [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0],
        "UNTRIED_ACTION_SCORE": 1.0, "OUTCOME_RULE": "return", "DISCOUNT": 0.99, "OUTCOME_REWARD_SCALE": 300.0,
        "SUCCESS_WEIGHT": 0.0, "SUCCESS_COMPONENT_WEIGHT": 0.0, "NOISE": 0.0,
        "EPSILON": 1.0, "EPSILON_FINAL": 0.02, "EPSILON_DECAY_TRIALS": 200,
        "MAX_TRIAL_LENGTH": 1000, "USE_HIT_POINTS": False,
    },
    # "landing_rule" (docs/environments.md): landing's decision and credit rule without what is LunarLander's own
    # (its resonator weights and trial length): for any environment.
    "landing_rule": {
        "SEARCH_BACKEND": "replica", "PER_ACTION_MEMORY": True, "MIN_RESULTS": 50, "NEIGHBOUR_WEIGHTING": "distance",
        "UNTRIED_ACTION_SCORE": 1.0, "OUTCOME_RULE": "return", "DISCOUNT": 0.99, "OUTCOME_REWARD_SCALE": 300.0,
        "SUCCESS_WEIGHT": 0.0, "SUCCESS_COMPONENT_WEIGHT": 0.0, "NOISE": 0.0,
        "EPSILON": 1.0, "EPSILON_FINAL": 0.02, "EPSILON_DECAY_TRIALS": 200, "USE_HIT_POINTS": False,
    },
    # "curious" (docs/environments.md): landing_rule, exploring where the memory is ignorant (NOVELTY_BONUS); chosen
    # on seeds 0-2 of CartPole, Acrobot and MountainCar, one rule for every environment.
    "curious": {
        "SEARCH_BACKEND": "replica", "PER_ACTION_MEMORY": True, "MIN_RESULTS": 50, "NEIGHBOUR_WEIGHTING": "distance",
        "UNTRIED_ACTION_SCORE": 1.0, "OUTCOME_RULE": "return", "DISCOUNT": 0.99, "OUTCOME_REWARD_SCALE": 300.0,
        "SUCCESS_WEIGHT": 0.0, "SUCCESS_COMPONENT_WEIGHT": 0.0, "NOISE": 0.0,
        "EPSILON": 1.0, "EPSILON_FINAL": 0.02, "EPSILON_DECAY_TRIALS": 200, "USE_HIT_POINTS": False,
        "NOVELTY_BONUS": 1.0, "NOVELTY_RADIUS": 0.2,
    },
    # "steady" (docs/learning.md): landing, with each action held for 4 frames (the discount per decision then
    # 0.99^4 = 0.96) and each state component scaled by its spread in the memory, learned as it grows; a
    # population of 8, as it was measured.
    "steady": {
        "SEARCH_BACKEND": "replica", "PER_ACTION_MEMORY": True, "MIN_RESULTS": 50, "NEIGHBOUR_WEIGHTING": "distance",
        "VECTOR_COMPONENT_WEIGHTS": [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0], "STATE_SCALING": "spread",
        "ACTION_REPEAT": 4, "POPULATION_SIZE": 8, "UNTRIED_ACTION_SCORE": 1.0, "OUTCOME_RULE": "return", "DISCOUNT": 0.96,
        "OUTCOME_REWARD_SCALE": 300.0, "SUCCESS_WEIGHT": 0.0, "SUCCESS_COMPONENT_WEIGHT": 0.0, "NOISE": 0.0,
        "EPSILON": 1.0, "EPSILON_FINAL": 0.02, "EPSILON_DECAY_TRIALS": 200,
        "MAX_TRIAL_LENGTH": 1000, "USE_HIT_POINTS": False,
    },
}

# --- The run ---
INSTANCE_NAME = "lander3"        # names the run and its Milvus collection
TRIALS = 1000                    # trials main.py trains for
SEED = 0                         # seeds the environment and the brain's noise; None = fresh entropy
DISPLAY = True                   # render the lander in a window (falls back to none without a display)
READ_ONLY = False                # decide from memory but store nothing
DROP_COLLECTION = True           # drop the instance's collection when a Trainer starts
KEPT_RUNS = 5                    # earlier runs a fresh start keeps, each with its memory, as instances
                                 # <instance>_<n> (the start past it removes the oldest); 0: drop, as the seed
TENSORBOARD = False              # also write each trial's figures for TensorBoard, in runs/<instance>/tb/
                                 # (tensorboard --logdir runs; needs pip install -e ".[tensorboard]")

# --- LunarLander's own arguments (None: its defaults; refused on another environment) ---
GRAVITY = None                   # between -12 and 0 (None: -10)
ENABLE_WIND = None               # wind and turbulence push the lander (None: off)
WIND_POWER = None                # between 0 and 20, used with ENABLE_WIND (None: 15)
TURBULENCE_POWER = None          # between 0 and 2, used with ENABLE_WIND (None: 1.5)
LANDER_MASS = None               # the lander body's mass as a factor of LunarLander's, 0.25 to 4 (None: 1)

# --- How the actions are wired (any environment) ---
ACTION_MAP = None                # a list, each action once: the brain's action a fires the environment's ACTION_MAP[a];
                                 # None: as numbered. A kind wired otherwise (main.py experiment kinds)

# --- Milvus ---
MILVUS_URI = os.environ.get("MILVUS_URI", "")      # empty: start the embedded server; else e.g. http://localhost:19530
MILVUS_TOKEN = os.environ.get("MILVUS_TOKEN", "")  # "user:password" or an API key, for secured servers
MILVUS_DATA_DIR = os.environ.get("MILVUS_DATA_DIR", ".milvus")  # the embedded server's data (git-ignored)
MILVUS_IDLE_GRACE = 60.0         # seconds the embedded server stays up after its last program ended (a next command reuses it)
MILVUS_CONNECT_TIMEOUT = 10.0    # seconds to wait for a server before giving up with an error
MILVUS_RETRY_TIMEOUT = 120.0     # seconds to keep retrying a request while Milvus is down or restarting
INDEX_TYPE = "IVF_FLAT"          # vector index of the engram collection: "IVF_FLAT", or "FLAT" (exact, slow when large)
METRIC_TYPE = "L2"               # distance between resonators (the only one: weights read its squared distances)
INDEX_NLIST = 1024               # IVF clusters of the Milvus index (the replica's grow with the memory: memory/replica.py)
SEARCH_NPROBE = 16               # IVF clusters searched per query (by Milvus and the replica)
SEAL_EVERY = 5000                # engrams between seals: unsealed engrams are searched by brute force (the
                                 # "milvus" backend; a replica seals once, when training ends)
SEARCH_BACKEND = "milvus"        # who answers decisions' searches: "milvus" (the seed's path: a request per
                                 # search) or "replica" (an in-process FAISS copy of the collection; Milvus
                                 # stays the store of record)
REPLICA_REFRESH = 1.0            # seconds: other writers' engrams reach a replica within this (plus a time tick)
