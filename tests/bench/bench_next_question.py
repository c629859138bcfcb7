"""How long the interview waits for its next question: ``serve.next_questions`` on one case.

Figure
------
next question, one case (p50)
    Milliseconds of ``serve.next_questions(case, k=1)`` after the age and three red-flag answers
    (the interview's early steps, where most questions are left to score), on 60 generated cases
    (20 with ``--quick``), each timed twice and the second round kept. Reference: one
    ``vignettes.posterior`` call on the same one case, timed in turns with the figure, so both
    see the same machine. The target is at most 20 ms; the ratio says how many posterior calls
    one question costs (it scores every answer of every unasked question in one posterior call,
    then the article's rules on each hypothetical answer).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

import vignettes
from model.intake import validate_case, validate_frame
from serve.questions import next_questions
from tests.bench import result
from vignettes.schema import FIELD_NAMES, RED_FLAG_FIELDS

TARGET_MS = 20.0


def time_next_question(n_cases: int = 60, seed: int = 11) -> tuple[float, float]:
    """p50 milliseconds of ``serve.next_questions`` for one case, and of one posterior call on
    one case (the reference), measured in turns on the same cases."""
    cases = vignettes.generate(n_cases, seed)
    records = []
    for record in cases[list(FIELD_NAMES)].to_dict("records"):
        answers = validate_case({k: (None if pd.isna(v) else v) for k, v in record.items()})
        records.append({k: v for k, v in answers.items() if k in ("age", *RED_FLAG_FIELDS[:3])})
    nq, post = [], []
    for case in records * 2:
        frame = validate_frame(pd.DataFrame([case]))
        t0 = time.perf_counter()
        next_questions(case, k=1)
        t1 = time.perf_counter()
        vignettes.posterior(frame)
        t2 = time.perf_counter()
        nq.append(t1 - t0)
        post.append(t2 - t1)
    return float(np.median(nq[n_cases:]) * 1e3), float(np.median(post[n_cases:]) * 1e3)


def run(quick: bool = False) -> list[dict[str, Any]]:
    nq, post = time_next_question(20 if quick else 60)
    return [
        result(
            "next question, one case (p50)",
            nq,
            "ms",
            reference=post,
            ratio=nq / post,
            note=f"target at most {TARGET_MS:g} ms; serve.next_questions(case, k=1) after age and "
            "three red flags; reference: one vignettes.posterior call on one case, in turns in "
            "the same run",
        )
    ]
