"""Form fields shared by the apps."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

# Primary keys are 64-bit (BigAutoField): an id outside this range can name no row.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


class IdsMultipleChoiceField(forms.ModelMultipleChoiceField):
    """A ModelMultipleChoiceField that refuses ids no 64-bit key can have before querying.

    Django guards single-value lookups (`exact`, `lt`, ...) against integer overflow but not `__in`, which this
    field's validation uses: on SQLite an id of 2**63 or more raises OverflowError (a 500) instead of the field's
    "not one of the available choices" error that PostgreSQL's refusal leads to.
    """

    def clean(self, value: Any) -> QuerySet[Any]:
        for pk in value if isinstance(value, list | tuple) else ():
            try:
                number = int(str(pk))
            except (TypeError, ValueError):
                continue  # not a number at all: Django's own check reports it
            if not BIGINT_MIN <= number <= BIGINT_MAX:
                raise ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice", params={"value": str(pk)}
                )
        return super().clean(value)
