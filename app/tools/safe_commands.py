"""An advisory first filter on model-written shell commands (``POLICY_SAFE_COMMANDS_ENABLED``).

:func:`check_command` refuses commands that are obviously destructive — recursive ``rm`` of
``/``, ``~``, ``*`` or a system directory, ``mkfs``, ``dd`` or a redirect onto a block device,
fork bombs, shutdown and reboot, recursive ``chmod``/``chown`` of ``/``, a download piped into a
shell, and ``git push --force``. It reads the text, so quoting tricks and indirection get past
it: it is a courtesy to the model, not a boundary. The sandbox is the boundary.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

_BLOCK_DEVICE = r"/dev/(?:sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|disk\d|dm-\d|md\d|loop\d|mapper/|root\b)"
_SHELL_NAME = r"(?:ba|z|da|k|a)?sh\b"
_DOWNLOAD = r"\b(?:curl|wget)\b"

# Rules on the whole text, for shapes that span several simple commands.
_TEXT_RULES = (
    (re.compile(r"([\w:.]+)\s*\(\)\s*\{\s*\1\s*\|\s*\1\s*&"), "a fork bomb"),
    (re.compile(_DOWNLOAD + r"[^\n;]*\|\s*(?:sudo\s+)?(?:\S*/)?" + _SHELL_NAME), "piping a download into a shell"),
    (re.compile(r"\b" + _SHELL_NAME + r"[^\n;|&]*(?:<\(|\$\(|`)\s*" + _DOWNLOAD), "running a downloaded script"),
    (re.compile(r"(?:^|[\s;&|])(?:source|\.)\s+<\(\s*" + _DOWNLOAD), "running a downloaded script"),
    (re.compile(r"(?:>|\btee\s+(?:-\S+\s+)*|\bof=)\s*" + _BLOCK_DEVICE), "writing to a block device"),
)

_SEPARATORS = re.compile(r"\$\(|[;&|\n()`]|(?:^|\s)[{}](?=\s|$)")
_WRAPPERS = frozenset({"sudo", "doas", "env", "nohup", "exec", "command", "builtin", "time", "nice",
                       "ionice", "busybox", "xargs"})
_WRAPPER_OPTIONS_WITH_VALUE = frozenset({"-u", "-g", "-n", "-C", "-p", "-c"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
_SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/root", "/sbin", "/srv",
                "/usr", "/var")
_WIPE_TARGETS = frozenset({"/", "/*", "~", "~/*", "*", ".", "./*", "..", "../*", "$HOME", "${HOME}",
                           "$HOME/*", "${HOME}/*", *_SYSTEM_DIRS})
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
_POWER_VERBS = frozenset({"poweroff", "reboot", "halt", "kexec"})
_GIT_OPTIONS_WITH_VALUE = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"})


def check_command(command: str) -> str | None:
    """Why ``command`` is refused as obviously destructive, or ``None`` when it may run."""
    for pattern, reason in _TEXT_RULES:
        if pattern.search(command):
            return reason
    for words in _simple_commands(command):
        refusal = _check_words(words)
        if refusal:
            return refusal
    return None


def _simple_commands(command: str) -> Iterator[list[str]]:
    """Each simple command's words, after wrappers such as ``sudo`` and ``VAR=x`` are dropped."""
    for part in _SEPARATORS.split(command):
        try:
            words = shlex.split(part)
        except ValueError:  # an unbalanced quote: the words as they stand are good enough here
            words = part.split()
        words = _unwrap(words)
        if words:
            yield [words[0].rsplit("/", 1)[-1], *words[1:]]


def _unwrap(words: list[str]) -> list[str]:
    index = 0
    while index < len(words):
        word = words[index]
        if _ASSIGNMENT.match(word) or word.rsplit("/", 1)[-1] in _WRAPPERS:
            index += 1
        elif word.startswith("-") and index > 0:  # an option of the wrapper before it
            index += 2 if word in _WRAPPER_OPTIONS_WITH_VALUE else 1
        else:
            break
    return words[index:]


def _check_words(words: list[str]) -> str | None:
    name, args = words[0], words[1:]
    if name == "eval" or (re.fullmatch(_SHELL_NAME, name) and "-c" in args[:-1]):
        return check_command(" ".join(args) if name == "eval" else args[args.index("-c") + 1])
    if name == "rm" and _recursive(args, "r") and _wipes(args):
        return "recursive rm of /, ~, * or a system directory"
    if name in {"chmod", "chown", "chgrp"} and _recursive(args, "R") and _wipes(args):
        return f"recursive {name} of /, ~, * or a system directory"
    if name.startswith("mkfs") or name in {"mke2fs", "wipefs"}:
        return "formatting a filesystem"
    if name in _POWER or (name in {"init", "telinit"} and args[:1] in (["0"], ["6"])):
        return "shutting down or rebooting the machine"
    if name == "systemctl" and _POWER_VERBS & set(args):
        return "shutting down or rebooting the machine"
    if name == "git" and "push" in args and _forced(args[args.index("push") + 1:]):
        return "git push --force (use --force-with-lease after checking, or push normally)"
    return None


def pushes_to_git(command: str) -> bool:
    """Whether ``command`` runs ``git push`` (directly, through a wrapper, ``eval`` or ``sh -c``)."""
    for words in _simple_commands(command):
        name, args = words[0], words[1:]
        if name == "eval" and pushes_to_git(" ".join(args)):
            return True
        if re.fullmatch(_SHELL_NAME, name) and "-c" in args[:-1] and pushes_to_git(args[args.index("-c") + 1]):
            return True
        # a quoted `sh -c '… && git push'` is cut at the && first, leaving the quote on the word
        if name.strip("'\"") == "git" and (_git_subcommand(args) or "").strip("'\"") == "push":
            return True
    return False


def _git_subcommand(args: list[str]) -> str | None:
    """The subcommand in ``git``'s arguments, after global options such as ``-C dir``."""
    index = 0
    while index < len(args):
        word = args[index]
        if word in _GIT_OPTIONS_WITH_VALUE:
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            return word
    return None


def _recursive(args: list[str], letter: str) -> bool:
    """Whether ``args`` hold ``--recursive`` or a short-option cluster with ``letter`` (any case)."""
    for word in args:
        if word == "--recursive":
            return True
        if word.startswith("-") and not word.startswith("--") and letter.lower() in word[1:].lower():
            return True
    return False


def _wipes(args: list[str]) -> bool:
    return any((word.rstrip("/") or "/") in _WIPE_TARGETS for word in args if not word.startswith("-"))


def _forced(args: list[str]) -> bool:
    return any(word in {"--force", "-f"} or (word.startswith("-") and not word.startswith("--") and "f" in word)
               or word.startswith("+") for word in args)
