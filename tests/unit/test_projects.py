"""What a projectId may be: any non-empty string on the embedded store, an RFC 1123 label (the
namespace) in Kubernetes mode, refused with a 422 issue that names the field."""

from __future__ import annotations

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from kms_api.appstate import SETTINGS
from kms_api.http.error_replies import status_of
from kms_api.schema import projects
from kms_api.schema.fields import INVALID, DnsLabel
from kms_api.settings import Settings
from kms_core.errors import Issue, ValidationFailure

GOOD = ["a", "team-a", "0", "a1-b2-c3", "x" * 63]
BAD = ["", "-a", "a-", "A", "team.a", "team/a", "../x", "a b", "a\nb", "é", "x" * 64, "a%2Fb", "a?b"]


def app(store: str) -> web.Application:
    application = web.Application()
    application[SETTINGS] = Settings(store=store)
    return application


@pytest.mark.parametrize("value", GOOD)
def test_namespace_names_pass(value: str) -> None:
    projects.check(app("kubernetes"), {"projectId": value})
    assert DnsLabel("projectId").parse(value, ("projectId",), []) == value


@pytest.mark.parametrize("value", BAD)
def test_anything_else_is_a_validation_failure_in_kubernetes_mode(value: str) -> None:
    with pytest.raises(ValidationFailure) as info:
        projects.check(app("kubernetes"), {"projectId": value})
    assert status_of(info.value) == (422, "ValidationFailure")
    [issue] = info.value.issues
    assert issue.path == ("projectId",) and issue.code == "invalid_string"
    assert "Kubernetes namespace name" in issue.message
    # The embedded store keeps Infisical's free-form project slugs.
    projects.check(app("embedded"), {"projectId": value})


def test_non_strings_and_routes_without_a_project() -> None:
    issues: list[Issue] = []
    assert DnsLabel("projectId").parse(7, ("projectId",), issues) is INVALID
    assert issues[0].message == "Invalid input: expected string, received number"
    projects.check(app("kubernetes"), {"name": "no-project-here"})


@given(st.text(max_size=70))
def test_whatever_passes_is_one_url_segment(value: str) -> None:
    issues: list[Issue] = []
    if DnsLabel("projectId").parse(value, ("projectId",), issues) is not INVALID:
        assert not issues and 1 <= len(value) <= 63
        assert set(value) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        assert value[0] != "-" and value[-1] != "-"
