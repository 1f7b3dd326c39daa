"""The built-in processes of the Pythia 8 source (13 TeV pp), with their top-quark class.

Pythia 8 has no tW, ttt or SM tttt matrix elements; those classes use documented proxies that give
the same final-state particles (listed in each description).
"""
from __future__ import annotations

from dataclasses import dataclass

# W decay table reused for the charged-Higgs stand-in of the W in the tW proxy (PDG branching ratios)
_W_LIKE_DECAYS = [
    "37:oneChannel = 1 0.3213 0 2 -1",
    "37:addChannel = 1 0.3206 0 4 -3",
    "37:addChannel = 1 0.0165 0 2 -3",
    "37:addChannel = 1 0.0165 0 4 -1",
    "37:addChannel = 1 0.1084 0 -11 12",
    "37:addChannel = 1 0.1063 0 -13 14",
    "37:addChannel = 1 0.1138 0 -15 16",
]


@dataclass(frozen=True)
class Process:
    """A Pythia 8 process: settings strings, top-quark class, and event or jet (constituent) mode."""

    name: str
    ntop: int
    settings: tuple[str, ...]
    description: str
    mode: str = "event"  # "event": one collider event per record; "jet": one large-R jet per record


PROCESSES: dict[str, Process] = {p.name: p for p in [
    Process("wjets", 0, ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on",
                         "PhaseSpace:pTHatMin = 20."),
            "W + jet (inclusive W decays), pTHat > 20 GeV"),
    Process("ww", 0, ("WeakDoubleBoson:ffbar2WW = on",), "WW pair production (inclusive decays)"),
    Process("single_top_t", 1, ("Top:qq2tq(t:W) = on",), "single top, t-channel"),
    Process("single_top_s", 1, ("Top:ffbar2tqbar(s:W) = on",), "single top, s-channel"),
    Process("tw_proxy", 1, ("Higgs:useBSM = on", "HiggsBSM:bg2H+-t = on", "37:m0 = 80.385",
                            "37:mWidth = 2.085", "37:mMin = 60.", "37:mMax = 100.", *_W_LIKE_DECAYS),
            "tW proxy (Pythia 8 has no tW): gb -> t H-, the charged Higgs given the W mass, width and "
            "decay table; same final state, but a scalar's decay angles"),
    Process("ttbar", 2, ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"), "top-quark pair production"),
    Process("ttt_proxy", 3, ("HiggsSM:gg2Httbar = on", "HiggsSM:qqbar2Httbar = on", "25:m0 = 400.",
                             "25:mWidth = 1.", "25:mMin = 390.", "25:mMax = 410.",
                             "25:oneChannel = 1 0.5 100 6 -4", "25:addChannel = 1 0.5 100 -6 4"),
            "three tops + jet proxy (Pythia 8 has no ttt): ttH with a 400 GeV H decaying to t c "
            "(flavour-violating, isotropic), the tttJ final state"),
    Process("tttt_proxy", 4, ("HiggsSM:gg2Httbar = on", "HiggsSM:qqbar2Httbar = on", "25:m0 = 500.",
                              "25:mWidth = 1.", "25:mMin = 490.", "25:mMax = 510.",
                              "25:onMode = off", "25:onIfMatch = 6 -6"),
            "four tops proxy (Pythia 8 has no SM tttt): ttH with a 500 GeV H forced to ttbar"),
    Process("zprime_ttbar", 2, ("NewGaugeBoson:ffbar2gmZZprime = on", "Zprime:gmZmode = 3", "32:m0 = 1500.",
                                "32:onMode = off", "32:onIfAny = 6"),
            "BSM signal: a 1.5 TeV Z' decaying to ttbar (for anomaly searches)"),
    Process("zprime2500_ttbar", 2, ("NewGaugeBoson:ffbar2gmZZprime = on", "Zprime:gmZmode = 3", "32:m0 = 2500.",
                                    "32:onMode = off", "32:onIfAny = 6"),
            "BSM signal: a 2.5 TeV Z' decaying to ttbar (boosted, merged top decays)"),
    Process("wprime_tb", 1, ("NewGaugeBoson:ffbar2Wprime = on", "34:m0 = 1000.", "34:onMode = off",
                             "34:onIfAny = 6"),
            "BSM signal: a 1 TeV W' (SSM couplings) decaying to t b"),
    Process("wprime_lnu", 0, ("NewGaugeBoson:ffbar2Wprime = on", "34:m0 = 2000.", "34:onMode = off",
                              "34:onIfAny = 11 13"),
            "BSM signal: a 2 TeV W' (SSM couplings) decaying to e nu or mu nu (one hard lepton, large MET)"),
    Process("qstar_qg", 0, ("ExcitedFermion:dg2dStar = on", "ExcitedFermion:ug2uStar = on",
                            "ExcitedFermion:Lambda = 2000.", "4000001:m0 = 2000.", "4000002:m0 = 2000.",
                            "4000001:onMode = off", "4000001:onIfAny = 21", "4000002:onMode = off",
                            "4000002:onIfAny = 21"),
            "BSM signal: a 2 TeV excited quark (u*, d*, compositeness scale 2 TeV) decaying to q g (dijet)"),
    Process("scalar_zz4l", 0, ("HiggsSM:gg2H = on", "25:m0 = 800.", "25:mWidth = 20.", "25:doForceWidth = on",
                               "25:mMin = 700.", "25:mMax = 900.", "25:onMode = off", "25:onIfMatch = 23 23",
                               "23:onMode = off", "23:onIfAny = 11 13"),
            "BSM signal: an 800 GeV scalar (gg fusion, SM-like couplings, 20 GeV width) decaying to ZZ, "
            "both Z to ee or mumu (four leptons)"),
    Process("top_jets", 1, ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "PhaseSpace:pTHatMin = 450.",
                            "PhaseSpace:pTHatMax = 800.", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
            "boosted hadronic top jets (anti-kt R=0.8, 500 < pt < 650 GeV, |eta| < 2, t, b and W "
            "quarks within dR < 0.8): constituent mode", mode="jet"),
    Process("qcd_jets", 0, ("HardQCD:all = on", "PhaseSpace:pTHatMin = 450.", "PhaseSpace:pTHatMax = 800."),
            "QCD jets (anti-kt R=0.8, 500 < pt < 650 GeV, |eta| < 2): constituent mode", mode="jet"),
]}


def get_process(name: str) -> Process:
    """The process called `name`, or a ValueError listing the known ones."""
    try:
        return PROCESSES[name]
    except KeyError:
        raise ValueError(f"unknown process {name!r}; known: {', '.join(PROCESSES)}") from None


def process_help() -> str:
    """One line per process, for --help."""
    return "\n".join(f"  {p.name:<14} {p.ntop}t  {p.description}" for p in PROCESSES.values())
