"""Metrics: torch-fidelity for FID/KID/precision-recall, on the domain classifiers or Inception."""
