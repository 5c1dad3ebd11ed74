#!/usr/bin/env python3
"""Predict a model's targets with trained predictors (train.py's predictor-*.pkl).

    predict.py --predictors DIR --features FEATURES.json

FEATURES.json is `mlbench features --json` (its "model" object is read). Prints
one JSON object: target -> {"value", "regressor", "version", "board",
"toolchain", "validation"}, for every predictor-<target>.pkl in DIR.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pickle
import sys

import numpy as np

import kernel_features


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictors", required=True, help="a folder written by train.py")
    parser.add_argument("--features", required=True, help="the model's features (mlbench features --json)")
    args = parser.parse_args(argv)
    files = sorted(glob.glob(os.path.join(args.predictors, "predictor-*.pkl")))
    if not files:
        print(f"error: {args.predictors}: no predictor-*.pkl (train one with `mlbench predictor train`)", file=sys.stderr)
        return 2
    with open(args.features) as file:
        described = json.load(file)
    model = described["model"]
    out = {}
    for path in files:
        with open(path, "rb") as file:
            predictor = pickle.load(file)
        if predictor.get("level") == "kernel":
            # The kernel-level predictor sums its predictions over the model's fused kernels.
            if not described.get("kernels"):
                print(f"error: {args.features}: no kernels (a kernel-level predictor needs `mlbench features --json`'s kernel list)", file=sys.stderr)
                return 2
            rows = [kernel_features.shape_row(kernel) for kernel in described["kernels"]]
            value = float(predictor["model"].predict([rows])[0])
        else:
            missing = [f for f in predictor["features"] if f not in model]
            if missing:
                print(f"error: {args.features}: no feature {', '.join(missing)}", file=sys.stderr)
                return 2
            x = np.log1p(np.array([[float(model[f]) for f in predictor["features"]]]))
            value = float(np.exp(np.clip(predictor["model"].predict(x)[0], -50, 50)))
        out[predictor["target"]] = {"value": value, "regressor": predictor["regressor"], "level": predictor.get("level", "model"), "version": predictor["version"],
                                    "board": predictor.get("board"), "toolchain": predictor.get("toolchain"),
                                    "validation": {domain: {k: v for k, v in m.items() if not isinstance(v, dict)}
                                                   for domain, m in predictor["validation"].items()}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
