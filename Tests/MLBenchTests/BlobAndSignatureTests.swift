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
