"""Trial files for clusters, through Optuna's artifact store.

A worker writes each trial's folder (config, history, evaluations, samples, generator weights) on its
own disk, under paths that mean nothing on another machine. So every file of the folder is also
uploaded to an artifact store recorded in the study (user attribute `artifact_store`): by default a
filesystem store under the first worker's runs folder (an absolute path; on a cluster, give a folder
every node sees, or an s3:// / gs:// bucket, with `--artifacts`). Whoever reads a trial later — the
final Inception step of `bench run`, `bench report`, the Python API — uses the trial's own folder if it
is on this machine, else downloads the files into a local cache (settings.cache_dir()/artifacts).
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.artifacts import (Boto3ArtifactStore, FileSystemArtifactStore, GCSArtifactStore, download_artifact,
                              get_all_artifact_meta, upload_artifact)

from stabgen import settings
from stabgen.errors import StabgenError

STORE_ATTR = "artifact_store"
FILES = ("config.json", "history.csv", "evals.csv", "metrics.json", "samples.png", "generator.pt")
HEAVY = ("generator.pt",)  # fetched only when asked for (load_generator), not for every report


def make_store(url: str):
    """An Optuna artifact store from its URL: file:///abs/path (or a plain path), s3://bucket, gs://bucket."""
    if url.startswith("s3://"):
        return Boto3ArtifactStore(url.removeprefix("s3://").strip("/"))
    if url.startswith("gs://"):
        return GCSArtifactStore(url.removeprefix("gs://").strip("/"))
    path = Path(url.removeprefix("file://"))
    if path.exists() and not path.is_dir():
        raise StabgenError(f"artifact store {path} is a file, not a folder; pass --artifacts FOLDER")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StabgenError(f"cannot create the artifact store folder {path}: {e.strerror}; pass --artifacts FOLDER") from None
    return FileSystemArtifactStore(str(path))


def ensure(study: optuna.Study, runs_dir: Path, option: str | None = None) -> str:
    """The study's artifact store URL, recorded on first use: --artifacts, else the one the study
    already records, else a folder beside the study's runs (absolute, so other folders find it)."""
    recorded = study.user_attrs.get(STORE_ATTR)
    if option:
        url = option if "://" in option else "file://" + str(Path(option).expanduser().resolve())
    elif recorded:
        url = recorded
    else:
        url = "file://" + str((Path(runs_dir) / study.study_name / "artifacts").resolve())
    make_store(url)  # fails now, in one line, not after the first trial
    if url != recorded:
        study.set_user_attr(STORE_ATTR, url)
    return url


def upload(trial: optuna.Trial, folder: Path, url: str) -> int:
    """Every trial file in `folder` into the store, attached to the (still running) trial."""
    store, n = make_store(url), 0
    for name in FILES:
        if (folder / name).is_file():
            upload_artifact(artifact_store=store, file_path=str(folder / name), study_or_trial=trial)
            n += 1
    return n


def local_folder(study: optuna.Study, trial: optuna.trial.FrozenTrial, want: tuple[str, ...] = ()) -> Path | None:
    """A folder on this machine holding the trial's files: its own folder when it is here (with the
    `want`ed files), else a cache filled from the artifact store — every light file, and the heavy
    ones named in `want`. None when the trial has neither (e.g. it ran before artifacts existed)."""
    own = Path(str(trial.user_attrs.get("trial_dir", "")))
    if trial.user_attrs.get("trial_dir") and (own / "config.json").is_file() and all((own / w).is_file() for w in want):
        return own
    url = study.user_attrs.get(STORE_ATTR)
    if not url:
        return None
    # a FrozenTrial's artifacts are found through its study's storage; Optuna exposes no public
    # accessor for a Study's storage object, so its attribute is read here, in this one place
    metas = get_all_artifact_meta(trial, storage=study._storage)
    if not metas:
        return None
    cache = settings.cache_dir() / "artifacts" / _safe(study.study_name) / f"trial-{trial.number}"
    cache.mkdir(parents=True, exist_ok=True)
    store = make_store(url)
    for meta in metas:
        target = cache / meta.filename
        if target.is_file() or (meta.filename in HEAVY and meta.filename not in want):
            continue
        download_artifact(artifact_store=store, file_path=str(target), artifact_id=meta.artifact_id)
    return cache


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
