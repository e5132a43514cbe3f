"""N local JAX processes as one cluster: python launch/local_cluster.py --num_processes=2 -- CMD (jaxml/cli/)."""
from jaxml.cli.local_cluster import run

if __name__ == "__main__":
    run()
