"""Apps never run as root: the setting apps.user is checked when the orchestrator is root."""

from __future__ import annotations

import pwd

import pytest

from orchestrator.apps.run_as import RootUserRefused, app_user


def _entry(name: str, uid: int, gid: int) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", uid, gid, "", "/", "/usr/sbin/nologin"))


@pytest.fixture
def users(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few users, two of them root in disguise (uid 0 under another name, gid 0)."""
    table = {
        "root": _entry("root", 0, 0),
        "toor": _entry("toor", 0, 100),
        "wheel-app": _entry("wheel-app", 1500, 0),
        "nua-app": _entry("nua-app", 999, 999),
    }

    def getpwnam(name: str) -> pwd.struct_passwd:
        return table[name]

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("", "apps.user is empty"),
        (None, "apps.user is empty"),
        ("root", "apps.user is root, whose uid is 0"),
        ("toor", "apps.user is toor, whose uid is 0"),
        ("wheel-app", "group 0"),
    ],
)
@pytest.mark.usefixtures("users")
def test_as_root_a_setting_that_would_run_apps_as_root_is_refused(
    setting: str | None, says: str
) -> None:
    with pytest.raises(RootUserRefused) as refused:
        app_user(setting, euid=0)
    message = str(refused.value)
    assert message.startswith("apps never run as root") and says in message
    assert "nua settings set apps.user nua-app" in message


@pytest.mark.usefixtures("users")
def test_as_root_an_unprivileged_or_missing_user_is_used() -> None:
    assert app_user("nua-app", euid=0) == "nua-app"
    assert app_user("not-created-yet", euid=0) == "not-created-yet"


@pytest.mark.usefixtures("users")
@pytest.mark.parametrize("setting", ["", "root", "nua-app"])
def test_not_as_root_apps_run_as_our_own_user(setting: str) -> None:
    assert app_user(setting, euid=1000) is None
