"""`python -m pipeline STEP ...`: run one step, then end the process without taking its modules apart.

When a step returns, its run is ended and everything is logged; what remains of a normal exit is
the interpreter dismantling torch's, MLflow's and SQLAlchemy's module graph, about half a second
per step. The exit handlers (MLflow's, logging's) still run and the output is flushed first. A step
that raises exits the ordinary way, with its traceback.
"""

import atexit
import os
import sys

from pipeline.cli import main

code = main()
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
