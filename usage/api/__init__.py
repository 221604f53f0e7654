"""The metering API (`/api/v1/`) the AI tool services call: prices, charges and holds, by workspace API key.

Views are thin: authenticate the key (one selector), validate the body (pydantic schemas, which are also the
OpenAPI document), then call a usage service inside `idempotent_answer`. Every refusal is a JSON error
`{"error": {"code", "message", ...}}` with the status the contract gives; nothing answers 500.

Here `api` is put together from the package's modules: `schemas` (the bodies, so the OpenAPI document),
`authentication` (the workspace API key), `parser` (JSON bodies), `errors` (refusals and the exception handlers)
and `endpoints` (the views); `not_found` answers any other address under /api/.
"""

from __future__ import annotations

from ninja import NinjaAPI
from ninja.operation import Operation

from usage.api.authentication import WorkspaceKey
from usage.api.endpoints import router
from usage.api.errors import EXCEPTION_HANDLERS, not_found
from usage.api.parser import JsonParser

__all__ = ["api", "not_found"]


class _MeteringAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        # django-ninja names an operation after its view's module: keep the ids the document has always had
        # (clients generate code from them), from when the views were in `usage/api.py`.
        return f"usage_api_{operation.view_func.__name__}"


api = _MeteringAPI(
    title="Qolaba metering API",
    version="1",
    description="For the AI tool services: prices, and credits charged or held for each generation.",
    urls_namespace="api",
    auth=WorkspaceKey(),
    parser=JsonParser(),
    docs_url="/docs",
)
for exception, handler in EXCEPTION_HANDLERS.items():
    api.add_exception_handler(exception, handler)
api.add_router("", router)
