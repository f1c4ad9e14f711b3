"""bench: the harness around stabgen — study specs → Optuna studies → records → reports.

Its public Python API is `bench.api` (load a spec, run a study, read its trials and per-config
leaderboard as DataFrames, load a trial's generator, build a report); `bench.cli` is the command.
"""

__all__ = ["api"]


def __getattr__(name: str):
    if name == "api":  # lazily: `import bench` stays cheap
        import importlib
        return importlib.import_module("bench.api")
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
