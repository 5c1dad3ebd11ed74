import Foundation

/// How far a deployed output may be from the reference output of the same sample.
public enum DistanceMetric: String, Codable, Sendable, CaseIterable {
    /// The largest absolute element-wise difference (L∞ norm of the difference).
    case maxAbs = "max_abs"
    /// Cosine distance, 1 − cosine similarity, in [0, 2]. Two all-zero outputs are at
    /// distance 0 (they agree); an all-zero output against a non-zero one at distance 1
    /// (no direction in common).
    case cosine
}

/// How one named output of the deployed model agrees with the reference.
///
/// Both distances are computed for every sample whatever the chosen metric, so that
/// a report made with one metric still shows the other.
public struct OutputAgreement: Codable, Sendable, Equatable {
    public var name: String
    public var samples: Int
    /// Samples for which this output alone is within the threshold.
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

    public init(name: String, samples: Int, preservedSamples: Int, nonFiniteSamples: Int,
                worstMaxAbs: Double?, worstCosineDistance: Double?, meanMaxAbs: Double?) {
        self.name = name
        self.samples = samples
        self.preservedSamples = preservedSamples
        self.nonFiniteSamples = nonFiniteSamples
        self.worstMaxAbs = worstMaxAbs
        self.worstCosineDistance = worstCosineDistance
        self.meanMaxAbs = meanMaxAbs
    }
}

/// Semantic preservation: the ratio of samples for which the deployed model's outputs
/// are identical to the reference outputs, "identical" meaning within the user's
/// threshold under the user's distance.
public struct SemanticReport: Codable, Sendable, Equatable {
    public var metric: DistanceMetric
    public var threshold: Double
    public var samples: Int
    /// Samples for which every output is within the threshold.
    public var preservedSamples: Int
    /// `preservedSamples / samples`, in [0, 1].
    public var ratio: Double
    /// One entry per output, sorted by name.
    public var outputs: [OutputAgreement]

    public init(metric: DistanceMetric, threshold: Double, samples: Int, preservedSamples: Int, ratio: Double,
                outputs: [OutputAgreement]) {
        self.metric = metric
        self.threshold = threshold
        self.samples = samples
        self.preservedSamples = preservedSamples
        self.ratio = ratio
        self.outputs = outputs
    }
}

/// Why two sets of outputs could not be compared.
public enum SemanticPreservationError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Side: String, Sendable, Equatable {
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
        }
    }
}

/// Compares the deployed model's outputs with the reference outputs, sample by sample.
public enum SemanticPreservation {
    /// Compares two sets of named outputs, each tensor shaped `[samples, ...]`.
    ///
    /// A sample is preserved when, for every output, its distance under `metric` is at
    /// most `threshold`. A non-finite value (NaN, ±infinity) in either side's output makes
    /// that sample not preserved rather than failing the comparison: a deployed model that
    /// produces NaN for some inputs is a result worth reporting, not an error. Such samples
    /// are counted in `OutputAgreement.nonFiniteSamples` and kept out of the distances, so
    /// that every number in the report is finite (JSON has no NaN).
    ///
    /// - Throws: `SemanticPreservationError` when an output is missing on either side,
    ///   shapes or sample counts differ, there is nothing to compare, or the threshold is
    ///   negative, infinite or NaN.
    public static func compare(reference: [String: Tensor], deployed: [String: Tensor], metric: DistanceMetric,
                               threshold: Double) throws -> SemanticReport {
        guard threshold >= 0, threshold.isFinite else { throw SemanticPreservationError.invalidThreshold(threshold) }
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
        }
        let sampleCount = samples!
        guard sampleCount > 0 else { throw SemanticPreservationError.empty("the outputs have no samples") }

        var preserved = [Bool](repeating: true, count: sampleCount)
        var outputs: [OutputAgreement] = []
        for name in names {
            let agreement = compareOutput(name: name, reference: reference[name]!, deployed: deployed[name]!,
                                          samples: sampleCount, metric: metric, threshold: threshold,
                                          preserved: &preserved)
            outputs.append(agreement)
        }
        let preservedSamples = preserved.lazy.filter { $0 }.count
        return SemanticReport(metric: metric, threshold: threshold, samples: sampleCount,
                              preservedSamples: preservedSamples,
                              ratio: Double(preservedSamples) / Double(sampleCount), outputs: outputs)
    }

    /// The max-abs and cosine distances of two equally long vectors, or nil when either
    /// holds a non-finite value or a distance overflows.
    static func distances(_ reference: UnsafeBufferPointer<Double>, _ deployed: UnsafeBufferPointer<Double>)
        -> (maxAbs: Double, cosine: Double)?
    {
        precondition(reference.count == deployed.count)
        var maxAbs = 0.0, dot = 0.0, referenceSquares = 0.0, deployedSquares = 0.0
        for i in 0..<reference.count {
            let r = reference[i], d = deployed[i]
            guard r.isFinite, d.isFinite else { return nil }
            maxAbs = Swift.max(maxAbs, abs(d - r))
            dot += r * d
            referenceSquares += r * r
            deployedSquares += d * d
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
        return (maxAbs, cosine)
    }

    private static func validate(_ tensor: Tensor, name: String, side: SemanticPreservationError.Side) throws {
        guard !tensor.shape.isEmpty else { throw SemanticPreservationError.noSampleAxis(name: name, side: side) }
        guard tensor.shape.allSatisfy({ $0 >= 0 }), tensor.values.count == tensor.elementCount else {
            throw SemanticPreservationError.malformedTensor(name: name, side: side, shape: tensor.shape,
                                                            values: tensor.values.count)
        }
    }

    private static func compareOutput(name: String, reference: Tensor, deployed: Tensor, samples: Int,
                                      metric: DistanceMetric, threshold: Double,
                                      preserved: inout [Bool]) -> OutputAgreement {
        let width = reference.shape.dropFirst().reduce(1, *)
        var preservedHere = 0, nonFinite = 0
        var worstMaxAbs = 0.0, worstCosine = 0.0, sumMaxAbs = 0.0
        reference.values.withUnsafeBufferPointer { r in
            deployed.values.withUnsafeBufferPointer { d in
                for sample in 0..<samples {
                    let range = (sample * width)..<((sample + 1) * width)
                    guard let distance = distances(UnsafeBufferPointer(rebasing: r[range]),
                                                   UnsafeBufferPointer(rebasing: d[range])) else {
                        nonFinite += 1
                        preserved[sample] = false
                        continue
                    }
                    worstMaxAbs = Swift.max(worstMaxAbs, distance.maxAbs)
                    worstCosine = Swift.max(worstCosine, distance.cosine)
                    sumMaxAbs += distance.maxAbs
                    let chosen = metric == .maxAbs ? distance.maxAbs : distance.cosine
                    if chosen <= threshold {
                        preservedHere += 1
                    } else {
                        preserved[sample] = false
                    }
                }
            }
        }
        let finite = samples - nonFinite
        return OutputAgreement(name: name, samples: samples, preservedSamples: preservedHere,
                               nonFiniteSamples: nonFinite,
                               worstMaxAbs: finite > 0 ? worstMaxAbs : nil,
                               worstCosineDistance: finite > 0 ? worstCosine : nil,
                               meanMaxAbs: finite > 0 ? sumMaxAbs / Double(finite) : nil)
    }
}
