import pytest
from django.core.exceptions import ValidationError

from qolaba.fields import IdsMultipleChoiceField
from workspaces.models import Workspace


@pytest.mark.parametrize("out_of_range", [2**63, -(2**63) - 1, 10**30, "9223372036854775808"])
def test_an_id_no_64_bit_key_can_have_is_a_form_error_without_a_query(db, django_assert_num_queries, out_of_range):
    """SQLite (the demo's database) raises OverflowError on such an id in `__in`: the field never asks."""
    field = IdsMultipleChoiceField(queryset=Workspace.objects.all())
    with django_assert_num_queries(0), pytest.raises(ValidationError) as refused:
        field.clean([str(out_of_range)])
    assert refused.value.code == "invalid_choice"


def test_ids_in_range_are_looked_up_as_usual(db, django_assert_num_queries):
    field = IdsMultipleChoiceField(queryset=Workspace.objects.all())
    with django_assert_num_queries(1), pytest.raises(ValidationError) as refused:
        field.clean([str(2**63 - 1)])
    assert refused.value.code == "invalid_choice"
