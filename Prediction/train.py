#!/usr/bin/env python3
"""Train and validate performance predictors on a feature table.

    train.py --table TABLE.csv --output DIR [--target latency_ms] [--splits 20] [--seed 0]

The table (one row per model and input size; `mlbench predictor campaign`
writes it, or it was measured elsewhere) has a header with at least:

    model        the architecture's name, the same for every input size of it
    flops, activations, neurons, conv_params, nb_layers, input_size,
    fc_params, bn_params, bn_layers, conv_layers, fc_layers
                 the 11 model-level features (`mlbench features` defines them)
    latency_ms, peak_memory_mb and/or energy_mj (energy per inference)
                 the measured values (targets); an empty cell means not measured

and optionally `family`, `synthetic` (true/false: a generated basic_model),
and `board` and `toolchain` (recorded in the predictor when the table has one of each).

Five regressors (the specification's §E.3): ridge polynomial regression, SVR,
MLP, random forest and XGBoost. Features and targets are used in log scale
(they span orders of magnitude, and the error that matters is relative).

Test domains, each reported per target and regressor:
- random: randomised 80/20 splits, one per seed (the seeds are saved); the
  metrics pool the test predictions of every split, and the best seed is shown
  apart (best of N is optimistic, so it is never the headline);
- new_input_sizes: each input size in turn is left out of training;
- unseen_architectures: architectures (`model`) are split into 5 groups, each
  predicted by a model trained without any size of them;
- synthetic: trained on the standard architectures, tested on the synthetic ones.

Metrics: MAPE, RMSPE, p95 of the absolute percentage error, the share of
predictions within ±5 % and ±10 %, Spearman's rank correlation and the number
of predictions. Never "100 − MAPE" alone.

Writes DIR/report.json, DIR/report.txt and DIR/predictor-<target>.pkl (each
target's best regressor on unseen architectures, refitted on every row, with
its validation errors), and prints the report.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import pickle
import sys
import warnings

import numpy as np

import kernel_features

FEATURES = ["flops", "activations", "neurons", "conv_params", "nb_layers", "input_size",
            "fc_params", "bn_params", "bn_layers", "conv_layers", "fc_layers"]
TARGETS = ["latency_ms", "peak_memory_mb", "energy_mj"]
REGRESSORS = ["poly", "svr", "mlp", "rf", "xgb"]
KERNEL_LEVEL = "kernel"  # the kernel-level predictor, with --kernels
DOMAINS = ["random", "new_input_sizes", "unseen_architectures", "synthetic"]


class TableError(Exception):
    pass


def read_table(path: str) -> dict:
    """The table's columns as arrays; every problem names the file, line and column."""
    try:
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            header = reader.fieldnames or []
            missing = [c for c in ["model"] + FEATURES if c not in header]
            if missing:
                raise TableError(f"{path}: the header lacks {', '.join(missing)} (it has: {', '.join(header)})")
            targets = [t for t in TARGETS if t in header]
            if not targets:
                raise TableError(f"{path}: the header has no measured column ({' or '.join(TARGETS)})")
            rows = list(reader)
    except OSError as error:
        raise TableError(f"{path}: cannot be read: {error.strerror}")
    if not rows:
        raise TableError(f"{path}: has a header but no rows")
    table = {"model": [], "family": [], "synthetic": [], "file": [], "X": [], "board": set(), "toolchain": set(), **{t: [] for t in targets}}
    for number, row in enumerate(rows, start=2):
        def number_of(column: str, required: bool) -> float:
            text = (row.get(column) or "").strip()
            if not text:
                if required:
                    raise TableError(f"{path}:{number}: column '{column}' is empty")
                return math.nan
            try:
                value = float(text)
            except ValueError:
                raise TableError(f"{path}:{number}: column '{column}' is '{text}', not a number")
            if value < 0 or not math.isfinite(value):
                raise TableError(f"{path}:{number}: column '{column}' is {text}; it must be a finite number ≥ 0")
            return value
        if not (row.get("model") or "").strip():
            raise TableError(f"{path}:{number}: column 'model' is empty")
        table["model"].append(row["model"].strip())
        for key in ("board", "toolchain"):
            if (row.get(key) or "").strip():
                table[key].add(row[key].strip())
        table["family"].append((row.get("family") or "").strip())
        table["file"].append((row.get("file") or "").strip())
        flag = (row.get("synthetic") or "").strip().lower()
        if flag not in ("", "true", "false", "1", "0"):
            raise TableError(f"{path}:{number}: column 'synthetic' is '{flag}', not true or false")
        table["synthetic"].append(flag in ("true", "1") or table["model"][-1].startswith("basic_model"))
        table["X"].append([number_of(c, True) for c in FEATURES])
        for t in targets:
            value = number_of(t, False)
            if value == 0:
                raise TableError(f"{path}:{number}: column '{t}' is 0; a percentage error needs a positive measurement")
            table[t].append(value)
    table["X"] = np.array(table["X"])
    for key in ["model", "family", "synthetic", "file"] + targets:
        table[key] = np.array(table[key])
    table["targets"] = targets
    return table


