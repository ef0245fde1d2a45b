"""`kms_api.settings` is the one declaration of the API's flags and variables: every setting is
declared once (flag, variable, parser), the parser and help are built from it, precedence is
flag > variable > default, and the README's table documents each one."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from kms_api.settings import KubeSettings, Option, Settings, _parser, load_settings, options
from kms_core.errors import ConfigError

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
DECLARED = options(Settings) + options(KubeSettings)


def test_every_setting_is_declared_once() -> None:
    undeclared = {"kube", "env"}  # the Kubernetes-mode group, and the environment for other layers
    for cls in (Settings, KubeSettings):
        names = {f.name for f in dataclasses.fields(cls)} - undeclared
        assert names == {name for name, _ in options(cls)}, cls
    flags = [o.flag for _, o in DECLARED if o.flag]
    variables = [o.env for _, o in DECLARED if o.env]
    assert len(flags) == len(set(flags)) and len(variables) == len(set(variables))
    assert all(v.startswith("KUBEKMS_") for v in variables)


def test_the_command_line_is_the_declaration() -> None:
    declared = {o.flag for _, o in DECLARED if o.flag}
    built = {s for action in _parser()._actions for s in action.option_strings} - {"-h", "--help"}
    assert built == declared
    assert "--admin-token" not in built  # environment only: a flag would show it in `ps`


@pytest.mark.parametrize(("name", "option"), DECLARED, ids=[n for n, _ in DECLARED])
def test_readme_documents_every_setting(name: str, option: Option) -> None:
    flag, env = option.flag, option.env
    assert f"`{env}`" in README, env
    if flag:
        assert re.search(rf"^\| [^|]*`{re.escape(flag)}`", README, re.M), flag


def test_flags_win_over_variables_and_empty_variables_are_unset() -> None:
    env = {"KUBEKMS_PORT": "9000", "KUBEKMS_HOST": "", "KUBEKMS_KUBE_REQUEST_TIMEOUT": "3"}
    settings = load_settings(["--port", "9100"], env)
    assert settings.port == 9100 and settings.host == "127.0.0.1"
    assert settings.kube.request_timeout == 3.0
    assert load_settings(["--kube-request-timeout", "6"], env).kube.request_timeout == 6.0
    assert load_settings([], {}) == Settings(env={})


def test_the_admin_token_is_never_shown() -> None:
    settings = load_settings([], {"KUBEKMS_ADMIN_TOKEN": "sekret-admin-token-value"})
    assert settings.admin_token == "sekret-admin-token-value"
    assert "sekret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "needle"),
    [({"KUBEKMS_PORT": "http"}, "port must be an integer"),
     ({"KUBEKMS_SHUTDOWN_TIMEOUT": "long"}, "shutdown timeout must be a number"),
     ({"KUBEKMS_TLS_RELOAD_INTERVAL": "-5"}, "TLS reload interval must be > 0"),
     ({"KUBEKMS_STORE": "etcd"}, "store must be one of embedded, kubernetes"),
     ({"KUBEKMS_DELETION_WINDOW": "a-week"}, "deletion window must be seconds or a duration"),
     ({"KUBEKMS_DELETION_WINDOW": "-60"}, "deletion window must be seconds or a duration"),
     ({"KUBEKMS_LIFECYCLE_INTERVAL": "-3"}, "lifecycle interval must be > 0"),
     ({"KUBEKMS_TEST_HOOKS": "maybe"}, "KUBEKMS_TEST_HOOKS must be true or false")],
)  # fmt: skip
def test_bad_values_are_refused_by_name(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        load_settings([], env)
    assert next(iter(env.values())) not in str(info.value)  # named, never echoed


def test_lifecycle_settings_take_durations() -> None:
    defaults = load_settings([], {})
    assert (defaults.deletion_window, defaults.lifecycle_interval) == (7 * 86400, 30.0)
    assert not defaults.test_hooks and defaults.test_clock_offset is None
    env = {"KUBEKMS_DELETION_WINDOW": "12h", "KUBEKMS_LIFECYCLE_INTERVAL": "2.5"}
    assert load_settings([], env).deletion_window == 12 * 3600
    assert load_settings(["--deletion-window", "1h30m"], env).deletion_window == 5400
    assert load_settings(["--deletion-window", "0"], env).deletion_window == 0  # destroy at once
    assert load_settings([], env).lifecycle_interval == 2.5
