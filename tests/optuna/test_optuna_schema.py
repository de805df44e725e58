"""qhpo._optuna_schema against the installed Optuna: the keys, the typed accessors and the
private names it reads, on a real SQLite study."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from qhpo import _optuna_schema as schema

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture()
def study(tmp_path):
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'q.db'}", direction="maximize")


def test_every_key_is_listed_once_with_its_place_type_and_meaning():
    keys = [a.key for a in schema.ATTRIBUTES.values()]
    assert len(keys) == len(set(keys)) == 29
    assert schema.ATTRIBUTES["qhpo.alive"] is schema.ALIVE and schema.ALIVE.on == "trial" and schema.ALIVE.type is float
    assert schema.ATTRIBUTES["qhpo.settings"].on == "study"
    assert schema.OWNER_ATTR == "qhpo.owner" and schema.PREDICTOR_ATTR_PREFIX == "qhpo.predictor."


def test_an_attribute_is_written_through_the_storage_and_read_back_typed(study):
    trial = study.ask()
    frozen = study.trials[0]  # a snapshot, as a pruner gets it: it has no set_user_attr
    schema.STOP.write(study, frozen, {"epoch": 2, "decision": "stop"})
    assert schema.STOP.get(schema.stored_trial(study, frozen)) == {"epoch": 2, "decision": "stop"}
    assert schema.ALIVE.get(schema.stored_trial(study, trial), 0.0) == 0.0  # absent: the default
    study.tell(trial, 0.5)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        schema.STOP.write(study, frozen, {})  # Optuna refuses attributes of a finished trial
    study.set_user_attr(schema.MAX_EPOCHS_ATTR, 20)
    assert schema.MAX_EPOCHS.get(study) == 20


def test_the_private_names_reach_the_storage_ids_and_enqueued_parameters(study, tmp_path):
    study.enqueue_trial({"x": 0.25})
    enqueued = study.ask()
    enqueued.suggest_float("x", 0, 1)
    sampled = study.ask()
    sampled.suggest_float("x", 0, 1)
    first, second = study.get_trials(deepcopy=False)
    assert schema.enqueued_params(first) == {"x": 0.25} and schema.was_enqueued(first)
    assert schema.enqueued_params(second) == {} and not schema.was_enqueued(second)
    assert schema.trial_id(enqueued) == schema.trial_id(first) != schema.trial_id(sampled)
    assert schema.trial_by_number(study, 1).number == 1
    with pytest.raises(KeyError):
        schema.trial_by_number(study, 7)
    assert schema.trial_by_number(study, 0).state == TrialState.RUNNING
    again = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path / 'q.db'}")
    assert schema.study_id(again) == schema.study_id(study)
    assert schema.study_key(again) != schema.study_key(study)  # another storage object: another study as seen here
    assert isinstance(schema.storage_of(study), optuna.storages.BaseStorage)
