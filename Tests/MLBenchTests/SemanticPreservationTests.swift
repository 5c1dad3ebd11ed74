import Foundation
import XCTest
@testable import MLBench
import MLBenchCore

final class SemanticPreservationTests: XCTestCase {
    /// Four samples of a 3-class output and four of a [2, 2] output.
    private let reference: [String: Tensor] = [
        "logits": Tensor(shape: [4, 3], dtype: "<f4", values: [1, 2, 3, -1, 0, 1, 0.5, 0.5, 0.5, 10, -10, 0]),
        "boxes": Tensor(shape: [4, 2, 2], dtype: "<f4", values: (0..<16).map { Double($0) / 4 }),
    ]

    func testIdenticalOutputsArePreserved() throws {
        for metric in DistanceMetric.allCases {
            let report = try SemanticPreservation.compare(reference: reference, deployed: reference, metric: metric,
                                                          threshold: 0)
            XCTAssertEqual(report.samples, 4)
            XCTAssertEqual(report.preservedSamples, 4)
            XCTAssertEqual(report.ratio, 1)
            XCTAssertEqual(report.metric, metric)
            XCTAssertEqual(report.outputs.map(\.name), ["boxes", "logits"])
            for output in report.outputs {
                XCTAssertEqual(output.samples, 4)
                XCTAssertEqual(output.preservedSamples, 4)
                XCTAssertEqual(output.worstMaxAbs, 0)
                XCTAssertEqual(output.meanMaxAbs, 0)
                XCTAssertEqual(output.worstCosineDistance ?? 1, 0, accuracy: 1e-12)
                XCTAssertEqual(output.nonFiniteSamples, 0)
            }
        }
    }

    func testOnePerturbedSampleOutOfFour() throws {
        var deployed = reference
        deployed["logits"]!.values[4] += 0.5  // sample 1, middle class
        deployed["boxes"]!.values[0] += 1e-4  // sample 0, within the threshold
        let report = try SemanticPreservation.compare(reference: reference, deployed: deployed, metric: .maxAbs,
                                                      threshold: 1e-3)
        XCTAssertEqual(report.preservedSamples, 3)
        XCTAssertEqual(report.ratio, 0.75)
        let logits = report.outputs.first { $0.name == "logits" }!
        XCTAssertEqual(logits.preservedSamples, 3)
        XCTAssertEqual(logits.worstMaxAbs ?? 0, 0.5, accuracy: 1e-12)
        XCTAssertEqual(logits.meanMaxAbs ?? 0, 0.125, accuracy: 1e-12)
        // Cosine is reported even under max-abs: 1 − cos((-1, 0, 1), (-1, 0.5, 1)).
        XCTAssertEqual(logits.worstCosineDistance ?? 0, 1 - 2 / (2.0.squareRoot() * 2.25.squareRoot()), accuracy: 1e-12)
        let boxes = report.outputs.first { $0.name == "boxes" }!
        XCTAssertEqual(boxes.preservedSamples, 4)
        XCTAssertEqual(boxes.worstMaxAbs ?? 0, 1e-4, accuracy: 1e-12)
    }

