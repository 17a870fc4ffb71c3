"""Fuzz every parser with N mutated inputs each (default 10,000) and report outcomes.

    python benchmarks/fuzz.py                  # every parser below: 10,000 cases each
    python benchmarks/fuzz.py --parsers model --cases 2000
    python benchmarks/fuzz.py --parsers speech-folder web-body

Parsers: ``idx``, ``wav``, ``image``, ``model`` (model.json + weights.bin),
``speech-folder`` (a Speech Commands folder after hostile file-system changes,
through ``load_speech_commands``) and ``web-body`` (requests to the web app in
process: predict uploads, training bodies, test-results and model-file paths,
job ids, pages, ``/ws/audio`` messages). The cases live in
``tests/fuzz_targets.py``; ``make test`` runs a share of them.

Outcome per case: a result ("ok"), the project's own error ("rejected"; for
web requests a 4xx/503 answer with a JSON error message), or a bug: any other
exception, a 5xx or non-JSON error, a case over the time limit, or memory
beyond the cap (the process runs under RLIMIT_AS). Bugs are grouped by
exception type and place and printed with a reproducer (parser, seed, case
index).
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fuzz_targets import ALL, cases, run_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parsers", nargs="+", default=list(ALL), choices=ALL)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=5.0, help="time limit per case")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="address-space cap for this process")
    parser.add_argument("--json", default="benchmarks/results/fuzz.json")
    args = parser.parse_args()
    cap = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    report = {}
    print("| parser | cases | ok | rejected (own error) | bugs | distinct bugs | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.parsers:
        counts = collections.Counter()
        bugs = {}
        start = time.perf_counter()
        for i, (target, data) in enumerate(cases(name, args.cases, seed=args.seed)):
            try:
                counts[run_case(target, data, args.seconds)] += 1
            except BaseException as err:  # noqa: BLE001 - everything else is a finding
                if isinstance(err, KeyboardInterrupt):
                    raise
                counts["bug"] += 1
                frame = traceback.extract_tb(err.__traceback__)[-1]
                key = f"{type(err).__name__} at {Path(frame.filename).name}:{frame.lineno}"
                bugs.setdefault(key, {"case": i, "message": str(err)[:200], "count": 0})["count"] += 1
        seconds = time.perf_counter() - start
        report[name] = {"cases": args.cases, **counts, "bugs": bugs, "seconds": seconds}
        print(f"| {name} | {args.cases:,} | {counts['ok']:,} | {counts['rejected']:,} | {counts['bug']} | "
              f"{len(bugs)} | {seconds:.0f} |", flush=True)
    for name, entry in report.items():
        for key, bug in entry["bugs"].items():
            print(f"BUG {name}: {key} x{bug['count']} (first: --parsers {name} --seed {args.seed}, "
                  f"case {bug['case']}): {bug['message']}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    return 1 if any(entry["bugs"] for entry in report.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
