import Foundation
@testable import MLBench
import XCTest
import MLBenchCore

/// Accuracy against labels: every expected value below is worked out by hand.
final class AccuracyMetricsTests: XCTestCase {
    /// Eight samples, four classes. Labels and the argmax of `logits`:
    ///
    ///     labels      0 0 0 1 1 2 2 2
    ///     predicted   0 0 1 1 3 2 2 0
    ///
    /// class 0: support 3, predicted 3, TP 2 → P 2/3, R 2/3, F1 4/6, IoU 2/4
    /// class 1: support 2, predicted 2, TP 1 → P 1/2, R 1/2, F1 2/4, IoU 1/3
    /// class 2: support 3, predicted 2, TP 2 → P 1,   R 2/3, F1 4/5, IoU 2/3
    /// class 3: support 0, predicted 1, TP 0 → P 0,   R —,   F1 0,   IoU 0
    let labels = Tensor(shape: [8], dtype: "<i8", values: [0, 0, 0, 1, 1, 2, 2, 2])
    let predicted = [0, 0, 1, 1, 3, 2, 2, 0]

    func logits(_ classes: [Int], tieFirst: Bool = true) -> Tensor {
        var values: [Double] = []
        for (sample, predicted) in classes.enumerated() {
            var row = [0.1, 0.2, 0.3, 0.4].map { -$0 }
            row[predicted] = 1
            // Sample 0 ties classes 0 and 1: the lowest index is the prediction.
            if sample == 0, tieFirst { row = [0.5, 0.5, 0, 0] }
            values += row
        }
        return Tensor(shape: [classes.count, 4], dtype: "<f4", values: values)
    }

    func testConfusionMatrixByHand() throws {
        let metrics = try AccuracyMetrics.classification(output: logits(predicted), labels: labels, outputName: "logits",
                                                         labelsFile: "labels.npy")
        XCTAssertEqual(metrics.samples, 8)
        XCTAssertEqual(metrics.classes, 4)
        XCTAssertEqual(metrics.correct, 5)
        XCTAssertEqual(metrics.accuracy, 5.0 / 8, accuracy: 1e-12)
        XCTAssertEqual(metrics.macroPrecision, (2.0 / 3 + 1.0 / 2 + 1 + 0) / 4, accuracy: 1e-12)  // 13/24
        XCTAssertEqual(metrics.macroRecall, (2.0 / 3 + 1.0 / 2 + 2.0 / 3 + 0) / 4, accuracy: 1e-12)  // 11/24
        XCTAssertEqual(metrics.macroF1, 59.0 / 120, accuracy: 1e-12)  // (2/3 + 1/2 + 4/5 + 0) / 4
        XCTAssertEqual(metrics.meanIou, 3.0 / 8, accuracy: 1e-12)  // (1/2 + 1/3 + 2/3 + 0) / 4
        XCTAssertEqual(metrics.perClass.map(\.label), [0, 1, 2, 3])
        XCTAssertEqual(metrics.perClass.map(\.support), [3, 2, 3, 0])
        XCTAssertEqual(metrics.perClass.map(\.predicted), [3, 2, 2, 1])
        XCTAssertEqual(metrics.perClass.map(\.truePositives), [2, 1, 2, 0])
        XCTAssertEqual(metrics.perClass[2].precision, 1)
        XCTAssertEqual(metrics.perClass[3].precision, 0)
        XCTAssertNil(metrics.perClass[3].recall, "class 3 is never a label: recall is undefined")
        XCTAssertEqual(metrics.perClass[2].f1, 0.8, accuracy: 1e-12)
        XCTAssertEqual(metrics.perClass[1].iou, 1.0 / 3, accuracy: 1e-12)
    }

    func testClassesInNeitherLabelsNorPredictionsAreLeftOutOfTheAverages() throws {
        // Two classes used out of four: a perfect classifier scores 1 everywhere.
        let labels = Tensor(shape: [3, 1], values: [1, 3, 3])
        let metrics = try AccuracyMetrics.classification(output: logits([1, 3, 3], tieFirst: false), labels: labels,
                                                         outputName: "logits", labelsFile: "l.npy")
        XCTAssertEqual(metrics.perClass.map(\.label), [1, 3])
        XCTAssertEqual(metrics.accuracy, 1)
        XCTAssertEqual(metrics.macroPrecision, 1)
        XCTAssertEqual(metrics.macroRecall, 1)
        XCTAssertEqual(metrics.macroF1, 1)
        XCTAssertEqual(metrics.meanIou, 1)
    }

