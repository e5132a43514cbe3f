"""Prepare the datasets you downloaded, where jaxml reads them (``$JAXML_DATA_DIR`` or --data_dir):

    jaxml-data imdb --from=aclImdb_v1.tar.gz           # -> imdb/aclImdb_{train,test}.csv.gz
    jaxml-data mnist --from=DOWNLOADS/mnist            # the four original .gz files -> mnist/ (SHA-256 checked)
    jaxml-data fashion_mnist --from=DOWNLOADS/fashion  # the same for Fashion-MNIST -> fashion_mnist/
    jaxml-data check                                   # every file present and equal to the published bytes?

(``python launch/data.py ...`` in a clone.) Nothing is downloaded; nothing is written unless every check passes;
a file already there with other bytes is never replaced. The conversion: ``jaxml/data/prepare.py``.
"""
from __future__ import annotations

import os

from absl import flags

from jaxml.cli import runner
from jaxml.data import prepare

COMMANDS = ("imdb", "mnist", "fashion_mnist", "check")
_FROM = flags.DEFINE_string("from", None, "imdb: the aclImdb_v1.tar.gz archive; mnist, fashion_mnist: the folder "
                            "holding the four original .gz files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where jaxml reads data (default: $JAXML_DATA_DIR).")
_VERIFY = flags.DEFINE_bool("verify", True, "Check the IDX files' published SHA-256 (--noverify: only headers).")


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise ValueError(f"give one command of {', '.join(COMMANDS)} (got {argv[1:]}); see --help")
    command = argv[1]
    if command == "check":
        status = prepare.check(_DATA_DIR.value)
        for path, state in status.items():
            print(f"{state:12s} {path}")
        if any(s != "ok" for s in status.values()):
            print(f"{sum(s == 'ok' for s in status.values())} of {len(status)} files as published")
        return 0
    if not _FROM.value:
        raise ValueError(f"jaxml-data {command} needs --from=" + ("aclImdb_v1.tar.gz" if command == "imdb" else
                                                                 "the folder holding the four .gz files"))
    if not os.path.exists(_FROM.value):
        raise FileNotFoundError(f"--from={_FROM.value}: no such file or folder")
    if command == "imdb":
        done = prepare.prepare_imdb(_FROM.value, _DATA_DIR.value)
    else:
        done = prepare.prepare_idx(command, _FROM.value, _DATA_DIR.value, verify=_VERIFY.value)
    for path, state in done.items():
        print(f"{state:8s} {path}")
    return 0


def run():
    runner.run(main)


if __name__ == "__main__":
    run()
