"""Global options wherever a user puts them: ``invent contacts tag sg_1 --ids f --sandbox``.

click reads a group's options only before its subcommand's name. :func:`hoist_global_options`
moves the root group's options that appear after it (``--sandbox``, ``--org X``,
``--base-url=URL``, ``-vv``, ...) to the front, keeping their order (the last one given still
wins), so they mean the same wherever they stand. Nothing after ``--`` is touched; a arg
that is the value of a subcommand's option is left alone when that option is known to take
a value. No I/O, no click context: the parameters are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import click

__all__ = ["hoist_global_options"]


def _takes_value(option: click.Option) -> bool:
    return not (option.is_flag or option.count)


def hoist_global_options(
    args: Sequence[str], globals_: Iterable[click.Parameter], group: click.Group
) -> list[str]:
    """``args`` of the root group with its options moved before the first subcommand name.

    Args:
        args: The command line after the program name.
        globals_: The root group's parameters (its options are the ones moved).
        group: The root group: its subcommands (and theirs) tell which of their options take
            a value, so that such a value is never taken for a global option.
    """
    takes: dict[str, bool] = {}
    for param in globals_:
        if isinstance(param, click.Option) and not param.hidden:
            for name in (*param.opts, *param.secondary_opts):
                if name not in ("--help", "-h", "--version"):
                    takes[name] = _takes_value(param)
    own_values = _options_taking_values(group)
    head: list[str] = []
    rest = list(args)
    index = 0
    # the options given before the subcommand stay where they are
    while index < len(rest) and rest[index].startswith("-") and rest[index] != "--":
        name = rest[index].partition("=")[0]
        index += 2 if takes.get(name) and "=" not in rest[index] else 1
    head, tail = rest[:index], rest[index:]
    moved: list[str] = []
    kept: list[str] = []
    at = 0
    while at < len(tail):
        arg = tail[at]
        if arg == "--":
            kept.extend(tail[at:])
            break
        name = arg.partition("=")[0]
        if name in takes and name not in own_values:
            if takes[name] and "=" not in arg and at + 1 < len(tail):
                moved += tail[at : at + 2]
                at += 2
            else:
                moved.append(arg)
                at += 1
            continue
        if _short_cluster(arg, takes):
            moved.append(arg)
            at += 1
            continue
        kept.append(arg)
        if name in own_values and "=" not in arg and at + 1 < len(tail):
            kept.append(tail[at + 1])  # a subcommand option's value, whatever it looks like
            at += 1
        at += 1
    return head + moved + kept


def _short_cluster(arg: str, takes: dict[str, bool]) -> bool:
    """``-vv``: a cluster of the root group's short flags."""
    if len(arg) < 3 or not arg.startswith("-") or arg.startswith("--"):
        return False
    return all(takes.get(f"-{char}") is False for char in arg[1:])


def _options_taking_values(group: click.Group) -> set[str]:
    """The names of every subcommand option (at any depth) that takes a value."""
    names: set[str] = set()
    for command in group.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and _takes_value(param):
                names.update(param.opts)
        if isinstance(command, click.Group):
            names |= _options_taking_values(command)
    return names
