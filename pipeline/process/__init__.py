"""Processes on this machine, not MLflow: who a process is and whether it still lives, locks every process
shares (processes), the watchdog that stops a step whose driver died (watchdog), a step process's garbage
collector (collector), and the single test hook (pause).

The process entries (pipeline/__main__.py for steps, pipeline/search/__main__.py for search workers) are
the one place that starts the watchdog and pauses and resumes the collector; nothing here starts on import.
"""
