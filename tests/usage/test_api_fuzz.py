"""Schema-based fuzzing of the metering API (schemathesis 4) against the OpenAPI document it serves.

The schema is loaded from `/api/v1/openapi.json` through the Django WSGI app, and every generated request goes
through that app in this thread (so on the test database), with a live workspace key injected. Positive and
negative data, plus schemathesis' coverage phase (boundaries, missing/extra parameters, wrong types, missing auth),
for every operation. Checks: no 5xx, status code documented, content type documented, body matches the documented
schema, and negative (schema-invalid) data is refused with a 4xx.

To reach past the first refusals, a share of generated bodies get a real member's email, a priced (tool, model)
and small units, and a share of hold ids are real holds of the workspace: only values that are already valid are
replaced, so a negative case stays negative. The seed is fixed (`deterministic`) so a failure reproduces; set
QOLABA_FUZZ_RANDOM=1 to explore with random seeds, QOLABA_FUZZ_EXAMPLES=N for more examples.

Bodies include NUL characters and non-JSON numbers; both are refused 400 (PostgreSQL text cannot hold NUL).
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import timedelta

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from orgs.services import admin_key_create
from tests.factories import api_key_authenticate
from tests.usage.conftest import make_metered_workspace
from usage.catalog import DEFAULT_PRICES
from usage.selectors import price_find
from usage.services import usage_charge, usage_hold_place

pytestmark = pytest.mark.django_db(transaction=True)

APP = get_wsgi_application()
MAX_EXAMPLES = int(os.environ.get("QOLABA_FUZZ_EXAMPLES", "100"))
DETERMINISTIC = os.environ.get("QOLABA_FUZZ_RANDOM", "") != "1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

MEMBER, VIEWER, OWNER = "fuzz.member@example.com", "fuzz.viewer@example.com", "fuzz.owner@example.com"
EMAILS = [MEMBER, MEMBER, MEMBER.upper(), OWNER, VIEWER, "stranger@example.com"]
PRICED = [(str(tool), model) for tool, model, *_ in DEFAULT_PRICES] + [("image", "no-such-model")]
HOLD_IDS: list[int] = []  # the workspace's holds, filled by the fixture before generation starts


def _mostly(original, replacement: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the replacement, else the generated value (Hypothesis favours the simplest draw: n = 0)."""
    return st.integers(0, 9).flatmap(lambda n: replacement if n < 7 else st.just(original))


# Negative data must be refused with a 4xx; a body over 1 MiB is refused 413 before it is read: also a refusal.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]


def load_schema():
    config = schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",  # positive and negative
                "max-examples": MAX_EXAMPLES,
                "allow-x00": True,
                "deterministic": DETERMINISTIC,
                "database": "none",
            },
            "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP, config=config)

    @schema.hook
    def flatmap_body(context, body):
        """Sometimes a real member, a priced model and few units, where the generated value is already valid."""
        if not isinstance(body, dict):
            return st.just(body)
        choices: dict[str, st.SearchStrategy] = {}
        member = body.get("member")
        if isinstance(member, str) and 3 <= len(member) <= 254:
            choices["member"] = _mostly(member, st.sampled_from(EMAILS))
        tool, model = body.get("tool"), body.get("model")
        if isinstance(tool, str) and 1 <= len(tool) <= 50 and isinstance(model, str) and 1 <= len(model) <= 100:
            choices["priced"] = _mostly((tool, model), st.sampled_from(PRICED))
        units = body.get("units")
        if type(units) is int and 1 <= units <= 1_000_000:
            choices["units"] = _mostly(units, st.one_of(st.integers(1, 20), st.just(100_000)))  # 100k: over budget
        if not choices:
            return st.just(body)

        def apply(chosen: dict) -> dict:
            changed = dict(body)
            if "priced" in chosen:
                changed["tool"], changed["model"] = chosen.pop("priced")
            return changed | chosen

        return st.fixed_dictionaries(choices).map(apply)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        """Sometimes a real hold of the workspace (captured, released or expired as the run goes on)."""
        hold_id = path_parameters.get("hold_id") if isinstance(path_parameters, dict) else None
        if HOLD_IDS and type(hold_id) is int:
            real = st.sampled_from(HOLD_IDS).map(lambda real_id: {**path_parameters, "hold_id": real_id})
            return _mostly(path_parameters, real)
        return st.just(path_parameters)

    return schema


schema = load_schema()

STATS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_fuzz_counts(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not STATS:
        return
    per_operation: Counter = Counter()
    for (operation, _, _), count in STATS.items():
        per_operation[operation] += count
    lines = ["", f"schemathesis: {sum(STATS.values())} generated requests sent"]
    for operation, count in sorted(per_operation.items()):
        statuses = sorted((status, code, n) for (op, status, code), n in STATS.items() if op == operation)
        summary = ", ".join(f"{status}{'/' + code if code else ''}: {n}" for status, code, n in statuses)
        lines.append(f"  {operation}: {count} ({summary})")
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


@pytest.fixture
def fuzz_key() -> str:
    """A workspace with plenty of credits, a member, a viewer and an owner under fixed emails, 30 holds of which
    some expire during the run, and a plain charge (whose id is not a hold)."""
    metered = make_metered_workspace(credits=50_000)
    for user, email in [(metered.member, MEMBER), (metered.viewer, VIEWER), (metered.owner, OWNER)]:
        user.email = email
        user.save(update_fields=["email"])
    price = price_find(tool="video", model="kling-1.6")
    HOLD_IDS.clear()
    for index in range(30):
        held = usage_hold_place(
            workspace=metered.workspace,
            user=metered.member,
            price=price,
            units=1 + index % 7,
            ttl=timedelta(seconds=1 if index % 5 == 0 else 3_600),
            idempotency_key=f"fuzz-hold-{index}",
        )
        HOLD_IDS.append(held.event.pk)
    charged = usage_charge(
        workspace=metered.workspace, user=metered.member, price=price, units=1, idempotency_key="fuzz-charge"
    )
    HOLD_IDS.append(charged.event.pk)
    yield metered.key
    HOLD_IDS.clear()


def _record(case, response) -> None:
    code = None
    if response.headers.get("content-type", [""])[0].startswith("application/json"):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("code")
    STATS[(case.operation.label, response.status_code, code)] += 1


FUZZ_SETTINGS = settings(suppress_health_check=list(HealthCheck), deadline=None)


@pytest.fixture
def fuzz_admin_key(fuzz_key) -> str:
    """An admin key of the fuzzed workspace's organization: the organization's usage report takes only that."""
    api_key = api_key_authenticate(fuzz_key)
    assert api_key is not None
    organization = api_key.workspace.organization
    _, secret = admin_key_create(organization=organization, actor=organization.created_by, name="Fuzz")
    return secret


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz(case, fuzz_key, fuzz_admin_key):
    key = fuzz_admin_key if case.operation.path == "/api/v1/organization/usage" else fuzz_key
    response = case.call(headers={"Authorization": f"Bearer {key}"})
    _record(case, response)
    case.validate_response(response, checks=CHECKS)


def test_fuzz_release_documents_every_status_it_answers(fuzz_key):
    """Negative data for the release operation alone (e.g. non-integer hold ids), every check."""
    operation = schema["/api/v1/holds/{hold_id}/release"]["POST"]
    strategy = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, hooks=schema.hooks)

    @given(case=strategy)
    @settings(max_examples=50, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(headers={"Authorization": f"Bearer {fuzz_key}"})
        _record(case, response)
        case.validate_response(response, checks=CHECKS)

    run()
