"""Population models shipped with the package (aggregate statistics only).

Built by ``scripts/build_population_models.py`` from public datasets; see
docs/privacy-anonymization.md for how and from what.
"""
