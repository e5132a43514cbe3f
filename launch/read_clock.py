"""Read the time off a clock picture: python launch/read_clock.py --image=PATH --workdir=RUN
(code: jaxml/tasks/clock/read_clock.py)."""
from jaxml.tasks.clock.read_clock import run

if __name__ == "__main__":
    run()
