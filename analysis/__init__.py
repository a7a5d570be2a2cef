"""Reads a study's runs back out of MLflow and builds its report (analysis/report.py)."""
