"""Unit tests mirror the code: ``app/<pkg>/<mod>.py`` has ``tests/unit/<pkg>/test_<mod>.py``, and back."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
UNIT = ROOT / "tests" / "unit"

# Modules with nothing of their own to unit-test: the package marker and ``python -m app``.
EXEMPT_MODULES = {"__init__.py", "__main__.py"}

# Unit files that mirror a file outside app/, by the path (from the repository root) they test.
# gunicorn.conf.py is loaded by gunicorn from the root, so it cannot live in app/.
OUTSIDE_APP = {
    "tests/unit/test_gunicorn_conf.py": "gunicorn.conf.py",
}


def app_modules() -> list[Path]:
    """Modules under app/, relative to it (package markers left out, the top-level exemptions too)."""
    found = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP)
        if path.name == "__init__.py" or str(relative) in EXEMPT_MODULES:
            continue
        found.append(relative)
    return found


def unit_files() -> list[Path]:
    """Unit test files under tests/unit, relative to it (conftest.py and __init__.py are not unit files)."""
    return sorted(path.relative_to(UNIT) for path in UNIT.rglob("test_*.py"))


def covers(unit: Path, module: Path) -> bool:
    """Whether ``unit`` (``<dir>/test_<mod>[_<aspect>].py``) is a unit file of ``module`` (``<dir>/<mod>.py``)."""
    if unit.parent != module.parent:
        return False
    name = unit.stem.removeprefix("test_")
    return name == module.stem or name.startswith(module.stem + "_")


def mirror_gaps(modules: list[Path], units: list[Path]) -> tuple[list[str], list[str]]:
    """Modules without a unit file, and unit files matching no module (outside-app exceptions excepted)."""
    missing = [f"app/{module} -> tests/unit/{module.parent / ('test_' + module.name)}"
               for module in modules if not any(covers(unit, module) for unit in units)]
    orphans = [f"tests/unit/{unit}" for unit in units
               if f"tests/unit/{unit}" not in OUTSIDE_APP and not any(covers(unit, module) for module in modules)]
    return missing, orphans


def test_every_module_has_a_unit_file_and_every_unit_file_a_module() -> None:
    missing, orphans = mirror_gaps(app_modules(), unit_files())
    assert missing + orphans == [], (
        f"{len(missing)} module(s) without a unit file:\n  " + "\n  ".join(missing)
        + f"\n{len(orphans)} unit file(s) matching no module:\n  " + "\n  ".join(orphans))


def test_outside_app_exceptions_point_at_real_files() -> None:
    assert [unit for unit, target in OUTSIDE_APP.items()
            if not (ROOT / unit).is_file() or not (ROOT / target).is_file()] == []


def test_the_mirror_rule_itself() -> None:
    modules = [Path("providers/formats/ollama/convert.py"), Path("tools/test_output.py"), Path("cli.py")]
    units = [Path("providers/formats/ollama/test_convert_golden.py"), Path("tools/test_test_output.py"),
             Path("providers/test_convert.py"), Path("tools/test_test.py")]
    assert mirror_gaps(modules, units) == (
        ["app/cli.py -> tests/unit/test_cli.py"],
        ["tests/unit/providers/test_convert.py", "tests/unit/tools/test_test.py"],
    )
