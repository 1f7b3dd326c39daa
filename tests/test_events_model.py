import awkward as ak
import numpy as np
import pytest

from events.errors import EventDataError
from events.model import Caps, Events, ObjectType as T, assemble, make_objects


def _objects():
    jets = make_objects([3, 0], type=[0, 1, 0], pt=[30, 50, 20], eta=[0.1, 0.2, 0.3], phi=[1, 2, 3],
                        btag=[0.1, 0.9, 0.05])
    leptons = make_objects([1, 2], type=[T.MUON, T.ELECTRON, T.MUON], pt=[10, 40, 45], charge=[1, -1, 1])
    met = make_objects([1, 1], type=T.MET, pt=[5, 6], phi=[0.5, -0.5])
    return jets, leptons, met


def test_assemble_canonical_order_and_caps():
    objects, truncated = assemble(_objects(), Caps(jets=2, leptons=1))
    assert ak.to_list(objects["type"]) == [[1, 0, 3, 5], [3, 5]]
    assert ak.to_list(objects.pt) == [[50, 30, 10, 5], [45, 6]]
    # one jet dropped in event 0, one lepton (the 40 GeV electron) in event 1
    assert truncated.tolist() == [1, 1]


def test_events_fields_met_counts_and_slicing():
    objects, truncated = assemble(_objects(), Caps())
    ev = Events(objects, {"n_truncated": truncated, "process": np.array([1, 0])}, ("wjets", "ttbar"))
    assert ev.met[0].tolist() == [5, 6]
    assert ev.count(T.JET, T.BJET).tolist() == [3, 0]
    assert ev.process.tolist() == ["ttbar", "wjets"]
    assert ev.info["event"].tolist() == [0, 1]  # default ids: entry numbers
    assert ev.info["weight"].tolist() == [1, 1]
    sub = ev[np.array([1, 0])]
    assert sub.info["event"].tolist() == [1, 0] and ak.to_list(sub.objects.pt[1]) == [50, 30, 20, 10, 5]
    assert ev.objects.pt.type.content.content == ak.types.NumpyType("float32")


def test_concatenate_merges_process_names():
    objects, _ = assemble(_objects(), Caps())
    a = Events(objects, {"process": np.array([0, 1])}, ("x", "y"))
    b = Events(objects, {"process": np.array([0, 1])}, ("y", "z"))
    both = Events.concatenate([a, b])
    assert both.process_names == ("x", "y", "z")
    assert both.process.tolist() == ["x", "y", "y", "z"]


def test_validate_names_the_bad_event():
    objects, _ = assemble(_objects(), Caps())
    ev = Events(objects, {"event": np.array([100, 101])})
    ev.validate()
    bad = ak.to_list(objects)
    bad[1][0]["eta"] = float("nan")
    with pytest.raises(EventDataError, match="non-finite object eta in event 101"):
        Events(ak.Array(bad), {"event": np.array([100, 101])}).validate("x.h5")


def test_recap_counts_newly_dropped():
    objects, truncated = assemble(_objects(), Caps())
    ev = Events(objects, {"n_truncated": truncated})
    tight = ev.recap(Caps(jets=1, leptons=0))
    assert tight.info["n_truncated"].tolist() == [3, 2]
    assert tight.count(T.JET, T.BJET).tolist() == [1, 0]


def test_events_are_turned_to_their_leading_jet():
    """The reference is the highest-pt jet or b-jet, else the highest-pt object, else 0; every object,
    MET included, turns by its event's angle, wrapped into [-pi, pi)."""
    from events.azimuth import leading_azimuth, rotate_azimuth
    from events.model import make_objects

    rows = [[(T.BJET, 50.0, 2.0), (T.JET, 80.0, 1.0), (T.MUON, 90.0, -0.5), (T.MET, 30.0, -3.0)],
            [(T.ELECTRON, 30.0, 0.5), (T.MET, 40.0, 1.5)], []]
    flat = [o for r in rows for o in r]
    objects = make_objects([len(r) for r in rows], type=[int(o[0]) for o in flat], pt=[o[1] for o in flat],
                           eta=0.0, phi=[o[2] for o in flat], mass=0.0, btag=0.0, charge=0)
    events = Events(objects, {"event": np.arange(3)})
    angle = leading_azimuth(events)
    np.testing.assert_array_equal(angle, [1.0, 1.5, 0.0])
    turned = rotate_azimuth(events, angle)
    np.testing.assert_allclose(ak.to_list(ak.flatten(turned.objects.phi)),
                               [1.0, 0.0, -1.5, -4.0 + 2 * np.pi, -1.0, 0.0], rtol=0, atol=1e-6)
    assert ak.to_list(turned.objects.pt) == ak.to_list(events.objects.pt)
    assert turned.info["event"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="one angle per event"):
        rotate_azimuth(events, angle[:2])


def test_turn_events_writes_each_file_turned_to_its_leading_jets(tmp_path):
    import sys

    from events.azimuth import leading_azimuth
    from events.io import read_events, write_events
    from tests.conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    import turn_events

    objects = make_objects([2, 1], type=[int(T.JET), int(T.MET), int(T.MET)], pt=[50.0, 20.0, 10.0],
                           eta=0.0, phi=[1.0, -1.0, 2.5], mass=0.0, btag=0.0, charge=0)
    write_events(Events(objects, {"event": np.arange(2)}), tmp_path / "in.h5")
    assert turn_events.main([str(tmp_path / "in.h5"), str(tmp_path / "out" / "turned.h5")]) == 0
    turned = read_events(tmp_path / "out" / "turned.h5")
    np.testing.assert_allclose(ak.to_list(ak.flatten(turned.objects.phi)), [0.0, -2.0, 0.0], atol=1e-6)
    np.testing.assert_array_equal(leading_azimuth(turned), [0.0, 0.0])
    with pytest.raises(SystemExit):
        turn_events.main([str(tmp_path / "in.h5")])