    func testNonFiniteOutputHasNoPredictionAndIsWrong() throws {
        var output = logits(predicted)
        output.values[3 * 4 + 2] = .nan  // sample 3 (label 1, predicted 1)
        let metrics = try AccuracyMetrics.classification(output: output, labels: labels, outputName: "logits",
                                                         labelsFile: "labels.npy")
        XCTAssertEqual(metrics.nonFiniteSamples, 1)
        XCTAssertEqual(metrics.correct, 4)
        XCTAssertEqual(metrics.perClass[1].predicted, 1)
        XCTAssertEqual(metrics.perClass[1].support, 2)
        XCTAssertNoThrow(try JSONEncoder().encode(metrics))
    }

    func testDeployedAndReferenceAreBothScored() throws {
        let reference = ["logits": logits([0, 0, 0, 1, 1, 2, 2, 2])]
        let deployed = ["logits": logits(predicted)]
        let report = try AccuracyMetrics.evaluate(task: .classification, output: "logits", labels: labels,
                                                  labelsFile: "labels.npy", reference: reference, deployed: deployed)
        XCTAssertEqual(report.samples, 8)
        XCTAssertEqual(report.reference.classification?.accuracy, 1)
        XCTAssertEqual(report.deployed.classification?.accuracy ?? 0, 5.0 / 8, accuracy: 1e-12)
        XCTAssertNil(report.deployed.regression)

        var semantic = try SemanticPreservation.compare(reference: reference, deployed: deployed, metric: .topK,
                                                        threshold: 0)
        semantic.accuracy = report
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let json = try encoder.encode(semantic)
        XCTAssertEqual(try decoder.decode(SemanticReport.self, from: json), semantic)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("\"mean_iou\""))

