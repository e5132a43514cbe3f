"""Print `uv pip install` options that give pip's own configuration (`pip config list`: index-url,
extra-index-url, find-links, constraint, cert), one per line, so uv installs from the same places with the
same caps as pip. Like pip, a local index or link that does not exist is left out."""
import os
import shlex
import subprocess
import sys
from urllib.parse import urlparse

FLAGS = {"index-url": "--default-index", "extra-index-url": "--index", "find-links": "--find-links",
         "constraint": "--constraint"}


def exists(location: str) -> bool:
    url = urlparse(location)
    if url.scheme in ("http", "https"):
        return True
    return os.path.exists(url.path if url.scheme == "file" else location)


def main() -> None:
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    args = [("--compile-bytecode",), ("--index-strategy", "unsafe-best-match")]   # pip: .pyc, best version found
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        name = key.rpartition(".")[2]
        values = shlex.split(value)[0].split() if value else []
        if name in FLAGS:
            for v in values:
                if exists(v):
                    args.append((FLAGS[name], v))
        elif name == "cert":
            args.append(("--native-tls",))       # the system's certificates, where pip names a bundle
    print("\n".join(word for option in dict.fromkeys(args) for word in option))   # each option once


if __name__ == "__main__":
    main()
