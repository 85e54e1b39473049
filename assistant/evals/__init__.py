"""Evaluation suites: cases are data in eval/, metrics are functions here."""
