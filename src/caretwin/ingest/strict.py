"""Full validation of FHIR resources (`--strict`), with the fhir.resources models.

fhir.resources ships R4B models, the closest to R4 it has; R4 resources that use nothing
changed in R4B validate unchanged. Installed with the extra `caretwin[fhir]`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from caretwin.errors import CaretwinError


@cache
def _model(resource_type: str) -> Any:
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        raise CaretwinError("--strict needs fhir.resources: pip install 'caretwin[fhir]'") from None
    return get_fhir_model_class(resource_type)


def validate(resource: dict[str, Any]) -> str | None:
    """None when the resource is valid, else its first error in words (never a value from it)."""
    try:
        model = _model(resource.get("resourceType", ""))
    except KeyError:
        return f"unknown resource type {resource.get('resourceType')!r}"
    try:
        model.model_validate(resource)
    except Exception as exc:  # pydantic.ValidationError; its message may quote values: keep locations only
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return f"{where}: {first.get('type', 'invalid')}" + (f" ({len(errors())} errors)" if len(errors()) > 1 else "")
        return type(exc).__name__
    return None
