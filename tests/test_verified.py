"""eval.precision: bf16-verified: the bound's arithmetic, which questions it re-scores, and float32's answers."""

import json
from types import SimpleNamespace

import pytest
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM

from gap_pipeline.core.params import TrackedParams, parse_params
from gap_pipeline.models import MODEL_INFO_FILE
from gap_pipeline.scoring.evaluate import score_model
from gap_pipeline.scoring.verified import VerifiedLM, first_choice, gap_error_scale, is_decided
from tests.conftest import SHARED, with_shared_data


def test_first_choice_takes_the_first_of_equal_scores_as_numpy_argmax():
    assert first_choice([-2.0, -1.0, -1.0]) == 1


def test_gap_error_scale_is_the_largest_gap_change_per_weight():
    # Gap 0-1 moves from -1.0 (float32) to -0.4 (bfloat16): 0.6 over weights 1 + 2 = 0.2 per unit of weight.
    assert gap_error_scale([[-1.0, -0.6]], [[-1.2, -0.2]], [[1.0, 2.0]]) == pytest.approx(0.2)
    # A common shift of every choice moves no gap.
    assert gap_error_scale([[-1.5, -2.5]], [[-1.0, -2.0]], [[1.0, 1.0]]) == pytest.approx(0.0)


def test_is_decided_needs_a_lead_beyond_the_bound():
    # Lead of choice 1 over 0 is 1.0; bound 0.2 x (1 + 1.5) = 0.5: decided. Bound 0.4 x 2.5 = 1.0: not (strictly).
    assert is_decided([-3.0, -2.0], [1.0, 1.5], 0.2)
    assert not is_decided([-3.0, -2.0], [1.0, 1.5], 0.4)


class TableLM(LM):
    """Answers each request with a fixed log-likelihood and counts what it was asked."""

    def __init__(self, table: dict[tuple[int, int], float]):
        super().__init__()
        self.table, self.asked = table, []

    def loglikelihood(self, requests, disable_tqdm=False):
        self.asked += [(r.doc_id, r.idx) for r in requests]
        return [(self.table[(r.doc_id, r.idx)], False) for r in requests]

    def _encode_pair(self, context, continuation):  # one token per word, as HFLM's would return ids
        return context.split(), continuation.split()

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        raise NotImplementedError

    def generate_until(self, requests, disable_tqdm=False):
        raise NotImplementedError


def _task(metrics: list[str], output_type: str = "multiple_choice"):
    config = SimpleNamespace(metric_list=[{"metric": m} for m in metrics])
    return SimpleNamespace(OUTPUT_TYPE=output_type, config=config, doc_to_choice=lambda doc: doc["choices"])


def _requests(task: str, docs: dict[int, list[str]]) -> list[Instance]:
    return [Instance("loglikelihood", {"choices": choices}, ("question", " " + choice), idx, (task, doc, 1))
            for doc, choices in docs.items() for idx, choice in enumerate(choices)]


def test_float32_answers_the_calibration_and_every_undecided_question():
    choices = ["one", "two"]  # one token each, equal length: acc and acc_norm rank alike
    exact = {(0, 0): -1.0, (0, 1): -2.0,   # calibration: bfloat16 moves the gap by 0.2 -> k = 0.1
             (1, 0): -1.0, (1, 1): -3.0,   # lead 2.0 > 2 x 0.1 x 2 = 0.4: decided, bfloat16 kept
             (2, 0): -1.0, (2, 1): -1.3,   # bfloat16 flips this pick (lead -0.1): re-scored
             (3, 0): -2.0, (3, 1): -1.6}   # lead 0.3 <= 0.4: re-scored although bfloat16 picks right
    low = dict(exact) | {(0, 1): -2.2, (1, 0): -1.05, (2, 0): -1.4, (3, 0): -1.9}
    requests = _requests("mc", {doc: choices for doc in range(4)})
    lm = VerifiedLM(TableLM(low), TableLM(exact), calibration=1, safety=2.0, tasks={"mc": _task(["acc", "acc_norm"])})
    answers = [ll for ll, _ in lm.loglikelihood(requests)]
    # Per character the gap and the weights shrink alike (both choices are 3 characters): the same k.
    assert lm.bounds["mc"] == {"acc": pytest.approx(0.1), "acc_norm": pytest.approx(0.1)}
    assert lm.rescored == {("mc", 0): "calibration", ("mc", 2): "margin", ("mc", 3): "margin"}
    assert answers == [exact[k] for k in [(0, 0), (0, 1)]] + [low[(1, 0)], low[(1, 1)]] + \
        [exact[k] for k in [(2, 0), (2, 1), (3, 0), (3, 1)]]
    for doc in range(4):  # every pick is float32's
        pair = answers[2 * doc : 2 * doc + 2]
        assert first_choice(pair) == first_choice([exact[(doc, 0)], exact[(doc, 1)]])


