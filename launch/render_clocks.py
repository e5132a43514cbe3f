"""Render the clock dataset: python launch/render_clocks.py --out_dir=/tmp/clocks (code: jaxml/tasks/clock/)."""
from jaxml.tasks.clock.render_clocks import run

if __name__ == "__main__":
    run()
