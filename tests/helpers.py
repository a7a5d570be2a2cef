"""Helpers several test files share: git in a scratch repository, a run's artifact listing, the tiny
search settings the end-to-end tests run."""

from __future__ import annotations

import subprocess
from pathlib import Path

# A search that trains in seconds: two latent sizes, one epoch, no verification over seeds.
TINY_SEARCH = {
    "latent_sizes": "2,4",
    "hidden_size": 32,
    "epochs": 1,
    "n_samples": "100,200,400",
    "verify_seeds": "none",
}

# What the generator's requests allow, as its error messages say it (pyfunc and HTTP alike), written out by hand.
SAMPLER_FORMS = "normal:LOC,SCALE | beta:A,B | beta:A,B,LOC,SCALE | gmm:K"
COUNT_ALLOWED = "allowed: a whole number from 1 to 1024 (at most 1024 images per request)"
SEED_ALLOWED = "allowed: a whole number from 0 to 9223372036854775807"


def git(root: Path, *args: str) -> str:
    """`git ARGS` in `root` with a throwaway identity; its output without the final newline."""
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.rstrip("\n")


def artifact_paths(client, run_id: str, path: str = "") -> dict[str, int]:
    """Every artifact file of a run under `path`, folders walked: {path: size in bytes}."""
    found = {}
    for item in client.list_artifacts(run_id, path):
        found.update(artifact_paths(client, run_id, item.path) if item.is_dir else {item.path: item.file_size})
    return found