def read_kernels(paths: list[str], table: dict) -> tuple[list, list]:
    """Each model row's kernels (rows of the kernel tables with the same `file`),
    or None where it has none; and the kernels of files the model table does not
    list (kernel samples: training data for the kernel regressors only)."""
    required = ["file", "kind", "op", "latency_ms"] + kernel_features.SHAPE_COLUMNS
    by_file: dict = {}
    for path in paths:
        try:
            with open(path, newline="") as file:
                reader = csv.DictReader(file)
                missing = [c for c in required if c not in (reader.fieldnames or [])]
                if missing:
                    raise TableError(f"{path}: the header lacks {', '.join(missing)} (kernels.py writes the kernel table)")
                here: dict = {}
                # The layout columns are optional: tables measured before them train without them.
                numeric = ["latency_ms"] + kernel_features.SHAPE_COLUMNS + [
                    c for c in ("reorder_ms", "blocked") if c in (reader.fieldnames or [])]
                for number, row in enumerate(reader, start=2):
                    for column in numeric:
                        try:
                            value = float(row[column])
                        except (TypeError, ValueError):
                            raise TableError(f"{path}:{number}: column '{column}' is '{row[column]}', not a number")
                        if value < 0 or not math.isfinite(value):
                            raise TableError(f"{path}:{number}: column '{column}' is {row[column]}; it must be a finite number ≥ 0")
                    here.setdefault(row["file"], []).append(row)
        except OSError as error:
            raise TableError(f"{path}: cannot be read: {error.strerror}")
        repeated = sorted(set(here) & set(by_file))
        if repeated:
            raise TableError(f"{path}: the file {repeated[0]} is in another kernel table too")
        by_file.update(here)
    if not any(table["file"]):
        raise TableError(f"{paths[0]}: the model table has no 'file' column to join the kernels on")
    kernels = [by_file.get(f) if f else None for f in table["file"]]
    if not any(k is not None for k in kernels):
        raise TableError(f"{', '.join(paths)}: no kernel row names a file of the model table")
    listed = set(table["file"])
    return kernels, [rows for name, rows in by_file.items() if name not in listed]


def make_regressor(name: str, seed: int):
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    from sklearn.svm import SVR
    if name == "poly":
        return make_pipeline(StandardScaler(), PolynomialFeatures(2), StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if name == "svr":
        # SVR is sensitive to C and gamma: a small inner grid search picks them on the training rows only.
        return GridSearchCV(make_pipeline(StandardScaler(), SVR(epsilon=0.01)),
                            {"svr__C": [1.0, 10.0, 100.0, 1000.0], "svr__gamma": ["scale", 0.01, 0.1]}, cv=3)
    if name == "mlp":
        return make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=3000,
                                                            learning_rate_init=0.003, random_state=seed))
    if name == "rf":
        return RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=1)
    if name == "xgb":
        from xgboost import XGBRegressor
        return XGBRegressor(n_estimators=400, max_depth=4, learning_rate=0.05, subsample=0.9,
                            random_state=seed, n_jobs=1)
    raise ValueError(name)


def fit_predict(name: str, seed: int, table: dict, target: str, train, test) -> np.ndarray:
    if name == "kernel":
        kernels = table["kernels"]
        predictor = kernel_features.KernelLevelPredictor(table["kernel_regressor"], seed)
        predictor.fit([kernels[i] for i in train], table[target][train], table["kernel_samples"])
        return predictor.predict([kernels[i] for i in test])
    X_train, y_train, X_test = table["X"][train], table[target][train], table["X"][test]
    model = make_regressor(name, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.log1p(X_train), np.log(y_train))
    # Clipped: an extrapolating regressor must give a huge error, not an overflow.
    return np.exp(np.clip(model.predict(np.log1p(X_test)), -50, 50))


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return None
    return float(spearmanr(a, b).statistic)


def metrics(measured: np.ndarray, predicted: np.ndarray) -> dict:
    error = (predicted - measured) / measured * 100
    absolute = np.abs(error)
    return {
        "count": int(len(measured)),
        "mape": float(absolute.mean()),
        "rmspe": float(np.sqrt((error ** 2).mean())),
        "p95_ape": float(np.percentile(absolute, 95)),
        "within_5": float((absolute <= 5).mean() * 100),
        "within_10": float((absolute <= 10).mean() * 100),
        "spearman": spearman(measured, predicted),
    }


