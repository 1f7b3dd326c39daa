"""ROOT readers on files in real layouts (written here with uproot, branch for branch) and on the real
CMS HZZ tutorial file; the NanoAOD-style writer round trip; bad input."""
import awkward as ak
import numpy as np
import pytest
import uproot

from events.errors import EventDataError
from events.io import detect_format, iter_events, read_events, write_events
from events.model import Caps, Events, ObjectType as T

JET_PT = [[120.5, 45.25, 30.0], [], [80.0]]
JET_ETA = [[0.5, -1.25, 2.0], [], [0.0]]
JET_PHI = [[0.1, 3.0, -2.0], [], [1.5]]
JET_MASS = [[10.0, 5.0, 4.0], [], [8.0]]
JET_BTAG = [[0.9, 0.1, 0.2783], [], [0.05]]
MU_PT = [[], [25.0], [60.0, 12.0]]


def write_tree(path, name, data, **kwargs):
    """Write a TTree (plain dict assignment makes an RNTuple in uproot >= 5.7)."""
    data = {k: ak.Array(v) if isinstance(v, list) else v for k, v in data.items()}
    with uproot.recreate(path) as f:
        types = {k: v.type if isinstance(v, ak.Array) else np.dtype((np.asarray(v).dtype, np.shape(v)[1:]))
                 for k, v in data.items()}
        f.mktree(name, types, **kwargs).extend(data)
    return path


def write_nanoaod(path, **changes):
    """A NanoAOD-layout file with extra branches of mixed dtypes, as real files have."""
    jets = {"pt": JET_PT, "eta": JET_ETA, "phi": JET_PHI, "mass": JET_MASS, "btagDeepFlavB": JET_BTAG}
    data = {
        "run": np.array([1, 1, 2], np.uint32), "luminosityBlock": np.array([7, 7, 8], np.uint32),
        "event": np.array([2**40 + 5, 11, 3], np.uint64), "genWeight": np.array([1.0, -1.0, 0.5], np.float32),
        "MET_pt": np.array([30.0, 5.0, 60.0], np.float32), "MET_phi": np.array([0.5, -1.0, 2.0], np.float32),
        "PV_npvs": np.array([30, 25, 41], np.int32), "HLT_IsoMu24": np.array([True, False, True]),
        "Jet": ak.zip({**{k: ak.values_astype(ak.Array(v), np.float32) for k, v in jets.items()},
                       "jetId": ak.values_astype(ak.Array([[6, 6, 2], [], [6]]), np.int32)}),
        "Electron": ak.zip({"pt": ak.Array([[15.0], [], []]), "eta": ak.Array([[0.3], [], []]),
                            "phi": ak.Array([[1.0], [], []]), "mass": ak.Array([[0.0], [], []]),
                            "charge": ak.values_astype(ak.Array([[-1], [], []]), np.int32)}),
        "Muon": ak.zip({"pt": ak.Array(MU_PT), "eta": ak.Array([[], [1.0], [-0.5, 2.2]]),
                        "phi": ak.Array([[], [0.0], [0.7, -0.7]]), "mass": ak.Array([[], [0.1057], [0.1057, 0.1057]]),
                        "charge": ak.values_astype(ak.Array([[], [1], [-1, 1]]), np.int32)}),
        "Photon": ak.zip({"pt": ak.Array([[], [], [33.0]]), "eta": ak.Array([[], [], [0.2]]),
                          "phi": ak.Array([[], [], [0.1]]), "mass": ak.Array([[], [], [0.0]])}),
    }
    for key, value in changes.items():
        if value is None:
            collection, _, field = key.partition("_")
            if field and collection in data:
                data[collection] = ak.zip({f: data[collection][f] for f in data[collection].fields if f != field})
            else:
                data.pop(key)
        else:
            data[key] = value
    return write_tree(path, "Events", data)


def test_nanoaod_reader(tmp_path):
    path = write_nanoaod(tmp_path / "nano.root")
    assert detect_format(path) == "nanoaod"
    ev = read_events(path)
    assert len(ev) == 3
    assert ev.info["event"].tolist() == [2**40 + 5, 11, 3] and ev.info["lumi"].tolist() == [7, 7, 8]
    assert ev.info["weight"].tolist() == [1.0, -1.0, 0.5]
    assert ak.to_list(ev.objects["type"][0]) == [T.BJET, T.JET, T.BJET, T.ELECTRON, T.MET]  # score >= 0.2783
    np.testing.assert_allclose(ak.to_list(ev.objects.pt[0]), [120.5, 45.25, 30.0, 15.0, 30.0])
    assert ak.to_list(ev.objects["type"][1]) == [T.MUON, T.MET]
    assert ak.to_list(ev.objects["type"][2]) == [T.JET, T.MUON, T.MUON, T.PHOTON, T.MET]
    assert ak.to_list(ev.objects.charge[2]) == [0, -1, 1, 0, 0]
    np.testing.assert_allclose(ev.met[0], [30.0, 5.0, 60.0])
    np.testing.assert_allclose(ev.met[1], [0.5, -1.0, 2.0])


