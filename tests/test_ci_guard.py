"""The missing-dependency rule (conftest.require): a failure when $CI is set, a skip elsewhere; and
scripts/setup-system.sh failing when it cannot install apt-packages.txt.

Each case runs a tiny test file with ``python -m pytest`` in a subprocess, next to a copy of this
suite's conftest.py (so its hooks and marker run as they do here).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIX = "run `make frobnicate` (apt-packages.txt)"

IN_TEST = f"""
from conftest import require

def test_needs_the_frobnicator():
    require(False, "the frobnicator", {FIX!r})
"""
AT_MODULE_LEVEL = f"""
from conftest import require

require(False, "the frobnicator", {FIX!r})

def test_never_collected_without_it():
    pass
"""
MARKER = f"""
from conftest import needs

pytestmark = needs(False, "the frobnicator", {FIX!r})

def test_marked():
    pass
"""
IMPORT = """
from conftest import require_import

require_import("sightsound_no_such_package", "pip install sightsound-no-such-package")

def test_never_collected_without_it():
    pass
"""
MANDATORY = f"""
from conftest import require

def test_needs_the_frobnicator():
    require(False, "the frobnicator", {FIX!r}, skip_outside_ci=False)
"""
PRESENT = f"""
from conftest import needs, require

@needs(True, "the frobnicator", {FIX!r})
def test_has_the_frobnicator():
    require(True, "the frobnicator", {FIX!r})
"""


def run_pytest(tmp_path: Path, files: dict[str, str], ci: str | None, *options: str) -> subprocess.CompletedProcess:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *options, *files],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_require_fails_under_ci_and_skips_outside(tmp_path):
    failed = run_pytest(tmp_path, {"test_tiny.py": IN_TEST}, ci="1")
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1 and "1 failed" in output, output
    assert "the frobnicator is missing" in output and FIX in output and "CI=1" in output, output

    skipped = run_pytest(tmp_path, {"test_tiny.py": IN_TEST}, ci=None)
    output = skipped.stdout + skipped.stderr
    assert skipped.returncode == 0 and "1 skipped" in output and "failed" not in output, output
    assert "the frobnicator is missing" in output and FIX in output, output  # -rs prints the reason


FORMS = {"test_in_test.py": IN_TEST, "test_module_level.py": AT_MODULE_LEVEL, "test_marker.py": MARKER,
         "test_import.py": IMPORT, "test_mandatory.py": MANDATORY, "test_present.py": PRESENT}
UNDER_CI = {"test_in_test.py": "failure", "test_module_level.py": "error", "test_marker.py": "error",
            "test_import.py": "error", "test_mandatory.py": "failure", "test_present.py": "passed"}
OUTSIDE_CI = {**UNDER_CI, "test_in_test.py": "skipped", "test_module_level.py": "skipped",
              "test_marker.py": "skipped", "test_import.py": "skipped"}


@pytest.mark.parametrize("ci, expected", [("1", UNDER_CI), (None, OUTSIDE_CI), ("", OUTSIDE_CI)],
                         ids=["CI=1", "unset", "empty"])
def test_every_form_of_require(tmp_path, ci, expected):
    """require in a test, at module level, through needs() and require_import; mandatory; present."""
    done = run_pytest(tmp_path, FORMS, ci, "--continue-on-collection-errors", "--junitxml", str(tmp_path / "report.xml"))
    outcomes = {}
    for case in ElementTree.parse(tmp_path / "report.xml").iter("testcase"):
        module = (case.get("classname") or case.get("name")).split(".")[0] + ".py"  # no classname: collection
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        message = " ".join(child.get("message", "") + (child.text or "") for child in case)
        outcomes[module] = outcome
        if outcome != "passed":
            fix = "pip install sightsound-no-such-package" if module == "test_import.py" else FIX
            assert fix in message, (module, message)
    assert outcomes == expected, done.stdout
    assert done.returncode == 1, done.stdout  # test_mandatory.py fails either way


def test_ci_run_exports_ci():
    script = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script and "export CI=" in script
    assert script.index("export CI=") < script.index("make test")


# --------------------------------------------------------------------------- scripts/setup-system.sh

def fake_checkout(tmp_path: Path, packages: str, programs: dict[str, str]) -> tuple[Path, dict]:
    """A copy of setup-system.sh with its own apt-packages.txt, and a PATH whose first folder holds stub
    programs (``programs``: name -> shell body), so nothing is really installed."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup-system.sh", tmp_path / "scripts" / "setup-system.sh")
    (tmp_path / "apt-packages.txt").write_text(packages)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, body in programs.items():
        path = stubs / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return tmp_path / "scripts" / "setup-system.sh", {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}


NO_SUCH = "sightsound-no-such-package\n"


def test_setup_system_succeeds_when_everything_is_there(tmp_path):
    script, env = fake_checkout(tmp_path, "# comment\n\nbash\n", {"apt-get": "exit 99"})
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_setup_system_fails_without_root_or_sudo(tmp_path):
    if shutil.which("sudo"):
        pytest.skip("this machine has sudo on PATH: the no-root, no-sudo branch cannot be reached")
    script, env = fake_checkout(tmp_path, NO_SUCH, {"id": "echo 1000", "apt-get": "exit 99"})
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "sightsound-no-such-package" in done.stderr and "apt-get install" in done.stderr


def test_setup_system_fails_when_apt_get_fails(tmp_path):
    script, env = fake_checkout(tmp_path, NO_SUCH, {"id": "echo 0", "apt-get": "exit 100"})
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 100, done.stderr


def test_setup_system_fails_naming_what_apt_get_did_not_install(tmp_path):
    script, env = fake_checkout(tmp_path, "bash\n" + NO_SUCH, {"id": "echo 0", "apt-get": "exit 0"})
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "sightsound-no-such-package is still missing after apt-get install" in done.stderr
    assert "bash is still" not in done.stderr
