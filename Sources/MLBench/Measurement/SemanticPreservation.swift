import Foundation
import MLBenchCore

/// How far a deployed output may be from the reference output of the same sample.
///
/// Each sample's output is taken as one flat vector (C order) of its elements. Under
/// `maxAbs`, `cosine` and `l2` a sample is preserved when its distance is **at most** the
/// threshold; under `psnr` when its PSNR is **at least** the threshold (higher is better);
/// `allclose` and `topK` are pass/fail tests that do not use the threshold.
public enum DistanceMetric: String, Codable, Sendable, CaseIterable {
    /// The largest absolute element-wise difference (L∞ norm of the difference).
    case maxAbs = "max_abs"
    /// Cosine distance, 1 − cosine similarity, in [0, 2]. Two all-zero outputs are at
    /// distance 0 (they agree); an all-zero output against a non-zero one at distance 1
    /// (no direction in common).
    case cosine
    /// The Euclidean (L2) norm of the difference, √Σ(d − r)².
    case l2
    /// Peak signal-to-noise ratio of the deployed output against the reference, in dB:
    /// 10·log10(peak² / MSE), MSE = mean (d − r)² over the sample's elements, and
    /// peak = max |r| over the *reference* sample (the reference defines the signal's
    /// range, so that the deployed model cannot widen it by its own errors).
    ///
    /// Higher is better: a sample is preserved when PSNR ≥ threshold. Identical outputs
    /// have PSNR = +∞ and are always preserved; an all-zero reference against a different
    /// deployed output has PSNR = −∞ and is never preserved. Neither infinity is stored in
    /// a report: see `OutputAgreement.identicalSamples` and `zeroPeakSamples`.
    case psnr
    /// NumPy's `allclose(deployed, reference, rtol, atol)`: preserved when every element
    /// satisfies |d − r| ≤ atol + rtol·|r| (rtol scales with the *reference*). Uses the
    /// `atol` and `rtol` of `ComparisonOptions`, not the threshold.
    case allclose
    /// Top-k agreement: preserved when the indices of the k largest elements are the same
    /// set in the reference and the deployed output (for k = 1: the same top-1 class).
    /// Ties are broken by the lowest index, as a stable `argsort` of the negated values
    /// would. Uses `k` of `ComparisonOptions`, not the threshold.
    case topK = "top_k"

    /// Whether the threshold takes part in the decision: false for `allclose` and `topK`.
    public var usesThreshold: Bool {
        switch self {
        case .maxAbs, .cosine, .l2, .psnr: return true
        case .allclose, .topK: return false
        }
    }
}

/// The parameters of the metrics beyond the threshold. All of them are applied to every
/// sample whatever the chosen metric, so that a report shows every measure.
public struct ComparisonOptions: Codable, Sendable, Equatable {
    /// Absolute tolerance of `allclose`.
    public var atol: Double
    /// Relative tolerance of `allclose`, relative to |reference|.
    public var rtol: Double
    /// How many of the largest elements `topK` compares; at least 1.
    public var k: Int

    public init(atol: Double = 0, rtol: Double = 0, k: Int = 1) {
        self.atol = atol
        self.rtol = rtol
        self.k = k
    }

    /// The options an experiment gives: absent fields take the defaults (0, 0, 1).
    public init(_ criterion: Experiment.SemanticCriterion) {
        self.init(atol: criterion.atol ?? 0, rtol: criterion.rtol ?? 0, k: criterion.k ?? 1)
    }
}

