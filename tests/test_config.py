from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.config import ConfigError, describe, load_settings


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={})
    assert settings.smtp.host == "127.0.0.1" and settings.smtp.port == 2525
    assert settings.web.port == 8025
    assert settings.database_url == f"sqlite:///{tmp_path / 'mailgate.sqlite3'}"
    assert settings.source == "built-in defaults"


def test_file_then_environment_then_secret_file(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text(
        '[smtp]\nport = 2600\nmax_message_size = 4096\n[relay]\nhost = "relay.example"\n'
    )
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    env = {
        "MAILGATE_CONFIG": str(config),
        "MAILGATE_SMTP__PORT": "2700",
        "MAILGATE_RELAY__PASSWORD_FILE": str(secret),
        "MAILGATE_WEB__ENABLED": "false",
    }
    settings = load_settings(None, environ=env)
    assert settings.smtp.port == 2700  # environment wins over the file
    assert settings.smtp.max_message_size == 4096
    assert settings.relay.host == "relay.example"
    assert settings.relay.password == "s3cret"
    assert settings.web.enabled is False
    assert describe(settings)["relay"]["password"] == "***"


def test_local_mailgate_toml_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mailgate.toml").write_text("[web]\nport = 9000\n")
    assert load_settings(None, environ={}).web.port == 9000


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[smtp]\nprot = 1\n", {}, "unknown config key [smtp] prot"),
        ("[smpt]\n", {}, "unknown config section [smpt]"),
        ("", {"MAILGATE_SMTP__PORT": "abc"}, "[smtp] port must be int"),
        ('[relay]\nsecurity = "tls"\n', {}, "[relay] security"),
        ("[smtp]\nport = 70000\n", {}, "out of range"),
        ("not toml [", {}, "not valid TOML"),
    ],
)
def test_bad_settings_are_named(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(str(config), environ=env)
