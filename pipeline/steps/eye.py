"""The `eye` step: a person as the third judge, blind and counted (docs/eye.md).

`mlflow run . -e eye -P source=<main run id>` (or `python -m pipeline eye --source ...`) draws a blind set
with a seed: `n_per_experiment` images of each of the study's experiments, from the samples its evaluate runs
kept with both judges' labels, and as many real test digits, shuffled (pipeline/core/judges/eye.py). It
serves the page on `host:port` (pipeline/eye_page.py) and saves every answer as it is given; when the set is
done it logs an `eye` run under the source run (a table, one row per image and rater, and the summary
metrics) and ends. A killed or paused session resumes where it stopped with the same command.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np

from analysis import sources
from pipeline import tracking
from pipeline.configs import NO_VALUE, EyeConfig
from pipeline.core.data import datasets
from pipeline.core.files import atomic_path
from pipeline.core.judges import disagreement
from pipeline.core.judges import eye as judging
from pipeline.errors import InputError
from pipeline.eye_page import Session, serving
from pipeline.tracking.sessions import EYE_IMAGES, EYE_STEP, EYE_TABLE, RATER_TAG, SET_TAG, eye_sessions, mark_replaced

LOG_ARTIFACT = "eye/answers.jsonl"  # the session's own answers file, as written
ANSWERS_FOLDER = "eye-answers"


@dataclass
class Study:
    """What the eye judges: the source run, its experiments (plan entries) and their evaluations."""

    run: object
    experiments: list[dict]
    evaluations: list[sources.Evaluation]


def source_study(config: EyeConfig, folder: Path) -> Study:
    try:
        run = tracking.get_run(config.source, "source")
    except InputError as error:
        raise InputError(f"{error}; allowed: a main run id | an evaluate run id") from None
    step = run.data.tags.get(tracking.STEP_TAG)
    if step == "main":
        study = sources.collect(sources.find_main_run(config.source), folder)
        return Study(run, study.experiments, study.evaluations)
    if step == "evaluate":
        evaluation = sources.Evaluation("", -1, run, run.data.tags.get("source_run_id", ""))
        sources.attach_samplers([evaluation])
        experiments = []
        for key, child in sorted(evaluation.samplers.items()):
            tags = child.data.tags
            evaluation.cell, evaluation.seed = tags.get("cell", ""), int(tags.get("seed", "0"))
            name = tags.get("experiment") or f"{tags.get('cell', '')} {tags.get('sampler', key)}"
            experiments.append(
                {"name": name, "study_id": tags.get("experiment"), "cell": tags.get("cell", ""), "sampler_key": key}
            )
        return Study(run, experiments, [evaluation])
    raise InputError(
        f"parameter 'source': run {config.source} is a {step!r} run; allowed: a main run id | an evaluate run id"
    )


def pools_of(study: Study, folder: Path) -> dict[str, judging.Pool]:
    """Each experiment's kept random samples with both judges' labels, pooled over its evaluations' seeds:
    the study's own experiments (E1-E5) where it has them, else every experiment."""
    chosen = [e for e in study.experiments if e.get("study_id")] or study.experiments
    pools = {}
    for experiment in chosen:
        parts = []
        for evaluation in study.evaluations:
            if evaluation.cell != experiment["cell"]:
                continue
            path = f"evaluation/{experiment['sampler_key']}/{disagreement.ARTIFACT}"
            local = sources.download(evaluation.run_id, path, folder)
            if local is None:
                continue
            try:
                parts.append((disagreement.Dispute.from_bytes(local.read_bytes()), evaluation.seed))
            except ValueError:  # an evaluation that kept another layout (older code): nothing to draw from
                continue
        if parts:
            pools[experiment.get("study_id") or experiment["name"]] = judging.Pool(
                images=np.concatenate([d.random_images for d, _ in parts]),
                cnn=np.concatenate([d.random_cnn for d, _ in parts]),
                knn=np.concatenate([d.random_knn for d, _ in parts]),
                seeds=np.concatenate([np.full(len(d.random_rows), seed) for d, seed in parts]),
                rows=np.concatenate([d.random_rows for d, _ in parts]),
            )
    if not pools:
        raise InputError(
            f"parameter 'source': run {study.run.info.run_id} has no evaluate run with kept samples "
            f"(evaluation/<sampler>/{disagreement.ARTIFACT}); allowed: a main run or an evaluate run that finished"
        )
    return pools


