"""The Claude Code CLI runs under a Node.js its package accepts (the pinned CLI declares >= 22)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from tests.e2e.cli_helpers import CLAUDE, node_path


def test_the_cli_s_node_satisfies_its_engines_field() -> None:
    package = CLAUDE.parent.parent / "@anthropic-ai" / "claude-code" / "package.json"
    engines = json.loads(package.read_text())["engines"]["node"]
    minimum = int(re.fullmatch(r">=\s*(\d+)(?:\.\d+)*", engines).group(1))  # type: ignore[union-attr]
    node = shutil.which("node", path=node_path())
    assert node is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    assert int(version.lstrip("v").split(".")[0]) >= minimum, (node, version, engines)
