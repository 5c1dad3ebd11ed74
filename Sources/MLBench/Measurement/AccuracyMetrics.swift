import Foundation
import MLBenchCore

/// What the labels of an experiment are: class indices, or target values.
public enum AccuracyTask: String, Codable, Sendable, CaseIterable {
    /// One class index per sample; the prediction is the argmax of the output.
    case classification
    /// Target values shaped like the output.
    case regression
}

/// The counts and scores of one class. Classes are those present in the labels or in the
/// predictions.
public struct ClassCounts: Codable, Sendable, Equatable {
    /// The class index.
    public var label: Int
    /// Samples whose label is this class (TP + FN).
    public var support: Int
    /// Samples predicted as this class (TP + FP).
    public var predicted: Int
    public var truePositives: Int
    /// TP / (TP + FP); nil when the class is never predicted.
    public var precision: Double?
    /// TP / (TP + FN); nil when no label is this class.
    public var recall: Double?
    /// 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall (0 when
    /// either is undefined or both are 0).
    public var f1: Double
    /// Intersection over union (Jaccard index), TP / (TP + FP + FN).
    public var iou: Double

    public init(label: Int, support: Int, predicted: Int, truePositives: Int) {
        self.label = label
        self.support = support
        self.predicted = predicted
        self.truePositives = truePositives
        let falsePositives = predicted - truePositives, falseNegatives = support - truePositives
        precision = predicted > 0 ? Double(truePositives) / Double(predicted) : nil
        recall = support > 0 ? Double(truePositives) / Double(support) : nil
        let f1Denominator = 2 * truePositives + falsePositives + falseNegatives
        f1 = f1Denominator > 0 ? Double(2 * truePositives) / Double(f1Denominator) : 0
        let union = truePositives + falsePositives + falseNegatives
        iou = union > 0 ? Double(truePositives) / Double(union) : 0
    }
}

/// Classification scores of one set of outputs against class-index labels.
///
/// Macro averages are unweighted means over the classes present in the labels or the
/// predictions (`perClass`); an undefined per-class precision or recall (a class never
/// predicted, or never in the labels) counts as 0 in them, as scikit-learn's
/// `zero_division=0` does. `macroF1` is the mean of per-class F1 (not the F1 of the macro
/// precision and recall) and `meanIou` the mean of per-class IoU.
public struct ClassificationMetrics: Codable, Sendable, Equatable {
    public var samples: Int
    /// The number of classes the output scores (its elements per sample).
    public var classes: Int
    /// Samples predicted right.
    public var correct: Int
    /// Samples whose output holds NaN or ±infinity: they have no prediction, so they are
    /// wrong (a false negative of their class, a false positive of none).
    public var nonFiniteSamples: Int
    /// correct / samples.
    public var accuracy: Double
    public var macroPrecision: Double
    public var macroRecall: Double
    public var macroF1: Double
    public var meanIou: Double
    /// One entry per class present in the labels or the predictions, by class index.
    public var perClass: [ClassCounts]
}

/// Regression scores of one set of outputs against targets.
///
/// Every element of every finite sample is one observation (multi-element outputs are
/// pooled): n = finite samples × elements per sample. R² = 1 − SS_res / SS_tot with the
/// targets' mean over those observations; adjusted R² = 1 − (1 − R²)(n − 1)/(n − p − 1)
/// with p the number of predictors the caller gives (the runner uses the model's input
/// features per sample, `AccuracyMetrics.inputFeatures`).
public struct RegressionMetrics: Codable, Sendable, Equatable {
    public var samples: Int
    /// Observations used: elements per sample × finite samples.
    public var observations: Int
    /// Samples whose output holds NaN or ±infinity, left out of every score.
    public var nonFiniteSamples: Int
    /// Mean squared error; nil when no sample is finite (or a sum overflows).
    public var mse: Double?
    /// Mean absolute error.
    public var mae: Double?
    /// √MSE.
    public var rmse: Double?
    /// Coefficient of determination; nil when the targets are constant (SS_tot = 0).
    public var r2: Double?
    /// Adjusted R²; nil without predictors, without R², or when n − p − 1 ≤ 0.
    public var adjustedR2: Double?
    /// The p used by the adjusted R².
    public var predictors: Int?
}

/// The scores of one side (deployed or reference): the one of its task.
public struct AccuracyScores: Codable, Sendable, Equatable {
    public var classification: ClassificationMetrics?
    public var regression: RegressionMetrics?

    public init(classification: ClassificationMetrics? = nil, regression: RegressionMetrics? = nil) {
        self.classification = classification
        self.regression = regression
    }
}