def real_digits(study: Study) -> tuple[np.ndarray, np.ndarray]:
    """The test split of the data the study's first evaluated model was trained on."""
    first = study.evaluations[0]
    train = tracking.get_run(first.train_run_id or first.run.data.tags.get("source_run_id", ""), "source")
    prepared = datasets.find_cached(tracking.run_param(train, "data_digest", ""))
    if prepared is None:
        prepared = tracking.resolve_data(
            tracking.run_param(train, "data"),
            float(tracking.run_param(train, "val_fraction", "0.1")),
            int(tracking.run_param(train, "seed", "0")),
            tracking.run_param(train, "data_root", "data"),
        )
    return prepared.splits["test"]


def blind_set(config: EyeConfig, folder: Path) -> tuple[Study, list[judging.Item]]:
    study = source_study(config, folder)
    pools = pools_of(study, folder)
    images, labels = real_digits(study)
    smallest = min([len(pool) for pool in pools.values()] + [len(labels)])
    if config.n_per_experiment > smallest:
        raise InputError(
            f"parameter 'n_per_experiment': got {config.n_per_experiment}; allowed: 1 to {smallest} for this source "
            f"(its evaluate runs kept {disagreement.RANDOM} random samples per experiment and seed)"
        )
    return study, judging.draw_set(pools, images, labels, config.n_per_experiment, config.seed)


def read_log(path: Path) -> tuple[dict, list[dict]]:
    """(header, entries) of an answers file. A last line cut short (the step killed while writing it, before
    the page was answered) is dropped from the file, so that the session appends after whole lines; any
    other line that is not JSON is an error."""
    texts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = []
    for number, text in enumerate(texts, 1):
        try:
            lines.append(json.loads(text))
        except ValueError:
            if number < len(texts) or number == 1:
                raise ValueError(f"line {number} is not JSON") from None
            with atomic_path(path) as tmp:  # the whole lines, as they were
                tmp.write_text("".join(line + "\n" for line in texts[:-1]), encoding="utf-8")
    if not lines or "set" not in lines[0]:
        raise ValueError("no header line naming the set")
    return lines[0], lines[1:]


def open_session(config: EyeConfig, header: dict, items: list[judging.Item]) -> Session:
    """The session: its answers file (the one `answers` names, else the rater's own for this set), checked
    against this set; resumed where it stopped."""
    if config.answers != NO_VALUE:
        path = Path(config.answers).expanduser().resolve()
        if not path.is_file():
            raise InputError(
                f"parameter 'answers': no file {config.answers!r}; allowed: a session's answers file | none"
            )
    else:
        path = tracking.local_path(ANSWERS_FOLDER) / f"{config.source}-{header['set']}-{config.rater}.jsonl"
    ids = {item.image_id for item in items}
    if not path.exists():  # written from the first answer on: a step refused before it leaves no file
        return Session(items, path, header, [])
    try:
        found, entries = read_log(path)
        mismatch = [k for k in ("source", "seed", "n_per_experiment", "rater", "set") if found.get(k) != header[k]]
        if mismatch:
            raise ValueError(
                "made for another set: " + ", ".join(f"{k} {found.get(k)!r} (here {header[k]!r})" for k in mismatch)
            )
        answers = judging.replay(entries, ids)
    except ValueError as error:
        raise InputError(f"parameter 'answers': {path}: {error}; allowed: an answers file of this set") from None
    return Session(items, path, header, answers)


