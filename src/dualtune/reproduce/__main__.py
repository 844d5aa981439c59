"""``python -m dualtune.reproduce <multirun dir> [--paper-numbers] [--out DIR]``: the sweep's tables and figures."""

import argparse
import logging


def main(argv=None) -> int:
    """Parse the arguments, write the tables and figures, print the markdown."""
    from dualtune.gains import GAIN_TOKEN
    from dualtune.reproduce.report import reproduce

    parser = argparse.ArgumentParser(prog="python -m dualtune.reproduce", description=__doc__)
    parser.add_argument("sweep", help="a Hydra multirun dir (or any dir above run dirs with .hydra/config.yaml)")
    parser.add_argument("--paper-numbers", action="store_true", help="add the paper's printed numbers (Tables 1-3)")
    parser.add_argument("--out", help="output dir (default: <sweep>/reproduce)")
    parser.add_argument("--gain-token", choices=sorted(GAIN_TOKEN), help="Gain_token of Figs. 2-3 (dualtune.gains)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = reproduce(args.sweep, args.out, paper_numbers=args.paper_numbers, gain_token=args.gain_token)
    except FileNotFoundError as err:
        parser.error(str(err))
    print(result["markdown"])
    print(f"written to {result['out']}: " + ", ".join(p.name for p in result["files"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
