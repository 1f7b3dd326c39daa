"""python -m tokenizer.tokenize: turn an event file into token sequences (streaming, batched)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from common.cli import check_output, device_name, positive_int, run_cli


def tokenize_into(writer, tokenizer, path, format: str = "auto", step_size: int = 100_000, bar=None,
                  features: bool = False, options=None) -> None:
    """Encode every event of file `path` and append the tokens (and features) to a `TokenWriter`, streaming."""
    from events.io import iter_events

    for chunk in iter_events(path, format, step_size=step_size, options=options):
        writer.write(tokenizer.encode(chunk, source=str(path), features=features))
        if bar is not None:
            bar.update(len(chunk))


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from events.io import count_nonzero_events, detect_format
    from events.options import add_read_arguments, read_options
    from tokenizer.store import TokenWriter
    from tokenizer.tokenizer import Tokenizer
    from common.runtime import resolve_device

    parser = argparse.ArgumentParser(prog="python -m tokenizer.tokenize",
                                     description="Encode every object of an event file into token ids, in input "
                                                 "order, with event ids, weights and labels carried along.")
    parser.add_argument("--tokenizer", required=True, type=Path, help="tokenizer folder (from tokenizer.train)")
    parser.add_argument("--input", required=True, type=Path, nargs="+",
                        help="event file(s) (any readable format), appended in order to one store")
    parser.add_argument("--out", required=True, type=Path, help="output token store (.h5)")
    parser.add_argument("--format", default="auto", help="input format (default: detected)")
    parser.add_argument("--step-size", type=positive_int, default=100_000, help="events per chunk")
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu or cuda")
    parser.add_argument("--features", action="store_true",
                        help="also store each object's normalized features (what a backbone with a density "
                             "head, model.density_components > 0, is trained on; and the input of a hybrid "
                             "backbone, model.hybrid=true)")
    add_read_arguments(parser, selection="auto")
    args = parser.parse_args(argv)
    check_output(args.out, [*args.input, args.tokenizer], "token store")
    tokenizer = Tokenizer.from_pretrained(args.tokenizer, device=str(resolve_device(args.device)))
    formats = [detect_format(p) if args.format == "auto" else args.format for p in args.input]
    start = time.perf_counter()
    total = sum(count_nonzero_events(p, f) for p, f in zip(args.input, formats))
    with TokenWriter.for_tokenizer(args.out, tokenizer, args.tokenizer, args.features) as writer, \
            tqdm(total=total, unit="ev", desc="tokenizing") as bar:
        for path, fmt in zip(args.input, formats):
            tokenize_into(writer, tokenizer, path, fmt, args.step_size, bar, args.features, read_options(args))
    seconds = time.perf_counter() - start
    print(f"wrote {writer.n_events} events, {writer.n_tokens} tokens to {args.out} "
          f"({writer.n_tokens / seconds:,.0f} objects/s)")
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m tokenizer.tokenize")