/// Accuracy against labels for the deployed and the reference outputs, so that the
/// accuracy lost in deployment shows beside semantic preservation.
public struct AccuracyReport: Codable, Sendable, Equatable {
    public var task: AccuracyTask
    /// The output the labels are for.
    public var output: String
    /// The labels file as the experiment names it.
    public var labels: String
    public var samples: Int
    public var deployed: AccuracyScores
    public var reference: AccuracyScores

    public init(task: AccuracyTask, output: String, labels: String, samples: Int, deployed: AccuracyScores,
                reference: AccuracyScores) {
        self.task = task
        self.output = output
        self.labels = labels
        self.samples = samples
        self.deployed = deployed
        self.reference = reference
    }
}

/// Why accuracy could not be measured. Each case names the output and the labels file.
public enum AccuracyError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The labelled output is not among the outputs of one side.
    case missingOutput(output: String, side: SemanticPreservationError.Side)
    /// The labels file could not be read (the reader's message).
    case unreadableLabels(file: String, reason: String)
    /// A tensor whose value count does not match its shape, or without a sample axis.
    case malformedTensor(what: String, shape: [Int], values: Int)
    /// Labels and output have a different number of samples.
    case labelCountMismatch(output: String, file: String, labels: Int, samples: Int)
    /// Labels with the wrong shape: `expected` is what the output calls for.
    case labelShapeMismatch(output: String, file: String, labels: [Int], expected: [Int])
    /// A class label that is not an integer (or is NaN or infinite).
    case nonIntegerLabel(file: String, sample: Int, value: Double)
    /// A class label outside 0..<classes of the output.
    case labelOutOfRange(output: String, file: String, sample: Int, label: Int, classes: Int)
    /// A regression target that is NaN or infinite.
    case nonFiniteTarget(file: String, sample: Int)
    /// No samples, or an output with no elements per sample.
    case empty(output: String, reason: String)
    /// A negative number of predictors.
    case invalidPredictors(Int)

    public var description: String {
        switch self {
        case .missingOutput(let output, let side):
            return "labelled output '\(output)' is missing from the \(side.rawValue) outputs"
        case .unreadableLabels(let file, let reason):
            return "labels file \(file) could not be read: \(reason)"
        case .malformedTensor(let what, let shape, let values):
            return "\(what) has \(values) values for shape \(shape) (it needs a leading sample axis)"
        case .labelCountMismatch(let output, let file, let labels, let samples):
            return "labels file \(file) has \(labels) labels but output '\(output)' has \(samples) samples"
        case .labelShapeMismatch(let output, let file, let labels, let expected):
            return "labels file \(file) has shape \(labels) but output '\(output)' needs labels shaped \(expected)"
        case .nonIntegerLabel(let file, let sample, let value):
            return "labels file \(file): label \(value) of sample \(sample) is not a class index (an integer)"
        case .labelOutOfRange(let output, let file, let sample, let label, let classes):
            return "labels file \(file): class \(label) of sample \(sample) is outside 0..<\(classes), the classes of output '\(output)'"
        case .nonFiniteTarget(let file, let sample):
            return "labels file \(file): the target of sample \(sample) is NaN or infinite"
        case .empty(let output, let reason):
            return "no accuracy for output '\(output)': \(reason)"
        case .invalidPredictors(let p):
            return "invalid number of predictors \(p): it must be at least 0"
        }
    }
}