        XCTAssertThrowsError(try AccuracyMetrics.evaluate(task: .classification, output: "probs", labels: labels,
                                                          labelsFile: "labels.npy", reference: reference,
                                                          deployed: deployed)) { error in
            XCTAssertEqual(error as? AccuracyError, .missingOutput(output: "probs", side: .reference))
        }
    }

    func testClassificationLabelErrorsNameTheFileAndOutput() {
        let output = logits(predicted)
        func error(_ labels: Tensor) -> AccuracyError? {
            do {
                _ = try AccuracyMetrics.classification(output: output, labels: labels, outputName: "logits",
                                                       labelsFile: "labels.npy")
            } catch {
                return error as? AccuracyError
            }
            XCTFail("accepted \(labels)")
            return nil
        }
        let short = error(Tensor(shape: [7], values: [0, 0, 0, 1, 1, 2, 2]))
        XCTAssertEqual(short, .labelCountMismatch(output: "logits", file: "labels.npy", labels: 7, samples: 8))
        XCTAssertTrue(short.map { "\($0)" }?.contains("labels.npy") == true)
        XCTAssertTrue(short.map { "\($0)" }?.contains("'logits'") == true)
        XCTAssertEqual(error(Tensor(shape: [8], values: [0, 0, 0, 1, 1.5, 2, 2, 2])),
                       .nonIntegerLabel(file: "labels.npy", sample: 4, value: 1.5))
        XCTAssertEqual(error(Tensor(shape: [8], values: [0, 0, 0, 1, 1, 2, 2, 4])),
                       .labelOutOfRange(output: "logits", file: "labels.npy", sample: 7, label: 4, classes: 4))
        XCTAssertEqual(error(Tensor(shape: [8], values: [0, 0, 0, -1, 1, 2, 2, 2])),
                       .labelOutOfRange(output: "logits", file: "labels.npy", sample: 3, label: -1, classes: 4))
        if case .nonIntegerLabel(_, let sample, _)? = error(Tensor(shape: [8], values: [.nan, 0, 0, 1, 1, 2, 2, 2])) {
            XCTAssertEqual(sample, 0)
        } else {
            XCTFail("NaN label accepted as a class")
        }
        XCTAssertEqual(error(Tensor(shape: [8, 4], values: output.values)),
                       .labelShapeMismatch(output: "logits", file: "labels.npy", labels: [8, 4], expected: [8]))
        XCTAssertEqual(error(Tensor(shape: [], values: [1])),
                       .malformedTensor(what: "labels file labels.npy", shape: [], values: 1))
    }

    // MARK: regression

    /// y = (1, 2, 3, 4), ŷ = (1.5, 2, 2, 4.5): errors (0.5, 0, −1, 0.5), SS_res = 1.5,
    /// MSE = 0.375, MAE = 0.5; mean y = 2.5, SS_tot = 5, R² = 0.7.
    let targets = Tensor(shape: [4], values: [1, 2, 3, 4])
    let predictions = Tensor(shape: [4, 1], dtype: "<f4", values: [1.5, 2, 2, 4.5])

    func testRegressionByHand() throws {
        let metrics = try AccuracyMetrics.regression(output: predictions, targets: targets, predictors: 1,
                                                     outputName: "y", labelsFile: "y.npy")
        XCTAssertEqual(metrics.observations, 4)
        XCTAssertEqual(metrics.mse ?? 0, 0.375, accuracy: 1e-12)
        XCTAssertEqual(metrics.mae ?? 0, 0.5, accuracy: 1e-12)
        XCTAssertEqual(metrics.rmse ?? 0, 0.375.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(metrics.r2 ?? 0, 0.7, accuracy: 1e-12)
        // 1 − (1 − 0.7)·(4 − 1)/(4 − 1 − 1) = 0.55
        XCTAssertEqual(metrics.adjustedR2 ?? 0, 0.55, accuracy: 1e-12)
        XCTAssertEqual(metrics.predictors, 1)

        let two = try AccuracyMetrics.regression(output: predictions, targets: targets, predictors: 2, outputName: "y",
                                                 labelsFile: "y.npy")
        XCTAssertEqual(two.adjustedR2 ?? 0, 0.1, accuracy: 1e-12)  // 1 − 0.3·3/1
        let three = try AccuracyMetrics.regression(output: predictions, targets: targets, predictors: 3,
                                                   outputName: "y", labelsFile: "y.npy")
        XCTAssertNil(three.adjustedR2, "n − p − 1 = 0")
        XCTAssertEqual(three.r2 ?? 0, 0.7, accuracy: 1e-12)
        let none = try AccuracyMetrics.regression(output: predictions, targets: targets, predictors: nil,
                                                  outputName: "y", labelsFile: "y.npy")
        XCTAssertNil(none.adjustedR2)
    }

    func testRegressionEdgeCases() throws {
        // Constant targets: R² is undefined, the errors are not.
        let constant = try AccuracyMetrics.regression(output: predictions, targets: Tensor(shape: [4], values: [2, 2, 2, 2]),
                                                      predictors: 1, outputName: "y", labelsFile: "y.npy")
        XCTAssertNil(constant.r2)
        XCTAssertNil(constant.adjustedR2)
        XCTAssertEqual(constant.mae ?? 0, (0.5 + 0 + 0 + 2.5) / 4, accuracy: 1e-12)

        // A NaN prediction leaves its sample out: y = (1, 2, 4), ŷ = (1.5, 2, 4.5).
        var broken = predictions
        broken.values[2] = .nan
        let metrics = try AccuracyMetrics.regression(output: broken, targets: targets, predictors: nil,
                                                     outputName: "y", labelsFile: "y.npy")
        XCTAssertEqual(metrics.nonFiniteSamples, 1)
        XCTAssertEqual(metrics.observations, 3)
        XCTAssertEqual(metrics.mse ?? 0, 0.5 / 3, accuracy: 1e-12)
        XCTAssertNoThrow(try JSONEncoder().encode(metrics))
        let allNaN = try AccuracyMetrics.regression(output: Tensor(shape: [1, 1], values: [.nan]),
                                                    targets: Tensor(shape: [1], values: [1]), predictors: nil,
                                                    outputName: "y", labelsFile: "y.npy")
        XCTAssertNil(allNaN.mse)
        XCTAssertNoThrow(try JSONEncoder().encode(allNaN))

        XCTAssertThrowsError(try AccuracyMetrics.regression(output: predictions, targets: Tensor(shape: [2, 2], values: [1, 2, 3, 4]),
                                                            predictors: nil, outputName: "y", labelsFile: "y.npy")) { error in
            XCTAssertEqual(error as? AccuracyError, .labelCountMismatch(output: "y", file: "y.npy", labels: 2, samples: 4))
        }
        XCTAssertThrowsError(try AccuracyMetrics.regression(output: predictions, targets: Tensor(shape: [4, 2], values: Array(repeating: 1, count: 8)),
                                                            predictors: nil, outputName: "y", labelsFile: "y.npy")) { error in
            XCTAssertEqual(error as? AccuracyError, .labelShapeMismatch(output: "y", file: "y.npy", labels: [4, 2], expected: [4, 1]))
        }
        XCTAssertThrowsError(try AccuracyMetrics.regression(output: predictions, targets: Tensor(shape: [4], values: [1, .infinity, 3, 4]),
                                                            predictors: nil, outputName: "y", labelsFile: "y.npy")) { error in
            XCTAssertEqual(error as? AccuracyError, .nonFiniteTarget(file: "y.npy", sample: 1))
        }
        XCTAssertThrowsError(try AccuracyMetrics.regression(output: predictions, targets: targets, predictors: -1,
                                                            outputName: "y", labelsFile: "y.npy"))
    }

    func testInputFeaturesCountElementsPerSample() {
        XCTAssertEqual(AccuracyMetrics.inputFeatures(["image": Tensor(shape: [16, 3, 4, 4], values: []),
                                                      "mask": Tensor(shape: [16, 2], values: [])]), 50)
    }
}
