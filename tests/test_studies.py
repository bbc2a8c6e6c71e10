"""Every shipped study file loads, opens with its question, and the default one is the default."""

from pathlib import Path

import pytest

from autolambda.run.config import StudyConfig, load_config

STUDIES = sorted((Path(__file__).parent.parent / "studies").glob("*.toml"))


def test_the_four_studies_exist():
    names = {p.name for p in STUDIES}
    assert {"digits_l2.toml", "digits_l1.toml", "digits_weight_decay.toml", "fashion_mnist_l2.toml"} <= names


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_study_file_loads_and_states_its_question(path):
    assert path.read_text().startswith("# Question:")
    config = load_config(path)
    assert isinstance(config, StudyConfig)


def test_default_study_file_is_the_default():
    assert load_config(Path(__file__).parent.parent / "studies" / "digits_l2.toml") == load_config()


def test_study_names_differ_by_penalty():
    names = {load_config(p).name for p in STUDIES}
    assert len(names) == len(STUDIES)
