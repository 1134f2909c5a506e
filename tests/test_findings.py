"""The one verdict rule shared by every chapter's findings."""

from __future__ import annotations

import pytest

from nicspec_utils.findings import verdict


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([True, True], "reproduced"),
        ([True, False], "partly reproduced"),
        ([False, False], "not reproduced"),
        ([], "not testable here"),
    ],
)
def test_verdict(checks: list[bool], expected: str) -> None:
    assert verdict(checks) == expected


def test_verdict_with_other_words() -> None:
    words = ("observed", "partly observed", "not observed")
    assert verdict([True], words) == "observed"
    assert verdict([False, True], words) == "partly observed"
    assert verdict([False], words) == "not observed"
    assert verdict([], words) == "not testable here"
