"""The reliability suite's figures: runs ``tests/reliability`` and prints what it survived.

    .venv/bin/python bench/reliability.py              # the bounded form CI runs
    LYNKR_FUZZ=full .venv/bin/python bench/reliability.py   # thousands of fuzzed inputs

Prints one JSON line: faults survived (fault-matrix cases passed / run), fuzz and OpenAPI cases,
slow-client, drain and crash cases, the secret canary, and failures. ``bench/soak.py`` gives the
long-run figures (requests, rows lost, RSS growth). Both go into ``bench/README.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"test_fault_matrix": "faults", "test_ingress_fuzz": "fuzz", "test_openapi_fuzz": "openapi",
          "test_slow_clients": "slow_clients", "test_drain_and_crash": "drain_and_crash",
          "test_secrets": "secret_canary", "test_doors": "doors"}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability",
                        f"--junitxml={report}"], cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
        cases = ElementTree.parse(report).getroot().iter("testcase")  # noqa: S314 (pytest's own report)
        counts: dict[str, dict[str, int]] = defaultdict(lambda: {"passed": 0, "failed": 0})
        for case in cases:
            module = case.get("classname", "").rsplit(".", 1)[-1]
            group = GROUPS.get(module, module)
            failed = case.find("failure") is not None or case.find("error") is not None
            counts[group]["failed" if failed else "passed"] += 1
    figures = {group: f"{c['passed']}/{c['passed'] + c['failed']}" for group, c in sorted(counts.items())}
    figures["failures"] = str(sum(c["failed"] for c in counts.values()))
    print(json.dumps(figures))
    return 0 if figures["failures"] == "0" else 1


if __name__ == "__main__":
    sys.exit(main())