    func testCosineIgnoresScaleButNotDirection() throws {
        let ref = ["y": Tensor(shape: [2, 2], values: [1, 0, 3, 4])]
        let dep = ["y": Tensor(shape: [2, 2], values: [2, 0, -3, -4])]  // scaled, then reversed
        let report = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .cosine, threshold: 0.01)
        XCTAssertEqual(report.preservedSamples, 1)
        XCTAssertEqual(report.ratio, 0.5)
        XCTAssertEqual(report.outputs[0].worstCosineDistance ?? 0, 2, accuracy: 1e-12)
        XCTAssertEqual(report.outputs[0].worstMaxAbs ?? 0, 8, accuracy: 1e-12)
    }

    func testCosineOfZeroVectors() throws {
        let zeros = ["y": Tensor(shape: [2, 3], values: [0, 0, 0, 0, 0, 0])]
        let both = try SemanticPreservation.compare(reference: zeros, deployed: zeros, metric: .cosine, threshold: 0)
        XCTAssertEqual(both.ratio, 1)
        XCTAssertEqual(both.outputs[0].worstCosineDistance, 0)

        let nonZero = ["y": Tensor(shape: [2, 3], values: [0, 0, 0, 1, 2, 3])]
        let one = try SemanticPreservation.compare(reference: zeros, deployed: nonZero, metric: .cosine,
                                                   threshold: 0.5)
        XCTAssertEqual(one.preservedSamples, 1)  // sample 0: both zero
        XCTAssertEqual(one.outputs[0].worstCosineDistance, 1)
        let reversed = try SemanticPreservation.compare(reference: nonZero, deployed: zeros, metric: .cosine,
                                                        threshold: 0.5)
        XCTAssertEqual(reversed.outputs[0].worstCosineDistance, 1)
    }

    func testMissingOutputIsNamed() {
        var deployed = reference
        deployed["logits"] = nil
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: deployed,
                                                              metric: .maxAbs, threshold: 0)) { error in
            XCTAssertEqual(error as? SemanticPreservationError, .missingOutput(name: "logits", missingFrom: .deployed))
            XCTAssertTrue("\(error)".contains("'logits'"), "\(error)")
        }
        var extra = reference
        extra["scores"] = Tensor(shape: [4], values: [0, 0, 0, 0])
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: extra,
                                                              metric: .maxAbs, threshold: 0)) { error in
            XCTAssertEqual(error as? SemanticPreservationError, .missingOutput(name: "scores", missingFrom: .reference))
        }
    }

    func testShapeMismatchNamesBothShapes() {
        var deployed = reference
        deployed["boxes"] = Tensor(shape: [4, 4], dtype: "<f4", values: (0..<16).map { Double($0) / 4 })
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: deployed,
                                                              metric: .maxAbs, threshold: 0)) { error in
            XCTAssertEqual(error as? SemanticPreservationError,
                           .shapeMismatch(name: "boxes", reference: [4, 2, 2], deployed: [4, 4]))
            let text = "\(error)"
            XCTAssertTrue(text.contains("'boxes'") && text.contains("[4, 2, 2]") && text.contains("[4, 4]"), text)
        }
    }

    func testSampleCountsMustAgree() {
        var deployed = reference
        deployed["logits"] = Tensor(shape: [3, 3], values: [Double](repeating: 0, count: 9))
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: deployed,
                                                              metric: .maxAbs, threshold: 0)) { error in
            XCTAssertEqual(error as? SemanticPreservationError,
                           .sampleCountMismatch(name: "logits", reference: 4, deployed: 3))
        }
        var uneven = reference
        uneven["logits"] = Tensor(shape: [3, 3], values: [Double](repeating: 0, count: 9))
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: uneven, deployed: uneven,
                                                              metric: .maxAbs, threshold: 0)) { error in
            XCTAssertEqual(error as? SemanticPreservationError,
                           .inconsistentSampleCounts(name: "boxes", samples: 4, otherName: "logits", otherSamples: 3))
        }
    }

    func testNaNInDeployedOutputIsNotPreservedAndReportStaysEncodable() throws {
        var deployed = reference
        deployed["logits"]!.values[1] = .nan       // sample 0
        deployed["logits"]!.values[11] = .infinity // sample 3
        let report = try SemanticPreservation.compare(reference: reference, deployed: deployed, metric: .cosine,
                                                      threshold: 1e-6)
        XCTAssertEqual(report.preservedSamples, 2)
        XCTAssertEqual(report.ratio, 0.5)
        let logits = report.outputs.first { $0.name == "logits" }!
        XCTAssertEqual(logits.nonFiniteSamples, 2)
        XCTAssertEqual(logits.preservedSamples, 2)
        XCTAssertEqual(logits.worstMaxAbs, 0)

        let allNaN = ["y": Tensor(shape: [2, 1], values: [.nan, .nan])]
        let none = try SemanticPreservation.compare(reference: ["y": Tensor(shape: [2, 1], values: [1, 2])],
                                                    deployed: allNaN, metric: .maxAbs, threshold: 1)
        XCTAssertEqual(none.ratio, 0)
        XCTAssertNil(none.outputs[0].worstMaxAbs)

        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let json = String(decoding: try encoder.encode(report), as: UTF8.self)
        XCTAssertTrue(json.contains("\"metric\":\"cosine\""), json)
        XCTAssertTrue(json.contains("\"preserved_samples\":2"), json)
        XCTAssertTrue(json.contains("\"non_finite_samples\":2"), json)
        _ = try encoder.encode(none)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        XCTAssertEqual(try decoder.decode(SemanticReport.self, from: Data(json.utf8)), report)
    }

    func testInvalidInputsAreRefused() {
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: reference,
                                                              metric: .maxAbs, threshold: -1))
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: reference,
                                                              metric: .maxAbs, threshold: .nan))
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: [:], deployed: [:],
                                                              metric: .maxAbs, threshold: 0))
        let scalar = ["y": Tensor(shape: [], values: [1])]
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: scalar, deployed: scalar,
                                                              metric: .maxAbs, threshold: 0)) { error in
            XCTAssertEqual(error as? SemanticPreservationError, .noSampleAxis(name: "y", side: .reference))
        }
        let malformed = ["y": Tensor(shape: [2, 2], values: [1, 2, 3])]
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: malformed, deployed: malformed,
                                                              metric: .maxAbs, threshold: 0))
        XCTAssertEqual(DistanceMetric(rawValue: "max_abs"), .maxAbs)
    }

    // MARK: l2, psnr, allclose, top_k

    func testL2IsTheEuclideanNormOfTheDifference() throws {
        let ref = ["y": Tensor(shape: [2, 3], values: [0, 0, 0, 1, 2, 3])]
        let dep = ["y": Tensor(shape: [2, 3], values: [3, 4, 0, 1, 2, 3])]  // sample 0 off by (3, 4, 0): L2 5, max-abs 4
        let strict = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .l2, threshold: 4.9)
        XCTAssertEqual(strict.preservedSamples, 1)
        XCTAssertEqual(strict.outputs[0].worstL2 ?? 0, 5, accuracy: 1e-12)
        XCTAssertEqual(strict.outputs[0].meanL2 ?? 0, 2.5, accuracy: 1e-12)
        let atFive = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .l2, threshold: 5)
        XCTAssertEqual(atFive.preservedSamples, 2)
        // The same data under max-abs 4.5 is preserved: the metric decides, not only the data.
        let maxAbs = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .maxAbs, threshold: 4.5)
        XCTAssertEqual(maxAbs.preservedSamples, 2)
        XCTAssertEqual(maxAbs.outputs[0].worstL2 ?? 0, 5, accuracy: 1e-12, "L2 is reported under every metric")
    }

    func testPSNRIsHigherIsBetterWithThePeakOfTheReference() throws {
        // Sample 0: peak max|r| = 2, MSE = 0.2² / 4 = 0.01, PSNR = 10·log10(4 / 0.01) = 10·log10(400).
        // Sample 1: identical (PSNR +∞). Sample 2: all-zero reference, different output (PSNR −∞).
        let ref = ["y": Tensor(shape: [3, 4], values: [2, 0, 0, -1, 1, 2, 3, 4, 0, 0, 0, 0])]
        let dep = ["y": Tensor(shape: [3, 4], values: [2, 0, 0, -0.8, 1, 2, 3, 4, 0, 0, 0, 1])]
        let expected = 10 * log10(400.0)  // 26.0206 dB
        XCTAssertEqual(expected, 26.0206, accuracy: 1e-4)
        let below = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .psnr, threshold: 26)
        XCTAssertEqual(below.preservedSamples, 2, "26.02 dB ≥ 26 dB and +∞ are preserved, −∞ is not")
        let above = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .psnr, threshold: 26.1)
        XCTAssertEqual(above.preservedSamples, 1, "only the identical sample reaches 26.1 dB")
        let zero = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .psnr, threshold: 0)
        XCTAssertEqual(zero.preservedSamples, 2, "a zero-peak sample is never preserved")
        let output = below.outputs[0]
        XCTAssertEqual(output.worstPsnr ?? 0, expected, accuracy: 1e-9)
        XCTAssertEqual(output.identicalSamples, 1)
        XCTAssertEqual(output.zeroPeakSamples, 1)
        // JSONEncoder refuses infinities: encoding proves none is stored.
        XCTAssertNoThrow(try JSONEncoder().encode(below))
    }

    func testPSNROfIdenticalOutputsIsNotStoredAsANumber() throws {
        let report = try SemanticPreservation.compare(reference: reference, deployed: reference, metric: .psnr,
                                                      threshold: 1000)
        XCTAssertEqual(report.ratio, 1, "identical outputs have PSNR +∞, above any threshold")
        for output in report.outputs {
            XCTAssertNil(output.worstPsnr)
            XCTAssertEqual(output.identicalSamples, 4)
            XCTAssertEqual(output.zeroPeakSamples, 0)
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let json = String(decoding: try encoder.encode(report), as: UTF8.self)
        XCTAssertFalse(json.contains("worst_psnr"), json)
        XCTAssertTrue(json.contains("\"identical_samples\":4"), json)
    }

    func testAllcloseBoundaryIsInclusiveAndRelativeToTheReference() throws {
        let options = ComparisonOptions(atol: 0.5, rtol: 0.25)
        // r = 2: the bound is 0.5 + 0.25·2 = 1 (exact in binary).
        let ref = ["y": Tensor(shape: [3, 1], values: [2, 2, 4])]
        let dep = ["y": Tensor(shape: [3, 1], values: [3, 3.000001, 2])]
        let report = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .allclose, threshold: 0,
                                                      options: options)
        // Sample 0: |1| ≤ 1 passes; sample 1 is just past it; sample 2: |−2| ≤ 0.5 + 0.25·4 = 1.5 fails.
        XCTAssertEqual(report.preservedSamples, 1)
        XCTAssertEqual(report.outputs[0].allcloseViolatingSamples, 2)
        XCTAssertEqual(report.atol, 0.5)
        XCTAssertEqual(report.rtol, 0.25)

        // rtol scales |reference|, not |deployed|: (r 4, d 2) passes with rtol 0.5, (r 2, d 4) does not.
        let relative = ComparisonOptions(atol: 0, rtol: 0.5)
        let forward = try SemanticPreservation.compare(reference: ["y": Tensor(shape: [1, 1], values: [4])],
                                                       deployed: ["y": Tensor(shape: [1, 1], values: [2])],
                                                       metric: .allclose, threshold: 0, options: relative)
        XCTAssertEqual(forward.preservedSamples, 1)
        let backward = try SemanticPreservation.compare(reference: ["y": Tensor(shape: [1, 1], values: [2])],
                                                        deployed: ["y": Tensor(shape: [1, 1], values: [4])],
                                                        metric: .allclose, threshold: 0, options: relative)
        XCTAssertEqual(backward.preservedSamples, 0)

        // One element out of tolerance fails the whole sample; the threshold plays no part.
        let many = try SemanticPreservation.compare(
            reference: ["y": Tensor(shape: [1, 3], values: [0, 0, 0])],
            deployed: ["y": Tensor(shape: [1, 3], values: [0.1, 0.1, 0.6])],
            metric: .allclose, threshold: 100, options: ComparisonOptions(atol: 0.5))
        XCTAssertEqual(many.preservedSamples, 0)
    }

    func testTopKTiesGoToTheLowestIndex() throws {
        func top(_ values: [Double], _ k: Int) -> Set<Int> {
            values.withUnsafeBufferPointer { SemanticPreservation.topIndices($0, k) }
        }
        XCTAssertEqual(top([3, 1, 3, 0], 1), [0])
        XCTAssertEqual(top([5, 4, 4, 0], 2), [0, 1])
        XCTAssertEqual(top([-1, -1, -1], 2), [0, 1])
        XCTAssertEqual(top([0, 2, 1, 2], 3), [1, 3, 2])

        // k = 1: same top-1 class. Reference [3, 1, 3, 0] ranks index 0 first.
        let ref = ["y": Tensor(shape: [3, 4], values: [3, 1, 3, 0, 3, 1, 3, 0, 3, 1, 3, 0])]
        let dep = ["y": Tensor(shape: [3, 4], values: [3, 1, 3, 0, 2.9, 1, 3, 0, 9, 8, 7, 6])]
        let one = try SemanticPreservation.compare(reference: ref, deployed: dep, metric: .topK, threshold: 0)
        XCTAssertEqual(one.preservedSamples, 2, "sample 1 moves the top class to index 2")
        XCTAssertEqual(one.outputs[0].topKAgreeingSamples, 2)
        XCTAssertEqual(one.k, 1)

        // k = 2: the same set of indices, in any order.
        let ref2 = ["y": Tensor(shape: [3, 4], values: [5, 4, 4, 0, 5, 4, 4, 0, 5, 4, 4, 0])]
        let dep2 = ["y": Tensor(shape: [3, 4], values: [4, 5, 3, 0, 5, 4, 4.0001, 0, 5, 4, 4, 0])]
        let two = try SemanticPreservation.compare(reference: ref2, deployed: dep2, metric: .topK, threshold: 0,
                                                   options: ComparisonOptions(k: 2))
        XCTAssertEqual(two.preservedSamples, 2, "{1, 0} agrees with {0, 1}; {0, 2} does not")
        XCTAssertEqual(two.outputs[0].worstMaxAbs ?? 0, 1, accuracy: 1e-12)
    }

    func testTopKNeedsKElementsAndAValidK() throws {
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: reference, metric: .topK,
                                                              threshold: 0, options: ComparisonOptions(k: 4))) { error in
            XCTAssertEqual(error as? SemanticPreservationError, .kExceedsOutput(name: "logits", k: 4, elements: 3))
            XCTAssertTrue("\(error)".contains("'logits'"), "\(error)")
        }
        // Under another metric the output too narrow for k just has no top-k count.
        let report = try SemanticPreservation.compare(reference: reference, deployed: reference, metric: .maxAbs,
                                                      threshold: 0, options: ComparisonOptions(k: 4))
        XCTAssertEqual(report.outputs.first { $0.name == "boxes" }?.topKAgreeingSamples, 4)
        XCTAssertNil(report.outputs.first { $0.name == "logits" }?.topKAgreeingSamples)
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: reference, metric: .topK,
                                                              threshold: 0, options: ComparisonOptions(k: 0))) { error in
            XCTAssertEqual(error as? SemanticPreservationError, .invalidK(0))
        }
        XCTAssertThrowsError(try SemanticPreservation.compare(reference: reference, deployed: reference,
                                                              metric: .allclose, threshold: 0,
                                                              options: ComparisonOptions(rtol: -1))) { error in
            XCTAssertEqual(error as? SemanticPreservationError, .invalidTolerance(parameter: "rtol", value: -1))
        }
    }

    func testEveryMeasureIsReportedWhateverTheMetric() throws {
        var deployed = reference
        deployed["logits"]!.values[4] += 2  // sample 1: (-1, 2, 1), top-1 moves from class 2 to class 1
        let report = try SemanticPreservation.compare(reference: reference, deployed: deployed, metric: .cosine,
                                                      threshold: 1, options: ComparisonOptions(atol: 0.1))
        let logits = report.outputs.first { $0.name == "logits" }!
        XCTAssertEqual(logits.allcloseViolatingSamples, 1)
        XCTAssertEqual(logits.topKAgreeingSamples, 3)
        XCTAssertEqual(logits.identicalSamples, 3)
        XCTAssertEqual(logits.worstL2 ?? 0, 2, accuracy: 1e-12)
        XCTAssertEqual(logits.meanL2 ?? 0, 0.5, accuracy: 1e-12)
        // PSNR of sample 1: peak 1, MSE 4/3.
        XCTAssertEqual(logits.worstPsnr ?? 0, -10 * log10(4.0 / 3), accuracy: 1e-9)
    }

    func testStoredReportsWithoutTheNewFieldsStillDecode() throws {
        let old = """
            {"metric":"max_abs","threshold":0.0001,"samples":2,"preserved_samples":2,"ratio":1,
             "outputs":[{"name":"y","samples":2,"preserved_samples":2,"non_finite_samples":0,
                         "worst_max_abs":0,"worst_cosine_distance":0,"mean_max_abs":0}]}
            """
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let report = try decoder.decode(SemanticReport.self, from: Data(old.utf8))
        XCTAssertEqual(report.metric, .maxAbs)
        XCTAssertNil(report.k)
        XCTAssertNil(report.accuracy)
        XCTAssertNil(report.outputs[0].worstL2)
        XCTAssertNil(report.outputs[0].topKAgreeingSamples)

        // And the new fields survive the store's snake-case round trip.
        let new = try SemanticPreservation.compare(reference: reference, deployed: reference, metric: .topK,
                                                   threshold: 0, options: ComparisonOptions(atol: 1e-3, rtol: 1e-2, k: 2))
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        XCTAssertEqual(try decoder.decode(SemanticReport.self, from: try encoder.encode(new)), new)
    }

    func testOptionsFromTheExperimentCriterion() {
        let criterion = Experiment.SemanticCriterion(metric: "allclose", threshold: 0, atol: 1e-5)
        XCTAssertEqual(ComparisonOptions(criterion), ComparisonOptions(atol: 1e-5, rtol: 0, k: 1))
        XCTAssertEqual(ComparisonOptions(Experiment.SemanticCriterion(metric: "top_k", threshold: 0, k: 5)).k, 5)
        XCTAssertFalse(DistanceMetric.allclose.usesThreshold)
        XCTAssertFalse(DistanceMetric.topK.usesThreshold)
        XCTAssertTrue(DistanceMetric.psnr.usesThreshold)
        XCTAssertEqual(DistanceMetric(rawValue: "top_k"), .topK)
    }
}
