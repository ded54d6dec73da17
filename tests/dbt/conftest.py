"""Running the real dbt project against a test database."""

from __future__ import annotations

import pytest

from tests.support import Dbt


@pytest.fixture
def dbt(db_url: str) -> Dbt:
    return Dbt(db_url)
