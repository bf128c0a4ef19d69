"""The performance targets, read off one bench run: each target, what the run measured, the bound
beside it (the ceiling, or what the machine allows), and whether it is met.

A bound says why a target is out of reach when it is: a ratio above the scenario's ceiling would
need fewer statements, not faster Python; a p99 below what the queue allows would need less CPU
a request. `report` in `bench/run.py` writes this table into the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

POST_SPENDS = "POST /spends (20 rules)"
HOT_CARD = "card auth, one card (16 conns)"
# Approvals only (100 cards far from their limits): what an approval costs.
APPROVALS = "card auth, 100 cards"
CURSOR = "cursor page, "
OF_CEILING = 0.8
POST_SPENDS_X_FLOOR = 0.35
HOT_CARD_P99_MS = 50.0
LOAD_SECONDS = 600.0
LOAD_SPENDS = "1,000,000 spends"
# "Flat": no later cursor page's p99 more than this times the first page's (the last page,
# which holds the fewest rows, may well be faster).
FLAT = 1.5


class _Run(Protocol):
    machine: dict[str, Any]
    rounds: list[list[Any]]
    extra: dict[str, Any]


@dataclass(frozen=True)
class Target:
    target: str
    reading: str
    bound: str
    met: bool | None  # None: not measured in this run


def targets(run: _Run) -> list[Target]:
    found: list[Target] = []
    ceilings: dict[str, Any] = {
        name: c for name, c in run.extra.get("ceiling", {}).items() if name != "floor_cpu_ms"
    }
    for name, c in ceilings.items():
        if name == "floor" or not c.get("measured_x_floor"):
            continue
        share = c["measured_x_floor"] / c["ceiling_x_floor"]
        found.append(
            Target(
                f"{name}: at least {OF_CEILING} of its ceiling",
                f"{c['measured_x_floor']}x the floor, {share:.2f} of its ceiling",
                f"ceiling {c['ceiling_x_floor']}x ({c['statements']} statements)",
                share >= OF_CEILING,
            )
        )
    found.append(_post_spends(run, ceilings.get(POST_SPENDS)))
    found.append(_hot_card(run))
    found.append(_load(run))
    found.append(_cursor_pages(run))
    if POST_SPENDS in ceilings:
        heads = ceilings[POST_SPENDS]["heads"]
        budget = [h for h in heads if "budget" in h]
        found.append(
            Target(
                f"{POST_SPENDS}: no budget query in a company without budgets",
                f"{len(heads)} statements, {len(budget)} about budgets",
                "the statements one submission sent (the ceiling's capture)",
                not budget,
            )
        )
    return found


def _post_spends(run: _Run, ceiling: dict[str, Any] | None) -> Target:
    target = f"{POST_SPENDS}: at least {POST_SPENDS_X_FLOOR}x the floor"
    measured = _by_name(run.rounds[-1]).get(POST_SPENDS) if run.rounds else None
    if measured is None:
        return Target(target, "not run", "", None)
    ratio = measured.ratio_to_floor
    if ceiling is None:
        return Target(target, f"{ratio}x", "no ceiling measured", ratio >= POST_SPENDS_X_FLOOR)
    limit = ceiling["ceiling_x_floor"]
    why = " (its statements alone keep it below the target)" if limit < POST_SPENDS_X_FLOOR else ""
    return Target(target, f"{ratio}x", f"ceiling {limit}x{why}", ratio >= POST_SPENDS_X_FLOOR)


def _hot_card(run: _Run) -> Target:
    """Every round's p99, beside the least mean latency its CPU a request allows: with the
    cores saturated, `connections` requests in flight each wait for the others' CPU, so the mean
    is at least connections x CPU a request / cores (wrk's own CPU left out: the bound errs low).

    A round whose measured run holds the card's approvals (its first) has two phases: while the
    card approves, every request in flight waits for approvals' CPU, which the round's average
    (mostly declines) hides. That phase's bound takes an approval's CPU from the scenario that
    only approves (`APPROVALS`, the same round); it decides the p99 when the approvals are more
    than 1% of the run's requests."""
    target = f"{HOT_CARD}: p99 at most {HOT_CARD_P99_MS:.0f} ms in every round"
    rounds = [(_by_name(r).get(HOT_CARD), _by_name(r).get(APPROVALS)) for r in run.rounds]
    measured = [(hot, approving) for hot, approving in rounds if hot is not None]
    if not measured:
        return Target(target, "not run", "", None)
    cores = int(run.machine.get("cpus") or 1)

    def least_mean(connections: int, result: Any) -> float:
        return connections * ((result.app_cpu_ms or 0.0) + (result.db_cpu_ms or 0.0)) / cores

    bounds = []
    for number, (hot, approving) in enumerate(measured, start=1):
        bound = f"{least_mean(hot.connections, hot):.1f}"
        approvals = hot.approvals or 0
        if approving is not None and approvals * 100 > hot.requests:
            bound += (
                f" (while it approves, {approvals} of {hot.requests} requests: "
                f"{least_mean(hot.connections, approving):.1f})"
            )
        bounds.append(f"round {number} {bound}")
    hot_results = [hot for hot, _ in measured]
    return Target(
        target,
        "p99 " + ", ".join(f"{r.p99_ms:.1f}" for r in hot_results) + " ms by round",
        "least mean latency the CPU allows: "
        + ", ".join(bounds)
        + f" ms ({hot_results[0].connections} connections x CPU a request / {cores} cores)",
        all(r.p99_ms <= HOT_CARD_P99_MS for r in hot_results),
    )


def _load(run: _Run) -> Target:
    target = f"{LOAD_SPENDS} loaded in at most {LOAD_SECONDS / 60:.0f} minutes"
    loaded = run.extra.get("bulk_load", {}).get(LOAD_SPENDS)
    if loaded is None:
        return Target(target, "not run (`--large`)", "", None)
    checked = run.extra.get("bulk_load_invariants", {})
    kept = (
        checked.get("audit_chain_valid")
        and checked.get("totals_match")
        and checked.get("unbalanced_journals") == 0
        and checked.get("digest_mismatches") == 0
    )
    return Target(
        target,
        f"{loaded['seconds']} s",
        "invariants checked afterwards: " + ("all hold" if kept else f"{checked}"),
        loaded["seconds"] <= LOAD_SECONDS and bool(kept),
    )


def _cursor_pages(run: _Run) -> Target:
    target = f"cursor pages: p99 flat from the first page to the last (none over {FLAT}x the first)"
    pages = [r for r in (run.rounds[-1] if run.rounds else []) if r.name.startswith(CURSOR)]
    if not pages:
        return Target(target, "not run", "", None)
    first, later = pages[0].p99_ms, [r.p99_ms for r in pages[1:]]
    return Target(
        target,
        ", ".join(f"{r.name.removeprefix(CURSOR)} {r.p99_ms:.1f} ms" for r in pages),
        f"slowest later page / first {max(later, default=first) / first:.2f}",
        all(p <= FLAT * first for p in later),
    )


def _by_name(results: list[Any]) -> dict[str, Any]:
    return {r.name: r for r in results}


def as_markdown(found: list[Target]) -> list[str]:
    lines = ["| target | reading | bound | met |", "|---|---|---|---|"]
    for t in found:
        met = "not measured" if t.met is None else ("yes" if t.met else "**no**")
        lines.append(f"| {t.target} | {t.reading} | {t.bound} | {met} |")
    return lines
