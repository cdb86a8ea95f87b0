"""RELIABILITY.md M4: atheris on ``parse_raw()`` and on the lead extraction (long tier).

Both targets in ``fuzz/`` run at the same time (one per core: 2 x 30 min
would not fit the long tier's 45 min one after the other), each for
``MAILGATE_FUZZ_SECONDS`` (default 1800, the row's 30 min) with the row's
``-timeout=5 -rss_limit_mb=512`` and ``fuzz/mime.dict``.  The seeds are the M1
corpora (``../shared/corpora/*/``, read where test_corpus.py reads them) plus
the parser fixtures, copied to a scratch directory at run time: libFuzzer adds
the inputs that find new coverage to its corpus directory.

A self-check first proves the harness can fail: ``MAILGATE_FUZZ_SELFTEST=1``
plants a bug in the generic parser, and both targets must report it as a crash
(for ``parse_raw``, where the bug is swallowed by the parser's safety net,
through the harness's swallow watch).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import long_tier, require_service

REPO = Path(__file__).resolve().parents[1]
FUZZ = REPO / "fuzz"
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
FIXTURES = Path(__file__).parent / "fixtures" / "mails"
TARGETS = ("parse_raw", "extract_lead")
FUZZ_SECONDS = int(os.environ.get("MAILGATE_FUZZ_SECONDS", "1800"))
# atheris start-up (instrumenting the imports) and the seed pass come on top
# of -max_total_time; a run still going after this is a hang of the harness.
SLACK_SECONDS = 600
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.MULTILINE)

pytestmark = pytest.mark.skipif(
    not long_tier(), reason="long tier (M4 fuzzes 30 min per target): set MAILGATE_LONG=1"
)


@dataclass
class FuzzRun:
    """One finished libFuzzer run: exit code, its output and the artifacts it wrote."""

    target: str
    returncode: int
    output: str
    artifacts: list[Path]

    def count(self, kind: str) -> int:
        return sum(path.name.startswith(f"{kind}-") for path in self.artifacts)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def _require_atheris() -> None:
    if importlib.util.find_spec("atheris") is None:
        require_service("atheris", "it is not installed (pip install atheris, a cp311 wheel)")


def _seed_files() -> list[Path]:
    corpus = sorted(
        path for path in CORPORA.glob("*/*") if path.is_file() and path.parent.name != "LICENSES"
    )
    if not corpus:
        require_service("the shared mail corpora", f"{CORPORA} is missing or empty")
    return corpus + sorted(FIXTURES.glob("*/*.eml"))


def _copy_seeds(files: list[Path], into: Path) -> Path:
    """A scratch corpus directory: libFuzzer writes new inputs into it."""
    into.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, into / f"{path.parent.name}__{path.name}")
    return into


def _fuzz(
    work: Path, seeds: dict[str, Path], seconds: int, env: dict[str, str] | None = None
) -> dict[str, FuzzRun]:
    """Run the targets concurrently (one process each) and collect their results."""
    started = {}
    for target, seed_dir in seeds.items():
        artifacts = work / f"artifacts-{target}"
        artifacts.mkdir()
        log = (work / f"{target}.log").open("wb")
        command = [
            sys.executable,
            str(FUZZ / f"fuzz_{target}.py"),
            f"-dict={FUZZ / 'mime.dict'}",
            "-timeout=5",
            "-rss_limit_mb=512",
            f"-max_total_time={seconds}",
            f"-artifact_prefix={artifacts}/",
            str(seed_dir),
        ]
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        started[target] = (process, log, artifacts)
    runs = {}
    try:
        for target, (process, log, artifacts) in started.items():
            returncode = process.wait(timeout=seconds + SLACK_SECONDS)
            log.close()
            runs[target] = FuzzRun(
                target=target,
                returncode=returncode,
                output=(work / f"{target}.log").read_text(errors="replace"),
                artifacts=sorted(artifacts.iterdir()),
            )
    finally:
        for process, log, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    return runs


def test_m4_harness_reports_a_planted_parser_bug(tmp_path: Path) -> None:
    """Self-check: with a bug planted in the generic parser both targets crash on it."""
    _require_atheris()
    seeds = {}
    for target in TARGETS:
        seed_dir = tmp_path / f"seeds-{target}"
        seed_dir.mkdir()
        (seed_dir / "planted.eml").write_bytes(
            b"From: Erika Musterfrau <erika@kunden.example>\n"
            b"To: leads@autohaus-beispiel.example\nSubject: Anfrage\n\n"
            b"Ist der Golf noch da? MAILGATE-FUZZ-SELFTEST\n"
        )
        seeds[target] = seed_dir
    env = {**os.environ, "MAILGATE_FUZZ_SELFTEST": "1"}
    runs = _fuzz(tmp_path, seeds, seconds=60, env=env)
    for target, run in runs.items():
        assert run.returncode != 0, (target, run.tail())
        assert run.count("crash") == 1, (target, run.artifacts, run.tail())
        assert "planted by MAILGATE_FUZZ_SELFTEST" in run.output, (target, run.tail())
        assert "Done " not in run.output, target  # it stopped at the bug, not at the clock
    assert "SwallowedError: parse_raw swallowed" in runs["parse_raw"].output


@pytest.mark.slow
@pytest.mark.timeout(FUZZ_SECONDS + SLACK_SECONDS + 120)
def test_m4_fuzz_parsers_without_crash_or_timeout(tmp_path: Path) -> None:
    """M4: each target fuzzed MAILGATE_FUZZ_SECONDS: exit 0, no crash/timeout/oom artifact."""
    _require_atheris()
    files = _seed_files()
    seeds = {t: _copy_seeds(files, tmp_path / f"seeds-{t}") for t in TARGETS}
    runs = _fuzz(tmp_path, seeds, seconds=FUZZ_SECONDS)
    for target, run in runs.items():
        done = _DONE.search(run.output)
        execs, seconds = (done.group(1), done.group(2)) if done else ("?", "?")
        print(
            f"FIGURE M4 {target}: {execs} runs in {seconds} s, "
            f"{run.count('crash')} crashes, {run.count('timeout')} timeouts, "
            f"{run.count('oom')} ooms ({len(files)} seeds)"
        )
    for target, run in runs.items():
        assert run.artifacts == [], (target, run.artifacts, run.tail())
        assert run.returncode == 0, (target, run.returncode, run.tail())
        done = _DONE.search(run.output)
        assert done, (target, run.tail())
        assert int(done.group(2)) >= FUZZ_SECONDS, (target, done.group(0))