def test_run3_nanoaod_without_photon_mass(tmp_path):
    photons = ak.zip({"pt": ak.Array([[], [], [33.0]]), "eta": ak.Array([[], [], [0.2]]),
                      "phi": ak.Array([[], [], [0.1]])})
    ev = read_events(write_nanoaod(tmp_path / "run3.root", Photon=photons))
    assert ak.to_list(ev.of_type(T.PHOTON).mass) == [[], [], [0.0]]


def test_nanoaod_caps_are_counted(tmp_path):
    path = write_nanoaod(tmp_path / "nano.root")
    ev = read_events(path, caps=Caps(jets=1, leptons=1))
    assert ev.info["n_truncated"].tolist() == [2, 0, 1]
    assert ev.count(T.JET, T.BJET).tolist() == [1, 0, 1]
    np.testing.assert_allclose(ak.to_list(ev.of_type(T.MUON).pt[2]), [60.0])


def test_older_nanoaod_btag_branch(tmp_path):
    write_tree(tmp_path / "csv.root", "Events", {"run": np.array([1], np.uint32), "luminosityBlock": np.array([1], np.uint32),
                       "event": np.array([1], np.uint64), "MET_pt": np.array([1.0]), "MET_phi": np.array([0.0]),
                       "Jet": ak.zip({"pt": [[50.0, 40.0]], "eta": [[0.0, 1.0]], "phi": [[0.0, 1.0]],
                                      "mass": [[5.0, 5.0]], "btagCSVV2": [[0.9, 0.5]]}),
                       "Electron": ak.zip({k: [[]] for k in ("pt", "eta", "phi", "mass", "charge")}),
                       "Muon": ak.zip({k: [[]] for k in ("pt", "eta", "phi", "mass", "charge")})})
    ev = read_events(tmp_path / "csv.root")
    # each tagger has its own working point: CSVv2 medium is 0.8484, so 0.5 is not tagged
    assert ak.to_list(ev.objects["type"][0]) == [T.BJET, T.JET, T.MET]
    assert ak.to_list(ev.objects.btag[0])[:2] == pytest.approx([0.9, 0.5])


def test_delphes_reader(tmp_path):
    path = tmp_path / "delphes.root"
    with uproot.recreate(path) as f:
        f.mktree("Delphes", {
            "Jet": ak.zip({"Jet.PT": [[100.0]], "Jet.Eta": [[0.1]], "Jet.Phi": [[0.2]], "Jet.Mass": [[9.0]],
                           "Jet.BTag": ak.values_astype(ak.Array([[3]]), np.uint32)}).type,
            "Electron": ak.zip({"Electron.PT": [[20.0]], "Electron.Eta": [[1.0]], "Electron.Phi": [[1.0]],
                                "Electron.Charge": ak.values_astype(ak.Array([[1]]), np.int32)}).type,
            "Muon": ak.zip({"Muon.PT": [[20.0]], "Muon.Eta": [[1.0]], "Muon.Phi": [[1.0]],
                            "Muon.Charge": ak.values_astype(ak.Array([[1]]), np.int32)}).type,
            "MissingET": ak.zip({"MissingET.MET": [[1.0]], "MissingET.Phi": [[1.0]]}).type,
            "Event": ak.zip({"Event.Number": ak.values_astype(ak.Array([[1]]), np.int64),
                             "Event.Weight": [[1.0]]}).type,
        }, counter_name=lambda c: f"{c}_size", field_name=lambda outer, inner: inner)
        f["Delphes"].extend({
            "Jet": ak.zip({"Jet.PT": [[100.0, 40.0], []], "Jet.Eta": [[0.1, -2.0], []], "Jet.Phi": [[0.2, 1.0], []],
                           "Jet.Mass": [[9.0, 3.0], []],
                           "Jet.BTag": ak.values_astype(ak.Array([[2, 1], []]), np.uint32)}),
            "Electron": ak.zip({"Electron.PT": [[25.0], []], "Electron.Eta": [[0.5], []],
                                "Electron.Phi": [[-1.0], []],
                                "Electron.Charge": ak.values_astype(ak.Array([[1], []]), np.int32)}),
            "Muon": ak.zip({"Muon.PT": [[], [35.0]], "Muon.Eta": [[], [0.5]], "Muon.Phi": [[], [-1.0]],
                            "Muon.Charge": ak.values_astype(ak.Array([[], [-1]]), np.int32)}),
            "MissingET": ak.zip({"MissingET.MET": [[44.0], [12.0]], "MissingET.Phi": [[0.3], [-0.3]]}),
            "Event": ak.zip({"Event.Number": ak.values_astype(ak.Array([[1001], [1002]]), np.int64),
                             "Event.Weight": [[2.0], [3.0]]}),
        })
    assert detect_format(path) == "delphes"
    ev = read_events(path)
    assert ev.info["event"].tolist() == [1001, 1002] and ev.info["weight"].tolist() == [2.0, 3.0]
    # BTag is a bit mask: bit 0 is the b-tag (2 = only bit 1 set: not tagged)
    assert ak.to_list(ev.objects["type"][0]) == [T.JET, T.BJET, T.ELECTRON, T.MET]
    assert ak.to_list(ev.objects.btag[0]) == [0.0, 1.0, 0.0, 0.0]
    assert ak.to_list(ev.objects.mass[0])[2] == pytest.approx(0.000511)  # no mass branch in Delphes
    assert ev.met[0].tolist() == [44.0, 12.0]


