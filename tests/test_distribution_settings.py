"""Distribution settings: validation naming the key, warnings, and the dry run CLI."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailgate.dealer_settings import SettingsError, export_settings, settings_warnings, validate
from mailgate.protocol import english

from .distribution_helpers import absent, form_mail, setup, team_toml
from .procs import make_install

GROUPS = '\n[[groups]]\nname = "neuwagen"\nmatch = { source = ["oem:*"], kind = ["test_drive"] }\n'


def check(text: str) -> dict:
    return validate(tomllib.loads(text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (team_toml(users={"ben": absent("nobody")}), r"users\[1\]\.absences\[0\]\.substitute"),
        (team_toml(users={"ben": absent("ben")}), "cannot substitute himself"),
        (team_toml(users={"ben": 'groups = ["gibtsnicht"]'}), r"users\[1\]\.groups\[0\]"),
        (team_toml('pool_user = "nobody@autohaus.example"'), "distribution.pool_user"),
        (team_toml('mode = "pool"'), "pool_user is required"),
        (
            team_toml().replace('"ankauf@autohaus.example"', '"kein"'),
            "distribution.trade_in_cc: not an e-mail address",
        ),
        (
            team_toml(extra=GROUPS.replace("kind =", "farbe =")),
            r"unknown key groups\[0\]\.match\.farbe",
        ),
        (team_toml(extra=GROUPS + GROUPS), r"groups\[1\]\.name: duplicate"),
        (team_toml(users={"ben": 'permissions = { werkstatt = "all" }'}), "werkstatt"),
        (team_toml(users={"ben": 'permissions = { service = "some" }'}), "permissions.service"),
        (
            team_toml(
                users={
                    k: 'permissions = { financing = "own_location" }'
                    for k in ("anna", "ben", "carl", "chef", "ada")
                }
            ),
            "nobody sees all financing leads",
        ),
        (
            team_toml().replace('["leads@autohaus.example"]', '["kaputt"]'),
            r"distribution.locations.muenchen\[0\]",
        ),
    ],
    ids=lambda value: value if len(str(value)) < 60 else "doc",
)
def test_invalid_distribution_settings_name_the_key(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check(text)


def test_warnings_for_pool_groups_and_solo_distributions() -> None:
    pool = team_toml('mode = "pool"\npool_user = "chef@autohaus.example"', extra=GROUPS)
    warnings = [english([w]) for w in settings_warnings(check(pool))]
    assert any("anna@autohaus.example, ben@autohaus.example, carl" in w for w in warnings)
    assert any("cannot be combined with distribution groups" in w for w in warnings)
    solo = team_toml('mode = "groups"', users={"anna": 'groups = ["neuwagen"]'}, extra=GROUPS)
    (solo_warning,) = settings_warnings(check(solo))
    assert solo_warning.code == "group_solo"
    assert "'neuwagen' is a solo distribution" in english([solo_warning])
    assert settings_warnings(check(team_toml())) == []


def test_new_keys_round_trip_through_export(factory: sessionmaker[Session]) -> None:
    text = team_toml(
        'mode = "groups"\npool_notice = true\nrelay_domains = ["relay.portal.example"]',
        users={"anna": 'groups = ["neuwagen"]\npermissions = { service = "own_location" }'},
        extra=GROUPS,
    )
    setup(factory, text)
    with factory() as session:
        exported = export_settings(session)
    again = check(exported)
    assert again["distribution"]["relay_domains"] == ["relay.portal.example"]
    assert again["distribution"]["locations"]["augsburg"] == ["augsburg@autohaus.example"]
    assert again["users"][0]["permissions"] == {"service": "own_location"}


def test_dry_run_tells_the_truth_and_changes_nothing(tmp_path: Path) -> None:
    install = make_install(tmp_path / "inst")
    team = tmp_path / "team.toml"
    away = '\nabsences = [{ from = "2026-12-01", until = "2026-12-05" }]'
    team.write_text(team_toml(users={"ben": away}))
    imported = install.run("settings", "import", str(team))
    assert imported.returncode == 0, imported.stderr.decode()
    result = install.run("distribution", "simulate", "--leads", "4", "--date", "2026-12-02")
    assert result.returncode == 0, result.stderr.decode()
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["assignee"] for r in rows] == [
        "anna@autohaus.example",
        "carl@autohaus.example",
        "anna@autohaus.example",
        "carl@autohaus.example",
    ]
    assert "passed over: ben@autohaus.example absent until 2026-12-05" in rows[1]["reason"]
    after = install.run("distribution", "simulate", "--leads", "1", "--date", "2026-12-07")
    assert json.loads(after.stdout)["assignee"] == "anna@autohaus.example"  # nothing moved
    # and the real thing agrees with the dry run of the same day's settings
    assert install.run("ingest", stdin=form_mail(1)).returncode == 0
    leads = [json.loads(line) for line in install.run("leads", "--json").stdout.splitlines()]
    assert leads[0]["assignee"] == "anna@autohaus.example"
    bad = install.run("distribution", "simulate", "--date", "morgen")
    assert bad.returncode == 2 and b"not an ISO date" in bad.stderr
