// The panel's plots, drawn as inline SVG from a result bundle's raw data: no
// library, nothing fetched but the data. Each plot carries data-* attributes with
// what it drew (bins, points, windows), so that a test can check the figure
// against the result without reading pixels.
"use strict";

const Plots = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 760, H = 280, M = { left: 64, right: 16, top: 16, bottom: 44 };
  // The palette of the comparison (colour-blind friendly, Okabe–Ito).
  const COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

  function el(name, attributes = {}, parent = null) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function svg(kind, title) {
    const root = el("svg", { viewBox: `0 0 ${W} ${H}`, class: `plot plot-${kind}`, role: "img", "data-plot": kind });
    el("title", {}, root).textContent = title;
    return root;
  }

  // Round tick values: 1, 2 or 5 times a power of ten.
  function ticks(low, high, count = 6) {
    if (!(high > low)) return [low];
    const raw = (high - low) / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
    const out = [];
    for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  // Four significant digits; large values with an SI prefix (53.42M), tiny ones in
  // exponent form.
  function format(value) {
    const a = Math.abs(value);
    if (a === 0) return "0";
    for (const [factor, prefix] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e4, "k"]]) {
      if (a >= factor) return +(value / (factor === 1e4 ? 1e3 : factor)).toPrecision(4) + (factor === 1e4 ? "k" : prefix);
    }
    if (a < 1e-3) return value.toExponential(1);
    return +value.toPrecision(4) + "";
  }

  // The unit latencies of a plot are shown in: µs when the median is below a millisecond.
  function unit(durationsNs) {
    const sorted = [...durationsNs].sort((a, b) => a - b);
    return sorted.length && quantile(sorted, 0.5) < 1e6 ? { divisor: 1e3, name: "µs" } : { divisor: 1e6, name: "ms" };
  }

  // Axes with ticks and labels; returns the scales.
  function axes(root, x0, x1, y0, y1, xLabel, yLabel) {
    const sx = (v) => M.left + ((v - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
    const sy = (v) => H - M.bottom - ((v - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom);
    const g = el("g", { class: "axes" }, root);
    for (const t of ticks(y0, y1)) {
      el("line", { x1: M.left, x2: W - M.right, y1: sy(t), y2: sy(t), class: "grid" }, g);
      el("text", { x: M.left - 6, y: sy(t) + 4, "text-anchor": "end", class: "tick" }, g).textContent = format(t);
    }
    for (const t of ticks(x0, x1, 8)) {
      el("line", { x1: sx(t), x2: sx(t), y1: H - M.bottom, y2: H - M.bottom + 4, class: "tick-mark" }, g);
      el("text", { x: sx(t), y: H - M.bottom + 16, "text-anchor": "middle", class: "tick" }, g).textContent = format(t);
    }
    el("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }, g);
    el("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "axis" }, g);
    el("text", { x: (M.left + W - M.right) / 2, y: H - 6, "text-anchor": "middle", class: "label" }, g).textContent = xLabel;
    el("text", { x: 14, y: (M.top + H - M.bottom) / 2, "text-anchor": "middle", class: "label",
                 transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})` }, g).textContent = yLabel;
    return { sx, sy };
  }

  function extent(values) {
    let low = Infinity, high = -Infinity;
    for (const v of values) { if (v < low) low = v; if (v > high) high = v; }
    return [low, high];
  }

  function quantile(sorted, q) {
    if (!sorted.length) return NaN;
    const h = (sorted.length - 1) * q, i = Math.floor(h);
    return i + 1 < sorted.length ? sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
  }

  function empty(kind, message) {
    const root = svg(kind, message);
    root.setAttribute("data-empty", "true");
    el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "label" }, root).textContent = message;
    return root;
  }

  // Latency histogram of the measured iterations, with the median marked. The bins
  // span the minimum to the 99.5th percentile: a few slow outliers would otherwise squeeze
  // the distribution into one bar; what lies beyond is counted in a last, marked bin.
  function histogram(durationsNs) {
    const u = unit(durationsNs);
    const values = durationsNs.map((d) => d / u.divisor);
    if (!values.length) return empty("histogram", "no measured iterations");
    const sorted = [...values].sort((a, b) => a - b);
    const low = sorted[0], max = sorted[sorted.length - 1];
    const cut = quantile(sorted, 0.995);
    const high = cut > low ? cut : max;
    const bins = Math.min(50, Math.max(5, Math.ceil(Math.sqrt(values.length))));
    const width = (high - low) / bins || Math.max(1e-9, Math.abs(low) * 1e-6);
    const counts = new Array(bins).fill(0);
    let beyond = 0;
    for (const v of values) {
      if (v > high) beyond += 1;
      else counts[Math.min(bins - 1, Math.floor((v - low) / width))] += 1;
    }
    const root = svg("histogram", "Latency histogram");
    root.setAttribute("data-bins", bins);
    root.setAttribute("data-count", values.length);
    root.setAttribute("data-beyond", beyond);
    const top = Math.max(beyond, ...counts) * 1.08;
    const slots = beyond ? bins + 1.5 : bins;
    const { sx, sy } = axes(root, low, low + slots * width, 0, top, `latency (${u.name})`, "iterations");
    const g = el("g", { class: "bars" }, root);
    const bar = (i, count, cls, label) => {
      const x = sx(low + i * width), x2 = sx(low + (i + 1) * width);
      const rect = el("rect", { class: cls, x, y: sy(count), width: Math.max(0.5, x2 - x - 1), height: sy(0) - sy(count), "data-count": count }, g);
      el("title", {}, rect).textContent = label;
    };
    counts.forEach((count, i) => bar(i, count, "bar", `${format(low + i * width)}–${format(low + (i + 1) * width)} ${u.name}: ${count}`));
    if (beyond) {
      bar(bins + 0.5, beyond, "bar bar-beyond", `above ${format(high)} ${u.name} (up to ${format(max)} ${u.name}): ${beyond}`);
      el("text", { class: "annotation", x: sx(low + (bins + 1) * width), y: sy(beyond) - 4, "text-anchor": "middle" }, root).textContent = `> ${format(high)}`;
    }
    const median = quantile(sorted, 0.5);
    el("line", { class: "median-marker", x1: sx(median), x2: sx(median), y1: M.top, y2: H - M.bottom }, root);
    el("text", { class: "annotation", x: sx(median) + 4, y: M.top + 12 }, root).textContent = `median ${format(median)} ${u.name}`;
    return root;
  }

  // Every iteration in order, warm-up first: the warm-up shaded and its end marked,
  // the steady state the analysis found marked within it.
  function series(warmupNs, measuredNs, steadyIndex) {
    const u = unit(measuredNs.length ? measuredNs : warmupNs);
    const values = warmupNs.concat(measuredNs).map((d) => d / u.divisor);
    if (!values.length) return empty("series", "no iterations");
    // The scale ends a little above the 99.5th percentile; slower iterations are drawn
    // at the top edge, as triangles, so that a spike does not flatten the trace.
    const sorted = [...values].sort((a, b) => a - b);
    const low = sorted[0], cut = quantile(sorted, 0.995), max = sorted[sorted.length - 1];
    const high = max > cut * 1.5 ? cut * 1.25 : max;
    const root = svg("series", "Latency per iteration");
    root.setAttribute("data-points", values.length);
    root.setAttribute("data-warmup", warmupNs.length);
    const pad = (high - low) * 0.05 || high * 0.05 || 1;
    const { sx, sy } = axes(root, 0, Math.max(1, values.length - 1), Math.max(0, low - pad), high + pad,
                            "iteration (warm-up, then measured)", `latency (${u.name})`);
    if (warmupNs.length) {
      const end = sx(warmupNs.length - 0.5);
      el("rect", { class: "warmup-region", x: M.left, y: M.top, width: Math.max(0, end - M.left), height: H - M.top - M.bottom }, root);
      el("line", { class: "warmup-marker", x1: end, x2: end, y1: M.top, y2: H - M.bottom, "data-iteration": warmupNs.length }, root);
      el("text", { class: "annotation", x: end + 4, y: M.top - 4 }, root).textContent = `measurement starts (after ${warmupNs.length} warm-up)`;
      if (steadyIndex !== null && steadyIndex !== undefined) {
        el("line", { class: "steady-marker", x1: sx(steadyIndex), x2: sx(steadyIndex), y1: M.top, y2: H - M.bottom, "data-iteration": steadyIndex }, root);
      }
    }
    const clip = (v) => sy(Math.min(v, high + pad)).toFixed(1);
    const columns = Math.floor(W - M.left - M.right);
    if (values.length <= columns * 2) {
      el("path", { class: "trace", d: values.map((v, i) => `${i ? "L" : "M"}${sx(i).toFixed(1)},${clip(v)}`).join("") }, root);
    } else {
      // More iterations than pixels: each pixel column shows its iterations' range (light)
      // and median (dark), instead of a solid block of overlapping lines.
      let range = "", middle = "";
      for (let c = 0; c < columns; c++) {
        const from = Math.floor((c * values.length) / columns), to = Math.floor(((c + 1) * values.length) / columns);
        const bucket = values.slice(from, to).sort((a, b) => a - b);
        if (!bucket.length) continue;
        const x = sx((from + to - 1) / 2).toFixed(1);
        range += `M${x},${clip(bucket[0])}L${x},${clip(bucket[bucket.length - 1])}`;
        middle += `${middle ? "L" : "M"}${x},${clip(quantile(bucket, 0.5))}`;
      }
      el("path", { class: "trace-range", d: range }, root);
      el("path", { class: "trace", d: middle }, root);
      root.setAttribute("data-columns", columns);
    }
    const over = el("g", { class: "clipped" }, root);
    values.forEach((v, i) => {
      if (v <= high + pad) return;
      const x = sx(i), y = M.top;
      const mark = el("path", { class: "clipped-mark", d: `M${x - 3},${y + 6}L${x + 3},${y + 6}L${x},${y}Z` }, over);
      el("title", {}, mark).textContent = `iteration ${i}: ${format(v)} ${u.name}`;
    });
    root.setAttribute("data-clipped", over.childNodes.length);
    return root;
  }

  // A probe's channel over time with the measured iterations' windows shaded. Times are
  // on the probes' and iterations' common clock (CLOCK_MONOTONIC), shown from the first sample.
  function power(probe, channelIndex, startsNs, durationsNs) {
    const channel = probe.channels[channelIndex];
    const samples = probe.samples.filter((s) => s.channel === channelIndex);
    if (!samples.length) return empty("power", `no samples of ${probe.name} ${channel ? channel.name : ""}`);
    const t0 = samples[0].timestamp_ns, seconds = (ns) => (ns - t0) / 1e9;
    const [low, high] = extent(samples.map((s) => s.value));
    const tEnd = seconds(samples[samples.length - 1].timestamp_ns) || 1;
    const root = svg("power", `${probe.name}: ${channel.name}`);
    root.setAttribute("data-samples", samples.length);
    const pad = (high - low) * 0.1 || Math.abs(high) * 0.1 || 1;
    const { sx, sy } = axes(root, 0, tEnd, Math.max(0, low - pad), high + pad, "time (s)", `${channel.name} (${channel.unit})`);
    // Windows closer than a pixel are merged: thousands of iterations would otherwise
    // be thousands of hairlines on top of each other.
    const g = el("g", { class: "windows" }, root);
    let drawn = 0, merged = null;
    const flush = () => {
      if (!merged) return;
      el("rect", { class: "inference-window", x: merged[0], y: M.top, width: Math.max(0.6, merged[1] - merged[0]), height: H - M.top - M.bottom }, g);
      drawn += 1;
    };
    let inside = 0;
    for (let i = 0; i < startsNs.length; i++) {
      const a = seconds(startsNs[i]), b = seconds(startsNs[i] + durationsNs[i]);
      if (b < 0 || a > tEnd) continue;
      inside += 1;
      const x1 = sx(Math.max(0, a)), x2 = sx(Math.min(tEnd, b));
      if (merged && x1 - merged[1] < 1) merged[1] = x2; else { flush(); merged = [x1, x2]; }
    }
    flush();
    root.setAttribute("data-windows", inside);
    root.setAttribute("data-window-rects", drawn);
    const path = samples.map((s, i) => `${i ? "L" : "M"}${sx(seconds(s.timestamp_ns)).toFixed(1)},${sy(s.value).toFixed(1)}`).join("");
    el("path", { class: "trace power-trace", d: path }, root);
    if (probe.gap) {
      const a = sx(Math.max(0, seconds(probe.gap.from_ns))), b = sx(Math.min(tEnd, seconds(probe.gap.to_ns)));
      if (b > a) el("rect", { class: "gap", x: a, y: M.top, width: b - a, height: H - M.top - M.bottom }, root);
    }
    return root;
  }

  // Several results' latencies side by side: a box (quartiles, whiskers at the 5th and
  // 95th percentiles, the median) per result, and their empirical distribution functions.
  function comparison(results) {
    const u = unit(results.flatMap((r) => (r.measurement ? [r.measurement.summary.median] : [])));
    const groups = results.map((r) => (r.measurement ? r.measurement.durations_ns : []).map((d) => d / u.divisor).sort((a, b) => a - b));
    const all = groups.flat();
    if (!all.length) return [empty("boxes", "no measured iterations"), empty("ecdf", "no measured iterations")];
    // The scale spans the results' 1st to 97.5th percentiles: the whiskers (5th to 95th)
    // and the bulk of each distribution stay readable whatever the slowest outliers.
    const [low, high] = extent(groups.filter((g) => g.length).map((g) => [quantile(g, 0.01), quantile(g, 0.975)]).flat());
    const pad = (high - low) * 0.05 || 0.01;

    const boxes = svg("boxes", "Latency by result");
    boxes.setAttribute("data-results", results.length);
    const { sx, sy } = axes(boxes, -0.5, results.length - 0.5, Math.max(0, low - pad), high + pad, "result", `latency (${u.name})`);
    groups.forEach((g, i) => {
      if (!g.length) return;
      const c = COLOURS[i % COLOURS.length], x = sx(i), half = Math.min(40, (sx(1) - sx(0)) * 0.3);
      const q = [0.05, 0.25, 0.5, 0.75, 0.95].map((p) => quantile(g, p));
      const box = el("g", { class: "box", "data-result": results[i].id, "data-median": q[2] }, boxes);
      el("line", { x1: x, x2: x, y1: sy(q[0]), y2: sy(q[4]), style: `stroke:${c}`, class: "whisker" }, box);
      el("line", { x1: x - half / 2, x2: x + half / 2, y1: sy(q[0]), y2: sy(q[0]), style: `stroke:${c}`, class: "whisker" }, box);
      el("line", { x1: x - half / 2, x2: x + half / 2, y1: sy(q[4]), y2: sy(q[4]), style: `stroke:${c}`, class: "whisker" }, box);
      el("rect", { x: x - half, width: 2 * half, y: sy(q[3]), height: Math.max(1, sy(q[1]) - sy(q[3])), style: `fill:${c}`, class: "quartiles" }, box);
      el("line", { x1: x - half, x2: x + half, y1: sy(q[2]), y2: sy(q[2]), class: "box-median" }, box);
      el("title", {}, box).textContent = `${results[i].name}: median ${format(q[2])} ${u.name}`;
    });
    // The result names under the boxes, instead of numeric ticks.
    boxes.querySelectorAll(".axes text.tick").forEach((t) => { if (+t.getAttribute("y") > H - M.bottom) t.remove(); });
    groups.forEach((_, i) => {
      el("text", { x: sx(i), y: H - M.bottom + 16, "text-anchor": "middle", class: "tick" }, boxes).textContent = results[i].name.slice(0, 24);
    });

    const ecdf = svg("ecdf", "Empirical distribution of latency");
    ecdf.setAttribute("data-results", results.length);
    const e = axes(ecdf, Math.max(0, low - pad), high + pad, 0, 1, `latency (${u.name})`, "fraction of iterations ≤ x");
    groups.forEach((g, i) => {
      if (!g.length) return;
      const step = Math.max(1, Math.floor(g.length / 400));
      let d = "";
      for (let k = 0; k < g.length; k += step) d += `${k ? "L" : "M"}${e.sx(Math.min(high + pad, Math.max(low - pad, g[k]))).toFixed(1)},${e.sy((k + 1) / g.length).toFixed(1)}`;
      el("path", { class: "trace ecdf-trace", d, style: `stroke:${COLOURS[i % COLOURS.length]}`, "data-result": results[i].id }, ecdf);
    });
    return [boxes, ecdf];
  }

  return { histogram, series, power, comparison, quantile, format, COLOURS };
})();
