"""Config files from the command line: ``load_config("configs/x.py:arg")`` (a file's ``get_config(arg)``, the one
loader the launchers, tests, benches and notebooks use) and ``check_config_flags(argv)``, which loads the
``--config`` of a command line and checks each ``--config.a.b=v`` override before absl parses them, so a bad
argument or field fails in one line naming it instead of a traceback or a repr.

``resolve_path``: a config named as in the README (``configs/x.py``) or by its short name (``x``) that is not a
file here is the copy of ``configs/`` jaxml was installed with (``jaxml/_configs/`` in the wheel, setup.py) or
of the clone it runs from, so every README command also works from an installed wheel outside a clone;
``resolve_config_flags(argv)`` applies it to a command line's ``--config``."""
from __future__ import annotations

import difflib
import importlib.util
import os
from typing import Sequence


def config_folders() -> list[str]:
    """Where the shipped configs are: the wheel's ``jaxml/_configs/``, then a clone's top-level ``configs/``."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [os.path.join(package, "_configs"), os.path.join(os.path.dirname(package), "configs")]


def shipped_configs() -> list[str]:
    """The short names (``zhou_gender``) of the configs in ``config_folders()``."""
    return sorted({f[:-3] for d in config_folders() if os.path.isdir(d) for f in os.listdir(d)
                   if f.endswith(".py") and not f.startswith("_")})


def resolve_path(path: str) -> str:
    """``path`` when it is a file; else, for ``configs/x.py``, ``x.py`` or ``x``, the shipped ``x.py``
    (``config_folders()``); else ``path`` unchanged (its loading fails naming it)."""
    if os.path.isfile(path):
        return path
    folder, name = os.path.split(os.path.normpath(path))
    if folder not in ("", "configs"):
        return path
    name = name if name.endswith(".py") else name + ".py"
    for candidate in (os.path.join(d, name) for d in config_folders()):
        if os.path.isfile(candidate):
            return candidate
    return path


def resolve_config_flags(argv: Sequence[str]) -> list[str]:
    """``argv`` with each ``--config=PATH[:ARG]`` (or ``--config PATH[:ARG]``) before a ``--`` resolved by
    ``resolve_path``; the overrides (``--config.a.b=v``) and everything after ``--`` unchanged."""
    out = list(argv)
    end = out.index("--") if "--" in out else len(out)
    for i in range(end):
        if out[i].startswith("--config="):
            path, sep, arg = out[i][len("--config="):].partition(":")
            out[i] = f"--config={resolve_path(path)}{sep}{arg}"
        elif out[i] == "--config" and i + 1 < end:
            path, sep, arg = out[i + 1].partition(":")
            out[i + 1] = f"{resolve_path(path)}{sep}{arg}"
    return out


def load_config(spec: str):
    """``get_config(arg)`` of the config file ``spec`` = ``PATH[:ARG]`` (e.g. ``configs/mnist_mlp.py:quick``;
    ``resolve_path`` finds a shipped config by ``configs/x.py`` or ``x``). A missing file or one without
    ``get_config`` fails naming the path."""
    path, _, arg = spec.partition(":")
    path = resolve_path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist (and is not one of jaxml's configs: "
                                f"{', '.join(shipped_configs())})")
    name = "jaxml_config_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise AttributeError(f"config file {path!r} defines no get_config(arg=None)")
    return module.get_config(arg) if arg else module.get_config()


def _flag_values(argv: Sequence[str], name: str) -> list[tuple[str, str]]:
    """(flag, value) of every ``--name=v`` / ``--name v`` / ``--name.x=v`` before a ``--``."""
    out, args = [], list(argv)
    if "--" in args:
        args = args[:args.index("--")]
    for i, a in enumerate(args):
        if a.startswith(f"--{name}=") or a.startswith(f"--{name}."):
            flag, _, value = a[2:].partition("=")
            out.append((flag, value))
        elif a == f"--{name}" and i + 1 < len(args):
            out.append((name, args[i + 1]))
    return out


def check_config_flags(argv: Sequence[str]) -> None:
    """Load the command line's ``--config`` and check that every ``--config.FIELD`` override names a field."""
    given = _flag_values(argv, "config")
    specs = [v for f, v in given if f == "config"]
    if not specs:
        return
    try:
        config = load_config(specs[-1])
    except Exception as e:  # noqa: BLE001 — the config file's own error, named with the file
        raise ValueError(f"--config={specs[-1]}: {type(e).__name__}: {e}") from None
    for flag, _ in given:
        if flag == "config":
            continue
        node, path = config, ["config"]
        for part in flag.split(".")[1:]:
            keys = list(node.keys()) if hasattr(node, "keys") else []
            if part not in keys:
                close = difflib.get_close_matches(part, keys, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"--{flag}: {'.'.join(path)} has no field {part!r}{hint}; it has {sorted(keys)}")
            node, path = node[part], path + [part]
