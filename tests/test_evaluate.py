"""events.compare and backbone.evaluate: W1 distances against the statistical floor."""
import json
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from common.cli import UserError
from events.compare import observables, w1_table
from events.io import write_events
from events.model import Events
from tests.conftest import REPO

ROW = {"w1", "floor", "floor_q95", "p_value", "n"}


def scaled_pt(events: Events, factor: float) -> Events:
    return Events(ak.with_field(events.objects, events.objects.pt * factor, "pt"), events.info, events.process_names)


def test_independent_sample_sits_at_the_floor_and_a_shift_does_not(ttbar):
    real, same = ttbar[:1000], ttbar[1000:1500]
    table = w1_table(real, same)
    assert {"jets", "HT [GeV]", "MET [GeV]", "m(bjj) [GeV]"} <= set(table)
    assert all(set(row) == ROW and row["n"] == 500 for row in table.values()), table
    assert all(row["w1"] < 3 * row["floor"] + 1e-9 for row in table.values()), table
    bad = w1_table(real, scaled_pt(same, 1.3))
    lead = bad["leading jet pt [GeV]"]
    assert lead["w1"] > 4 * lead["floor"] and lead["w1"] > 2 * lead["floor_q95"], lead
    assert lead["p_value"] == 1 / 101  # no draw comes near
    assert bad["jets"]["w1"] == table["jets"]["w1"]  # multiplicities untouched by a pt scale
    assert w1_table(real, ttbar[1000:])["HT [GeV]"]["n"] == 500  # a larger sample: its first half-reference


def test_ten_data_events_against_a_thousand_simulated(ttbar):
    """A 10-event sample from the reference's distribution sits at the floor with an unremarkable p-value,
    over many such samples as often as chance says; the same events with pt x 1.5 stand out."""
    reference = ttbar[:1000]
    ref_obs = observables(reference)
    p, p_shifted, ratio = {}, {}, {}
    for i in range(40):
        data = ttbar[1000 + 10 * i:1010 + 10 * i]
        table, shifted = w1_table(reference, data), w1_table(reference, scaled_pt(data, 1.5))
        for name in ("HT [GeV]", "leading jet pt [GeV]"):
            assert table[name]["n"] == 10 and table[name]["floor"] <= table[name]["floor_q95"]
            p.setdefault(name, []).append(table[name]["p_value"])
            p_shifted.setdefault(name, []).append(shifted[name]["p_value"])
            ratio.setdefault(name, []).append(table[name]["w1"] / table[name]["floor"])
            if i == 0:  # with 10 events against 1000, W1 against the rest is W1 against the whole reference
                a, b = observables(data)[name], ref_obs[name]
                assert table[name]["w1"] == pytest.approx(wasserstein_distance(a, b[np.isfinite(b)]), rel=0.02)
        if i == 0:
            assert min(table[name]["p_value"] for name in p) > 0.1, table
            assert shifted["HT [GeV]"]["p_value"] <= 0.05, shifted
    for name in p:
        # the floor is what 10 events drawn from the reference give: W1/floor about 1, p-values uniform
        assert 0.8 < np.median(ratio[name]) < 1.25, (name, np.median(ratio[name]))
        assert 0.35 < np.mean(p[name]) < 0.65 and np.mean(np.array(p[name]) < 0.05) < 0.15, (name, p[name])
        assert np.median(p_shifted[name]) <= 0.06 and np.mean(p_shifted[name]) < 0.2, (name, p_shifted[name])


def test_constituent_mode_observables(top_jets, qcd_jets):
    table = w1_table(top_jets, qcd_jets[:100])
    assert {"constituents", "constituent pt [GeV]"} <= set(table)
    assert table["jet mass [GeV]"]["w1"] > 5 * table["jet mass [GeV]"]["floor"]
    assert table["jet mass [GeV]"]["p_value"] < 0.05
    same = w1_table(top_jets[:200], top_jets[200:300])
    assert all(row["p_value"] > 0.01 for row in same.values()), same


def test_too_few_events(ttbar, top_jets):
    with pytest.raises(UserError, match="too few events .* at least 20 reference and 5 other"):
        w1_table(ttbar[:10], ttbar[10:20])
    with pytest.raises(UserError, match="too few events"):
        w1_table(ttbar[:1000], ttbar[1000:1004])
    with pytest.raises(UserError, match="different kinds of events"):
        w1_table(ttbar[:100], top_jets[:20])


def test_compare_cli_writes_table_and_plot(ttbar, tmp_path):
    write_events(ttbar[:400], tmp_path / "simulation.h5")
    write_events(ttbar[400:420], tmp_path / "data.root")
    proc = subprocess.run([sys.executable, "-m", "events.compare", str(tmp_path / "simulation.h5"),
                           str(tmp_path / "data.root"), "--labels", "simulation", "data", "--draws", "50",
                           "--out", str(tmp_path / "cmp")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("reference: simulation (400 events); compared: data (20 events)"), proc.stdout
    table = json.loads((tmp_path / "cmp" / "w1.json").read_text())
    assert {"HT [GeV]", "leading jet pt [GeV]", "jets"} <= set(table)
    assert all(set(row) == ROW and row["n"] == 20 and 1 / 51 <= row["p_value"] <= 1 for row in table.values())
    assert "HT [GeV]" in proc.stdout and f"{table['HT [GeV]']['p_value']:.3f}" in proc.stdout
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 10_000
    write_events(ttbar[420:423], tmp_path / "three.h5")
    bad = subprocess.run([sys.executable, "-m", "events.compare", str(tmp_path / "simulation.h5"),
                          str(tmp_path / "three.h5")], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "too few events" in bad.stderr, bad.stderr


def test_evaluate_cli_writes_table_and_plot(ttbar, tmp_path):
    write_events(ttbar[:600], tmp_path / "real.h5")
    write_events(ttbar[600:900], tmp_path / "gen.root")
    proc = subprocess.run([sys.executable, "-m", "backbone.evaluate", "--real", str(tmp_path / "real.h5"),
                           "--generated", str(tmp_path / "gen.root"), "--out", str(tmp_path / "eval")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table = json.loads((tmp_path / "eval" / "w1.json").read_text())
    assert table["HT [GeV]"]["n"] == 300 and np.isfinite(table["HT [GeV]"]["w1"])
    assert (tmp_path / "eval" / "real_vs_generated.png").stat().st_size > 10_000
