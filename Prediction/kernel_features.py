"""The kernel-level predictor's features of one fused kernel, shared by the
kernel campaign (kernels.py, in ONNX Runtime's environment), the trainer and
predict.py, so that a kernel is described the same way where it is measured
and where it is predicted.

A kernel is one entry of `mlbench features --json`'s "kernels" list: kind
("Conv+BatchNormalization+Relu"), nodes, input and output shapes, FLOPs,
parameters, window, strides and groups.
"""

from __future__ import annotations

import math

# The columns of the kernel table (kernels.py writes them, train.py reads them).
SHAPE_COLUMNS = ["cin", "hin", "win", "cout", "hout", "wout", "kh", "kw", "stride", "groups", "flops", "params"]

# A regressor per operator type; types with fewer measured kernels than this share one.
MIN_KERNELS_PER_TYPE = 30


def _dims(shape: list) -> tuple[int, int, int]:
    # NCHW when rank 4; otherwise the elements per sample stand as channels.
    if len(shape) == 4:
        return int(shape[1]), int(shape[2]), int(shape[3])
    per_sample = 1
    for d in (shape[1:] if len(shape) > 1 else shape):
        per_sample *= int(d)
    return per_sample, 1, 1


def shape_row(kernel: dict) -> dict:
    """The table's description of one kernel (`mlbench features --json` spelling in, table columns out)."""
    cin, hin, win = _dims(list(kernel.get("input_shape") or []))
    cout, hout, wout = _dims(list(kernel.get("output_shape") or []))
    window = list(kernel.get("kernel_shape") or [])
    strides = list(kernel.get("strides") or [])
    return {"kind": kernel["kind"], "op": kernel["kind"].split("+")[0],
            "cin": cin, "hin": hin, "win": win, "cout": cout, "hout": hout, "wout": wout,
            "kh": window[0] if window else 0, "kw": window[-1] if window else 0,
            "stride": strides[0] if strides else 0, "groups": kernel.get("groups") or 0,
            "flops": int(kernel["flops"]), "params": int(kernel["params"])}


def kernel_type(row: dict) -> str:
    """The regressor a kernel belongs to: its leading operator, convolutions split
    into depthwise, pointwise and spatial ones (they run different code paths)."""
    op = row["op"]
    if op == "Conv":
        groups, cin = float(row["groups"]), float(row["cin"])
        if groups > 1 and groups == cin:
            return "Conv/depthwise"
        if float(row["kh"]) == 1 and float(row["kw"]) == 1:
            return "Conv/pointwise"
        return "Conv/spatial"
    return op


# Operators ONNX Runtime's CPU provider runs in its blocked (NCHWc) layout; between
# one of them and another operator it inserts a layout conversion, whose time
# counts to the blocked kernel (see kernels.py), so a kernel's neighbours matter.
BLOCKED = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool"}


# The leading operators told apart in the regressors' input: kernel types with
# too few measured kernels share a regressor, which must still tell a Gemm
# from a Flatten.
OPERATORS = ("Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "Sigmoid", "Mul", "Add", "Concat",
             "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Transpose", "Split")


def vector(row: dict, previous: str | None = None, following: str | None = None) -> list[float]:
    """The regressors' input: log-scaled shapes and cost, the work per output and
    the reduction size, channel counts' alignment to the 8- and 16-wide blocks of
    the vector units, what is fused, whether the kernels before and after it
    (the leading operators, None at the graph's ends) run in the blocked layout,
    and the leading operator."""
    kind = row["kind"].split("+")
    values = [float(row[c]) for c in SHAPE_COLUMNS]
    cin, hin, win, cout, hout, wout, kh, kw, stride, groups, flops, params = values
    per_group = max(groups, 1.0)
    derived = [cin * hin * win, cout * hout * wout, flops / max(cout * hout * wout, 1.0), cin / per_group * kh * kw,
               hout * wout, cout / per_group]
    aligned = [float(cin % 16 == 0), float(cout % 16 == 0), float(cin % 8 == 0), float(cout % 8 == 0)]
    fused = [float(len(kind)), float("Add" in kind[1:]), float(len(kind) > 1 and kind[-1] not in ("Add", "BatchNormalization"))]
    context = [float(previous in BLOCKED), float(following in BLOCKED), float(previous is None), float(following is None)]
    operator = [float(row["op"] == op) for op in OPERATORS]
    return [math.log1p(v) for v in values + derived] + aligned + fused + context + operator


def vectors(kernels: list[dict]) -> list[list[float]]:
    """`vector` of every kernel of one model, in execution order, with its neighbours."""
    return [vector(row, kernels[i - 1]["op"] if i > 0 else None, kernels[i + 1]["op"] if i + 1 < len(kernels) else None)
            for i, row in enumerate(kernels)]


# The column of `vector` that holds log FLOPs.
FLOPS_COLUMN = SHAPE_COLUMNS.index("flops")


