import Foundation
import XCTest
@testable import MLBench

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
}
