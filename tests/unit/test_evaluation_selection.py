"""Choosing a sweep's arm: the gate, the Pareto frontier, the tie-break toward general data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mixtune.evaluation import GatePolicy
from mixtune.evaluation.selection import ArmScores, dominates, frontier, ranks_on_mmlu, select_arm


def arm(
    arm_id: str,
    domain: float,
    general: float,
    passes: bool = True,
    general_percent: float = 0.0,
    width: float | None = None,
) -> ArmScores:
    interval = (domain - width, domain + width) if width is not None else None
    return ArmScores(
        arm=arm_id,
        general_percent=general_percent,
        domain=domain,
        general=general,
        domain_interval=interval,
        passes=passes,
    )


def test_the_highest_domain_score_among_passing_arms_is_chosen() -> None:
    arms = [
        arm("a1", 0.90, 0.40, passes=False, general_percent=0),  # forgot too much
        arm("a2", 0.80, 0.49, general_percent=25, width=0.01),
        arm("a3", 0.70, 0.50, general_percent=50, width=0.01),
    ]
    selection = select_arm(arms)
    assert selection.verdict == "PROMOTE"
    assert selection.chosen == "a2"
    assert selection.frontier == ["a1", "a2", "a3"]
    assert selection.passing == ["a2", "a3"]


def test_arms_that_cannot_be_told_apart_prefer_more_general_data() -> None:
    arms = [
        arm("a1", 0.80, 0.49, general_percent=0, width=0.10),
        arm("a2", 0.78, 0.50, general_percent=25, width=0.10),
        arm("a3", 0.60, 0.51, general_percent=50, width=0.05),  # clearly lower: not a tie
    ]
    selection = select_arm(arms)
    assert selection.chosen == "a2"
    assert selection.tied == ["a1"]
    assert "more general data" in selection.reasons[-1]


def test_without_intervals_only_equal_scores_tie() -> None:
    arms = [arm("a1", 0.80, 0.49, general_percent=0), arm("a2", 0.79, 0.50, general_percent=25)]
    assert select_arm(arms).chosen == "a1"
    arms = [arm("a1", 0.80, 0.49, general_percent=0), arm("a2", 0.80, 0.50, general_percent=25)]
    assert select_arm(arms).chosen == "a2"


def test_no_passing_arm_rejects_and_still_reports_the_frontier() -> None:
    arms = [arm("a1", 0.9, 0.3, passes=False), arm("a2", 0.5, 0.5, passes=False), arm("a3", 0.4, 0.4, False)]
    selection = select_arm(arms)
    assert selection.verdict == "REJECT"
    assert selection.chosen is None
    assert selection.frontier == ["a1", "a2"]
    assert "frontier" in selection.reasons[-1]


def test_no_passing_arm_with_an_undecided_one_is_inconclusive_not_rejected() -> None:
    undecided = arm("a2", 0.5, 0.5, passes=False).model_copy(update={"verdict": "INCONCLUSIVE"})
    selection = select_arm([arm("a1", 0.9, 0.3, passes=False), undecided])
    assert selection.verdict == "INCONCLUSIVE" and selection.chosen is None
    assert any("too few eval items to decide for a2" in reason for reason in selection.reasons)


def test_an_arm_the_gate_could_not_confirm_does_not_block_one_it_did() -> None:
    # a1 beats a2 on both scores but its gate was undecided (a wide interval): a2 is kept.
    arms = [arm("a1", 0.9, 0.6, passes=False), arm("a2", 0.8, 0.5, passes=True)]
    selection = select_arm(arms)
    assert selection.chosen == "a2"
    assert selection.frontier == ["a1"]


# ---- properties ----------------------------------------------------------------------------

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False).map(lambda x: round(x, 2))
widths = st.one_of(st.none(), st.floats(min_value=0.0, max_value=0.2).map(lambda x: round(x, 2)))


@st.composite
def sweeps(draw: st.DrawFn, monotone: bool = False) -> list[ArmScores]:
    count = draw(st.integers(min_value=1, max_value=8))
    # A monotone gate: pass iff both scores clear thresholds (the point rule), so an arm that
    # beats a passing arm passes too.
    domain_floor, general_floor = draw(scores), draw(scores)
    arms = []
    for index in range(count):
        domain, general = draw(scores), draw(scores)
        passes = (domain >= domain_floor and general >= general_floor) if monotone else draw(st.booleans())
        arms.append(
            arm(
                f"a{index + 1}", domain, general, passes, draw(st.sampled_from([0, 10, 25, 50])), draw(widths)
            )
        )
    return arms


@settings(max_examples=300, deadline=None)
@given(sweeps())
def test_the_chosen_arm_passes_and_no_passing_arm_beats_it(arms: list[ArmScores]) -> None:
    selection = select_arm(arms)
    if not any(a.passes for a in arms):
        assert selection.verdict == "REJECT" and selection.chosen is None
        return
    chosen = next(a for a in arms if a.arm == selection.chosen)
    assert chosen.passes
    assert not any(dominates(other, chosen) for other in arms if other.passes)


@settings(max_examples=300, deadline=None)
@given(sweeps(monotone=True))
def test_under_a_monotone_gate_the_chosen_arm_is_on_the_frontier(arms: list[ArmScores]) -> None:
    selection = select_arm(arms)
    if selection.chosen is not None:
        assert selection.chosen in [a.arm for a in frontier(arms)]
        assert selection.chosen in selection.frontier


@settings(max_examples=300, deadline=None)
@given(sweeps(), st.data())
def test_adding_a_dominated_arm_never_changes_the_choice(arms: list[ArmScores], data: st.DataObject) -> None:
    passing = [a for a in arms if a.passes]
    if not passing or len(arms) >= 8:
        return
    over = data.draw(st.sampled_from(passing))
    # strictly below `over` on one score, at most equal on the other; any interval, any gate, any share
    domain = data.draw(st.floats(min_value=0.0, max_value=over.domain).map(lambda x: round(x, 2)))
    general = data.draw(st.floats(min_value=0.0, max_value=over.general).map(lambda x: round(x, 2)))
    if domain == over.domain and general == over.general:
        return
    extra = arm(
        f"a{len(arms) + 1}",
        domain,
        general,
        data.draw(st.booleans()),
        data.draw(st.sampled_from([0, 10, 25, 50, 90])),
        data.draw(widths),
    )
    assert dominates(over, extra)
    before, after = select_arm(arms), select_arm([*arms, extra])
    assert after.chosen == before.chosen
    assert after.frontier == before.frontier


@settings(max_examples=200, deadline=None)
@given(sweeps())
def test_the_choice_does_not_depend_on_the_arms_order(arms: list[ArmScores]) -> None:
    assert select_arm(arms).chosen == select_arm(list(reversed(arms))).chosen


def test_arms_are_ranked_on_the_general_loss_when_the_gate_caps_it() -> None:
    tuned = [
        {"mmlu_accuracy": 0.35, "general_loss": 2.1},
        {"mmlu_accuracy": 0.325, "general_loss": 0.56},
    ]
    assert ranks_on_mmlu(tuned, GatePolicy())
    assert not ranks_on_mmlu(tuned, GatePolicy(max_general_loss_increase=0.25))
    # an arm without the held-out loss: MMLU, the measure every arm has
    assert ranks_on_mmlu([*tuned, {"mmlu_accuracy": 0.3}], GatePolicy(max_general_loss_increase=0.25))
    assert not ranks_on_mmlu([{"general_loss": 0.5}], GatePolicy())
