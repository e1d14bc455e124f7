"""Population models shipped with the package (aggregate statistics only).

Built by ``scripts/build_population_models.py`` from public datasets; see
docs/privacy-anonymization.md for how and from what.
"""

from __future__ import annotations

import json
from importlib import resources

from ...errors import PolicyError


def load_model_document(kind: str, shipped_name: str, path: str | None = None) -> tuple[dict, dict | None]:
    """``(quantiles, meta)`` of a population model file; ``path`` None loads the
    one shipped with the package. A malformed file is a PolicyError naming it."""
    if path is None:
        text = resources.files(__name__).joinpath(shipped_name).read_text()
    else:
        with open(path) as fh:
            text = fh.read()
    try:
        doc = json.loads(text)
        return doc["quantiles"], doc.get("meta")
    except (KeyError, ValueError, TypeError) as exc:
        raise PolicyError(f"{kind} population model {path or '(shipped)'} is malformed: {exc}",
                          hint="rebuild it with scripts/build_population_models.py") from exc
