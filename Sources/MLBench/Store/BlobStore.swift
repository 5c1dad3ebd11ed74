import Foundation
import OpenSSLDriver

/// Content-addressed files: models, inputs, outputs and experiment definitions, each kept
/// once under its SHA-256 (`blobs/sha256/ab/cdef…`), whatever experiment used it. A blob is
/// written to a temporary file, hashed while it is copied, then renamed into place, so a
/// crash never leaves a blob whose content does not match its name; blobs are read-only.
public struct BlobStore: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    /// What checking a blob found.
    public enum Check: Sendable, Equatable {
        case intact
        case missing
        /// Its content no longer has the hash it is stored under.
        case changed(actualSHA256: String)
    }

    /// Where the blob with this hash is (whether or not it exists).
    public func path(of sha256: String) -> URL {
        root.appendingPathComponent("sha256", isDirectory: true)
            .appendingPathComponent(String(sha256.prefix(2)), isDirectory: true)
            .appendingPathComponent(String(sha256.dropFirst(2)))
    }

    /// Keeps a copy of the file at `path`; returns its SHA-256.
    @discardableResult
    public func put(file path: String) throws -> String {
        guard let input = FileHandle(forReadingAtPath: path) else { throw LabError.store("cannot read \(path) to keep it as a blob") }
        defer { try? input.close() }
        return try write { output, digest in
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                try chunk.withUnsafeBytes { try digest.update($0) }
                try output.write(contentsOf: chunk)
            }
        }
    }

    /// Keeps `data`; returns its SHA-256.
    @discardableResult
    public func put(data: Data) throws -> String {
        try write { output, digest in
            try data.withUnsafeBytes { try digest.update($0) }
            try output.write(contentsOf: data)
        }
    }

    private func write(_ body: (FileHandle, SHA256Digest) throws -> Void) throws -> String {
        let incoming = root.appendingPathComponent("incoming", isDirectory: true)
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        let temporary = incoming.appendingPathComponent(UUID().uuidString)
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
              let output = FileHandle(forWritingAtPath: temporary.path) else {
            throw LabError.store("cannot create \(temporary.path) in the blob store")
        }
        let hash: String
        do {
            defer { try? output.close() }
            let digest = try SHA256Digest()
            try body(output, digest)
            try output.synchronize()
            hash = try digest.finish()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        let target = path(of: hash)
        if FileManager.default.fileExists(atPath: target.path) {
            try? FileManager.default.removeItem(at: temporary) // already kept: one copy per content
            return hash
        }
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: temporary.path)
        if rename(temporary.path, target.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw LabError.store("cannot move a blob into \(target.path): \(reason)")
        }
        return hash
    }

    /// Hashes the blob again and says whether it is still what its name says.
    public func check(_ sha256: String) throws -> Check {
        let file = path(of: sha256)
        guard FileManager.default.fileExists(atPath: file.path) else { return .missing }
        let actual = try SHA256Digest.hex(ofFile: file.path)
        return actual == sha256 ? .intact : .changed(actualSHA256: actual)
    }
}