/// How one named output of the deployed model agrees with the reference.
///
/// Every distance is computed for every sample whatever the chosen metric, so that a
/// report made with one metric still shows the others. Fields added after the first
/// version are optional, so that stored reports without them still decode; every number
/// is finite (JSON has no NaN or infinity).
public struct OutputAgreement: Codable, Sendable, Equatable {
    public var name: String
    public var samples: Int
    /// Samples for which this output alone is preserved under the chosen metric.
    public var preservedSamples: Int
    /// Samples whose reference or deployed output holds NaN or ±infinity (or whose
    /// distance overflows): never preserved, and left out of the distances below.
    public var nonFiniteSamples: Int
    /// The largest max-abs distance over the finite samples; nil when none is finite.
    public var worstMaxAbs: Double?
    /// The largest cosine distance over the finite samples; nil when none is finite.
    public var worstCosineDistance: Double?
    /// The mean max-abs distance over the finite samples; nil when none is finite.
    public var meanMaxAbs: Double?
    /// The mean cosine distance over the finite samples; nil when none is finite.
    public var meanCosineDistance: Double?
    /// The largest L2 distance over the finite samples; nil when none is finite.
    public var worstL2: Double?
    /// The mean L2 distance over the finite samples; nil when none is finite.
    public var meanL2: Double?
    /// The lowest (worst) PSNR in dB over the finite samples whose PSNR is finite; nil
    /// when there is none, i.e. when every finite sample is identical to the reference
    /// (PSNR +∞, counted in `identicalSamples`) or has an all-zero reference (PSNR −∞,
    /// counted in `zeroPeakSamples`).
    public var worstPsnr: Double?
    /// Finite samples whose deployed output equals the reference element for element
    /// (PSNR +∞).
    public var identicalSamples: Int?
    /// Finite samples whose reference is all zeros but the deployed output is not
    /// (peak 0: PSNR −∞, never preserved under `psnr`).
    public var zeroPeakSamples: Int?
    /// Finite samples with at least one element outside atol + rtol·|r|.
    public var allcloseViolatingSamples: Int?
    /// Finite samples whose top-k index sets agree; nil when the output has fewer than
    /// k elements per sample (and the metric is not `topK`, which refuses that).
    public var topKAgreeingSamples: Int?

    public init(name: String, samples: Int, preservedSamples: Int, nonFiniteSamples: Int,
                worstMaxAbs: Double?, worstCosineDistance: Double?, meanMaxAbs: Double?,
                meanCosineDistance: Double? = nil, worstL2: Double? = nil, meanL2: Double? = nil,
                worstPsnr: Double? = nil, identicalSamples: Int? = nil, zeroPeakSamples: Int? = nil,
                allcloseViolatingSamples: Int? = nil, topKAgreeingSamples: Int? = nil) {
        self.name = name
        self.samples = samples
        self.preservedSamples = preservedSamples
        self.nonFiniteSamples = nonFiniteSamples
        self.worstMaxAbs = worstMaxAbs
        self.worstCosineDistance = worstCosineDistance
        self.meanMaxAbs = meanMaxAbs
        self.meanCosineDistance = meanCosineDistance
        self.worstL2 = worstL2
        self.meanL2 = meanL2
        self.worstPsnr = worstPsnr
        self.identicalSamples = identicalSamples
        self.zeroPeakSamples = zeroPeakSamples
        self.allcloseViolatingSamples = allcloseViolatingSamples
        self.topKAgreeingSamples = topKAgreeingSamples
    }
}

/// Semantic preservation: the ratio of samples for which the deployed model's outputs
/// are identical to the reference outputs, "identical" meaning preserved under the
/// user's metric (within the threshold, or passing `allclose` / `topK`).
public struct SemanticReport: Codable, Sendable, Equatable {
    public var metric: DistanceMetric
    /// The threshold as given; not used by `allclose` and `topK` (see `DistanceMetric`).
    public var threshold: Double
    public var samples: Int
    /// Samples for which every output is preserved.
    public var preservedSamples: Int
    /// `preservedSamples / samples`, in [0, 1].
    public var ratio: Double
    /// One entry per output, sorted by name.
    public var outputs: [OutputAgreement]
    /// The `allclose` tolerances and the `topK` k used for every output (nil in reports
    /// stored before they existed).
    public var atol: Double?
    public var rtol: Double?
    public var k: Int?
    /// Accuracy against labels, when the experiment gives labels; filled by the runner
    /// (see `AccuracyMetrics.evaluate`).
    public var accuracy: AccuracyReport?