def write_jetclass(path, labels=((1, 0), (0, 1))):
    px, py = [[3.0, 1.0], [0.0]], [[4.0, 0.0], [2.0]]
    pz, energy = [[0.0, 1.0], [0.0]], [[5.0, 1.5], [2.0]]
    write_tree(path, "tree", {
            "part_px": px, "part_py": py, "part_pz": pz, "part_energy": energy,
            "part_deta": [[0.1, -0.2], [0.05]], "part_dphi": [[0.01, 0.3], [-0.1]],
            "part_charge": [[1.0, 0.0], [-1.0]], "part_isChargedHadron": [[1.0, 0.0], [1.0]],
            "jet_pt": np.array([520.0, 610.0], np.float32), "jet_eta": np.array([0.1, -1.0], np.float32),
            "jet_phi": np.array([1.0, 2.0], np.float32), "jet_energy": np.array([600.0, 700.0], np.float32),
            "jet_nparticles": np.array([2.0, 1.0], np.float32),
            "label_QCD": np.array([bool(a) for a, _ in labels]),
            "label_Tbqq": np.array([bool(b) for _, b in labels]),
        })
    return path


def test_jetclass_reader(tmp_path):
    path = write_jetclass(tmp_path / "jc.root")
    assert detect_format(path) == "jetclass"
    ev = read_events(path)
    assert ev.process.tolist() == ["QCD", "Tbqq"] and ev.info["ntop"].tolist() == [0, 1]
    assert ak.to_list(ev.objects["type"]) == [[T.CONSTITUENT] * 2, [T.CONSTITUENT]]
    np.testing.assert_allclose(ak.to_list(ev.objects.pt[0]), [5.0, 1.0])  # hypot(px, py), sorted
    np.testing.assert_allclose(ak.to_list(ev.objects.eta[0]), [0.1, -0.2])
    np.testing.assert_allclose(ak.to_list(ev.objects.mass[0]), [0.0, np.sqrt(1.5**2 - 2)], rtol=1e-6)
    np.testing.assert_allclose(ev.info["jet_pt"], [520.0, 610.0])


def test_jetclass_bad_one_hot(tmp_path):
    path = write_jetclass(tmp_path / "jc.root", labels=((1, 0), (1, 1)))
    with pytest.raises(EventDataError, match="entry 1 has 2 labels set"):
        read_events(path)


def test_real_cms_tutorial_file(hzz_path):
    assert detect_format(hzz_path) == "cms-hep-tutorial"
    ev = read_events(hzz_path)
    raw = uproot.open(hzz_path)["events"].arrays(["Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E", "MET_px", "MET_py",
                                                   "Jet_btag", "NJet", "EventWeight"])
    assert len(ev) == 2421 and ev.count(T.JET, T.BJET).tolist() == ak.to_list(raw.NJet)
    # first event: two muons; pt, eta, mass computed by hand from the Cartesian branches
    px, py, pz, e = (np.float64(raw[b][0][0]) for b in ("Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E"))
    mu = ev.of_type(T.MUON)[0][0]
    assert mu.pt == pytest.approx(np.hypot(px, py), rel=1e-6)
    assert mu.eta == pytest.approx(np.arcsinh(pz / np.hypot(px, py)), rel=1e-6)
    assert mu.mass == pytest.approx(np.sqrt(max(e * e - px * px - py * py - pz * pz, 0)), abs=1e-3)
    np.testing.assert_allclose(ev.met[0], np.hypot(ak.to_numpy(raw.MET_px), ak.to_numpy(raw.MET_py)), rtol=1e-6)
    n_b = int(ak.sum(raw.Jet_btag >= 1.74))
    assert int(ev.count(T.BJET).sum()) == n_b > 0
    np.testing.assert_array_equal(ev.info["weight"], ak.to_numpy(raw.EventWeight))


