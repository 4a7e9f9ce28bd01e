"""The code index's speed on a generated repository, beside ``ctags -R`` on the same tree.

Generates ``--files`` source files (default 5 000: Python, TypeScript, TSX, JavaScript, Go, Ruby,
Rust, Java and C in realistic sizes, 60-400 lines, importing one another), then on one CPU times a
cold rebuild into a fresh SQLite database, a warm rebuild with nothing changed, a rebuild after one
file changed, and ``--queries`` symbol searches (exact, prefix and fuzzy names, ``auto`` matching),
and runs ``ctags -R`` (universal-ctags) over the same tree.

    .venv/bin/python bench/index_bench.py [--files 5000] [--queries 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Config
from app.storage.db import bind, make_database
from app.storage.migrate import migrate
from app.tools.index.build import RebuildStats, rebuild
from app.tools.index.lookup import search_symbols
from app.tools.paths import Workspace

MIX = (("py", 0.36), ("ts", 0.22), ("tsx", 0.05), ("js", 0.14), ("go", 0.06), ("rb", 0.06), ("rs", 0.04),
       ("java", 0.04), ("c", 0.03))
WORDS = ("user", "order", "cart", "item", "price", "account", "session", "token", "cache", "queue", "event",
         "report", "invoice", "payment", "route", "client", "server", "config", "record", "index", "search")


def name(rng: random.Random, style: str) -> str:
    """A plausible identifier: ``snake``, ``camel`` or ``Pascal`` case from 2 or 3 words."""
    parts = rng.sample(WORDS, rng.randint(2, 3))
    if style == "snake":
        return "_".join(parts)
    if style == "camel":
        return parts[0] + "".join(part.title() for part in parts[1:])
    return "".join(part.title() for part in parts)


def python_file(rng: random.Random, module: str, others: list[str]) -> str:
    lines = [f"from {other} import {name(rng, 'pascal')}" for other in rng.sample(others, min(3, len(others)))]
    lines += ["import os", "import json", ""]
    for _ in range(rng.randint(2, 5)):
        cls = name(rng, "pascal")
        lines += [f"class {cls}:", f'    """The {cls} of {module}."""', ""]
        for _ in range(rng.randint(3, 8)):
            method = name(rng, "snake")
            lines += [f"    def {method}(self, value, limit=10):", "        total = 0",
                      "        for index in range(limit):", f"            total += self.{name(rng, 'snake')}(index)",
                      "        return json.dumps({'total': total, 'value': value})", ""]
    for _ in range(rng.randint(2, 6)):
        lines += [f"def {name(rng, 'snake')}(path, options=None):", "    options = options or {}",
                  "    if not os.path.exists(path):", "        return None",
                  f"    return {name(rng, 'pascal')}().{name(rng, 'snake')}(path)", ""]
    return "\n".join(lines) + "\n"


def script_file(rng: random.Random, module: str, others: list[str], typed: bool) -> str:
    lines = [f"import {{ {name(rng, 'pascal')} }} from './{other}';"
             for other in rng.sample(others, min(3, len(others)))]
    lines.append("")
    for _ in range(rng.randint(1, 3)):
        if typed:
            interface = name(rng, "pascal")
            lines += [f"export interface {interface} {{", "  id: string;", "  count: number;", "}", ""]
        cls = name(rng, "pascal")
        lines += [f"export class {cls} {{", "  private items = [];" if not typed else "  private items: string[] = [];"]
        for _ in range(rng.randint(3, 8)):
            method = name(rng, "camel")
            signature = "(value: string, limit = 10): number" if typed else "(value, limit = 10)"
            lines += [f"  {method}{signature} {{", "    let total = 0;",
                      "    for (let index = 0; index < limit; index++) {",
                      f"      total += this.{name(rng, 'camel')}(value);", "    }", "    return total;", "  }", ""]
        lines += ["}", ""]
    for _ in range(rng.randint(2, 5)):
        lines += [f"export const {name(rng, 'camel')} = (input{': string' if typed else ''}) => {{",
                  f"  return new {name(rng, 'pascal')}().{name(rng, 'camel')}(input);", "};", ""]
    return "\n".join(lines) + "\n"


def other_file(rng: random.Random, suffix: str) -> str:
    bodies = {
        "go": lambda n: f"func {n}(value string) int {{\n\ttotal := 0\n\tfor i := 0; i < 10; i++ {{\n"
                        f"\t\ttotal += len(value)\n\t}}\n\treturn total\n}}\n",
        "rb": lambda n: f"  def {n}(value)\n    total = 0\n    10.times {{ |i| total += value.size }}\n"
                        f"    total\n  end\n",
        "rs": lambda n: f"pub fn {n}(value: &str) -> usize {{\n    let mut total = 0;\n    for _ in 0..10 {{\n"
                        f"        total += value.len();\n    }}\n    total\n}}\n",
        "java": lambda n: f"    public int {n}(String value) {{\n        int total = 0;\n"
                          f"        for (int i = 0; i < 10; i++) {{ total += value.length(); }}\n"
                          f"        return total;\n    }}\n",
        "c": lambda n: f"int {n}(const char *value) {{\n    int total = 0;\n    for (int i = 0; i < 10; i++) {{\n"
                       f"        total += (int)strlen(value);\n    }}\n    return total;\n}}\n",
    }
    functions = [bodies[suffix](name(rng, "snake" if suffix in ("rb", "rs", "c") else "camel"))
                 for _ in range(rng.randint(6, 20))]
    if suffix == "go":
        return "package main\n\nimport \"fmt\"\n\n" + "\n".join(functions)
    if suffix == "rb":
        return f"require 'json'\n\nclass {name(rng, 'pascal')}\n" + "\n".join(functions) + "end\n"
    if suffix == "java":
        return f"import java.util.List;\n\npublic class {name(rng, 'pascal')} {{\n" + "\n".join(functions) + "}\n"
    if suffix == "c":
        return "#include <string.h>\n\n" + "\n".join(functions)
    return "use std::io;\n\n" + "\n".join(functions)


def generate(root: Path, count: int, seed: int = 7) -> None:
    """Write ``count`` source files under ``root`` in 50 package directories, plus a .gitignore."""
    rng = random.Random(seed)
    suffixes = rng.choices([suffix for suffix, _ in MIX], weights=[weight for _, weight in MIX], k=count)
    modules: dict[str, list[str]] = {"py": [], "script": []}
    for number, suffix in enumerate(suffixes):
        folder = root / f"pkg{number % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{name(rng, 'snake')}_{number}"
        if suffix == "py":
            text = python_file(rng, stem, modules["py"][-200:] or ["os"])
            modules["py"].append(f"pkg{number % 50:02d}.{stem}")
        elif suffix in ("ts", "tsx", "js"):
            text = script_file(rng, stem, modules["script"][-200:] or ["index"], typed=suffix != "js")
            modules["script"].append(stem)
        else:
            text = other_file(rng, suffix)
        (folder / f"{stem}.{suffix}").write_text(text)
    (root / ".gitignore").write_text("build/\nnode_modules/\n")


def timed(action: Callable[[], RebuildStats]) -> tuple[float, float, RebuildStats]:
    """Wall-clock and CPU seconds of ``action`` (CPU time is what an idle core would need, near enough)."""
    wall, cpu = time.perf_counter(), time.process_time()
    stats = action()
    return time.perf_counter() - wall, time.process_time() - cpu, stats


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[94]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--keep", help="generate into this directory and keep it")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the targets say
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lynkr-index-bench-"))
    tree = base / "repo"
    try:
        generate(tree, args.files)
        size = sum(path.stat().st_size for path in tree.rglob("*") if path.is_file())
        lines = sum(path.read_text().count("\n") for path in tree.rglob("*") if path.is_file())
        print(f"repository: {args.files} files, {size / 1024**2:.1f} MiB, {lines:,} lines")
        database = make_database(Config(session_db_path=str(base / "index.db")))
        bind(database)
        migrate(database)
        workspace = Workspace(tree)
        cold, cold_cpu, stats = timed(lambda: rebuild(workspace, 1024**2))
        print(f"cold rebuild:      wall {cold:7.2f} s, CPU {cold_cpu:7.2f} s  ({stats.line()})")
        warm, warm_cpu, stats = timed(lambda: rebuild(workspace, 1024**2))
        print(f"warm rebuild:      wall {warm:7.2f} s, CPU {warm_cpu:7.2f} s  ({stats.line()})")
        changed = next(tree.rglob("*.py"))
        changed.write_text(changed.read_text() + "\ndef freshly_added_function():\n    return 1\n")
        one, one_cpu, stats = timed(lambda: rebuild(workspace, 1024**2))
        print(f"one file changed:  wall {one:7.2f} s, CPU {one_cpu:7.2f} s  ({stats.line()})")
        rng = random.Random(11)
        queries = []
        for index in range(args.queries):
            word = name(rng, ("snake", "camel", "pascal")[index % 3])
            queries.append((word, word[:4], "".join(word[::3]))[index % 3])
        walls, cpus = [], []
        for query in queries:
            wall, cpu = time.perf_counter(), time.process_time()
            search_symbols(workspace.root, query, limit=20)
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        print(f"symbol search:     wall p50 {statistics.median(walls):.2f} ms, p95 {p95(walls):.2f} ms; CPU p50 "
              f"{statistics.median(cpus):.2f} ms, p95 {p95(cpus):.2f} ms over {len(walls)} queries "
              "(exact / prefix / fuzzy)")
        ctags = shutil.which("ctags")
        if ctags:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.perf_counter()
            subprocess.run([ctags, "-R", "-f", str(base / "tags"), str(tree)], check=True)
            spent = time.perf_counter() - wall
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            spent_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            print(f"ctags -R:          wall {spent:7.2f} s, CPU {spent_cpu:7.2f} s  (cold rebuild / ctags: "
                  f"{cold / spent:.1f}x wall, {cold_cpu / spent_cpu:.1f}x CPU)")
        else:
            print("ctags -R:          not installed (apt-get install universal-ctags)")
        print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        database.close_all()
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