    public init(metric: DistanceMetric, threshold: Double, samples: Int, preservedSamples: Int, ratio: Double,
                outputs: [OutputAgreement], atol: Double? = nil, rtol: Double? = nil, k: Int? = nil,
                accuracy: AccuracyReport? = nil) {
        self.metric = metric
        self.threshold = threshold
        self.samples = samples
        self.preservedSamples = preservedSamples
        self.ratio = ratio
        self.outputs = outputs
        self.atol = atol
        self.rtol = rtol
        self.k = k
        self.accuracy = accuracy
    }
}

/// Why two sets of outputs could not be compared.
public enum SemanticPreservationError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Side: String, Sendable, Equatable, Codable {
        case reference, deployed
    }

    /// An output present on one side only.
    case missingOutput(name: String, missingFrom: Side)
    /// The same output with different shapes beyond the sample axis.
    case shapeMismatch(name: String, reference: [Int], deployed: [Int])
    /// The same output with a different number of samples on each side.
    case sampleCountMismatch(name: String, reference: Int, deployed: Int)
    /// Two outputs with a different number of samples.
    case inconsistentSampleCounts(name: String, samples: Int, otherName: String, otherSamples: Int)
    /// An output without a leading sample axis (a scalar).
    case noSampleAxis(name: String, side: Side)
    /// A tensor whose value count does not match its shape.
    case malformedTensor(name: String, side: Side, shape: [Int], values: Int)
    /// Nothing to compare: no outputs, or no samples.
    case empty(String)
    /// A threshold that is negative, infinite or NaN.
    case invalidThreshold(Double)
    /// An `atol` or `rtol` that is negative, infinite or NaN (`parameter` names it).
    case invalidTolerance(parameter: String, value: Double)
    /// A k below 1.
    case invalidK(Int)
    /// Under `topK`, an output with fewer than k elements per sample.
    case kExceedsOutput(name: String, k: Int, elements: Int)

    public var description: String {
        switch self {
        case .missingOutput(let name, let side):
            return "output '\(name)' is missing from the \(side.rawValue) outputs"
        case .shapeMismatch(let name, let reference, let deployed):
            return "output '\(name)' has shape \(reference) in the reference and \(deployed) in the deployed model"
        case .sampleCountMismatch(let name, let reference, let deployed):
            return "output '\(name)' has \(reference) samples in the reference and \(deployed) in the deployed model"
        case .inconsistentSampleCounts(let name, let samples, let otherName, let otherSamples):
            return "output '\(name)' has \(samples) samples but output '\(otherName)' has \(otherSamples)"
        case .noSampleAxis(let name, let side):
            return "\(side.rawValue) output '\(name)' is a scalar: outputs need a leading sample axis"
        case .malformedTensor(let name, let side, let shape, let values):
            return "\(side.rawValue) output '\(name)' has \(values) values for shape \(shape)"
        case .empty(let what):
            return "nothing to compare: \(what)"
        case .invalidThreshold(let threshold):
            return "invalid threshold \(threshold): it must be a finite, non-negative number"
        case .invalidTolerance(let parameter, let value):
            return "invalid \(parameter) \(value): it must be a finite, non-negative number"
        case .invalidK(let k):
            return "invalid k \(k): top-k needs k ≥ 1"
        case .kExceedsOutput(let name, let k, let elements):
            return "output '\(name)' has \(elements) elements per sample, fewer than k = \(k) for top_k"
        }
    }
}

/// The measures of one sample's output against its reference.
struct SampleDistances: Equatable {
    var maxAbs: Double
    var cosine: Double
    var l2: Double
    /// In dB; +infinity when identical, −infinity when the reference is all zeros and
    /// the deployed output is not.
    var psnr: Double
    var allclose: Bool
    /// nil when the sample has fewer than k elements.
    var topKAgrees: Bool?
}

