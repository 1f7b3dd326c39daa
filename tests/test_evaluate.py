"""backbone.evaluate: W1 distances against the statistical floor."""
import json
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest

from backbone.evaluate import w1_table
from common.cli import UserError
from events.io import write_events
from events.model import Events
from tests.conftest import REPO


def test_independent_sample_sits_at_the_floor_and_a_shift_does_not(ttbar):
    real, same = ttbar[:1000], ttbar[1000:1500]
    table = w1_table(real, same)
    assert {"jets", "HT [GeV]", "MET [GeV]", "m(bjj) [GeV]"} <= set(table)
    assert all(row["w1"] < 3 * row["floor"] + 1e-9 for row in table.values()), table
    shifted = Events(ak.with_field(same.objects, same.objects.pt * 1.3, "pt"), same.info, same.process_names)
    bad = w1_table(real, shifted)
    assert bad["leading jet pt [GeV]"]["w1"] > 5 * bad["leading jet pt [GeV]"]["floor"]
    assert bad["jets"]["w1"] == table["jets"]["w1"]  # multiplicities untouched by a pt scale


def test_constituent_mode_observables(top_jets, qcd_jets):
    table = w1_table(top_jets, qcd_jets[:100])
    assert table["jet mass [GeV]"]["w1"] > 5 * table["jet mass [GeV]"]["floor"]


def test_too_few_events(ttbar):
    with pytest.raises(UserError, match="too few events"):
        w1_table(ttbar[:10], ttbar[10:20])


def test_cli_writes_table_and_plot(ttbar, tmp_path):
    write_events(ttbar[:600], tmp_path / "real.h5")
    write_events(ttbar[600:900], tmp_path / "gen.root")
    proc = subprocess.run([sys.executable, "-m", "backbone.evaluate", "--real", str(tmp_path / "real.h5"),
                           "--generated", str(tmp_path / "gen.root"), "--out", str(tmp_path / "eval")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table = json.loads((tmp_path / "eval" / "w1.json").read_text())
    assert table["HT [GeV]"]["n"] == 300 and np.isfinite(table["HT [GeV]"]["w1"])
    assert (tmp_path / "eval" / "real_vs_generated.png").stat().st_size > 10_000
