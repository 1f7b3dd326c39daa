"""python -m tokenizer.tokenize: turn event files into token sequences (streaming, batched), one store
per input file or one combined store, on this process or on Dask (common.filejobs)."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.cli import add_model_arguments, check_output, device_name, positive_int, resolve_models, run_cli
from events.options import ReadOptions

SINGLE_SUFFIXES = (".h5", ".hdf5")


def tokenize_into(writer, tokenizer, path, format: str = "auto", step_size: int = 100_000, progress: bool = False,
                  features: bool = False, options=None) -> None:
    """Encode every event of file `path` and append the tokens (and features) to a `TokenWriter`, streaming,
    with an events bar if `progress`. The file is opened once; a writer whose store would replace it
    (or the tokenizer's folder) is refused first."""
    from tqdm import tqdm

    from events.io import open_events

    check_output(writer.path, [path, tokenizer.source], "token store")
    with open_events(path, format, options=options) as reader, \
            tqdm(total=len(reader), unit="ev", desc="tokenizing", disable=not progress) as bar:
        for chunk in reader.iterate(step_size):
            writer.write(tokenizer.encode(chunk, source=str(path), features=features))
            bar.update(len(chunk))


@dataclass(frozen=True)
class TokenizeJob:
    """Tokenize input files, each into its own store (a `common.filejobs.FileJob`)."""

    tokenizer: str
    format: str = "auto"
    features: bool = False
    options: ReadOptions = field(default_factory=lambda: ReadOptions(selection="auto"))
    step_size: int = 100_000
    device: str = "auto"
    progress: bool = False  # an events bar inside the task (one input, in this process)
    suffix = ".tokens.h5"
    what = "token store"

    def settings(self) -> dict:
        from common.pretrained import identity

        return {"tokenizer": identity(self.tokenizer), "format": self.format, "features": self.features,
                "options": asdict(self.options)}

    def check(self, inputs: list[str], out: Path, combined: bool) -> None:
        """Settings no input could be tokenized with."""
        from events.options import check_read_settings

        check_read_settings([self.format], self.options)

    def signature_of(self, output: Path) -> dict | None:
        from tokenizer.store import read_job

        return read_job(output)

    def load(self):
        from common.executors import worker_cache
        from common.runtime import resolve_device
        from tokenizer.tokenizer import Tokenizer

        return worker_cache(("tokenizer", self.tokenizer, self.device),
                            lambda: Tokenizer.from_pretrained(self.tokenizer, device=str(resolve_device(self.device))))

    def run(self, input: str, output: Path, signature: dict, empty_ok: bool) -> tuple[int, str]:
        from events.errors import EventDataError
        from tokenizer.store import TokenWriter

        tokenizer = self.load()
        with TokenWriter.for_tokenizer(output, tokenizer, self.tokenizer, self.features, signature) as writer:
            tokenize_into(writer, tokenizer, input, self.format, self.step_size, self.progress, self.features,
                          self.options)
            if writer.n_events == 0 and not empty_ok:  # the only input: most likely the wrong file given
                raise EventDataError(f"{input}: holds no events")
        return writer.n_events, f"wrote {writer.n_events} events, {writer.n_tokens} tokens to {output}"

    def combine(self, parts: list[Path], inputs: list[str], out: Path, signature: dict) -> tuple[int, str]:
        """One store of the `parts` (one per input, in order), each event's input recorded."""
        import numpy as np

        from tokenizer.store import TokenWriter, iter_tokens

        with TokenWriter.for_tokenizer(out, self.load(), self.tokenizer, self.features, signature, inputs) as writer:
            for i, part in enumerate(parts):
                for batch in iter_tokens(part, self.step_size):
                    batch.info["input"] = np.full(len(batch), i, np.int32)
                    writer.write(batch)
        return writer.n_events, (f"combined {writer.n_events} events, {writer.n_tokens} tokens of {len(parts)} files "
                                 f"into {out}")


def build_parser() -> argparse.ArgumentParser:
    from common.executors import add_scheduler_argument
    from events.options import add_read_arguments

    parser = argparse.ArgumentParser(
        prog="python -m tokenizer.tokenize",
        description="Encode every object of event files into token ids, in input order, with event ids, "
                    "weights and labels carried along: one store per input file (--out FOLDER) or one "
                    "combined store (--out FILE.h5). A rerun skips the stores already complete.")
    add_model_arguments(parser, backbone=None, tokenizer="required")
    parser.add_argument("--input", required=True, nargs="+", metavar="FILE",
                        help="event files (any readable format): paths, globs ('data/*.root', quoted), URLs "
                             "(root://...), or @LIST, a text file of them one per line")
    parser.add_argument("--out", required=True, type=Path,
                        help="a token store FILE.h5 (several inputs: combined in input order, each event's input "
                             "recorded) or a FOLDER (one NAME.tokens.h5 per input)")
    parser.add_argument("--format", default="auto", help="input format (default: detected)")
    parser.add_argument("--step-size", type=positive_int, default=100_000, help="events per chunk")
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu or cuda")
    parser.add_argument("--features", action="store_true",
                        help="also store each object's normalized features (what a backbone with a density "
                             "head, model.density_components > 0, is trained on; and the input of a hybrid "
                             "backbone, model.hybrid=true)")
    parser.add_argument("--redo", action="store_true", help="recompute outputs even where they are complete")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_scheduler_argument(parser, "one per input file")
    add_read_arguments(parser, selection="auto")
    return parser


def main(argv: list[str] | None = None) -> int:
    from common.filejobs import expand_inputs, is_single_output, print_report, run_file_job
    from events.options import read_options

    args = build_parser().parse_args(argv)
    resolve_models(args)
    inputs = expand_inputs(args.input)
    job = TokenizeJob(str(args.tokenizer), args.format, args.features, read_options(args), args.step_size,
                      args.device, progress=not args.quiet and len(inputs) == 1 and args.scheduler == "none")
    report = run_file_job(job, inputs, args.out, single=is_single_output(args.out, SINGLE_SUFFIXES),
                          protected=[args.tokenizer], scheduler=args.scheduler, redo=args.redo,
                          progress=not args.quiet)
    return print_report(report, args.out)


if __name__ == "__main__":
    run_cli(main, "python -m tokenizer.tokenize")