class LogLinearBoosted:
    """A power law of the work (a line in log time over log FLOPs, which
    extrapolates to sizes not seen in training) with gradient-boosted trees on
    its residuals over every feature (what the power law misses: blocking,
    cache sizes, code paths, fixed costs). The line takes FLOPs alone: fitted on
    every feature it leaned on correlated shapes and extrapolated badly. The
    trees are the mean of three ensembles with other seeds of their row and
    column subsampling, which steadies the prediction of shapes few kernels
    measured."""

    ENSEMBLES = 3

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X, y, sample_weight=None):
        from sklearn.linear_model import Ridge
        from xgboost import XGBRegressor
        self.linear = Ridge(alpha=1.0).fit(X[:, [FLOPS_COLUMN]], y, sample_weight=sample_weight)
        residual = y - self.linear.predict(X[:, [FLOPS_COLUMN]])
        self.trees = [XGBRegressor(n_estimators=600, max_depth=6, learning_rate=0.05, subsample=0.8, colsample_bytree=0.8,
                                   random_state=self.seed + k, n_jobs=1).fit(X, residual, sample_weight=sample_weight)
                      for k in range(self.ENSEMBLES)]
        return self

    def predict(self, X):
        import numpy as np
        return self.linear.predict(X[:, [FLOPS_COLUMN]]) + np.mean([trees.predict(X) for trees in self.trees], axis=0)


# Layout conversion times are learnt as log(time + this), which leaves room for
# 0; a kernel's own work is at least this (a reading of 0 is below the profiler's µs).
REORDER_FLOOR_MS = 1e-4

# A zoo network weighs this many kernel samples in the kernel regressors' training.
NETWORK_WEIGHT = 3.0
# Every kernel's weight is at least this share of its model's.
WEIGHT_FLOOR = 0.02


def training_weights(models: list[list[dict]], samples: list[list[dict]]):
    """The kernels' weights in the regressors' training, in the order of
    `models` then `samples`: each measured model weighs the same in all, spread
    over its kernels by their share of its measured time (plus a floor), so
    that the regressors learn best the kernels that make up a model's latency
    and a network of 200 tiny kernels does not outweigh one of 10 large ones;
    a network of the zoo weighs NETWORK_WEIGHT samples, since its kernels run
    among the neighbours the predictor will be asked about."""
    import numpy as np
    weights = []
    for group, weight in ((models, NETWORK_WEIGHT), (samples, 1.0)):
        for kernels in group:
            total = sum(float(row["latency_ms"]) for row in kernels) or 1.0
            weights += [weight * (float(row["latency_ms"]) / total + WEIGHT_FLOOR) for row in kernels]
    return np.array(weights)


