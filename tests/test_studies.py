"""Every shipped study file loads, opens with its question, and the default one is the default."""

import tomllib
from dataclasses import fields, replace
from pathlib import Path

import pytest

from autolambda.run.config import StudyConfig, config_from_dict, load_config

STUDIES = sorted((Path(__file__).parent.parent / "studies").glob("*.toml"))

# What each file is about, spelled out: (study name, dataset, penalty, optimizer, lambda0).
HEADLINE = {
    "digits_l2.toml": ("digits-l2", "digits", "l2", "adam", (1e-5, 1e-1)),
    "digits_l1.toml": ("digits-l1", "digits", "l1", "adam", (1e-8, 1e-2)),
    "digits_weight_decay.toml": ("digits-weight_decay", "digits", "weight_decay", "adamw", (1e-5, 1.0)),
    "fashion_mnist_l2.toml": ("fashion_mnist-l2", "fashion_mnist", "l2", "adam", (1e-5, 1e-1)),
}


def _plain(value):
    """TOML's lists and the config's tuples compare alike."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def test_the_four_studies_exist():
    names = {p.name for p in STUDIES}
    assert set(HEADLINE) <= names


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_study_file_loads_and_states_its_question(path):
    text = path.read_text()
    assert text.startswith("# Question:")
    config = load_config(path)
    name, dataset, penalty, optimizer, lambda0 = HEADLINE[path.name]
    assert (config.name, config.dataset, config.space.penalty, config.space.optimizer, config.space.lambda0) == (
        name, dataset, penalty, optimizer, lambda0)
    # Every setting the file writes is the loaded value; every other one is the default.
    written = tomllib.loads(text)
    space = written.pop("space", {})
    default = load_config()
    for f in fields(StudyConfig):
        if f.name == "space":
            continue
        expected = written[f.name] if f.name in written else getattr(default, f.name)
        assert _plain(getattr(config, f.name)) == _plain(expected), f.name
    loaded_space, default_space = config.space.to_dict(), default.space.to_dict()
    assert set(space) <= set(loaded_space)
    for key, value in loaded_space.items():
        assert _plain(value) == _plain(space.get(key, default_space[key])), f"space.{key}"
    # What the workers are handed loads back as the same configuration.
    assert config_from_dict(config.to_dict()) == replace(config, study_name=config.name)


def test_default_study_file_spells_out_the_defaults():
    """digits_l2.toml names the budget, pruner and sampler the CLI uses when given no file."""
    config = load_config(Path(__file__).parent.parent / "studies" / "digits_l2.toml")
    assert (config.trials, config.epochs, config.pruner, config.sampler) == (200, 80, "answer-aware", "design")
    assert config == load_config()


def test_study_names_differ_by_penalty():
    names = {load_config(p).name for p in STUDIES}
    assert len(names) == len(STUDIES)