def test_user_yaml_branch_map(tmp_path, hzz_path):
    schema = tmp_path / "mine.yaml"
    schema.write_text("name: mine\ntree: events\nmet: {px: MET_px, py: MET_py}\ncollections:\n"
                      "  - {name: Mu, type: muon, px: Muon_Px, py: Muon_Py, pz: Muon_Pz, mass: 0.1057,"
                      " charge: Muon_Charge}\n")
    ev = read_events(hzz_path, format=str(schema))
    assert set(np.unique(ak.to_numpy(ak.flatten(ev.objects["type"])))) == {T.MUON, T.MET}


@pytest.mark.parametrize("fmt", ["h5", "root"])
def test_writer_round_trip_generated(tmp_path, ttbar, fmt):
    path = tmp_path / f"t.{fmt}"
    write_events(ttbar, path)
    back = read_events(path)
    assert ak.to_list(back.objects) == ak.to_list(ttbar.objects)
    for k in ttbar.info:
        np.testing.assert_array_equal(back.info[k], ttbar.info[k], err_msg=k)
    assert back.process_names == ttbar.process_names
    # ordinary HEP tools see NanoAOD branches
    if fmt == "root":
        tree = uproot.open(path)["Events"]
        assert tree["nJet"].array().tolist() == ttbar.count(T.JET, T.BJET).tolist()


def test_writer_round_trip_constituents(tmp_path, top_jets):
    path = tmp_path / "jets.root"
    write_events(top_jets, path)
    back = read_events(path)
    assert ak.to_list(back.objects) == ak.to_list(top_jets.objects)
    np.testing.assert_array_equal(back.info["jet_mass"], top_jets.info["jet_mass"])
    np.testing.assert_array_equal(back.info["n_truncated"], top_jets.info["n_truncated"])


def test_streaming_chunks_keep_order(tmp_path):
    path = write_nanoaod(tmp_path / "nano.root")
    chunks = list(iter_events(path, step_size=2))
    assert [len(c) for c in chunks] == [2, 1]
    assert np.concatenate([c.info["event"] for c in chunks]).tolist() == [2**40 + 5, 11, 3]


# --- bad input: one clear error naming the file, tree, branch and entry -------------------------------
def test_missing_branch(tmp_path):
    path = write_nanoaod(tmp_path / "nano.root", Jet_eta=None)
    with pytest.raises(EventDataError, match=r"nano\.root:Events: missing branch 'Jet_eta' \(needed for Jet eta"):
        read_events(path)


def test_misspelled_branch_suggests(tmp_path, hzz_path):
    schema = tmp_path / "typo.yaml"
    schema.write_text("name: typo\ntree: events\ncollections:\n"
                      "  - {name: Mu, type: muon, px: Muon_Pxx, py: Muon_Py, pz: Muon_Pz}\n")
    with pytest.raises(EventDataError, match="missing branch 'Muon_Pxx'.*did you mean Muon_Px"):
        read_events(hzz_path, format=str(schema))


def test_nan_names_branch_and_entry(tmp_path):
    eta = ak.values_astype(ak.Array([[0.5, -1.25, 2.0], [], [float("nan")]]), np.float32)
    jets = ak.zip({"pt": JET_PT, "eta": eta, "phi": JET_PHI, "mass": JET_MASS, "btagDeepFlavB": JET_BTAG})
    path = write_nanoaod(tmp_path / "nan.root", Jet=jets)
    with pytest.raises(EventDataError, match=r"nan\.root:Events: branch 'Jet_eta' has a non-finite value \(nan\) "
                                             r"in entry 2"):
        read_events(path)


def test_scalar_where_list_expected(tmp_path):
    path = write_nanoaod(tmp_path / "w.root", Photon=None, Photon_pt=np.ones(3), Photon_eta=np.ones(3),
                         Photon_phi=np.ones(3), Photon_mass=np.ones(3), nPhoton=np.ones(3, np.int32))
    with pytest.raises(EventDataError, match="branch 'Photon_pt' holds one value per event; expected a list"):
        read_events(path)


