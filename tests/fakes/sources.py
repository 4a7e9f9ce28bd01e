"""A stream source whose items (pauses included) come from a script, for the stream's readers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from app.anthropic.events import StreamBuilder
from app.errors import LynkrError
from app.providers.formats.anthropic import StreamTranslator


class ScriptedSource:
    """An opened upstream stream: its items come from ``script`` (then ``fail_with`` is raised, if
    given), relayed by the Anthropic translator; it records paces, closes, releases and reads."""

    provider = "databricks"
    model = "databricks-claude-sonnet-4-5"
    headers: dict[str, str] = {}

    def __init__(self, script: list[Any], *, fail_with: LynkrError | None = None) -> None:
        self._script = script
        self._fail_with = fail_with
        self.paces: list[float] = []
        self.closed = 0
        self.released = 0
        self.read = 0  # items handed out
        self.read_to_end = False
        self._iterator: Iterator[Any] | None = None

    @property
    def items(self) -> Iterator[Any]:
        """The scripted items, one iterator for the source's life."""
        if self._iterator is None:
            self._iterator = self._read()
        return self._iterator

    def _read(self) -> Iterator[Any]:
        for item in self._script:
            self.read += 1
            yield item
        if self._fail_with is not None:
            raise self._fail_with
        self.read_to_end = True

    @property
    def translator(self) -> Callable[[StreamBuilder], Any]:
        """The Anthropic relay."""
        return StreamTranslator

    def pace(self, tick_s: float) -> None:
        """Records the tick asked for."""
        self.paces.append(tick_s)

    def close(self) -> None:
        """Records the abort."""
        self.closed += 1

    def release(self) -> None:
        """Records the release."""
        self.released += 1
