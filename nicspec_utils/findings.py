"""The words of the book's findings: a claim's checks summed up as one verdict."""

from __future__ import annotations

from collections.abc import Sequence


def verdict(checks: Sequence[bool], words: tuple[str, str, str] | None = None) -> str:
    """All checks pass -> reproduced, some -> partly, none -> not reproduced; none run -> n/a.

    ``words`` replaces (all, some, none), e.g. ``("observed", "partly observed", "not observed")``.
    A check decided by a point estimate belongs in :mod:`nicspec_utils.stats` instead (verdict
    from a paired bootstrap interval; :func:`nicspec_utils.stats.combine` for several).
    """
    yes, some, no = words or ("reproduced", "partly reproduced", "not reproduced")
    if not checks:
        return "not testable here"
    if all(checks):
        return yes
    return some if any(checks) else no