def test_non_numeric_branch(tmp_path):
    path = write_nanoaod(tmp_path / "w.root", MET_pt=np.ones((3, 2)))
    with pytest.raises(EventDataError, match="branch 'MET_pt' has type .*expected numbers"):
        read_events(path)


def test_counter_mismatch(tmp_path):
    path = tmp_path / "c.root"
    write_tree(path, "events", {"NJet": np.array([2, 1], np.int32), "Jet_Px": [[1.0], [2.0]], "Jet_Py": [[1.0], [2.0]],
                       "Jet_Pz": [[1.0], [2.0]], "Jet_E": [[5.0], [5.0]], "Jet_btag": [[0.0], [0.0]],
                       "MET_px": np.zeros(2), "MET_py": np.zeros(2), "EventWeight": np.ones(2),
                       **{f"{c}_{q}": [[], []] for c in ("Muon", "Electron", "Photon") for q in ("Px", "Py", "Pz", "E")},
                       "Muon_Charge": [[], []], "Electron_Charge": [[], []], "NMuon": np.zeros(2, np.int32),
                       "NElectron": np.zeros(2, np.int32), "NPhoton": np.zeros(2, np.int32)})
    with pytest.raises(EventDataError, match="counter 'NJet' says 2 in entry 0 but 'Jet_Px' has 1"):
        read_events(path, format="cms-hep-tutorial")


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_broken_files(tmp_path, ttbar, damage):
    good = tmp_path / "good.root"
    write_events(ttbar, good)
    bad = tmp_path / "bad.root"
    data = good.read_bytes()
    bad.write_bytes({"truncate": data[: len(data) * 2 // 3], "empty": b"", "garbage": b"root" + b"\0" * 100}[damage])
    with pytest.raises(EventDataError, match="bad.root"):
        for _ in iter_events(bad, format="nanoaod"):
            pass


def test_wrong_tree_lists_trees(tmp_path, hzz_path):
    with pytest.raises(EventDataError, match=r"no tree 'Events' \(trees in file: \['events'\]\)"):
        read_events(hzz_path, format="nanoaod")


def test_undetectable_root_file(tmp_path):
    path = tmp_path / "other.root"
    write_tree(path, "stuff", {"x": np.arange(3)})
    with pytest.raises(EventDataError, match="no built-in format matches"):
        detect_format(path)


def test_cms_tutorial_file_object_by_object_in_chunks(hzz_path):
    """Every muon, electron, photon and MET of the real file, read in chunks of 1000 events, against
    four-vectors computed by hand from the raw Cartesian branches; ids are entry numbers across chunks."""
    ev = Events.concatenate(iter_events(hzz_path, step_size=1000))
    raw = uproot.open(hzz_path)["events"].arrays()
    assert ev.info["event"].tolist() == list(range(len(raw)))  # no event branch: the entry number, file-wide
    met_px, met_py = (ak.to_numpy(raw[b]).astype(np.float64) for b in ("MET_px", "MET_py"))
    pt, phi = ev.met
    np.testing.assert_allclose(pt, np.hypot(met_px, met_py), rtol=1e-6)
    np.testing.assert_allclose(phi, np.arctan2(met_py, met_px), atol=1e-6)
    for name, kind in (("Muon", T.MUON), ("Electron", T.ELECTRON), ("Photon", T.PHOTON)):
        px, py, pz = (ak.to_numpy(ak.flatten(raw[f"{name}_{q}"])).astype(np.float64) for q in ("Px", "Py", "Pz"))
        objects = ev.of_type(kind)
        assert ak.num(objects).tolist() == ak.num(raw[f"{name}_Px"]).tolist(), name
        got = {q: ak.to_numpy(ak.flatten(objects[q])).astype(np.float64) for q in ("pt", "eta", "phi")}
        # canonical order sorts by pt within an event: compare each event's objects sorted the same way
        order = np.lexsort((-np.hypot(px, py), np.repeat(np.arange(len(raw)), ak.num(raw[f"{name}_Px"]))))
        np.testing.assert_allclose(got["pt"], np.hypot(px, py)[order], rtol=1e-6)
        np.testing.assert_allclose(got["eta"], np.arcsinh(pz / np.hypot(px, py))[order], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["phi"], np.arctan2(py, px)[order], atol=1e-6)
        if name != "Photon":
            charge = ak.to_numpy(ak.flatten(raw[f"{name}_Charge"]))[order]
            assert ak.to_numpy(ak.flatten(objects["charge"])).tolist() == charge.tolist()
