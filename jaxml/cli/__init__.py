"""Command-line entry points. Each ``jaxml/cli/<name>.py`` defines its absl flags and ``main``; ``launch/<name>.py``
(in a source checkout), ``python -m jaxml.cli.<name>`` and the ``jaxml-<name>`` console script all run it.
``common`` holds what every launcher shares: the cluster flags, the config loader and the error wrapper."""
