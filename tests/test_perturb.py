"""Alternative worlds (vignettes.perturb): valid, seeded, within their stated widths."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import vignettes
from vignettes.knowledge import KnowledgeError, parse_knowledge
from vignettes.perturb import perturb, swing, uncertainties
from vignettes.schema import CAUSES


@pytest.fixture(scope="module")
def kb() -> vignettes.KnowledgeBase:
    return vignettes.load_knowledge()


def _fever_given_infection(world: vignettes.KnowledgeBase) -> float:
    """P(fever | infection), any cause: the serious condition's share of the noisy-OR."""
    k = vignettes.SERIOUS_CONDITIONS.index("infection")
    return float(world.tables["fever"][0, 0, k, 0, 1])  # values (False, True)


def test_every_table_has_a_sourced_width(kb: vignettes.KnowledgeBase) -> None:
    widths = uncertainties(kb)
    assert len(widths) >= 40
    assert all(w.sd > 0 and w.source for w in widths.values())
    assert {"priors.primary_care", "fields.fever", "serious.malignancy"} <= set(widths)


def test_a_table_without_a_width_is_refused(kb: vignettes.KnowledgeBase) -> None:
    doc = copy.deepcopy(kb.document)
    del doc["uncertainty"]["tables"]["fields.fever"]
    with pytest.raises(KnowledgeError, match=r"missing \['fields.fever'\]"):
        uncertainties(parse_knowledge(doc))
    doc = copy.deepcopy(kb.document)
    doc["uncertainty"]["tables"]["fields.fever"]["sd"] = -1
    with pytest.raises(KnowledgeError, match=r"fields.fever.sd"):
        uncertainties(parse_knowledge(doc))


def test_the_same_seed_gives_the_same_world_and_another_seed_another(
    kb: vignettes.KnowledgeBase,
) -> None:
    a, b, c = perturb(kb, seed=4), perturb(kb, seed=4), perturb(kb, seed=5)
    assert np.array_equal(a.prior, b.prior) and np.array_equal(a.serious, b.serious)
    assert not np.allclose(a.prior, c.prior)
    for name in kb.tables:
        assert np.array_equal(a.tables[name], b.tables[name]), name


def test_scale_zero_gives_the_starting_world_back(kb: vignettes.KnowledgeBase) -> None:
    same = perturb(kb, seed=3, scale=0.0)
    assert np.allclose(same.prior, kb.prior) and np.allclose(same.serious, kb.serious)
    for name in kb.tables:
        assert np.allclose(same.tables[name], kb.tables[name]), name


def test_only_the_chosen_table_moves(kb: vignettes.KnowledgeBase) -> None:
    world = perturb(kb, seed=2, tables=["fields.fever"])
    assert _fever_given_infection(world) != pytest.approx(_fever_given_infection(kb))
    assert np.array_equal(world.prior, kb.prior)
    assert np.array_equal(world.tables["weakness"], kb.tables["weakness"])
    with pytest.raises(KnowledgeError, match="unknown tables"):
        perturb(kb, seed=2, tables=["fields.fevr"])


def test_many_worlds_are_valid_and_stay_near_their_widths(kb: vignettes.KnowledgeBase) -> None:
    """Every world parses (distributions add to 1, probabilities in range), and a table's
    numbers move by about their stated width on the logit scale."""
    moves = []
    for seed in range(60):
        world = perturb(kb, seed=seed)
        assert np.allclose(world.prior.sum(axis=1), 1.0)
        assert (world.serious >= 0).all() and np.allclose(world.serious.sum(axis=-1), 1.0)
        p0, p1 = _fever_given_infection(kb), _fever_given_infection(world)
        moves.append(np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0)))
    # fever's sensitivity is the noisy-OR of the infection term with the cause default; its
    # logit moves with the infection term's width (0.6), a little less through the OR
    spread = float(np.std(moves))
    assert 0.3 < spread < 0.8, spread


def test_a_swing_moves_one_way_then_the_other(kb: vignettes.KnowledgeBase) -> None:
    up, down = swing("fields.fever", 1, kb), swing("fields.fever", -1, kb)
    assert _fever_given_infection(down) < _fever_given_infection(kb) < _fever_given_infection(up)
    high, low = swing("serious.malignancy", 1, kb), swing("serious.malignancy", -1, kb)
    k = vignettes.SERIOUS_CONDITIONS.index("malignancy")
    assert low.serious[..., k].sum() < kb.serious[..., k].sum() < high.serious[..., k].sum()
    top = int(kb.prior[0].argmax())
    sharper, flatter = swing("priors.primary_care", 1, kb), swing("priors.primary_care", -1, kb)
    assert flatter.prior[0, top] < kb.prior[0, top] < sharper.prior[0, top]
    assert np.allclose(sharper.prior.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="direction"):
        swing("fields.fever", 0, kb)


def test_generate_and_posterior_accept_a_world(kb: vignettes.KnowledgeBase) -> None:
    world = perturb(kb, seed=9)
    df = vignettes.generate(3_000, seed=1, knowledge=world)
    post = vignettes.posterior(df, knowledge=world)
    assert np.allclose(post[list(CAUSES)].sum(axis=1), 1.0)
    # the world's own posterior beats the default world's on the world's cases
    default = vignettes.posterior(df)
    y = df["cause"].cat.codes.to_numpy()

    def log_loss(p: np.ndarray) -> float:
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1)).mean())

    assert log_loss(post[list(CAUSES)].to_numpy()) < log_loss(default[list(CAUSES)].to_numpy())
