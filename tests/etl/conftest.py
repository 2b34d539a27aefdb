"""ETL test helpers; the shared ``demo_engine`` fixture lives in tests/conftest.py."""

from tests.demo import DIVISIONS, TEST_KEY, demo_params, load  # noqa: F401 - imported by tests
