"""Runs a launcher's absl ``main``: ``--help`` describes the launcher, and any error ends as one line.

``run(main)``: ``app.run(main)``; on any error prints ``error: <Type>: <message>`` as the last line of stderr
and exits 1 (absl usage errors and explicit exits pass through unchanged; ``--help`` and its kin exit 0, where
absl exits 1). Ctrl-C is one line too, ``jaxml: interrupted`` (exit 130), and a training run stopped by a signal
prints its line and exits with its code (75: preempted, its checkpoint saved; jaxml/train/preemption.py). When
``__main__`` is not the module
that defines ``main`` (a ``launch/<name>.py`` shim, a ``jaxml-<name>`` console script), ``--help`` still shows
that module's docstring and flags. It defines no flags, so every launcher can use it (``local_cluster`` has a
``--num_processes`` of its own, unlike the cluster flag of the same name in ``common``).

Before ``main`` the objects the imports made (JAX's, NumPy's, the launcher's modules: hundreds of thousands)
are frozen (``gc.freeze``): every full collection would otherwise trace them again, and tracing a program makes
enough garbage to trigger several. At exit the garbage collector runs once and then freezes what survives:
interpreter shutdown would otherwise trace every object, several times over (bench/README.md has the cost of
both). Cycles made by ``main`` that are garbage by
then are still collected (their finalizers run, files they hold are flushed and closed); only what is alive at
exit, and what the imports made, is left to the OS.
"""
from __future__ import annotations

import atexit
import gc
import signal
import sys

from absl import app, flags

from jaxml.cli import config_file


def _describe_main_as(module_name: str) -> None:
    """Let ``__main__``'s ``--help`` show ``module_name``'s docstring and key flags (absl files the flags under
    the module that defines them and shows those of ``sys.argv[0]``)."""
    main_module, module = sys.modules["__main__"], sys.modules[module_name]
    if main_module is module:
        return
    main_module.__doc__ = module.__doc__
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def _asks_for_help(argv) -> bool:
    """A help flag before any ``--`` (absl prints the usage, then exits with status 1)."""
    args = list(argv)
    if "--" in args:
        args = args[:args.index("--")]
    return any(a in HELP_FLAGS for a in args)


def _collect_then_freeze() -> None:
    gc.collect()
    gc.freeze()


def run(main) -> None:
    gc.freeze()   # what the imports made lives as long as the process: no collection need trace it again
    atexit.register(_collect_then_freeze)  # after the exit handlers main registers (writers, checkpointers)
    _describe_main_as(main.__module__)
    try:
        sys.argv[1:] = config_file.resolve_config_flags(sys.argv[1:])   # configs/x.py or x: also when installed
        config_file.check_config_flags(sys.argv[1:])
        app.run(main)
    except SystemExit as e:
        if e.code == 1 and _asks_for_help(sys.argv[1:]):
            sys.exit(0)   # the usage was asked for and printed: a success
        raise
    except KeyboardInterrupt as e:   # Ctrl-C, or a run stopped by a signal (jaxml/train/preemption.py): one line
        print(f"jaxml: {e}" if str(e) else "jaxml: interrupted", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 128 + signal.SIGINT))
    except Exception as e:  # noqa: BLE001 — the last line must say why
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
