import Foundation
@testable import MLBench
import XCTest

/// Content-addressed blobs and signed bundles: `verify` finds any changed byte.
final class BlobAndSignatureTests: XCTestCase {
    var home: LabHome!

    override func setUpWithError() throws {
        home = LabHome(root: FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-blobs-\(UUID().uuidString)"))
        try home.prepare()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: home.root)
    }

    func testABlobIsKeptOnceUnderItsSHA256AndReadOnly() throws {
        let blobs = home.blobs
        let file = home.scratch.appendingPathComponent("model.onnx")
        try Data("model bytes".utf8).write(to: file)
        let hash = try blobs.put(file: file.path)
        // SHA-256("model bytes"), computed independently (sha256sum).
        XCTAssertEqual(hash, "9cb7487000bc86ac36ce83c4acfabe8878552be99572a6770f65ab1d048a5c48")
        XCTAssertEqual(try blobs.put(data: Data("model bytes".utf8)), hash, "the same content is the same blob")
        XCTAssertEqual(try Data(contentsOf: blobs.path(of: hash)), Data("model bytes".utf8))
        XCTAssertEqual(blobs.path(of: hash).path, blobs.root.path + "/sha256/\(hash.prefix(2))/\(hash.dropFirst(2))")
        let permissions = try FileManager.default.attributesOfItem(atPath: blobs.path(of: hash).path)[.posixPermissions] as? Int
        XCTAssertEqual(permissions, 0o444)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: blobs.root.appendingPathComponent("incoming").path), [],
                       "no temporary file is left behind")
        XCTAssertEqual(try blobs.check(hash), .intact)
        XCTAssertEqual(try blobs.check(String(repeating: "0", count: 64)), .missing)
    }

    func testVerifyFindsAChangedByteInTheBundleOrInAFileAndAnUntrustedOrMissingSignature() throws {
        try StoreBackends.each { store, backend in
            let blobs = home.blobs
            var result = ExperimentResult.sample(id: "signed-1")
            result.checksums = ["model": try blobs.put(data: Data("the model".utf8)),
                                "input:image": try blobs.put(data: Data("the image".utf8)),
                                "experiment": try blobs.put(data: Data(result.experimentText.utf8))]
            store.signer = try BundleSigner.forLab(home)
            try store.insert(result)
            let trusted = try BundleSigner.trustedKeys(home)
            XCTAssertEqual(try store.verify(id: "signed-1", blobs: blobs, trustedKeys: trusted), [], "\(backend)")

            // One changed byte in the stored bundle.
            try store.connection.execute("UPDATE results SET bundle = replace(bundle, 'sample-signed-1', 'sample-signed-2') WHERE id = ?",
                                         [.text("signed-1")])
            XCTAssertEqual(try store.verify(id: "signed-1", blobs: blobs, trustedKeys: trusted),
                           ["the bundle's signature does not match its content: the stored bundle was changed"], "\(backend)")
            try store.connection.execute("UPDATE results SET bundle = replace(bundle, 'sample-signed-2', 'sample-signed-1') WHERE id = ?",
                                         [.text("signed-1")])
            XCTAssertEqual(try store.verify(id: "signed-1", blobs: blobs, trustedKeys: trusted), [], "\(backend): restored")

            // One changed byte in a file it names.
            let image = blobs.path(of: result.checksums["input:image"]!)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: image.path)
            try Data("the imagE".utf8).write(to: image)
            let problems = try store.verify(id: "signed-1", blobs: blobs, trustedKeys: trusted)
            XCTAssertEqual(problems.count, 1, "\(backend): \(problems)")
            XCTAssertTrue(problems.first?.hasPrefix("input:image: blob \(result.checksums["input:image"]!) was changed") == true, "\(problems)")
            try FileManager.default.removeItem(at: image)
            XCTAssertEqual(try store.verify(id: "signed-1", blobs: blobs, trustedKeys: trusted).first?.hasSuffix("is missing from \(blobs.root.path)"), true)
            _ = try blobs.put(data: Data("the image".utf8))

            XCTAssertEqual(try store.verify(id: "signed-1", blobs: blobs, trustedKeys: []).first?.hasPrefix("signed by a key this lab does not trust"), true,
                           "\(backend): a signature by an unknown key proves nothing")
            store.signer = nil
            var unsigned = ExperimentResult.sample(id: "unsigned-1")
            unsigned.checksums = [:]
            try store.insert(unsigned)
            XCTAssertEqual(try store.verify(id: "unsigned-1", blobs: blobs, trustedKeys: trusted),
                           ["the bundle is not signed (stored without a signing key)"])
            XCTAssertThrowsError(try store.verify(id: "nope", blobs: blobs, trustedKeys: trusted))
        }
    }

    func testTheLabKeyIsCreatedOnceAndKeptPrivate() throws {
        let first = try BundleSigner.forLab(home)
        XCTAssertEqual(try BundleSigner.forLab(home).publicKey, first.publicKey, "the same key on every use")
        let file = home.keys.appendingPathComponent("bundle-signing.ed25519")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int, 0o600)
        let other = try BundleSigner(key: .generate())
        try FileManager.default.createDirectory(at: home.keys.appendingPathComponent("trusted"), withIntermediateDirectories: true)
        try (other.publicKey + "\n").write(to: home.keys.appendingPathComponent("trusted/bench-2.pub"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try BundleSigner.trustedKeys(home), [first.publicKey, other.publicKey])
    }
}

