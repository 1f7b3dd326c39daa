"""Baselines on the real runs' files, with the token model's label counts, stratified subsamples, class
weights and test metrics, so that their rows sit beside ours.

    python benchmarks/baseline.py --task ntop --model gbdt|transformer|part [--pretrain FILES] \
        --train data/real/{ttbar,...}_s1.h5 --test data/real/{ttbar,...}_s2.h5
    python benchmarks/baseline.py --task jets --model gbdt|transformer|part --sizes 2000 \
        --train data/real/{top,qcd}_jets_s1.h5 --test data/real/{top,qcd}_jets_s2.h5
    python benchmarks/baseline.py --task anomaly --model gbdt|transformer --sizes 0 --max-test-events-per-file 0 \
        --train data/real/{SM}_s1.h5 --test data/real/{SM}_s2.h5 --signal data/real/{ttt_proxy,...}_s2.h5

Tasks: `ntop` is the 0t..4t classification (mean one-vs-rest AUC); `jets` is top vs QCD jets (AUC and
background rejection, class 1 = the second of --classes); `anomaly` trains a classifier of the SM
processes of --train and scores the --test (background) and --signal events by the entropy of its
probabilities, as `finetune.anomaly --method entropy` does with the token model (AUC, max SIC,
rejection at 30% per signal).
Models: `gbdt` is XGBoost on high-level features (events: multiplicities, leading jet, HT, MET, m(jj),
m(bjj); jets: constituent count, pt, mass, tau21, tau32, pT_D, girth, leading fraction; needs
`pip install -e .[baselines]`); `transformer` is Abasov et al.'s "Large 1h" on continuous object features
(embedding 125, 5 layers, ff 512, dropout 0.1, AdamW 1e-4), and with --pretrain its masked-variable
pretraining (30% of the objects of unlabelled events hidden and regressed) before full fine-tuning;
`part` is weaver-core's Particle Transformer (`pip install --no-deps weaver-core`).
Writes benchmarks/results/baseline_[<task>_]<model>[_pretrained]_<tag>.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from baseline_data import RESULTS, capped_events, jet_features, run_baseline, training_split, write_result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("ntop", "jets", "anomaly"), default="ntop")
    parser.add_argument("--model", choices=("gbdt", "transformer", "part"), required=True)
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--test", nargs="+", required=True)
    parser.add_argument("--signal", nargs="+", default=[], help="anomaly task: the signal files, one at a time")
    parser.add_argument("--classes", nargs="+", default=["qcd_jets", "top_jets"], help="jets task: process names")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="labelled events (0: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-events-per-file", type=int, default=3000, help="training pool per file (0: all)")
    parser.add_argument("--max-test-events-per-file", type=int, default=None, help="default: as the training pool")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="early-stopping split of the training set")
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-every", type=int, default=100, help="steps between early-stopping evaluations")
    parser.add_argument("--lr", type=float, default=None, help="default: 1e-4 (transformer), 1e-3 (part)")
    parser.add_argument("--pretrain", nargs="+", default=[], help="transformer: unlabelled files to pretrain on")
    parser.add_argument("--pretrain-events-per-file", type=int, default=20000)
    parser.add_argument("--pretrain-steps", type=int, default=3000)
    parser.add_argument("--pretrain-batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result JSON")
    args = parser.parse_args(argv)
    if args.pretrain and args.model != "transformer":
        parser.error("--pretrain is the masked-variable pretraining of --model transformer")
    if args.task == "anomaly" and not args.signal:
        parser.error("--task anomaly needs --signal FILES")
    if args.max_test_events_per_file is None:
        args.max_test_events_per_file = args.max_events_per_file
    return args


def labels(events, task: str, classes: tuple[str, ...]) -> np.ndarray:
    if task == "ntop":
        return events.info["ntop"].astype(np.int64)
    index = {c: i for i, c in enumerate(classes)}
    missing = sorted(set(events.process) - set(index))
    if missing:
        raise SystemExit(f"events of processes {missing} are not among the classes {list(classes)}")
    return np.array([index[p] for p in events.process], dtype=np.int64)


def task_classes(task: str, args, train_events) -> tuple[str, ...]:
    from finetune.config import TOP_CLASSES

    if task == "ntop":
        return TOP_CLASSES[:int(train_events.info["ntop"].max()) + 1]
    if task == "jets":
        return tuple(args.classes)
    return tuple(dict.fromkeys(train_events.process))  # the SM processes, in file order


class Gbdt:
    """XGBoost on high-level features."""

    def __init__(self, args, mode: str, train_events):
        try:
            import xgboost
        except ImportError as e:
            raise SystemExit("the XGBoost baseline needs xgboost: pip install -e .[baselines]") from e
        self.xgboost, self.mode = xgboost, mode
        self.meta = {"model": "xgboost " + xgboost.__version__}

    def inputs(self, events) -> np.ndarray:
        from events.compare import observables

        features = jet_features(events) if self.mode == "constituent" else observables(events)
        self.meta["features"] = list(features)
        return np.stack(list(features.values()), axis=1)

    def train(self, x, y, train, val, weight, seed, n_classes):
        model = self.xgboost.XGBClassifier(n_estimators=500, learning_rate=0.05, max_depth=4, subsample=0.8,
                                           colsample_bytree=0.8, early_stopping_rounds=30, random_state=seed,
                                           n_jobs=2, objective="multi:softprob", num_class=n_classes)
        model.fit(x[train], y[train], sample_weight=weight, eval_set=[(x[val], y[val])], verbose=False)
        return model, {"trees": int(model.best_iteration) + 1}

    def predict(self, model, x) -> np.ndarray:
        return model.predict_proba(x)


class Network:
    """A baseline network on padded objects (see baseline_models), optionally pretrained first."""

    def __init__(self, args, mode: str, train_events):
        from baseline_models import MODELS, masked_pretrain
        from tokenizer.features import FeatureTransform, flat_objects

        self.args, self.cls = args, MODELS[args.model]
        self.lr = args.lr or (1e-3 if args.model == "part" else 1e-4)
        self.transform = FeatureTransform.fit(mode, flat_objects(train_events.objects))
        self.n_features = len(self.transform.names)
        self.meta = {"model": {"transformer": "transformer on object features (embedding 125, 5 layers, ff 512, "
                                              "dropout 0.1)", "part": "weaver-core ParticleTransformer "
                                              "(embedding 128, 8 heads, 8+2 layers, pairwise features)"}[args.model]
                     + f", AdamW {self.lr:g}"}
        self.pretrained = None
        if args.pretrain:
            torch.manual_seed(0)
            model = self.cls(self.n_features, 1)
            data = self.inputs(capped_events(args.pretrain, args.pretrain_events_per_file))
            losses = masked_pretrain(model, data, args.pretrain_steps, args.pretrain_batch_size, seed=0)
            self.pretrained = model.state_dict()
            self.meta.update(pretraining={"files": args.pretrain, "events": int(len(data[0])),
                                          "steps": args.pretrain_steps,
                                          "batch_size": args.pretrain_batch_size, "mask_rate": 0.3, "loss_every_100": losses})

    def inputs(self, events):
        from baseline_models import padded

        return padded(events, self.transform)

    def train(self, data, y, train, val, weight, seed, n_classes):
        from baseline_models import fit

        torch.manual_seed(seed)
        model = self.cls(self.n_features, n_classes)
        if self.pretrained is not None:  # head swap: every weight but the classification head's
            model.load_state_dict({k: v for k, v in self.pretrained.items() if not k.startswith("head.")},
                                  strict=False)
        steps = fit(model, data, y, train, val, weight, self.args.max_steps, self.args.batch_size, seed, self.lr,
                    self.args.eval_every)
        return model, {"steps": steps, "parameters": sum(p.numel() for p in model.parameters())}

    def predict(self, model, data) -> np.ndarray:
        from baseline_models import predict

        return predict(model, data, np.arange(len(data[0])), self.args.batch_size)


def anomaly(args, name: str, baseline, x, y, classes) -> None:
    """Entropy of the SM-process classifier as the anomaly score, per signal file and seed."""
    from datetime import date

    from finetune.metrics import binary_metrics, entropy

    background = baseline.inputs(capped_events(args.test, args.max_test_events_per_file))
    signals = {path: baseline.inputs(capped_events([path], args.max_test_events_per_file)) for path in args.signal}
    rows = []
    for seed in args.seeds:
        train, val, weight = training_split(y, args.sizes[0], seed, args.val_fraction)
        model, extra = baseline.train(x, y, train, val, weight, seed, len(classes))
        h_bkg = entropy(baseline.predict(model, background))
        for path, data in signals.items():
            h_sig = entropy(baseline.predict(model, data))
            labels_ = np.concatenate([np.zeros(len(h_bkg)), np.ones(len(h_sig))])
            m = binary_metrics(labels_, np.concatenate([h_bkg, h_sig]))
            rows.append({"signal": path, "seed": seed, "n_train": int(len(train)), "background_events": len(h_bkg),
                         "signal_events": len(h_sig), **m, **extra})
            print(f"| {path} | {seed} | {m['auc']:.3f} | {m['max_sic']:.2f} | {m['rejection_at_30']:.1f} |", flush=True)
    write_result(name, args.tag, {"tag": args.tag, "date": str(date.today()), "task": "anomaly", "score": "entropy",
                                  **baseline.meta, "classes": list(classes), "train_files": args.train,
                                  "background_files": args.test, "rows": rows}, args.out)


def main(argv=None) -> None:
    from events.model import ObjectType

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    train_events = capped_events(args.train, args.max_events_per_file)
    mode = "constituent" if train_events.count(ObjectType.CONSTITUENT).any() else "event"
    classes = task_classes(args.task, args, train_events)
    y = labels(train_events, args.task, classes)
    baseline = (Gbdt if args.model == "gbdt" else Network)(args, mode, train_events)
    x = baseline.inputs(train_events)
    name = "baseline_" + ("" if args.task == "ntop" else args.task + "_") + args.model + (
        "_pretrained" if args.pretrain else "")
    if args.task == "anomaly":
        return anomaly(args, name, baseline, x, y, classes)
    test_events = capped_events(args.test, args.max_test_events_per_file)
    x_test, y_test = baseline.inputs(test_events), labels(test_events, args.task, classes)

    def train_and_predict(train, val, weight, seed, n_classes):
        model, extra = baseline.train(x, y, train, val, weight, seed, n_classes)
        return baseline.predict(model, x_test), extra

    title = {"gbdt": "XGBoost on high-level features", "transformer": "continuous-feature transformer",
             "part": "Particle Transformer"}[args.model] + (" (masked pretraining)" if args.pretrain else "")
    run_baseline(args, name, title, y, y_test, classes, train_and_predict, baseline.meta)


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "baseline.py")
