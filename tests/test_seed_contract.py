"""The seed's contract: settings.py keeps every default the seed documents, and the seed's classes run
on those values as the seed's README uses them."""
from __future__ import annotations

import numpy as np

import settings
from engram import EngramStore
from EngramBrain import EngramBrain
from resonant_vectors import TrialCallback
from Trainer import Trainer
from WeightedResonatorFactory import WeightedResonatorFactory

SEED_DEFAULTS = {"STATE_VECTOR_SIZE": 9, "OUTPUT_VECTOR_SIZE": 4, "NOISE": 0.1, "MIN_RESULTS": 300,
                 "MAX_TRIAL_LENGTH": 400, "METABOLIC_COST": 0.2, "DISPLAY": True, "READ_ONLY": False,
                 "DROP_COLLECTION": True}


def test_settings_py_keeps_every_default_the_seed_documents():
    assert {name: getattr(settings, name) for name in SEED_DEFAULTS} == SEED_DEFAULTS


def test_the_seeds_brain_and_store_run_on_the_values_of_settings_py(main_on_test_server, collection_name):
    store = EngramStore(collection_name, reset=True)
    try:
        state = np.zeros(settings.STATE_VECTOR_SIZE - 1)
        brain = EngramBrain(settings.STATE_VECTOR_SIZE, settings.OUTPUT_VECTOR_SIZE, store,
                            WeightedResonatorFactory(np.ones(settings.STATE_VECTOR_SIZE - 1)))
        assert brain.decide(state, success=0.0).shape == (settings.OUTPUT_VECTOR_SIZE,)
        engram = brain.apply_feedback(state, action=2, outcome=0.5, success=0.1)
        assert len(engram.vector) == settings.STATE_VECTOR_SIZE and store.get_count() == 1
        [(found, _)] = store.nearest(engram.vector, 1)
        assert (found.action, round(found.outcome, 3)) == (2, 0.5)
    finally:
        store.drop()
        store.close()


class StopAfterSteps(TrialCallback):
    def __init__(self, steps: int) -> None:
        self.steps, self.seen = steps, 0

    def on_step(self, loop, landers, actions, rewards):
        self.seen += 1
        return self.seen < self.steps


def test_the_seeds_trainer_trains_as_the_seeds_readme_says(main_on_test_server, collection_name):
    with Trainer(collection_name, clear_collection=True) as trainer:  # every other value from settings.py
        trainer.train(2)
        assert [record.trial for record in trainer.metrics] == [0, 1]
        assert all(record.length <= settings.MAX_TRIAL_LENGTH for record in trainer.metrics)
        records = []
        stopper = StopAfterSteps(5)
        trainer.train(5, callback=[records.append, stopper])  # a function and a TrialCallback, as in SB3
        assert stopper.seen >= 5 and len(records) == 1  # the step callback's False: the trial in flight ends
        assert trainer.store.get_count() == sum(record.length for record in trainer.metrics)
