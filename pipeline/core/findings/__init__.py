"""Findings as data and the one evaluator that turns them into verdicts (see evaluator.py)."""

from pipeline.core.findings.declarations import SEARCH_FINDINGS, STUDY_FINDINGS
from pipeline.core.findings.evaluator import FindingVerdict, SamplerResults, evaluate_findings

__all__ = ["SEARCH_FINDINGS", "STUDY_FINDINGS", "FindingVerdict", "SamplerResults", "evaluate_findings"]
