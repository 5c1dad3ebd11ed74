import Foundation
import OpenSSLDriver

/// Signs each stored result bundle with the bench host's Ed25519 key (through OpenSSL), so
/// that `mlbench verify` can tell whether any byte of it changed since it was stored.
public final class BundleSigner {
    private let key: Ed25519Key
    /// The public key, in hex: stored beside each signature.
    public let publicKey: String

    public init(key: Ed25519Key) throws {
        self.key = key
        publicKey = try key.publicKey.hexString
    }

    /// The lab's key (`keys/bundle-signing.ed25519` in its home), created on first use and
    /// readable by its owner only.
    public static func forLab(_ home: LabHome) throws -> BundleSigner {
        let file = home.keys.appendingPathComponent("bundle-signing.ed25519")
        if let text = try? String(contentsOf: file, encoding: .utf8) {
            guard let raw = Data(hex: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw LabError.store("the signing key \(file.path) is not a hex Ed25519 private key")
            }
            return try BundleSigner(key: Ed25519Key(privateKey: raw))
        }
        try FileManager.default.createDirectory(at: home.keys, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let key = try Ed25519Key.generate()
        guard FileManager.default.createFile(atPath: file.path, contents: Data(try key.privateKey.hexString.utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw LabError.store("cannot write the signing key \(file.path)")
        }
        return try BundleSigner(key: key)
    }

    /// The public keys whose signatures this lab accepts: its own, and those of the other
    /// bench hosts sharing its store (`keys/trusted/*.pub`, one hex key each).
    public static func trustedKeys(_ home: LabHome) throws -> Set<String> {
        var keys: Set<String> = [try forLab(home).publicKey]
        let folder = home.keys.appendingPathComponent("trusted", isDirectory: true)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasSuffix(".pub") {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            keys.insert(text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased())
        }
        return keys
    }

    /// The signature (hex) of a bundle's exact stored text.
    public func sign(_ bundle: String) throws -> String { try key.sign(Data(bundle.utf8)).hexString }
}

extension LabStore {
    /// Checks a stored result: its bundle's signature (by a trusted key) over the exact
    /// stored text, and every file it names by SHA-256 against the blob store. Returns what
    /// is wrong, one line each; empty when the result is intact.
    public func verify(id: String, blobs: BlobStore, trustedKeys: Set<String>) throws -> [String] {
        let rows = try connection.query("SELECT id, bundle, signature, signing_key FROM results WHERE id = ? OR id LIKE ? LIMIT 2",
                                        [.text(id), .text(id + "%")])
        if rows.count > 1 { throw LabError.usage("the id prefix '\(id)' matches several results; give more of it") }
        guard let row = rows.first, let bundle = row[1].text else { throw LabError.usage("no result with id '\(id)' in \(location)") }
        var problems = [String]()
        if let signature = row[2].text.flatMap({ Data(hex: $0) }), let keyText = row[3].text, let key = Data(hex: keyText) {
            if !trustedKeys.contains(keyText) {
                problems.append("signed by a key this lab does not trust (\(keyText.prefix(16))…)")
            } else if !(try Ed25519Key.verify(signature: signature, of: Data(bundle.utf8), publicKey: key)) {
                problems.append("the bundle's signature does not match its content: the stored bundle was changed")
            }
        } else {
            problems.append("the bundle is not signed (stored without a signing key)")
        }
        let result: ExperimentResult
        do {
            result = try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(bundle.utf8))
        } catch {
            return problems + ["the bundle cannot be read: \(error)"]
        }
        for (name, sha256) in result.checksums.sorted(by: { $0.key < $1.key }) {
            switch try blobs.check(sha256) {
            case .intact: break
            case .missing: problems.append("\(name): blob \(sha256) is missing from \(blobs.root.path)")
            case .changed(let actual): problems.append("\(name): blob \(sha256) was changed (its content now hashes to \(actual))")
            }
        }
        return problems
    }
}

extension Data {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }

    /// The bytes written as hex, or nil when `hex` is not an even run of hex digits.
    init?(hex: String) {
        guard hex.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}
