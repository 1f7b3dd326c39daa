"""benchmarks/partner_probe.py: a mixture over partners added to a frozen backbone's jet logits."""
from __future__ import annotations

import copy
import json
import math
import sys

import numpy as np
import pytest
import torch

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import partner_probe  # noqa: E402


def test_pair_variables_by_hand():
    """Two massless 50 GeV jets at the same eta, a quarter turn apart: m^2 = 2 pt1 pt2 (1 - cos(pi/2)) = 5000
    GeV^2 and Delta R = pi/2; back to back across the phi seam: m^2 = 4 pt1 pt2, Delta R = pi, not 2 pi - pi."""
    code = torch.tensor([[50.0, 0.0, 0.0, 0.0], [40.0, 1.0, 3.0, 0.0]])
    partner = torch.tensor([[[50.0, 0.0, math.pi / 2, 0.0]], [[10.0, 1.0, 3.0 - math.pi, 0.0]]])
    u = partner_probe.pair_variables(code, partner) * partner_probe.PAIR_SCALE + partner_probe.PAIR_CENTRE
    assert u[0, 0].tolist() == pytest.approx([math.log1p(5000.0), math.pi / 2], rel=1e-5)
    assert u[1, 1].tolist() == pytest.approx([math.log1p(4 * 40 * 10), math.pi], rel=1e-5)


def test_kinematics_undo_the_normalization():
    mean, std = torch.tensor([3.7, 0.0, 0.1, -0.1, 1.5, 0.2]), torch.tensor([0.7, 1.1, 0.7, 0.7, 1.0, 0.3])
    raw = torch.tensor([math.log(80.0), -1.2, math.cos(2.0), math.sin(2.0), math.log1p(12.0), 0.9])
    kin = partner_probe.kinematics((raw - mean) / std, mean, std)
    assert kin.tolist() == pytest.approx([80.0, -1.2, 2.0, 12.0], rel=1e-5)


def test_the_tilt_is_a_mixture_of_bumps():
    """With the network's output fixed by hand, each code's tilt is log(w0 + w1 exp(-|u - mu|^2 / 2 sigma^2));
    with no partner, or with the gate closed (as the probe starts), there is no tilt."""
    torch.manual_seed(0)
    tilt = partner_probe.PartnerTilt(4, 3, 2, width=8)
    with torch.no_grad():
        tilt.net[2].weight.zero_()
        tilt.net[2].bias.copy_(torch.tensor([0.5, 1.0, -1.0, math.log(0.5), math.log(2.0)]))  # w, mu, ln sigma
        tilt.none.weight.zero_()
        tilt.none.bias.fill_(-0.25)
        tilt.gate.fill_(1.0)
    u = torch.tensor([[1.0, -1.0], [0.0, 0.0], [2.0, 1.0]])  # three codes
    basis = torch.cat([u, u ** 2], -1)[None, None]  # one target, one partner
    hidden, partners = torch.randn(1, 4), torch.randn(1, 1, 3)
    out = tilt(hidden, partners, torch.tensor([[True]]), basis)[0]
    w0, w1 = np.exp(-0.25), np.exp(0.5)
    w0, w1 = w0 / (w0 + w1), w1 / (w0 + w1)
    bump = np.exp(-0.5 * (((u.numpy() - [1.0, -1.0]) / [0.5, 2.0]) ** 2).sum(-1))
    np.testing.assert_allclose(out.detach().numpy(), np.log(w0 + w1 * bump), rtol=1e-5)
    alone = tilt(hidden, partners, torch.tensor([[False]]), basis)[0]
    np.testing.assert_allclose(alone.detach().numpy(), 0.0, atol=1e-6)
    with torch.no_grad():
        tilt.gate.zero_()
    np.testing.assert_allclose(tilt(hidden, partners, torch.tensor([[True]]), basis)[0].detach().numpy(), 0.0,
                               atol=1e-6)


