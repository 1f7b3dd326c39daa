"""Event files named by URL (root://, https://, file://) reach uproot verbatim: `file://` URLs go through
fsspec as remote ones do, and read the same events as the local path; HDF5 URLs, missing files and
unreachable servers give one EventDataError naming the URL as given."""
from __future__ import annotations

import importlib.util
import json
import re

import pytest

from events.errors import EventDataError
from events.info import main as info_main
from events.io import count_events, count_nonzero_events, detect_format, open_events, read_events, write_events
from events.model import Events
from events.root import RootReader, open_tree
from events.schema import load_schema
from tests.conftest import REPO
from tests.test_hdf5 import assert_same
from tests.test_root import write_nanoaod

REAL = REPO.parent / "shared" / "data" / "cms-opendata-2015-ttbar-nanoaod-rntuple.root"


@pytest.fixture(params=["real", "uproot-written", "ours"])
def local(request, tmp_path):
    """A local ROOT file: the shared real NanoAOD (RNTuple), a NanoAOD-layout TTree, and the same events
    written by this project's writer (with its metadata key)."""
    if request.param == "real":
        if not REAL.is_file():
            pytest.skip("shared real NanoAOD file not present")
        return REAL
    nano = write_nanoaod(tmp_path / "nano.root")
    if request.param == "uproot-written":
        return nano
    write_events(read_events(nano), tmp_path / "ours.root")
    return tmp_path / "ours.root"


def test_url_reads_the_same_events_as_the_local_path(local):
    url = local.as_uri()
    assert url.startswith("file:///")
    assert detect_format(url) == detect_format(local)
    assert count_events(url) == count_events(local)
    # one opening each: opening the real RNTuple costs uproot over a second
    with open_events(url) as remote, open_events(local) as here:
        assert remote.path == url and remote.where.startswith(url + ":")
        assert_same(Events.concatenate(remote.iterate()), Events.concatenate(here.iterate()))
        assert remote.report() == here.report()


def test_url_is_kept_verbatim_by_tree_and_reader(tmp_path):
    path = write_nanoaod(tmp_path / "nano.root")
    url = path.as_uri()
    assert_same(read_events(url), read_events(path))
    assert count_nonzero_events(url) == 3
    file, tree = open_tree(url, "Events")
    with file:
        assert tree.num_entries == 3
    with pytest.raises(EventDataError, match=rf"^{re.escape(url)}: no tree 'Nope'"):
        open_tree(url, "Nope")
    with RootReader(url, load_schema("nanoaod")) as reader:
        assert reader.path == url and len(reader) == 3


def test_info_cli_reads_a_url(tmp_path, capsys):
    url = write_nanoaod(tmp_path / "nano.root").as_uri()
    assert info_main([url, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["file"] == url and summary["format"] == "nanoaod" and summary["events"] == 3


@pytest.mark.parametrize("url", ["root://eospublic.cern.ch//eos/opendata/x.h5", "https://host/store/x.HDF5?token=1"])
def test_hdf5_url_is_refused(url):
    for call in (detect_format, lambda u: read_events(u, format="hdf5"), lambda u: count_events(u, "hdf5")):
        with pytest.raises(EventDataError, match="HDF5 stores are read from local paths only") as err:
            call(url)
        assert str(err.value).startswith(f"{url}: ")


def test_unreadable_urls_name_the_url(tmp_path):
    garbage = tmp_path / "garbage.root"
    garbage.write_bytes(b"not a ROOT file at all")
    for url in ("file:///nonexistent/x.root", garbage.as_uri()):
        for call in (detect_format, read_events, count_events, lambda u: open_tree(u, "Events")):
            with pytest.raises(EventDataError) as err:
                call(url)
            assert str(err.value).startswith(f"{url}: cannot open it (")


def test_xrootd_url_survives_verbatim():
    """`Path` would fold it into root:/host/eos/a.root. Without fsspec-xrootd, fsspec refuses the URL at
    once; with it, the connection to a host that does not exist fails: either way, one error naming it."""
    if importlib.util.find_spec("fsspec_xrootd") is not None:
        pytest.skip("fsspec-xrootd installed: opening would try the network")
    url = "root://host//eos/a.root"
    for call in (detect_format, lambda u: read_events(u, format="nanoaod"), count_events):
        with pytest.raises(EventDataError, match="fsspec-xrootd") as err:
            call(url)
        assert str(err.value).startswith(f"{url}: cannot open it (")
