"""Events: the data model, readers and writers (NanoAOD, Delphes, JetClass and flat ROOT trees through YAML
branch maps; the HDF5 store), and the built-in Pythia 8 + FastJet source. See docs/data.md."""
from events.errors import EventDataError
from events.io import count_events, detect_format, iter_events, open_events, open_writer, read_events, write_events
from events.model import Caps, Events, ObjectType
from events.options import ReadOptions

__all__ = ["Caps", "EventDataError", "Events", "ObjectType", "ReadOptions", "count_events", "detect_format",
           "iter_events", "open_events", "open_writer", "read_events", "write_events"]
