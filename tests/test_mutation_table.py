"""tools/mutation_check.py: every mutation still applies to the code it names (a refactor that moves
its line leaves the mutation unable to run, and the bug it stands for unwatched)."""
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import mutation_check  # noqa: E402


@pytest.mark.parametrize("mutation", mutation_check.MUTATIONS, ids=lambda m: m.name)
def test_each_mutation_names_code_that_occurs_exactly_once(mutation):
    text = (REPO / mutation.file).read_text()
    assert text.count(mutation.old) == 1, f"update {mutation.name} to the current {mutation.file}"
    assert mutation.new != mutation.old and all((REPO / t.split("::")[0]).is_file() for t in mutation.tests)