/// Compares the deployed model's outputs with the reference outputs, sample by sample.
public enum SemanticPreservation {
    /// Compares two sets of named outputs, each tensor shaped `[samples, ...]`.
    ///
    /// A sample is preserved when every output is preserved under `metric`: a distance at
    /// most `threshold` (`maxAbs`, `cosine`, `l2`), a PSNR at least `threshold` (`psnr`), or
    /// passing the test (`allclose` with `options.atol`/`options.rtol`, `topK` with
    /// `options.k`; the threshold is then not used but must still be valid). A non-finite
    /// value (NaN, ±infinity) in either side's output makes that sample not preserved
    /// rather than failing the comparison: a deployed model that produces NaN for some
    /// inputs is a result worth reporting, not an error. Such samples are counted in
    /// `OutputAgreement.nonFiniteSamples` and kept out of the distances, so that every
    /// number in the report is finite (JSON has no NaN).
    ///
    /// - Throws: `SemanticPreservationError` when an output is missing on either side,
    ///   shapes or sample counts differ, there is nothing to compare, the threshold or a
    ///   tolerance is negative, infinite or NaN, k < 1, or (under `topK`) an output has
    ///   fewer than k elements per sample.
    public static func compare(reference: [String: Tensor], deployed: [String: Tensor], metric: DistanceMetric,
                               threshold: Double, options: ComparisonOptions = ComparisonOptions()) throws
        -> SemanticReport
    {
        guard threshold >= 0, threshold.isFinite else { throw SemanticPreservationError.invalidThreshold(threshold) }
        guard options.atol >= 0, options.atol.isFinite else {
            throw SemanticPreservationError.invalidTolerance(parameter: "atol", value: options.atol)
        }
        guard options.rtol >= 0, options.rtol.isFinite else {
            throw SemanticPreservationError.invalidTolerance(parameter: "rtol", value: options.rtol)
        }
        guard options.k >= 1 else { throw SemanticPreservationError.invalidK(options.k) }
        let names = reference.keys.sorted()
        for name in names where deployed[name] == nil {
            throw SemanticPreservationError.missingOutput(name: name, missingFrom: .deployed)
        }
        for name in deployed.keys.sorted() where reference[name] == nil {
            throw SemanticPreservationError.missingOutput(name: name, missingFrom: .reference)
        }
        guard !names.isEmpty else { throw SemanticPreservationError.empty("no outputs") }

        var samples: Int?
        var firstName = ""
        for name in names {
            let r = reference[name]!, d = deployed[name]!
            try validate(r, name: name, side: .reference)
            try validate(d, name: name, side: .deployed)
            if r.shape[0] != d.shape[0] {
                throw SemanticPreservationError.sampleCountMismatch(name: name, reference: r.shape[0], deployed: d.shape[0])
            }
            if r.shape != d.shape {
                throw SemanticPreservationError.shapeMismatch(name: name, reference: r.shape, deployed: d.shape)
            }
            if let count = samples, count != r.shape[0] {
                throw SemanticPreservationError.inconsistentSampleCounts(
                    name: firstName, samples: count, otherName: name, otherSamples: r.shape[0])
            }
            if samples == nil { (samples, firstName) = (r.shape[0], name) }
            let elements = r.shape.dropFirst().reduce(1, *)
            if metric == .topK, elements < options.k {
                throw SemanticPreservationError.kExceedsOutput(name: name, k: options.k, elements: elements)
            }
        }
        let sampleCount = samples!
        guard sampleCount > 0 else { throw SemanticPreservationError.empty("the outputs have no samples") }

        var preserved = [Bool](repeating: true, count: sampleCount)
        var outputs: [OutputAgreement] = []
        for name in names {
            let agreement = compareOutput(name: name, reference: reference[name]!, deployed: deployed[name]!,
                                          samples: sampleCount, metric: metric, threshold: threshold,
                                          options: options, preserved: &preserved)
            outputs.append(agreement)
        }
        let preservedSamples = preserved.lazy.filter { $0 }.count
        return SemanticReport(metric: metric, threshold: threshold, samples: sampleCount,
                              preservedSamples: preservedSamples,
                              ratio: Double(preservedSamples) / Double(sampleCount), outputs: outputs,
                              atol: options.atol, rtol: options.rtol, k: options.k)
    }

