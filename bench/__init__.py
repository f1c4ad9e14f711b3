"""bench: the harness around stabgen — study specs → Optuna studies → records → leaderboards."""
