import pytest

from gap_pipeline.core.params import ParamsError, load_params, parse_params
from tests.conftest import PROJECT_ROOT


def test_project_params_are_valid():
    params = load_params(PROJECT_ROOT / "params.yaml")
    assert params.gap.corpus in params.all_corpora


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("gap", "steps", -1, r"gap\.steps = -1: Input should be greater than or equal to 0"),
        ("gap", "lr", 0.0, r"gap\.lr = 0\.0: Input should be greater than 0"),
        ("gap", "lr", "fast", r"gap\.lr = 'fast': Input should be a valid number"),
        ("gap", "max_length", 1, r"gap\.max_length = 1: Input should be greater than or equal to 2"),
        ("gap", "betas", [0.9, 1.5], r"gap.betas.1 = 1.5: Input should be less than 1"),
        ("gap", "corpus", "wikipedia", r"gap\.corpus = 'wikipedia' is not a corpus; allowed: \['github'"),
        ("gap", "stpes", 3, r"gap\.stpes = 3: unknown key"),
        ("runtime", "device", "gpu", r"runtime\.device = 'gpu'"),
        ("runtime", "dtype", "fp8", r"runtime\.dtype = 'fp8': Input should be 'auto', 'float32'"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(raw_params, section, key, value, message):
    raw_params[section][key] = value
    with pytest.raises(ParamsError, match=message):
        parse_params(raw_params)


def test_missing_key_is_named(raw_params):
    del raw_params["gap"]["seed"]
    with pytest.raises(ParamsError, match=r"gap\.seed: missing"):
        parse_params(raw_params)


def test_corpus_names_must_be_unique(raw_params):
    raw_params["hub_corpora"] = {"github": {"dataset": "x/y", "split": "train", "n": 1, "seed": 0,
                                            "text_field": "text", "id_field": None}}
    with pytest.raises(ParamsError, match=r"both have \['github'\]"):
        parse_params(raw_params)