    /// Whether a sample with these distances is preserved under `metric`.
    static func isPreserved(_ distance: SampleDistances, metric: DistanceMetric, threshold: Double) -> Bool {
        switch metric {
        case .maxAbs: return distance.maxAbs <= threshold
        case .cosine: return distance.cosine <= threshold
        case .l2: return distance.l2 <= threshold
        case .psnr: return distance.psnr >= threshold  // +∞ (identical) passes, −∞ fails
        case .allclose: return distance.allclose
        case .topK: return distance.topKAgrees ?? false
        }
    }

    /// The max-abs and cosine distances of two equally long vectors, or nil when either
    /// holds a non-finite value or a distance overflows.
    static func distances(_ reference: UnsafeBufferPointer<Double>, _ deployed: UnsafeBufferPointer<Double>)
        -> (maxAbs: Double, cosine: Double)?
    {
        measure(reference, deployed, options: ComparisonOptions()).map { ($0.maxAbs, $0.cosine) }
    }

    /// Every measure of two equally long vectors, or nil when either holds a non-finite
    /// value or a sum overflows.
    static func measure(_ reference: UnsafeBufferPointer<Double>, _ deployed: UnsafeBufferPointer<Double>,
                        options: ComparisonOptions) -> SampleDistances?
    {
        precondition(reference.count == deployed.count)
        var maxAbs = 0.0, dot = 0.0, referenceSquares = 0.0, deployedSquares = 0.0
        var peak = 0.0
        var allclose = true
        for i in 0..<reference.count {
            let r = reference[i], d = deployed[i]
            guard r.isFinite, d.isFinite else { return nil }
            let difference = abs(d - r)
            maxAbs = Swift.max(maxAbs, difference)
            peak = Swift.max(peak, abs(r))
            dot += r * d
            referenceSquares += r * r
            deployedSquares += d * d
            if !(difference <= options.atol + options.rtol * abs(r)) { allclose = false }
        }
        guard maxAbs.isFinite, dot.isFinite, referenceSquares.isFinite, deployedSquares.isFinite else { return nil }
        let cosine: Double
        switch (referenceSquares == 0, deployedSquares == 0) {
        // Identical outputs are at distance 0 exactly, not at a rounding error from it,
        // so that a threshold of 0 accepts bit-identical results under either metric.
        case _ where maxAbs == 0: cosine = 0
        case (true, true): cosine = 0
        case (true, false), (false, true): cosine = 1
        case (false, false):
            let similarity = dot / (referenceSquares.squareRoot() * deployedSquares.squareRoot())
            // Rounding can push the similarity of parallel vectors just past ±1.
            cosine = 1 - Swift.min(1, Swift.max(-1, similarity))
        }
        // L2 and PSNR from the differences scaled by the largest one, Σ(|d − r| / maxAbs)²
        // in [1, n]: neither the sum nor the MSE can overflow or underflow to 0.
        var scaledSquares = 0.0
        if maxAbs > 0 {
            for i in 0..<reference.count {
                let scaled = abs(deployed[i] - reference[i]) / maxAbs
                scaledSquares += scaled * scaled
            }
        }
        let l2 = maxAbs * scaledSquares.squareRoot()
        guard l2.isFinite else { return nil }
        let psnr: Double
        if maxAbs == 0 {
            psnr = .infinity
        } else if peak == 0 {
            psnr = -.infinity
        } else {
            // 10·log10(peak² / MSE), MSE = maxAbs² · scaledSquares / n, in the log domain.
            psnr = 20 * log10(peak) - 20 * log10(maxAbs) - 10 * log10(scaledSquares / Double(reference.count))
        }
        let topK = options.k <= reference.count ? topIndices(reference, options.k) == topIndices(deployed, options.k) : nil
        return SampleDistances(maxAbs: maxAbs, cosine: cosine, l2: l2, psnr: psnr,
                               allclose: allclose, topKAgrees: topK)
    }

