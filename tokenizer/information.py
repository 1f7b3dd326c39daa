"""Information loss of the tokenization, measured as masked-particle-modeling studies do: the same
classifier trained on original and on round-tripped features; the drop in AUC is what tokens lose."""
from __future__ import annotations

import awkward as ak
import numpy as np

from events.model import Events

N_OBJECTS = {"event": 10, "constituent": 40}


def event_features(events: Events, n_objects: int) -> np.ndarray:
    """(n_events, n_objects * 7 + 1): the leading objects' (type, pt, eta, phi, mass, btag, charge), padded."""
    fields = ("type", "pt", "eta", "phi", "mass", "btag", "charge")
    padded = ak.pad_none(events.objects[:, :n_objects], n_objects, clip=True)
    cols = [ak.to_numpy(ak.fill_none(padded[f], -9.0)).astype(np.float64) for f in fields]
    return np.concatenate([np.stack(cols, axis=2).reshape(len(events), -1),
                           ak.to_numpy(ak.num(events.objects))[:, None].astype(np.float64)], axis=1)


def information_loss(original: Events, decoded: Events, reference: Events | None = None, seed: int = 0) -> dict:
    """ROC AUC of a gradient-boosted classifier separating the two most frequent processes (or the
    first two labels) on original, tokenized-then-decoded and (optionally) autoencoded features."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    labels = original.info["process"]
    values, counts = np.unique(labels[labels >= 0], return_counts=True)
    if len(values) < 2:
        return {"skipped": "needs events of at least two processes"}
    a, b = values[np.argsort(-counts)[:2]]
    sel = np.isin(labels, [a, b])
    y = (labels[sel] == b).astype(int)
    mode = "constituent" if original.count(6).sum() else "event"
    train = np.random.default_rng(seed).random(sel.sum()) < 0.5
    result = {"task": f"{original.process_names[a]} vs {original.process_names[b]}", "events": int(sel.sum())}
    for name, events in (("original", original), ("tokenized", decoded), ("autoencoder", reference)):
        if events is None:
            continue
        x = event_features(events[sel], N_OBJECTS[mode])
        clf = HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(x[train], y[train])
        result[f"auc_{name}"] = float(roc_auc_score(y[~train], clf.predict_proba(x[~train])[:, 1]))
    return result
