"""Tracework: consented capture of real computer work, turned into training data.

See docs/ for the user guide and DESIGN.md for the architecture.
"""

__version__ = "0.1.0"
