"""Evaluation of the biometric anonymizers on public datasets.

``datasets``: readers for Aalto keystrokes and Balabit mouse data.
``typing_eval``: keystroke-dynamics attacker and utility measures.
``cursor_eval``: mouse-dynamics attacker and utility measures.
Used by ``tracework privacy eval`` and by ``benchmarks/privacy``.
"""
