#!/usr/bin/env sh
# Re-resolve the pinned, hashed dependency sets from pyproject.toml (needs `pip install uv`).
#   runtime.lock  what `mailgate` needs to run (PostgreSQL driver included)
#   test.lock     runtime + [test] + the build back-end: README's test command and .ci/run
# The locks target CI's machine: CPython 3.11 on Linux x86_64 (manylinux 2.28), wheels only
# (--no-build: a release without a wheel for that platform is never chosen).
# After running it, run the whole suite on the new lock (.ci/run) before committing.
set -eu
cd "$(dirname "$0")/.."
common="--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-build --upgrade --quiet"
# shellcheck disable=SC2086
uv pip compile pyproject.toml requirements/build.in --extra postgres --extra test $common \
    -o requirements/test.lock
# The runtime set is the test set's subset: the versions the suite ran on, never others.
# shellcheck disable=SC2086
uv pip compile pyproject.toml --extra postgres --constraint requirements/test.lock $common \
    -o requirements/runtime.lock
# The installer's own pin (requirements/pip.lock, installed before test.lock): the same
# version and hashes as test.lock's pip entry.
awk '/^pip==/{p=1} p&&/^    #/{exit} p' requirements/test.lock > requirements/pip.lock.new
{ sed -n '/^#/p' requirements/pip.lock; cat requirements/pip.lock.new; } > requirements/pip.lock.tmp
mv requirements/pip.lock.tmp requirements/pip.lock && rm requirements/pip.lock.new