@pytest.fixture(scope="module")
def probe_inputs(ordered_backbone):
    """(probe, tilt, ids, features, hidden states, first object's position) of a few training events."""
    from backbone.data import TokenSequences
    from backbone.model import GPT
    from head_retrain import trunk_states
    from tokenizer.tokenizer import Tokenizer

    folder, tok_folder = ordered_backbone
    model = GPT.from_pretrained(folder).eval()
    seqs = TokenSequences.from_store(folder.parent / "tokens.h5", True, model.vocab)
    idx, features, hidden = trunk_states(model, seqs, np.arange(24))
    probe = partner_probe.Probe(model, Tokenizer.from_pretrained(tok_folder), "relative")
    torch.manual_seed(0)
    tilt = partner_probe.PartnerTilt(model.config.n_embd, model.config.n_features, 2)
    return probe, tilt, idx, features, hidden, seqs.prefix


def test_each_codes_variables_with_a_partner_at_its_own_centroid(probe_inputs):
    """A partner where a code decodes to: Delta R 0 and m^2 = 2 m_code^2 (relative); Delta eta 0 and Delta phi 0,
    cos 1 and sin 0 (direction)."""
    probe, *_ = probe_inputs
    pick = torch.tensor([0, 5, len(probe.codes) - 1])
    partner_x = probe.model.code_features[probe.codes[pick]][None]  # (1, 3, F): three partners
    relative = probe.basis(partner_x)[0, torch.arange(3), pick]  # each partner with its own code
    u = relative[:, :2] * partner_probe.PAIR_SCALE + partner_probe.PAIR_CENTRE
    mass = probe.code_kin[pick, 3].clamp(min=0)
    torch.testing.assert_close(u[:, 0], torch.log1p(2 * mass ** 2), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(u[:, 1], torch.zeros(3), rtol=0, atol=1e-3)
    torch.testing.assert_close(relative[:, 2:], relative[:, :2] ** 2)
    direction = copy.copy(probe)
    direction.pair = "direction"
    d = direction.basis(partner_x)[0, torch.arange(3), pick]
    torch.testing.assert_close(d, torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0, 0.0]] * 3), rtol=0, atol=1e-5)


def test_without_the_tilt_each_jet_is_scored_among_its_types_codes(probe_inputs):
    probe, _, idx, features, hidden, first = probe_inputs
    nll = probe.nll(None, idx, features, hidden, first)
    rows, cols = probe.targets(idx)
    assert len(nll) == int(probe.is_jet[idx[:, first:].clamp(min=0)].sum()) > 0
    logp = probe.model.logits(hidden[rows, cols]).float()
    code = idx[rows, cols + 1]
    same = probe.codes[None] * 0 + (probe.group[probe.column[code]][:, None] == probe.group[None])
    own = logp[:, probe.codes].masked_fill(same == 0, float("-inf")).logsumexp(-1)
    torch.testing.assert_close(nll, own - logp.gather(1, code[:, None])[:, 0])


def test_a_jet_is_never_its_own_partner(probe_inputs):
    """A jet's tilted score reads the jets before it, not itself or those after: changing their features moves
    nothing (the trunk's hidden states held fixed), while changing an earlier jet's does."""
    probe, tilt, idx, features, hidden, first = probe_inputs
    with torch.no_grad():
        tilt.net[2].bias[0] = 3.0  # partners weigh
        tilt.gate.fill_(1.0)
        before = probe.nll(tilt, idx, features, hidden, first)
        rows, cols = probe.targets(idx)
        row, col = int(rows[-1]), int(cols[-1])  # a jet that has jets before it
        assert probe.is_jet[idx[row, first:col + 1]].any()
        later = features.clone()
        later[row, col + 1:] += 1.0
        same = probe.nll(tilt, idx, later, hidden, first)
        earlier = features.clone()
        earlier[row, first:col + 1] += 1.0
        moved = probe.nll(tilt, idx, earlier, hidden, first)
    target = (rows == row) & (cols == col)
    torch.testing.assert_close(same[target], before[target])
    assert not torch.allclose(moved[target], before[target])