/// Deleting results with their blobs, and exporting them.
final class ResultLifecycleTests: XCTestCase {
    func testDeletingAResultRemovesOnlyTheBlobsNoOtherResultNeeds() throws {
        let home = LabHome(root: FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-delete-\(UUID().uuidString)"))
        defer { try? FileManager.default.removeItem(at: home.root) }
        try StoreBackends.each { store, backend in
            let blobs = home.blobs
            let shared = try blobs.put(data: Data("shared model \(backend)".utf8))
            let own = try blobs.put(data: Data("first's own input \(backend)".utf8))
            var first = ExperimentResult.sample(id: "first")
            first.checksums = ["model": shared, "input:x": own]
            var second = ExperimentResult.sample(id: "second")
            second.checksums = ["model": shared]
            try store.insert(first)
            try store.insert(second)

            let (deleted, removed) = try store.delete(id: "fir", blobs: blobs)
            XCTAssertEqual(deleted, first, "\(backend)")
            XCTAssertEqual(removed, [own], "\(backend): the model is still needed by the second result")
            XCTAssertNil(try store.result(id: "first"))
            XCTAssertEqual(try store.timings(id: "first", phase: "measure"), [], "\(backend): its raw timings go with it")
            XCTAssertEqual(try blobs.check(own), .missing)
            XCTAssertEqual(try blobs.check(shared), .intact)
            XCTAssertEqual(try store.delete(id: "second", blobs: blobs).removedBlobs, [shared], "\(backend): the last user takes it along")
            XCTAssertThrowsError(try store.delete(id: "second", blobs: blobs)) { error in
                XCTAssertTrue("\(error)".contains("no result with id 'second'"), "\(error)")
            }
        }
    }

    func testExportWritesBundlesAsJSONAndHeadlinesAsQuotedCSV() throws {
        var awkward = ExperimentResult.sample(id: "r-1")
        awkward.name = "resnet, \"int8\""
        let failed = ExperimentResult.sample(id: "r-2", status: .failed)
        let decoded = try ResultCoding.decoder.decode([ExperimentResult].self, from: Data(try ResultExport.json([awkward, failed]).utf8))
        XCTAssertEqual(decoded, [awkward, failed], "the JSON export is the stored bundles")
        let lines = ResultExport.csv([awkward, failed]).components(separatedBy: "\r\n")
        XCTAssertEqual(lines.count, 4, "header, two results, final line break")
        XCTAssertTrue(lines[0].hasPrefix("id,name,status,user,board,toolchain,toolchain_version,started_at,finished_at,iterations,median_ns"))
        XCTAssertTrue(lines[1].hasPrefix("r-1,\"resnet, \"\"int8\"\"\",succeeded,alice,"), lines[1])
        XCTAssertTrue(lines[1].contains(",5,105.0,106.6,"), "iterations, median and mean of 100, 110, 105, 98, 120: \(lines[1])")
        XCTAssertTrue(lines[2].hasSuffix(",build: the toolchain refused the model"), lines[2])
    }
}
