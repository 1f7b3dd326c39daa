"""How a ROOT file is read beyond its branch map: object selection, era, b-tag working point, and what
to do with physically impossible kinematics. Every reading CLI takes the same four options."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from common.config import ConfigError
from events.btag import check_working_point

BAD_KINEMATICS = ("error", "flag")


@dataclass(frozen=True)
class ReadOptions:
    #: `none`, `auto` (the branch map's `model_selection`, except for files this project wrote, whose
    #: objects come from the built-in reconstruction already) or a selection named in the branch map
    selection: str = "none"
    #: `auto` (data: from the run numbers; simulation: each tagger's default era) or an era name
    era: str = "auto"
    #: loose, medium, tight or a finite number (inside the tagger's score range, events.btag.check_working_point);
    #: None: the branch map's `btag_wp`
    btag_wp: str | float | None = None
    #: `error` refuses an impossible value naming the entry; `flag` keeps the event, forces the value
    #: into range and counts the repairs in the event's `bad_kinematics` field
    bad_kinematics: str = "error"

    def __post_init__(self):
        if self.btag_wp is not None:
            check_working_point(self.btag_wp, valid=None)  # the range is the tagger's, checked when it is chosen
        if self.bad_kinematics not in BAD_KINEMATICS:
            raise ValueError(f"bad_kinematics must be one of {BAD_KINEMATICS}, got {self.bad_kinematics!r}")


def add_read_arguments(parser, selection: str = "none") -> None:
    """The reading options as an argument group; `selection` is the command's default."""
    g = parser.add_argument_group("reading ROOT files (NanoAOD, Delphes, flat trees)")
    g.add_argument("--selection", default=selection,
                   help=f"object selection: none, auto (the branch map's selection matching the built-in "
                        f"simulation, e.g. nanoaod's 'reco'; not applied to files this project wrote) or a "
                        f"name from the branch map (default {selection})")
    g.add_argument("--era", default="auto",
                   help="data-taking era for b-tag working points, e.g. 2016postVFP, 2018, 2022EE "
                        "(default auto: from the run numbers of data; simulation uses each tagger's default era)")
    g.add_argument("--btag-wp", default=None, type=working_point_argument,
                   help="b-tag working point: loose, medium, tight or a number (default: the branch map's)")
    g.add_argument("--bad-kinematics", choices=BAD_KINEMATICS, default="error",
                   help="negative or absurd pt, |eta| > 10, phi not in radians, negative MET, non-finite "
                        "values: error (default) names the entry; flag keeps the event, forces the values into "
                        "range and counts them in the event field bad_kinematics")


def working_point_argument(text: str) -> str:
    """--btag-wp as given, once `check_working_point` accepts it (the range is the tagger's, checked when it is chosen)."""
    try:
        check_working_point(text, valid=None)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def check_read_settings(formats, options: ReadOptions) -> None:
    """Refuse, before any file is read, a format, selection or era that no input of
    `formats` (`auto`, `hdf5`, a branch map) could be read with: a job of many files would otherwise fail
    on each file in turn."""
    from common.errors import UserError
    from events.btag import load_working_points
    from events.schema import builtin_schemas, load_schema

    maps = {f: load_schema(f) for f in formats if f not in ("auto", "hdf5")}  # an unknown format: its error
    if options.selection not in ("none", "auto"):
        for f in formats:
            offered = [maps[f]] if f in maps else [] if f == "hdf5" else [load_schema(n) for n in builtin_schemas()]
            if not any(options.selection in m.selections for m in offered):
                known = sorted({n for m in offered for n in m.selections})
                raise UserError(f"--selection {options.selection}: no branch map of format {f} has this selection "
                                f"(they have: {', '.join(known) or 'none'}; HDF5 event stores hold objects already "
                                f"selected)")
    eras = load_working_points().eras
    if options.era != "auto" and options.era not in eras:
        raise UserError(f"--era {options.era}: unknown era; known: auto, {', '.join(eras)}")
    # a b-tag working point is checked by ReadOptions itself; its range is the tagger's, known per file


def read_options(args) -> ReadOptions:
    return ReadOptions(args.selection, args.era, args.btag_wp, args.bad_kinematics)
