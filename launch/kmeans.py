"""K-means: python launch/kmeans.py --image=photo.jpg --k=5 | --data=X.npy --k=8 (see jaxml/cli/kmeans.py)."""
from jaxml.cli.kmeans import run

if __name__ == "__main__":
    run()
