"""`python -m pipeline STEP ...`: the process entry of every step, and the one place that sets a step's
process up. `main`, in order:

1. The exit handler that ends the process is registered, first (see Exit below).
2. The garbage collector is paused (pipeline/process/collector.py): a step's start-up makes about 400,000
   objects (torch, MLflow, SQLAlchemy, matplotlib) that live until the process ends, and collecting while
   they are made walks them over and over (docs/speed.md, "Start-up").
3. The command line is checked (bad input: exit status 2 before anything heavy is imported), then the
   step's module is imported (pipeline/cli.py).
4. The collector resumes with everything alive frozen (`gc.freeze`): from then on collections walk only
   what the step allocates. Garbage cycles made during start-up stay until the process ends; made once.
5. A step launched by a driver (main or search names itself in `VAE_PIPELINE_DRIVER`) starts the
   watchdog, which stops the step when the driver dies (pipeline/process/watchdog.py).
6. The step runs; its status is the process's exit status.

Exit: every exit handler runs, as in a normal exit (MLflow's flushes of its logging queues, its temporary
folders, logging's shutdown), and then the process ends without taking its modules apart (about half a
second of dismantling torch's, MLflow's and SQLAlchemy's module graph, for nothing): `ProcessExit.end` is
registered before the pipeline's other modules are imported, so it is the first exit handler and runs
last (they run last-in, first-out); it flushes the output and calls `os._exit` with the step's status.
"""

import atexit
import os
import sys

from pipeline.process import collector


class ProcessExit:
    """The step process's exit status, and the last exit handler, which ends the process with it."""

    def __init__(self):
        self.status = 1  # until the step returns: an uncaught exception (its traceback printed first) exits with 1

    def end(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(self.status)


def main() -> None:
    process_exit = ProcessExit()
    atexit.register(process_exit.end)
    collector.pause()
    # Imported here, after the exit handler is registered and the collector paused (steps 1 and 2).
    from pipeline import cli
    from pipeline.errors import InputError
    from pipeline.process import watchdog

    try:
        step, config = cli.configure()
    except InputError as error:
        process_exit.status = cli.refuse(error)
    except SystemExit as error:  # argparse: --help (0) or an unknown flag (2)
        process_exit.status = error.code if isinstance(error.code, int) else 2
    else:
        function = cli.load_step(step)
        collector.resume_frozen()
        watchdog.watch_driver_from_environment()
        try:
            process_exit.status = cli.run(function, config)
        except SystemExit as error:  # SIGTERM (pipeline/process/processes.exit_on_sigterm) or a step's own exit
            process_exit.status = error.code if isinstance(error.code, int) else 1
    sys.exit(process_exit.status)


if __name__ == "__main__":
    main()
