"""`avacast compare NEW.json OLD.json`: two `avacast eval` reports of the same clips, paired per clip
(mean difference, clips better / worse, paired t, sign-test p), so a model change is judged by more
than two noisy means."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two eval reports clip by clip", description=__doc__)
    p.add_argument("new", help="report of the candidate model (.json from `avacast eval`)")
    p.add_argument("old", help="report of the model it would replace")


def run(args: argparse.Namespace) -> int:
    from engine.train.compare import compare, markdown, mouth_mismatch

    reports = []
    for path in (Path(args.new), Path(args.old)):
        try:
            reports.append(json.loads(path.read_text()))
        except OSError as e:
            raise UserError(f"{path}: cannot read ({e.strerror})") from None
        except ValueError:
            raise UserError(f"{path}: not a JSON eval report") from None
    try:
        rows = compare(*reports)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"cannot compare: {e}") from None
    print(markdown(rows, Path(args.new).stem, Path(args.old).stem))
    note = mouth_mismatch(*reports)
    if note:
        print(f"\nNote: {note}.")
    return 0
