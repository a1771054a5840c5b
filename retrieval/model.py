"""The small fitted models the answerer decides with, as plain numbers (no scikit-learn at run time).

Three logistic models over named signals:

* ``selection``: how likely a candidate sentence is the one that answers (its features: ``candidates.FEATURES``);
* ``direct``: how likely the best verified sentence answers the question rightly: the calibrated
  ``confidence`` of a direct answer (its signals: ``QUESTION_SIGNALS``);
* ``covered``: how likely the report covers the question's topic at all (a related reply rather than a refusal).

``reportqa train`` fits them on the evaluation sets and writes ``data/models/answer-model.json``;
``reportqa eval --cross-validate`` fits them on every report but one and scores the one left out.
Without a model file the answerer uses ``HEURISTIC``, weights set by hand to the old fixed thresholds.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .candidates import FEATURES

QUESTION_SIGNALS = (
    "best_score", "best_sim", "best_coverage", "best_clause_coverage", "top_sim", "top_passage_sim",
    "passage_coverage", "missing_share", "any_verified", "anchors_missing", "kind_missing", "wants_quantity",
    "wants_list", "margin",
)


@dataclass(frozen=True)
class Logistic:
    """p = sigmoid(intercept + Σ coef·x) over named inputs (a missing input counts as 0)."""

    inputs: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float

    def logit(self, values: dict[str, float]) -> float:
        return self.intercept + sum(c * values.get(name, 0.0) for name, c in zip(self.inputs, self.coef))

    def prob(self, values: dict[str, float]) -> float:
        z = self.logit(values)
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


@dataclass(frozen=True)
class AnswerModel:
    selection: Logistic
    direct: Logistic
    covered: Logistic
    direct_threshold: float = 0.5  # a direct answer at or above this confidence
    covered_threshold: float = 0.5  # below it, a refusal rather than a related reply
    trained_on: tuple[str, ...] = field(default=())  # the reports the model was fitted on

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, row: dict) -> "AnswerModel":
        def logistic(part: dict) -> Logistic:
            return Logistic(tuple(part["inputs"]), tuple(float(c) for c in part["coef"]), float(part["intercept"]))

        return cls(logistic(row["selection"]), logistic(row["direct"]), logistic(row["covered"]),
                   float(row["direct_threshold"]), float(row["covered_threshold"]), tuple(row.get("trained_on", ())))

    @classmethod
    def load(cls, path: Path) -> "AnswerModel":
        """The model in ``path``; ValueError naming the file when it is not one."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not an answer model ({type(exc).__name__}: {exc}); "
                             "run `reportqa train` to write one") from None


def _weights(inputs: tuple[str, ...], **coef: float) -> tuple[float, ...]:
    return tuple(coef.get(name, 0.0) for name in inputs)


# Hand-set weights that behave like the old fixed gate (cosine 0.84/0.91, coverage 0.4), so that a
# service without a trained model still answers sensibly.
HEURISTIC = AnswerModel(
    selection=Logistic(FEATURES, _weights(FEATURES, sim=40.0, coverage=4.0, coverage_context=2.0, kind_ok=3.0,
                                          anchors_ok=2.0, is_heading=-2.0, in_notes=-2.0), -40.0),
    direct=Logistic(QUESTION_SIGNALS, _weights(QUESTION_SIGNALS, best_sim=60.0, best_coverage=8.0, any_verified=20.0,
                                               missing_share=-4.0), -75.0),
    covered=Logistic(QUESTION_SIGNALS, _weights(QUESTION_SIGNALS, top_sim=60.0, passage_coverage=6.0,
                                                missing_share=-3.0), -52.0),
)
