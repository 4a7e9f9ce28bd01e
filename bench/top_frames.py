"""Summarise py-spy's collapsed stacks: own time per function and inclusive time per app module."""

from __future__ import annotations

import sys
from collections import Counter


def main(path: str) -> None:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    with open(path) as stacks:
        for line in stacks:
            if not line.strip():
                continue
            stack, _, count = line.rstrip().rpartition(" ")
            samples = int(count)
            frames = stack.split(";")
            if any("wait" in f and ("threading" in f or "selectors" in f) for f in frames[-2:]):
                continue  # idle threads
            total += samples
            own[frames[-1]] += samples
            for frame in {f for f in frames if "/app/" in f or "(app/" in f}:
                inclusive[frame] += samples
    print(f"busy samples: {total}")
    print("\nown time, top 15:")
    for frame, samples in own.most_common(15):
        print(f"  {100 * samples / total:5.1f}%  {frame}")
    print("\ninclusive time in app code, top 15:")
    for frame, samples in inclusive.most_common(15):
        print(f"  {100 * samples / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1])