def folds(domain: str, table: dict, rows: np.ndarray, seeds: list[int]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(train rows, test rows, seed) of each fold of a domain; empty when it cannot be made."""
    if domain == "random":
        out = []
        for seed in seeds:
            order = np.random.default_rng(seed).permutation(rows)
            cut = int(round(len(rows) * 0.8))
            out.append((order[:cut], order[cut:], seed))
        return out
    if domain == "new_input_sizes":
        sizes = sorted(set(table["X"][rows, FEATURES.index("input_size")]))
        if len(sizes) < 2:
            return []
        column = table["X"][rows, FEATURES.index("input_size")]
        return [(rows[column != s], rows[column == s], seeds[0]) for s in sizes]
    if domain == "unseen_architectures":
        names = sorted(set(table["model"][rows]))
        if len(names) < 5:
            return []
        shuffled = np.random.default_rng(seeds[0]).permutation(names)
        groups = [set(shuffled[k::5]) for k in range(5)]
        held = np.array([[m in g for m in table["model"][rows]] for g in groups])
        return [(rows[~mask], rows[mask], seeds[0]) for mask in held]
    if domain == "synthetic":
        mask = table["synthetic"][rows]
        if mask.all() or not mask.any():
            return []
        return [(rows[~mask], rows[mask], seeds[0])]
    raise ValueError(domain)


def evaluate(table: dict, target: str, seeds: list[int], regressors: list[str]) -> dict:
    y_all = table[target]
    rows = np.flatnonzero(~np.isnan(y_all))
    if "kernel" in regressors:
        # Every regressor is compared on the same rows: those whose kernels were measured.
        rows = np.array([r for r in rows if table["kernels"][r] is not None], dtype=int)
    report = {}
    for domain in DOMAINS:
        parts = folds(domain, table, rows, seeds)
        if not parts:
            report[domain] = {"skipped": "the table has too few input sizes, architectures or synthetic models for it"}
            continue
        entry = {"folds": len(parts), "seeds": sorted({seed for _, _, seed in parts}), "regressors": {}}
        for name in regressors:
            measured, predicted, per_seed = [], [], []
            for train, test, seed in parts:
                if len(train) < 2 or len(test) == 0:
                    continue
                p = fit_predict(name, seed, table, target, train, test)
                measured.append(y_all[test])
                predicted.append(p)
                per_seed.append((seed, metrics(y_all[test], p)))
            if not measured:
                continue
            result = metrics(np.concatenate(measured), np.concatenate(predicted))
            if domain == "random":
                best = min(per_seed, key=lambda item: item[1]["mape"])
                result["best_seed"] = {"seed": best[0], **best[1]}
            entry["regressors"][name] = result
        report[domain] = entry
    return report


def table_text(target: str, report: dict) -> str:
    lines = [f"target {target}"]
    for domain in DOMAINS:
        entry = report[domain]
        if "skipped" in entry:
            lines.append(f"  {domain}: skipped ({entry['skipped']})")
            continue
        lines.append(f"  {domain} ({entry['folds']} fold(s), seeds {entry['seeds'][:5]}{'…' if len(entry['seeds']) > 5 else ''})")
        lines.append(f"    {'regressor':<9} {'n':>5} {'MAPE %':>8} {'RMSPE %':>8} {'p95 %':>8} {'±5 %':>7} {'±10 %':>7} {'Spearman':>8}")
        for name, m in entry["regressors"].items():
            rho = "-" if m["spearman"] is None else f"{m['spearman']:.3f}"
            lines.append(f"    {name:<9} {m['count']:>5} {m['mape']:>8.2f} {m['rmspe']:>8.2f} {m['p95_ape']:>8.2f} "
                         f"{m['within_5']:>6.1f}% {m['within_10']:>6.1f}% {rho:>8}")
            if "best_seed" in m:
                b = m["best_seed"]
                lines.append(f"      best single split (seed {b['seed']}, optimistic): MAPE {b['mape']:.2f} %, "
                             f"±10 % {b['within_10']:.1f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="the feature table (CSV)")
    parser.add_argument("--output", required=True, help="folder for report.json, report.txt and the predictors")
    parser.add_argument("--target", action="append", choices=TARGETS, help="a target to train (default: every measured one)")
    parser.add_argument("--regressor", action="append", choices=REGRESSORS, help="a regressor (default: all five)")
    parser.add_argument("--splits", type=int, default=20, help="randomised 80/20 splits (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed; split k uses seed + k (default 0)")
    parser.add_argument("--kernels", action="append",
                        help="a kernel table (kernels.py): adds the kernel-level latency predictor ('kernel'), joined to "
                             "the table on its 'file' column; repeatable: kernels of files the table does not list "
                             "(zoo.py --kernel-samples) train the kernel regressors in every fold and are never tested")
    parser.add_argument("--options", default="{}",
                        help="the toolchain options the table was measured with, as a JSON object (e.g. "
                             "'{\"intra_op_threads\": 1}'); a predicted experiment uses the predictor only with these options")
    parser.add_argument("--kernel-regressor", choices=["linxgb", "xgb", "rf"], default="linxgb",
                        help="the per-kernel-type regressor of the kernel-level predictor: linxgb (default; a power law "
                             "of FLOPs with boosted trees on its residuals), xgb or rf")
    args = parser.parse_args(argv)
    if args.splits < 1:
        parser.error(f"--splits must be at least 1, got {args.splits}")
    try:
        options = json.loads(args.options)
    except json.JSONDecodeError as error:
        parser.error(f"--options is not JSON: {error}")
    if not isinstance(options, dict):
        parser.error(f"--options must be a JSON object, got {args.options}")
    try:
        table = read_table(args.table)
        if args.kernels:
            table["kernels"], table["kernel_samples"] = read_kernels(args.kernels, table)
            table["kernel_regressor"] = args.kernel_regressor
    except TableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    targets = args.target or table["targets"]
    absent = [t for t in targets if t not in table["targets"]]
    if absent:
        print(f"error: {args.table}: no column {', '.join(absent)} to train on", file=sys.stderr)
        return 2
    regressors = args.regressor or REGRESSORS
    seeds = [args.seed + k for k in range(args.splits)]
    with open(args.table, "rb") as file:
        table_sha = hashlib.sha256(file.read()).hexdigest()

    # The predictor's version covers every table it learned from.
    source_sha = table_sha
    for path in args.kernels or []:
        with open(path, "rb") as file:
            source_sha = hashlib.sha256(source_sha.encode() + file.read()).hexdigest()
    os.makedirs(args.output, exist_ok=True)
    import sklearn
    versions = {"scikit-learn": sklearn.__version__, "numpy": np.__version__}
    try:
        import xgboost
        versions["xgboost"] = xgboost.__version__
    except ImportError:
        pass
    full = {"table": os.path.abspath(args.table), "table_sha256": table_sha, "rows": int(len(table["model"])),
            "architectures": int(len(set(table["model"]))), "seeds": seeds, "versions": versions, "targets": {}}
    texts = [f"table {args.table}: {full['rows']} rows, {full['architectures']} architectures "
             f"(sha256 {table_sha[:12]}); {len(seeds)} random splits from seed {args.seed}"]
    for target in targets:
        # The kernel table measures latency only.
        chosen = regressors + ([KERNEL_LEVEL] if args.kernels and target == "latency_ms" else [])
        report = evaluate(table, target, seeds, chosen)
        # The predictor kept is the best on unseen architectures (random splits when that cannot be made).
        domain = next(d for d in ("unseen_architectures", "random") if report[d].get("regressors"))
        best = min(report[domain]["regressors"].items(), key=lambda item: item[1]["mape"])[0]
        rows = np.flatnonzero(~np.isnan(table[target]))
        if best == KERNEL_LEVEL:
            rows = np.array([r for r in rows if table["kernels"][r] is not None], dtype=int)
            model = kernel_features.KernelLevelPredictor(args.kernel_regressor, seeds[0])
            model.fit([table["kernels"][r] for r in rows], table[target][rows], table["kernel_samples"])
        else:
            model = make_regressor(best, seeds[0])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(np.log1p(table["X"][rows]), np.log(table[target][rows]))
        version = hashlib.sha256(f"{source_sha}:{target}:{best}:{seeds[0]}:{sorted(versions.items())}".encode()).hexdigest()[:16]
        # Which board and toolchain the predictor speaks for, when the table says (one of each).
        where = {key: next(iter(table[key])) if len(table[key]) == 1 else None for key in ("board", "toolchain")}
        predictor = {"target": target, "regressor": best, "version": version, "features": FEATURES, **where,
                     "level": "kernel" if best == KERNEL_LEVEL else "model", "options": options,
                     "validation": {d: report[d]["regressors"][best] for d in DOMAINS if best in report[d].get("regressors", {})},
                     "chosen_on": domain}
        with open(os.path.join(args.output, f"predictor-{target}.pkl"), "wb") as file:
            pickle.dump({"model": model, **predictor}, file)
        full["targets"][target] = {"domains": report, "predictor": predictor}
        texts.append(table_text(target, report))
        texts.append(f"  predictor kept: {best} (best MAPE on {domain}), version {version}")
    text = "\n".join(texts)
    with open(os.path.join(args.output, "report.json"), "w") as file:
        json.dump(full, file, indent=1)
    with open(os.path.join(args.output, "report.txt"), "w") as file:
        file.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