class KernelLevelPredictor:
    """nn-Meter-style latency predictor: one regressor per kernel type on the
    measured kernels, a model's latency the sum of its kernels' predictions,
    calibrated by a fitted per-model overhead.

    The calibration, fitted on the training models by least squares on the
    relative error, is
        latency ≈ a · Σ predicted kernel times + Σ_type b_type · kernels of that type + c:
    a absorbs what the profiler misses of every kernel's time, b_type the
    runtime's dispatch cost per kernel of a type less what the profiler adds to
    each timed one (mostly negative: a profiled kernel of a microsecond carries
    about as much again in profiling, and how much differs by type: one b for
    all left models of many tiny kernels, EfficientNet's, 8 % too slow), c the
    fixed cost of a call.
    """

    def __init__(self, regressor: str = "linxgb", seed: int = 0):
        self.regressor = regressor
        self.seed = seed
        self.models: dict = {}
        self.calibration: tuple = ()  # set by fit
        self.layout = None  # the blocked-layout classifier, when the kernel tables say which kernels ran blocked
        self.reorders = None  # the layout conversions' regressor, likewise

    def _make(self):
        if self.regressor == "linxgb":
            return LogLinearBoosted(self.seed)
        if self.regressor == "xgb":
            from xgboost import XGBRegressor
            return XGBRegressor(n_estimators=300, max_depth=6, learning_rate=0.08, subsample=0.9,
                                random_state=self.seed, n_jobs=1)
        if self.regressor == "rf":
            from sklearn.ensemble import RandomForestRegressor
            return RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=self.seed, n_jobs=1)
        raise ValueError(f"kernel regressor '{self.regressor}' is none of linxgb, xgb and rf")

    def _type(self, row: dict) -> str:
        kind = kernel_type(row)
        return kind if kind in self.models else "other"

    def kernel_times(self, kernels: list[dict]):
        """Each kernel's predicted time (ms): its own work plus the layout conversions it pays."""
        import numpy as np
        described = vectors(kernels)
        out = self._work_times(kernels, described)
        if self.reorders is not None:
            out = out + np.maximum(np.exp(self.reorders.predict(np.array(self._reorder_features(described)))) - REORDER_FLOOR_MS, 0)
        return out

    def _work_times(self, kernels: list[dict], described: list[list[float]]):
        import numpy as np
        out = np.zeros(len(kernels))
        by_type: dict = {}
        for index, row in enumerate(kernels):
            by_type.setdefault(self._type(row), []).append(index)
        for kind, indices in by_type.items():
            X = np.array([described[i] for i in indices])
            out[indices] = np.exp(np.clip(self.models[kind].predict(X), -50, 50))
        return out

    def _sums(self, models: list[list[dict]]):
        """Each model's calibration row: its predicted kernels' sum, its kernels per regressor type, 1."""
        import numpy as np
        types = sorted(self.models)
        rows = []
        for kernels in models:
            counts = {kind: 0.0 for kind in types}
            for row in kernels:
                counts[self._type(row)] += 1.0
            rows.append([self.kernel_times(kernels).sum()] + [counts[kind] for kind in types] + [1.0])
        return np.array(rows)

    def fit(self, models: list[list[dict]], latency_ms, samples: list[list[dict]] = ()) -> "KernelLevelPredictor":
        """`models`: each training model's kernels (table rows with `latency_ms`); `latency_ms`: end to end;
        `samples`: kernels measured as models of their own, which train the kernel regressors only.
        When every row says which kernels ran blocked and what their layout conversions cost
        (`blocked`, `reorder_ms`), the kernel regressors learn each kernel's own work and two more
        models its conversions: which kernels run blocked (from their shapes), and what a kernel pays
        for its neighbours' other layout."""
        import numpy as np
        measured = list(models) + list(samples)
        rows = [row for kernels in measured for row in kernels]
        split = bool(rows) and all(str(row.get("reorder_ms", "")) != "" and str(row.get("blocked", "")) != "" for row in rows)
        reorder = np.array([float(row["reorder_ms"]) if split else 0.0 for row in rows])
        described = [vector for kernels in measured for vector in vectors(kernels)]
        weight = training_weights(models, samples)
        counts: dict = {}
        for row in rows:
            counts[kernel_type(row)] = counts.get(kernel_type(row), 0) + 1
        grouped: dict = {}
        for index, row in enumerate(rows):
            kind = kernel_type(row)
            grouped.setdefault(kind if counts[kind] >= MIN_KERNELS_PER_TYPE else "other", []).append(index)
        if rows and "other" not in grouped:
            grouped["other"] = list(range(len(rows)))  # a type never seen in training falls back to all kernels
        self.models = {}
        for kind, members in grouped.items():
            X = np.array([described[i] for i in members])
            work = np.array([float(rows[i]["latency_ms"]) for i in members]) - reorder[members]
            y = np.log(np.maximum(work, REORDER_FLOOR_MS))
            self.models[kind] = self._make().fit(X, y, sample_weight=weight[members])
        self.layout = self.reorders = None
        if split:
            from xgboost import XGBClassifier, XGBRegressor
            blocked = np.array([int(float(row["blocked"])) for row in rows])
            if 0 < blocked.sum() < len(blocked):
                self.layout = XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1, random_state=self.seed,
                                            n_jobs=1).fit(np.array(described), blocked)
                starts = np.cumsum([0] + [len(kernels) for kernels in measured])
                X = np.array([f for begin, end in zip(starts[:-1], starts[1:])
                              for f in self._reorder_features(described[begin:end])])
                self.reorders = XGBRegressor(n_estimators=400, max_depth=6, learning_rate=0.05, random_state=self.seed,
                                             n_jobs=1).fit(X, np.log(reorder + REORDER_FLOOR_MS), sample_weight=weight)
        A = self._sums(models) / np.asarray(latency_ms)[:, None]
        coefficients = np.linalg.lstsq(A, np.ones(len(A)), rcond=None)[0]
        self.calibration = tuple(float(c) for c in coefficients)
        return self

    def _reorder_features(self, described: list[list[float]]) -> list[list[float]]:
        """One model's kernel features (`vectors`, in execution order) with the probability that
        each kernel, the one before and the one after run blocked, and that it runs blocked while
        a neighbour does not (it then pays a conversion)."""
        import numpy as np
        p = self.layout.predict_proba(np.array(described))[:, 1]
        out = []
        for i, vector in enumerate(described):
            before = p[i - 1] if i > 0 else 0.0
            after = p[i + 1] if i + 1 < len(described) else 0.0
            out.append(vector + [p[i], before, after, p[i] * (1 - before), p[i] * (1 - after), (1 - p[i]) * after])
        return out

    def predict(self, models: list[list[dict]]):
        import numpy as np
        # Never below a tenth of the kernels' own sum: a calibration fitted on
        # larger models must not extrapolate a small one to nothing.
        sums = self._sums(models)
        return np.maximum(sums @ np.array(self.calibration), 0.1 * sums[:, 0])