def test_sampling_with_the_probe_draws_what_it_was_trained_to_score(probe_inputs):
    """`tilted`, what generate samples from, gives each jet the log-probability `nll` scores it with (the
    same partners: the jets before it), and leaves each type's total probability as the backbone has it."""
    probe, tilt, idx, features, hidden, first = probe_inputs
    with torch.no_grad():
        tilt.net[2].bias[0] = 3.0
        tilt.gate.fill_(1.0)
        nll = probe.nll(tilt, idx, features, hidden, first)
        rows, cols = probe.targets(idx)
        for k in range(0, len(rows), 7):
            r, c = int(rows[k]), int(cols[k])
            logits = probe.model.logits(hidden[r:r + 1, c]).float()
            out = probe.tilted(tilt, logits, hidden[r:r + 1, c], idx[r:r + 1, :c + 1], features[r:r + 1, :c + 1],
                               first)
            code = idx[r, c + 1]
            group = probe.group[probe.column[code]]
            same = probe.codes[probe.group == group]
            assert float(out[0, same].logsumexp(-1) - out[0, code]) == pytest.approx(float(nll[k]), abs=1e-4)
            for g in (0, 1):
                cols_g = probe.codes[probe.group == g]
                assert float(out[0, cols_g].logsumexp(-1)) == pytest.approx(float(logits[0, cols_g].logsumexp(-1)),
                                                                            abs=1e-4)


def test_pair_completion_samples_with_a_saved_probe(ordered_backbone, data_files, probe_inputs, tmp_path):
    """pair_completion.py --probe draws other completions than the backbone alone with the same seed;
    --reference adds each completion's W1 over the floor."""
    import pair_completion

    probe, tilt, *_ = probe_inputs
    with torch.no_grad():
        tilt.net[2].bias[0] = 3.0
        tilt.gate.fill_(3.0)
    partner_probe.save(tilt, "relative", tmp_path / "probe.pt")
    folder, tok_folder = ordered_backbone
    args = ["--backbone", str(folder), "--tokenizer", str(tok_folder), "--events", data_files[0], "--n", "40"]

    def run(name, *extra):
        assert pair_completion.main(args + ["--out", str(tmp_path / name), *extra]) == 0
        return json.loads((tmp_path / name).read_text())["prefixes"]

    def drawn(entries):
        return [(e["mean_objects"], e["centroid"]["completed"], e["mean"]["completed"]) for e in entries]

    plain = run("plain.json")
    tilted = run("tilted.json", "--probe", str(tmp_path / "probe.pt"), "--reference", data_files[0])
    assert drawn(plain) != drawn(tilted)
    assert all("w1_over_floor" not in e for e in plain)
    assert all(e["w1_over_floor"]["m(jj) [GeV]"] > 0 for e in tilted)


def test_cli_trains_the_probe_and_reads_every_option(ordered_backbone, data_files, tmp_path):
    from common.errors import UserError

    folder, tok_folder = ordered_backbone
    base = ["--backbone", str(folder), "--tokenizer", str(tok_folder), "--train", str(folder.parent / "tokens.h5"),
            "--events", data_files[0], "--steps", "3", "--batch-size", "4"]

    def run(name, *extra):
        assert partner_probe.main(base + ["--out", str(tmp_path / name), *extra]) == 0
        return json.loads((tmp_path / name).read_text())

    result = run("a.json")
    assert result["steps"] == 3 and result["held_out_jets"] > 0
    assert result["nll_backbone"] - result["nll_probe"] == pytest.approx(result["gain_per_jet"], abs=1e-6)
    assert run("still.json", "--lr", "1e-12")["gain_per_jet"] == pytest.approx(0.0, abs=1e-6)
    for extra in (("--pair", "direction"), ("--seed", "1"), ("--batch-size", "2"), ("--steps", "4"),
                  ("--lr", "0.01")):
        other = run("b.json", *extra)
        assert other["nll_probe"] != result["nll_probe"], extra
    with pytest.raises(UserError, match="process 'wjets'"):
        partner_probe.main(base + ["--process", "wjets", "--out", str(tmp_path / "no.json")])
    assert not (tmp_path / "no.json").exists()
