"""The tested dependency set: requirements.lock pins what the suite passed with, the README installs through it, and
the environment running these tests is that set."""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _project_requirements(extras: tuple[str, ...] = ("test",)) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**default_environment(), "extra": extra}) for extra in extras or {""})


def _needed_distributions() -> dict[str, str]:
    """Every distribution faceswap[test] needs in this environment, transitively, with its installed version."""
    found: dict[str, str] = {}
    pending = [(requirement, set(requirement.extras)) for requirement in _project_requirements()
               if _applies(requirement, set())]
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found[name] = md.version(requirement.name)
        for line in md.requires(requirement.name) or []:
            child = Requirement(line)
            if _applies(child, extras):
                pending.append((child, set(child.extras)))
    return found


def test_the_lock_pins_every_distribution_the_suite_runs_with_at_its_installed_version() -> None:
    pins = _lock()
    installed = _needed_distributions()
    assert len(installed) > 40, "the walk reached the whole dependency tree"
    unpinned = sorted(set(installed) - set(pins))
    assert not unpinned, f"not in requirements.lock (run scripts/lock.sh): {unpinned}"
    drifted = {name: (pins[name], version) for name, version in installed.items() if pins[name] != version}
    assert not drifted, f"installed versions differ from requirements.lock (lock, installed): {drifted}"


def test_every_locked_version_is_inside_the_range_pyproject_declares() -> None:
    pins = _lock()
    for requirement in _project_requirements():
        name = canonicalize_name(requirement.name)
        if name in pins:
            assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])


def test_direct_dependencies_are_bounded_above() -> None:
    """An unbounded range is how a fresh machine got a major release the suite had never seen."""
    for requirement in _project_requirements():
        assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), str(requirement)


def test_the_readme_commands_install_through_the_lock() -> None:
    readme = (ROOT / "README.md").read_text()
    for block in ("run-command", "test-command"):
        command = re.search(rf"<!-- {block} -->\s*```bash\n(.*?)```", readme, re.S).group(1)
        installs = re.findall(r"pip install [^&]*", command)
        assert installs and all("-c requirements.lock" in step for step in installs), (block, installs)
