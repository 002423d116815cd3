"""Print the score of the published-case set: `python -m tests.clinical.score`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from cds_service import create_app
from cds_service.settings import Settings
from tests.clinical.cases import CASES
from tests.clinical.test_published_cases import problems, run_case


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        app = create_app(Settings(auth="off", data_dir=Path(data)))
        passed = 0
        with app.test_client() as client:
            for case in CASES:
                found = problems(case, run_case(client, case))
                passed += not found
                print(f"{'PASS' if not found else 'FAIL'}  {case.id}: {'; '.join(found)}")
    print(f"published cases: {passed}/{len(CASES)} passed")


if __name__ == "__main__":
    main()
