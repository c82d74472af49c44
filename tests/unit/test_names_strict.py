"""Names, versions and commits are whole-string matches: no trailing newline slips through."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from interlock.api.schemas import ItemIn
from interlock.domain.names import check_commit, check_service_name, check_version, parse_ref
from interlock.errors import InvalidInput


@pytest.mark.parametrize("bad", ["1.0\n", "1.0\n2", "1.0 2", "\n1.0", "1.0\r"])
def test_a_version_with_a_line_break_or_space_is_refused(bad):
    with pytest.raises(InvalidInput, match="not a valid version"):
        check_version(bad)
    with pytest.raises(InvalidInput):
        parse_ref(f"api@{bad}")


def test_a_service_name_with_a_trailing_newline_is_refused():
    with pytest.raises(InvalidInput, match="not a valid service name"):
        check_service_name("api\n")


@pytest.mark.parametrize("bad", ["abc;id", "abcdef1\n", "$(id)", "abc", "XYZ1234"])
def test_a_commit_must_be_a_git_commit_id(bad):
    with pytest.raises(InvalidInput, match="not a git commit id"):
        check_commit(bad)
    with pytest.raises(ValidationError, match="commit"):  # the API answers 422 naming it
        ItemIn(service="api", version="1.0", commit=bad)


def test_good_values_pass():
    assert check_version("1.4.2+build.7") == "1.4.2+build.7"
    assert check_commit("0a1b2c3d4e5f") == "0a1b2c3d4e5f"
    assert ItemIn(service="api", version="1.0", commit="0a1b2c3").commit == "0a1b2c3"
