"""jaxml: a JAX research codebase in the functional style."""
from setuptools import find_packages, setup

setup(
    name="jaxml",
    version="0.1.0",
    description="Pure-function JAX models, one training loop, sharded classical kernels.",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["jaxml", "jaxml.*"]),
    package_data={"jaxml": ["*.txt"]},
    install_requires=[
        "jax>=0.10,<0.11",
        "flax>=0.12",
        "optax>=0.2.5",
        "chex>=0.1.90",
        "absl-py>=2.1",
        "ml-collections>=1.0",
        "orbax-checkpoint>=0.11",
        "tensorflow-datasets>=4.9.9",
        "grain>=0.2.12",
        "numpy>=1.26",
        "pillow>=10",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "tensorboardX>=2.6",
        "pyarrow>=15",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3", "scikit-learn>=1.5", "torch==2.13.0"],
        "bench": ["torch==2.13.0", "scikit-learn>=1.5"],
        "tf": ["tensorflow-cpu>=2.18", "importlib_resources"],
    },
)
