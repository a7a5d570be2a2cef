"""`python -m pipeline.search --worker JOB_JSON`: one search worker process (pipeline/search/workers.py).

Its modules are imported with the garbage collector paused and then frozen, as a step's are
(pipeline/process/collector.py): the worker runs trials for as long as the search lasts, and its collections
then walk only what the trials allocate.
"""

import sys

from pipeline.process import collector

collector.pause()

from pipeline.search.workers import worker_main  # noqa: E402

collector.resume_frozen()
sys.exit(worker_main(sys.argv))
