#!/usr/bin/env python3
"""Sizes the serving container from `quantrec inspect --json` of the artifacts it will serve.

    python3 deploy/resources.py [--quantrec PATH] [--threads N] MODEL.safetensors...

Prints a kustomize patch of the Deployment's resources: memory request = the artifacts' file
bytes (tables are memory-mapped; pages count once touched) + 256 MiB for batches and buffers,
limit = twice that (a new version loads beside the old one before the swap); CPU = threads.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

HEADROOM = 256 << 20
MI = 1 << 20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="artifacts the pod serves")
    ap.add_argument("--quantrec", default="quantrec", help="the quantrec binary")
    ap.add_argument("--threads", type=int, default=2, help="--threads of quantrec serve")
    a = ap.parse_args()
    total = 0
    for m in a.models:
        r = subprocess.run([a.quantrec, "inspect", "--json", m], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"quantrec inspect {m} failed: {r.stderr.strip()}", file=sys.stderr)
            return 1
        info = json.loads(r.stdout)
        total += int(info["file_bytes"])
        print(f"# {m}: {info['file_bytes']} bytes ({info['ratio_vs_f32']:.3f} of f32)", file=sys.stderr)
    request = math.ceil((total + HEADROOM) / MI)
    print(
        "\n".join(
            [
                "apiVersion: apps/v1",
                "kind: Deployment",
                "metadata:",
                "  name: quantrec",
                "spec:",
                "  template:",
                "    spec:",
                "      containers:",
                "        - name: quantrec",
                "          resources:",
                "            requests:",
                f'              cpu: "{a.threads}"',
                f"              memory: {request}Mi",
                "            limits:",
                f"              memory: {2 * request}Mi",
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