/// Accuracy metrics of model outputs against labels.
public enum AccuracyMetrics {
    /// Reads the labels an experiment names (relative to the experiment file) and scores
    /// the labelled output of both sides.
    ///
    /// - Parameter predictors: p of the adjusted R² (regression only); the runner should
    ///   pass `inputFeatures(inputs)`. nil leaves the adjusted R² out.
    public static func evaluate(labels: Experiment.SemanticCriterion.Labels, of file: ExperimentFile,
                                reference: [String: Tensor], deployed: [String: Tensor],
                                predictors: Int? = nil) throws -> AccuracyReport {
        let path = file.resolve(labels.file)
        let tensor: Tensor
        do {
            tensor = try NPY.read(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AccuracyError.unreadableLabels(file: labels.file, reason: "\(error)")
        }
        return try evaluate(task: labels.task, output: labels.output, labels: tensor, labelsFile: labels.file,
                            reference: reference, deployed: deployed, predictors: predictors)
    }

    /// Scores the output `output` of both sides against `labels`.
    ///
    /// - Parameter labelsFile: how errors and the report name the labels.
    /// - Throws: `AccuracyError`.
    public static func evaluate(task: AccuracyTask, output: String, labels: Tensor, labelsFile: String,
                                reference: [String: Tensor], deployed: [String: Tensor],
                                predictors: Int? = nil) throws -> AccuracyReport {
        guard let referenceOutput = reference[output] else {
            throw AccuracyError.missingOutput(output: output, side: .reference)
        }
        guard let deployedOutput = deployed[output] else {
            throw AccuracyError.missingOutput(output: output, side: .deployed)
        }
        func score(_ tensor: Tensor) throws -> AccuracyScores {
            switch task {
            case .classification:
                return AccuracyScores(classification: try classification(output: tensor, labels: labels,
                                                                         outputName: output, labelsFile: labelsFile))
            case .regression:
                return AccuracyScores(regression: try regression(output: tensor, targets: labels, predictors: predictors,
                                                                 outputName: output, labelsFile: labelsFile))
            }
        }
        let deployedScores = try score(deployedOutput)
        let referenceScores = try score(referenceOutput)
        return AccuracyReport(task: task, output: output, labels: labelsFile, samples: labels.shape.first ?? 0,
                              deployed: deployedScores, reference: referenceScores)
    }

    /// The model's input features per sample: the elements per sample of every input,
    /// summed. The p of the adjusted R² that the runner uses.
    public static func inputFeatures(_ inputs: [String: Tensor]) -> Int {
        inputs.values.reduce(0) { $0 + $1.shape.dropFirst().reduce(1, *) }
    }

    /// Classification scores: the prediction of a sample is the argmax of its output
    /// elements (of equal maxima, the lowest index), compared with its class-index label.
    ///
    /// - Parameters:
    ///   - output: shaped `[samples, classes...]`; the elements per sample are the classes.
    ///   - labels: shaped `[samples]` or `[samples, 1]`, integers in 0..<classes.
    public static func classification(output: Tensor, labels: Tensor, outputName: String,
                                      labelsFile: String) throws -> ClassificationMetrics {
        let (samples, classes) = try checkOutput(output, outputName: outputName)
        try checkLabels(labels, labelsFile: labelsFile)
        guard labels.shape[0] == samples else {
            throw AccuracyError.labelCountMismatch(output: outputName, file: labelsFile, labels: labels.shape[0],
                                                   samples: samples)
        }
        guard labels.elementCount == samples else {
            throw AccuracyError.labelShapeMismatch(output: outputName, file: labelsFile, labels: labels.shape,
                                                   expected: [samples])
        }
        var truth = [Int](repeating: 0, count: samples)
        for (sample, value) in labels.values.enumerated() {
            guard value.isFinite, value.rounded() == value, abs(value) < 1e15 else {
                throw AccuracyError.nonIntegerLabel(file: labelsFile, sample: sample, value: value)
            }
            let label = Int(value)
            guard (0..<classes).contains(label) else {
                throw AccuracyError.labelOutOfRange(output: outputName, file: labelsFile, sample: sample, label: label,
                                                    classes: classes)
            }
            truth[sample] = label
        }
        var support = [Int](repeating: 0, count: classes)
        var predicted = [Int](repeating: 0, count: classes)
        var truePositives = [Int](repeating: 0, count: classes)
        var nonFinite = 0
        for sample in 0..<samples {
            support[truth[sample]] += 1
            guard let prediction = argmax(output.values[(sample * classes)..<((sample + 1) * classes)]) else {
                nonFinite += 1
                continue
            }
            predicted[prediction] += 1
            if prediction == truth[sample] { truePositives[prediction] += 1 }
        }
        let perClass = (0..<classes).filter { support[$0] > 0 || predicted[$0] > 0 }.map {
            ClassCounts(label: $0, support: support[$0], predicted: predicted[$0], truePositives: truePositives[$0])
        }
        let present = Double(perClass.count)  // ≥ 1: every sample has a label
        let correct = truePositives.reduce(0, +)
        return ClassificationMetrics(
            samples: samples, classes: classes, correct: correct, nonFiniteSamples: nonFinite,
            accuracy: Double(correct) / Double(samples),
            macroPrecision: perClass.reduce(0) { $0 + ($1.precision ?? 0) } / present,
            macroRecall: perClass.reduce(0) { $0 + ($1.recall ?? 0) } / present,
            macroF1: perClass.reduce(0) { $0 + $1.f1 } / present,
            meanIou: perClass.reduce(0) { $0 + $1.iou } / present,
            perClass: perClass)
    }

    /// Regression scores of `output` against `targets`, which hold as many values per
    /// sample as the output (e.g. `[samples]` for an output `[samples, 1]`).
    ///
    /// - Parameter predictors: p of the adjusted R²; nil leaves it out.
    public static func regression(output: Tensor, targets: Tensor, predictors: Int?, outputName: String,
                                  labelsFile: String) throws -> RegressionMetrics {
        if let predictors, predictors < 0 { throw AccuracyError.invalidPredictors(predictors) }
        let (samples, width) = try checkOutput(output, outputName: outputName)
        try checkLabels(targets, labelsFile: labelsFile)
        guard targets.shape[0] == samples else {
            throw AccuracyError.labelCountMismatch(output: outputName, file: labelsFile, labels: targets.shape[0],
                                                   samples: samples)
        }
        guard targets.elementCount == output.elementCount else {
            throw AccuracyError.labelShapeMismatch(output: outputName, file: labelsFile, labels: targets.shape,
                                                   expected: output.shape)
        }
        for sample in 0..<samples where targets.values[(sample * width)..<((sample + 1) * width)].contains(where: { !$0.isFinite }) {
            throw AccuracyError.nonFiniteTarget(file: labelsFile, sample: sample)
        }
        let finiteSamples = (0..<samples).filter { sample in
            output.values[(sample * width)..<((sample + 1) * width)].allSatisfy(\.isFinite)
        }
        let n = finiteSamples.count * width
        var result = RegressionMetrics(samples: samples, observations: n, nonFiniteSamples: samples - finiteSamples.count,
                                       predictors: predictors)
        guard n > 0 else { return result }
        var targetSum = 0.0
        for sample in finiteSamples {
            for i in (sample * width)..<((sample + 1) * width) { targetSum += targets.values[i] }
        }
        let targetMean = targetSum / Double(n)
        var squares = 0.0, absolutes = 0.0, total = 0.0
        for sample in finiteSamples {
            for i in (sample * width)..<((sample + 1) * width) {
                let error = output.values[i] - targets.values[i]
                squares += error * error
                absolutes += abs(error)
                let spread = targets.values[i] - targetMean
                total += spread * spread
            }
        }
        guard squares.isFinite, absolutes.isFinite, total.isFinite else { return result }
        result.mse = squares / Double(n)
        result.mae = absolutes / Double(n)
        result.rmse = (squares / Double(n)).squareRoot()
        if total > 0, case let r2 = 1 - squares / total, r2.isFinite {
            result.r2 = r2
            if let p = predictors, n - p - 1 > 0 {
                let adjusted = 1 - (1 - r2) * Double(n - 1) / Double(n - p - 1)
                result.adjustedR2 = adjusted.isFinite ? adjusted : nil
            }
        }
        return result
    }

    /// The index of the largest value (the lowest of equal maxima), or nil when a value
    /// is not finite.
    static func argmax(_ values: ArraySlice<Double>) -> Int? {
        guard var best = values.first, best.isFinite else { return nil }
        var index = 0
        for (offset, value) in values.enumerated().dropFirst() {
            guard value.isFinite else { return nil }
            if value > best { (best, index) = (value, offset) }
        }
        return index
    }

    private static func checkOutput(_ output: Tensor, outputName: String) throws -> (samples: Int, width: Int) {
        guard !output.shape.isEmpty, output.shape.allSatisfy({ $0 >= 0 }), output.values.count == output.elementCount else {
            throw AccuracyError.malformedTensor(what: "output '\(outputName)'", shape: output.shape, values: output.values.count)
        }
        let samples = output.shape[0], width = output.shape.dropFirst().reduce(1, *)
        guard samples > 0 else { throw AccuracyError.empty(output: outputName, reason: "it has no samples") }
        guard width > 0 else { throw AccuracyError.empty(output: outputName, reason: "it has no elements per sample") }
        return (samples, width)
    }

    private static func checkLabels(_ labels: Tensor, labelsFile: String) throws {
        guard !labels.shape.isEmpty, labels.shape.allSatisfy({ $0 >= 0 }), labels.values.count == labels.elementCount else {
            throw AccuracyError.malformedTensor(what: "labels file \(labelsFile)", shape: labels.shape, values: labels.values.count)
        }
    }
}

extension RegressionMetrics {
    init(samples: Int, observations: Int, nonFiniteSamples: Int, predictors: Int?) {
        self.samples = samples
        self.observations = observations
        self.nonFiniteSamples = nonFiniteSamples
        self.predictors = predictors
    }
}