def test_acc_norm_is_verified_on_its_own_scale():
    # acc picks choice 0 clearly; per character ("a" vs "bbbbbbbb") choice 1 leads by a hair: re-scored.
    exact = {(0, 0): -1.0, (0, 1): -5.0, (1, 0): -1.0, (1, 1): -7.9}
    low = dict(exact) | {(0, 0): -1.1}
    requests = _requests("mc", {0: ["a", "bbbbbbbb"], 1: ["a", "bbbbbbbb"]})
    lm = VerifiedLM(TableLM(low), TableLM(exact), calibration=1, safety=1.0, tasks={"mc": _task(["acc", "acc_norm"])})
    lm.loglikelihood(requests)
    assert lm.rescored[("mc", 1)] == "margin"
    only_acc = VerifiedLM(TableLM(low), TableLM(exact), calibration=1, safety=1.0, tasks={"mc": _task(["acc"])})
    only_acc.loglikelihood(requests)
    assert ("mc", 1) not in only_acc.rescored


def test_other_requests_are_scored_in_float32_only():
    exact = {(0, 0): -1.0, (0, 1): -2.0}
    low, high = TableLM(exact), TableLM(exact)
    lm = VerifiedLM(low, high, calibration=1, safety=4.0, tasks={"loss": _task([], output_type="loglikelihood")})
    lm.loglikelihood(_requests("loss", {0: ["x", "y"]}))
    assert low.asked == [] and high.asked == [(0, 0), (0, 1)] and lm.rescored == {}


def test_a_metric_read_from_the_values_is_refused_with_the_fix():
    lm = VerifiedLM(TableLM({}), TableLM({}), calibration=1, safety=4.0, tasks={"mc": _task(["brier_score"])})
    with pytest.raises(ValueError, match="brier_score.*eval.precision.mode: model"):
        lm.loglikelihood(_requests("mc", {0: ["x", "y"]}))


@pytest.mark.parametrize(("calibration", "safety"), [(0, 4.0), (16, 0.5)])
def test_a_bound_that_verifies_nothing_is_refused(calibration, safety):
    with pytest.raises(ValueError, match="eval.precision"):
        VerifiedLM(TableLM({}), TableLM({}), calibration=calibration, safety=safety)


def test_the_evaluate_stage_scores_a_choice_task_verified_and_a_dialogue_task_in_float32(tiny_model_dir, raw_params):
    """score_model, as the evaluate stage calls it, with eval.precision.mode: bf16-verified and runtime.dtype bf16."""
    raw = with_shared_data(raw_params)
    raw["eval"]["precision"] |= {"mode": "bf16-verified", "calibration": 2}
    raw["runtime"]["dtype"] = "bfloat16"  # the verified answers are float32's whatever runtime.dtype says
    for task in ("copa", "wizard_of_wikipedia"):
        raw["eval"]["tasks"][task]["limit"] = 4
    (tiny_model_dir / MODEL_INFO_FILE).write_text(json.dumps({"name": "tiny"}))
    params = TrackedParams(parse_params(raw))
    record, predictions = score_model(params, tiny_model_dir, "copa", SHARED / "benchmarks")
    assert record["run"]["precision"] == "bf16-verified" and record["run"]["dtype"] == "float32"
    assert [p["rescored"] for p in sorted(predictions, key=lambda p: p["doc_id"])][:2] == ["calibration"] * 2
    assert record["metrics"]["rescored"] >= 2 and set(record["run"]["bf16_gap_error"]["k"]) == {"acc"}
    record, predictions = score_model(params, tiny_model_dir, "wizard_of_wikipedia", SHARED / "benchmarks")
    assert record["run"]["precision"] == "model" and record["run"]["dtype"] == "bfloat16"
    assert "rescored" not in record["metrics"] and all("rescored" not in p for p in predictions)
