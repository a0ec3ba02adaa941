"""The planted adherence trajectory design: shares and profiles a trajectory model can recover."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from oncopipe.methods.trajectories import SHARE_MIN
from oncopipe.synth import parameters as P

MONTHS = np.arange(60)


def test_shares_keep_the_published_shape_and_clear_the_adequacy_rule():
    shares = dict(P.TRAJECTORY_GROUPS)
    assert sum(shares.values()) == pytest.approx(1.0)
    # Memoli et al. 2021: 68.8 % continuous optimal adherence, 6.6 % immediate discontinuation.
    assert shares["continuously_adherent"] == pytest.approx(0.688, abs=0.03)
    assert shares["immediate_discontinuation"] == pytest.approx(0.066, abs=0.01)
    # A group planted at the 5 % rule is assigned under it about half the time (sampling, misclassification).
    assert min(shares.values()) >= SHARE_MIN + 0.015


def test_declining_groups_leave_the_adherent_one_within_the_first_year():
    adherent = P.trajectory_profile(0, MONTHS)
    for g in range(1, len(P.TRAJECTORY_GROUPS)):
        gap = adherent[1:13] - P.trajectory_profile(g, MONTHS[1:13])
        assert gap.mean() >= 0.1, (P.TRAJECTORY_GROUPS[g][0], gap.round(2))


def test_every_pair_of_groups_differs_over_the_first_two_years():
    first = MONTHS[:24]
    for a, b in itertools.combinations(range(len(P.TRAJECTORY_GROUPS)), 2):
        diff = np.abs(P.trajectory_profile(a, first) - P.trajectory_profile(b, first)).mean()
        assert diff >= 0.08, (P.TRAJECTORY_GROUPS[a][0], P.TRAJECTORY_GROUPS[b][0], round(diff, 3))


def test_profiles_are_pdc_values():
    for g in range(len(P.TRAJECTORY_GROUPS)):
        profile = P.trajectory_profile(g, MONTHS)
        assert ((profile >= 0) & (profile <= 1)).all()
    with pytest.raises(ValueError, match="unknown trajectory group"):
        P.trajectory_profile(len(P.TRAJECTORY_GROUPS), MONTHS)
