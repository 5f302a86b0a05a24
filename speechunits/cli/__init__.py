"""`speechunits <command> ...`: thin wrappers over the library.

Each command lives in its own module under speechunits/cli/ and registers a class
with COMMANDS; its docstring's first line is the command's help. Heavy imports
(torch, optional extras) happen inside `run`, so `--help` stays fast. A command class
is named after the command with a `Command` suffix (`features` -> FeaturesCommand), a
sub-command's after its parent and itself (`lm train` -> LMTrainCommand): no command
class shares its name with a library class.

    @COMMANDS.register("features")
    class FeaturesCommand:
        '''Compute features for a data dir.'''
        def add_arguments(self, parser): ...
        def run(self, args) -> int: ...     # the process exit status
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import sys

from speechunits.data.pipes import allowing_pipes
from speechunits.errors import SpeechUnitsError, describe_os_error
from speechunits.registry import Registry

COMMANDS = Registry("command")

# Modules that register commands; each is imported when the parser is built.
COMMAND_MODULES = [
    "validate_data",
    "data_tools",
    "features",
    "prepare",
    "abx",
    "extract",
    "resynth",
    "train",
    "probe",
    "unit_metrics",
    "kmeans",
    "report",
    "lm",
]


def add_subcommands(subparsers, registry: Registry, attribute: str) -> None:
    """One sub-parser per registered class: its docstring is the help, its
    `add_arguments` fills the parser, and `args.<attribute>` is the instance."""
    for name, cls in sorted(registry.items()):
        handler = cls()
        doc = inspect.cleandoc(cls.__doc__ or "")
        p = subparsers.add_parser(
            name,
            help=doc.splitlines()[0] if doc else None,
            description=doc or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        handler.add_arguments(p)
        if "--allow-pipes" not in p._option_string_actions:  # every command reads Kaldi tables through the gate
            p.add_argument("--allow-pipes", action="store_true",
                           help="run `cmd |` entries of Kaldi tables (wav.scp, feats.scp): shell commands")
        p.set_defaults(**{attribute: handler})


# Commands whose module is not named after them (module = command with "-" -> "_" otherwise).
_MODULE_OF = {"split-data": "data_tools", "combine-data": "data_tools", "utt2dur": "data_tools"}


def _only_module(command: str | None) -> str | None:
    """The module that registers `command`, when it is one of COMMAND_MODULES (else None)."""
    if not command:
        return None
    module = _MODULE_OF.get(command, command.replace("-", "_"))
    return module if module in COMMAND_MODULES else None


def _command_in(argv: list[str]) -> str | None:
    """The sub-command named in argv (the first word that is not a top-level option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or, given `command`, of that one only: the other
    command modules are then not imported (start-up time)."""
    from speechunits import __version__

    parser = argparse.ArgumentParser(
        prog="speechunits", description="Unsupervised speech unit discovery toolkit."
    )
    parser.add_argument("--version", action="version", version=f"speechunits {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    only = _only_module(command)
    for module in [only] if only else COMMAND_MODULES:
        importlib.import_module(f"speechunits.cli.{module}")
    if only and command not in COMMANDS:  # the guess was wrong: build them all
        return build_parser()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_subcommands(sub, COMMANDS, "_command")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(_command_in(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_command", None):
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        with allowing_pipes(getattr(args, "allow_pipes", False)):
            return int(args._command.run(args) or 0)
    except (SpeechUnitsError, FileNotFoundError) as e:  # bad input; any other error is a bug: a traceback
        print(f"speechunits {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # an unwritable output, a full disk: one line, no traceback
        print(f"speechunits {args.command}: error: {describe_os_error(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
