import COpenSSL
import Foundation

/// An error from OpenSSL's libcrypto, with the call that failed.
public struct OpenSSLError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var detail: String
    public var description: String { "OpenSSL \(call) failed: \(detail)" }

    static func last(_ call: String) -> OpenSSLError {
        let code = ERR_get_error()
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return OpenSSLError(call: call, detail: code == 0 ? "no error queued" : String(cString: buffer))
    }
}

/// SHA-256 through OpenSSL's EVP interface: the checksum of every input and
/// output the lab stores.
public struct SHA256Digest {
    private let context: OpaquePointer

    public init() throws {
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLError.last("EVP_MD_CTX_new") }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw OpenSSLError.last("EVP_DigestInit_ex")
        }
        self.context = context
    }

    public func update(_ bytes: UnsafeRawBufferPointer) throws {
        guard EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1 else { throw OpenSSLError.last("EVP_DigestUpdate") }
    }

    /// The digest in lowercase hex; the context is released.
    public func finish() throws -> String {
        defer { EVP_MD_CTX_free(context) }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &digest, &length) == 1 else { throw OpenSSLError.last("EVP_DigestFinal_ex") }
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(of data: Data) throws -> String {
        let digest = try SHA256Digest()
        try data.withUnsafeBytes { try digest.update($0) }
        return try digest.finish()
    }

    /// Hashes a file in chunks, so large models are never held in memory whole.
    public static func hex(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw OpenSSLError(call: "SHA-256 of \(path)", detail: "cannot open the file")
        }
        defer { try? handle.close() }
        let digest = try SHA256Digest()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            try chunk.withUnsafeBytes { try digest.update($0) }
        }
        return try digest.finish()
    }
}
