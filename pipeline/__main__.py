"""`python -m pipeline STEP ...`: run one step, then end the process without taking its modules apart.

When a step returns, its run is ended and everything is logged; what remains of a normal exit is
the interpreter dismantling torch's, MLflow's and SQLAlchemy's module graph, about half a second
per step. The exit handlers (MLflow's, logging's) still run and the output is flushed first. A step
that raises exits the ordinary way, with its traceback. The garbage collector is off until the step's
run opens (pipeline/collector.py).
"""

from pipeline.process import collector

collector.pause()

import atexit  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from pipeline.cli import main  # noqa: E402

code = main()
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
