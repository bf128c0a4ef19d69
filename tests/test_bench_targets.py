"""The bench's targets table (bench/targets.py): what it reads off a run, and the bounds it puts
beside each target."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench import targets


def _result(name: str, **values: Any) -> SimpleNamespace:
    fields = {
        "p99_ms": 10.0,
        "connections": 32,
        "app_cpu_ms": 1.0,
        "db_cpu_ms": 0.5,
        "ratio_to_floor": 0.5,
        "requests": 5000,
        "approvals": None,
    }
    return SimpleNamespace(name=name, **{**fields, **values})


def _run(**extra: Any) -> SimpleNamespace:
    hot = {"connections": 16, "app_cpu_ms": 4.0, "db_cpu_ms": 1.0}
    rounds = [
        [
            _result(targets.POST_SPENDS, ratio_to_floor=0.2),
            _result(targets.HOT_CARD, p99_ms=60.0, **hot),
            _result("cursor page, first (1M)", p99_ms=10.0),
            _result("cursor page, last (1M)", p99_ms=12.0),
        ],
        [
            _result(targets.POST_SPENDS, ratio_to_floor=0.25),
            _result(targets.HOT_CARD, p99_ms=45.0, **hot),
            _result("cursor page, first (1M)", p99_ms=10.0),
            _result("cursor page, last (1M)", p99_ms=20.0),
        ],
    ]
    return SimpleNamespace(machine={"cpus": 2}, rounds=rounds, extra=extra)


def test_each_target_is_judged_from_the_run() -> None:
    ceiling = {
        "floor_cpu_ms": 1.5,
        "floor": {"statements": 2, "ceiling_x_floor": 1.0, "measured_x_floor": 1.0, "heads": []},
        targets.POST_SPENDS: {
            "statements": 11,
            "ceiling_x_floor": 0.3,
            "measured_x_floor": 0.25,
            "heads": ["SELECT FROM user", "INSERT spend"],
        },
    }
    found = targets.targets(
        _run(
            ceiling=ceiling,
            bulk_load={"1,000,000 spends": {"seconds": 480.0}},
            bulk_load_invariants={
                "audit_chain_valid": True,
                "totals_match": True,
                "unbalanced_journals": 0,
                "digest_mismatches": 0,
            },
        )
    )
    met = {t.target: t.met for t in found}
    assert met[f"{targets.POST_SPENDS}: at least 0.8 of its ceiling"] is True  # 0.25 / 0.3
    assert met[f"{targets.POST_SPENDS}: at least 0.35x the floor"] is False
    # The first round's p99 is over the target: every round must meet it.
    assert met[f"{targets.HOT_CARD}: p99 at most 50 ms in every round"] is False
    assert met["1,000,000 spends loaded in at most 10 minutes"] is True
    # The last page at 2x the first's p99 is not flat; a faster last page would be.
    assert (
        met["cursor pages: p99 flat from the first page to the last (none over 1.5x the first)"]
        is False
    )
    assert met[f"{targets.POST_SPENDS}: no budget query in a company without budgets"] is True
    hot = next(t for t in found if t.target.startswith(targets.HOT_CARD))
    # 16 connections x (4 + 1) ms / 2 cores: no queue of 16 waits less on average.
    assert "round 1 40.0, round 2 40.0 ms" in hot.bound
    spends = next(t for t in found if t.target.endswith("0.35x the floor"))
    assert "its statements alone keep it below the target" in spends.bound


def test_a_load_that_broke_an_invariant_misses_its_target_however_fast() -> None:
    found = targets.targets(
        _run(
            bulk_load={"1,000,000 spends": {"seconds": 100.0}},
            bulk_load_invariants={"audit_chain_valid": False},
        )
    )
    load = next(t for t in found if t.target.startswith("1,000,000"))
    assert load.met is False


def test_what_a_run_did_not_measure_says_so() -> None:
    found = targets.targets(SimpleNamespace(machine={"cpus": 2}, rounds=[[]], extra={}))
    assert {t.met for t in found} == {None}
    assert "not measured" in "\n".join(targets.as_markdown(found))


def test_a_last_page_faster_than_the_first_is_flat() -> None:
    pages = [
        _result("cursor page, first (1M)", p99_ms=140.0),
        _result("cursor page, middle (1M)", p99_ms=150.0),
        _result("cursor page, last (1M)", p99_ms=50.0),
    ]
    run = SimpleNamespace(machine={"cpus": 2}, rounds=[pages], extra={})
    cursor = next(t for t in targets.targets(run) if t.target.startswith("cursor pages"))
    assert cursor.met is True


def test_a_round_that_approves_is_bound_by_its_approvals_cpu() -> None:
    """The hot card's first measured run holds its approvals: while they last, the requests in
    flight wait for approvals' CPU (the 100 cards' scenario's), which the round's average hides.
    That bound is given when the approvals are more than 1% of the run's requests."""
    hot = {"connections": 16, "app_cpu_ms": 3.0, "db_cpu_ms": 1.0, "requests": 8000}
    approving = _result(targets.APPROVALS, app_cpu_ms=6.0, db_cpu_ms=2.0)
    rounds = [
        [approving, _result(targets.HOT_CARD, p99_ms=100.0, approvals=1000, **hot)],
        [approving, _result(targets.HOT_CARD, p99_ms=45.0, approvals=0, **hot)],
        [approving, _result(targets.HOT_CARD, p99_ms=45.0, approvals=80, **hot)],
    ]
    run = SimpleNamespace(machine={"cpus": 2}, rounds=rounds, extra={})
    card = next(t for t in targets.targets(run) if t.target.startswith(targets.HOT_CARD))
    assert card.met is False
    # 16 x (3 + 1) / 2 for every round; 16 x (6 + 2) / 2 while the first approves.
    assert card.bound.startswith(
        "least mean latency the CPU allows: round 1 32.0 (while it approves, 1000 of 8000 "
        "requests: 64.0), round 2 32.0, round 3 32.0 ms"
    )