def table(items: list[judging.Item], session: Session) -> dict[str, list]:
    by_id = {a.image_id: a for a in session.answers}
    rows = []
    for position, item in enumerate(items):
        answer = by_id[item.image_id]
        rows.append(
            {
                **item.record(),
                "position": position,
                "rater": session.header["rater"],
                "eye_digit": answer.digit,
                "eye_says": answer.says,
            }
        )
    return rows


def images_npz(items: list[judging.Item]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, image_id=np.array([i.image_id for i in items]), pixels=np.stack([i.pixels for i in items])
    )
    return buffer.getvalue()


def log_session(config: EyeConfig, study: Study, items: list[judging.Item], session: Session, older: list) -> str:
    rows = table(items, session)
    metrics, dominant = judging.metrics(rows)
    source = study.run
    tags = {"source_run_id": config.source, SET_TAG: session.header["set"], RATER_TAG: config.rater}
    with tracking.step_run(
        EYE_STEP,
        f"eye {config.rater} {source.info.run_name}",
        config,
        parent_run_id=config.source,
        experiment_id=source.info.experiment_id,
        tags=tags,
    ) as run:
        tracking.log_config(config)
        mlflow.log_table({key: [row[key] for row in rows] for key in rows[0]}, EYE_TABLE)
        mlflow.log_artifact(str(session.log), LOG_ARTIFACT.rsplit("/", 1)[0])
        with tracking.artifact_batch(EYE_IMAGES.rsplit("/", 1)[0]) as batch:
            batch.file(EYE_IMAGES.rsplit("/", 1)[1], images_npz(items))
        mlflow.log_metrics(metrics)
        mlflow.set_tags(dominant)
        mark_replaced([r.info.run_id for r in older], run.info.run_id)
        run_id = run.info.run_id
    if config.answers == NO_VALUE:  # the rater's own file steps aside, so that a new session on the set starts afresh
        session.log.replace(session.log.with_name(f"{session.log.stem}.logged-{run_id[:8]}.jsonl"))
    print(f"eye: {len(rows)} answers of rater {config.rater} logged to run {run_id}")
    for experiment, own in judging.by_experiment(rows).items():
        judged = judging.judge_experiment(own)
        print(f"  {experiment}: taken for real {judged.real.text()}; no digit {judged.no_digit.text()}")
    return run_id


def eye(config: EyeConfig) -> str:
    """Run the `eye` step: serve the blind set until every image is answered, then log the session; returns
    the eye run's id. Bad input is refused before the page is served and before any run opens."""
    with tempfile.TemporaryDirectory(prefix="vae-eye-") as tmp:
        study, items = blind_set(config, Path(tmp))
    header = {
        "set": judging.set_digest(items),
        "source": config.source,
        "seed": config.seed,
        "n_per_experiment": config.n_per_experiment,
        "rater": config.rater,
        "images": len(items),
    }
    older = eye_sessions(config.source, config.rater, header["set"])
    if older and config.replace != "yes":
        raise InputError(
            f"parameter 'replace': rater {config.rater!r} already has a finished session on this set (eye run "
            f"{older[0].info.run_id}); allowed: yes (this session replaces it) | another rater"
        )
    session = open_session(config, header, items)
    if not session.done.is_set():
        try:
            with serving(session, config.host, config.port) as url:
                state = session.state()
                print(
                    f"eye: the page is at {url} (rater {config.rater}, {state['answered']} of {state['total']} "
                    f"answered; every answer is saved to {session.log} as it is given: Ctrl-C pauses, the same "
                    "command resumes)",
                    flush=True,
                )
                session.done.wait()
        except OSError as error:
            raise InputError(f"parameter 'port': cannot serve on {config.host}:{config.port} ({error})") from None
        except KeyboardInterrupt:
            print(f"eye: paused at {len(session.answers)} of {len(items)}; the same command resumes", flush=True)
            raise SystemExit(130) from None
    return log_session(config, study, items, session, older)
