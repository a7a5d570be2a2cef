"""`python -m pipeline.search --worker JOB_JSON`: one search worker process (pipeline/search/workers.py).

Its modules are imported with the garbage collector paused and then frozen, as a step's are
(pipeline/process/collector.py): the worker runs trials for as long as the search lasts, and its collections
then walk only what the trials allocate.
"""

import sys

from pipeline.process import collector


def main() -> int:
    collector.pause()
    from pipeline.search.workers import worker_main  # imported here: with the collector paused

    collector.resume_frozen()
    return worker_main(sys.argv)


if __name__ == "__main__":
    sys.exit(main())
