"""schemathesis over /ogc/openapi against the running server: no 5xx for any generated request.

Bounded: ``MAX_EXAMPLES`` per operation (about 30 operations), so the run stays near a minute.
Driven through Hypothesis directly: schemathesis' pytest plugin does not work on pytest 9.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = 50


def test_no_server_errors(server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/ogc/openapi")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 27  # 4 per collection + landing, conformance, collections (+ openapi)
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error], timeout=60)

        try:
            check()
        except Exception as err:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.label}: {str(err)[:1500]}")
    assert not failures, "\n\n".join(failures)