    /// The indices of the k largest values, as a set; of equal values the lowest index
    /// ranks first (a stable `argsort` of the negated values, first k).
    static func topIndices(_ values: UnsafeBufferPointer<Double>, _ k: Int) -> Set<Int> {
        if k == 1 {
            var best = 0
            for i in 1..<values.count where values[i] > values[best] { best = i }
            return [best]
        }
        let order = values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        return Set(order.prefix(k))
    }

    private static func validate(_ tensor: Tensor, name: String, side: SemanticPreservationError.Side) throws {
        guard !tensor.shape.isEmpty else { throw SemanticPreservationError.noSampleAxis(name: name, side: side) }
        guard tensor.shape.allSatisfy({ $0 >= 0 }), tensor.values.count == tensor.elementCount else {
            throw SemanticPreservationError.malformedTensor(name: name, side: side, shape: tensor.shape,
                                                            values: tensor.values.count)
        }
    }

    private static func compareOutput(name: String, reference: Tensor, deployed: Tensor, samples: Int,
                                      metric: DistanceMetric, threshold: Double, options: ComparisonOptions,
                                      preserved: inout [Bool]) -> OutputAgreement {
        let width = reference.shape.dropFirst().reduce(1, *)
        var preservedHere = 0, nonFinite = 0, identical = 0, zeroPeak = 0, allcloseViolating = 0, topKAgreeing = 0
        var worstMaxAbs = 0.0, worstCosine = 0.0, worstL2 = 0.0
        var sumMaxAbs = 0.0, sumCosine = 0.0, sumL2 = 0.0
        var worstPsnr: Double?
        reference.values.withUnsafeBufferPointer { r in
            deployed.values.withUnsafeBufferPointer { d in
                for sample in 0..<samples {
                    let range = (sample * width)..<((sample + 1) * width)
                    guard let distance = measure(UnsafeBufferPointer(rebasing: r[range]),
                                                 UnsafeBufferPointer(rebasing: d[range]), options: options) else {
                        nonFinite += 1
                        preserved[sample] = false
                        continue
                    }
                    worstMaxAbs = Swift.max(worstMaxAbs, distance.maxAbs)
                    worstCosine = Swift.max(worstCosine, distance.cosine)
                    worstL2 = Swift.max(worstL2, distance.l2)
                    sumMaxAbs += distance.maxAbs
                    sumCosine += distance.cosine
                    sumL2 += distance.l2
                    if distance.psnr == .infinity {
                        identical += 1
                    } else if distance.psnr == -.infinity {
                        zeroPeak += 1
                    } else {
                        worstPsnr = Swift.min(worstPsnr ?? .infinity, distance.psnr)
                    }
                    if !distance.allclose { allcloseViolating += 1 }
                    if distance.topKAgrees == true { topKAgreeing += 1 }
                    if isPreserved(distance, metric: metric, threshold: threshold) {
                        preservedHere += 1
                    } else {
                        preserved[sample] = false
                    }
                }
            }
        }
        let finite = samples - nonFinite
        func mean(_ sum: Double) -> Double? { finite > 0 && sum.isFinite ? sum / Double(finite) : nil }
        return OutputAgreement(name: name, samples: samples, preservedSamples: preservedHere,
                               nonFiniteSamples: nonFinite,
                               worstMaxAbs: finite > 0 ? worstMaxAbs : nil,
                               worstCosineDistance: finite > 0 ? worstCosine : nil,
                               meanMaxAbs: mean(sumMaxAbs),
                               meanCosineDistance: mean(sumCosine),
                               worstL2: finite > 0 ? worstL2 : nil,
                               meanL2: mean(sumL2),
                               worstPsnr: worstPsnr,
                               identicalSamples: identical,
                               zeroPeakSamples: zeroPeak,
                               allcloseViolatingSamples: allcloseViolating,
                               topKAgreeingSamples: width >= options.k ? topKAgreeing : nil)
    }
}
