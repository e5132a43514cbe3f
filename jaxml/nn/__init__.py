"""Building blocks: activations, initializers and layers as plain init/apply functions."""
from jaxml.nn import activations, initializers, layers  # noqa: F401
