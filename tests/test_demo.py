"""The README's demo end to end (a few minutes on 2 cores): marked slow, run with RUN_SLOW=1."""
import json

import pytest

from tests.test_cli import run


@pytest.mark.slow
def test_demo_writes_summary_and_plots(tmp_path):
    run("demo.py", "--out", str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    events = summary["events"]
    assert events["root_round_trip_identical"] is True
    assert 140 <= events["ttbar_m_bjj_peak_gev"] <= 195 and 65 <= events["ttbar_m_jj_peak_gev"] <= 95
    assert events["processes"]["ttbar"] == 1500
    assert (tmp_path / "events_overview.png").stat().st_size > 10_000
    assert (tmp_path / "jets_overview.png").stat().st_size > 10_000
    tok = summary["tokenizer"]
    for key in ("codebook_size", "codebook_usage", "perplexity", "pt_rel_resolution", "eta_resolution",
                "phi_resolution", "type_accuracy"):
        assert key in tok
    assert tok["type_accuracy"] == 1.0 and tok["codebook_usage"] > 0.5
    assert (tmp_path / "tokenizer" / "model.safetensors").is_file()
    backbone, sample = summary["backbone"], summary["sample"]
    assert backbone["val_loss_next"] < 6.0 and "val_loss_masked" in backbone
    assert sample["events"] == 1000
    assert 2.0 < sample["mean_jets"]["synthetic"] < 8.0
    assert sample["w1_vs_floor"]["HT [GeV]"]["floor"] > 0
    assert (tmp_path / "real_vs_generated.png").is_file()
    finetune, anomaly = summary["finetune"], summary["anomaly"]
    for mode in ("frozen", "full", "scratch"):
        assert set(finetune[mode]["auc"]) == {"0t", "1t", "2t", "3t", "4t"} and finetune[mode]["mean_auc"] > 0.7
    for signal in ("tttt_proxy", "zprime_ttbar"):
        methods = anomaly["signals"][signal]
        assert set(methods) == {"density_nll", "surprise", "nll", "nll_per_token", "masked", "masked_surprise",
                                "quantization", "entropy", "head", "HT cut"}
        assert (tmp_path / f"anomaly_roc_sic_{signal}.png").is_file()
    # four tops make long, unlikely sequences; the full density sees them as the token NLL does
    assert anomaly["signals"]["tttt_proxy"]["density_nll"]["auc"] > 0.8
    # a 1.5 TeV resonance: hard objects the token likelihood is nearly blind to, the full density is not
    assert anomaly["signals"]["zprime_ttbar"]["density_nll"]["auc"] > anomaly["signals"]["zprime_ttbar"]["nll"]["auc"]
