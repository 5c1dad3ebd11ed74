import COpenSSL
import Foundation

/// An Ed25519 key (RFC 8032) through OpenSSL's EVP interface: the lab signs each stored
/// result bundle with it, so that a changed byte is detected. Owns its EVP_PKEY.
public final class Ed25519Key {
    private let key: OpaquePointer

    private init(_ key: OpaquePointer) { self.key = key }

    deinit { EVP_PKEY_free(key) }

    /// A new random key.
    public static func generate() throws -> Ed25519Key {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else { throw OpenSSLError.last("EVP_PKEY_CTX_new_id(ED25519)") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw OpenSSLError.last("EVP_PKEY_keygen_init") }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen(context, &key) == 1, let key else { throw OpenSSLError.last("EVP_PKEY_keygen") }
        return Ed25519Key(key)
    }

    /// The key whose 32-byte private part is `raw`.
    public convenience init(privateKey raw: Data) throws {
        guard raw.count == 32 else { throw OpenSSLError(call: "Ed25519 private key", detail: "\(raw.count) bytes, not 32") }
        let key = raw.withUnsafeBytes { EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.bindMemory(to: UInt8.self).baseAddress, 32) }
        guard let key else { throw OpenSSLError.last("EVP_PKEY_new_raw_private_key") }
        self.init(key)
    }

    public var privateKey: Data { get throws { try Self.raw(key, EVP_PKEY_get_raw_private_key, "EVP_PKEY_get_raw_private_key") } }
    public var publicKey: Data { get throws { try Self.raw(key, EVP_PKEY_get_raw_public_key, "EVP_PKEY_get_raw_public_key") } }

    private typealias RawGetter = (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<Int>?) -> Int32

    private static func raw(_ key: OpaquePointer, _ get: RawGetter, _ call: String) throws -> Data {
        var bytes = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard get(key, &bytes, &length) == 1 else { throw OpenSSLError.last(call) }
        return Data(bytes.prefix(length))
    }

    /// The 64-byte signature of `message`.
    public func sign(_ message: Data) throws -> Data {
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLError.last("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1 else { throw OpenSSLError.last("EVP_DigestSignInit") }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let result = message.withUnsafeBytes {
            EVP_DigestSign(context, &signature, &length, $0.bindMemory(to: UInt8.self).baseAddress, $0.count)
        }
        guard result == 1 else { throw OpenSSLError.last("EVP_DigestSign") }
        return Data(signature.prefix(length))
    }

    /// Whether `signature` is `publicKey`'s signature of `message`. A malformed key is an
    /// error; a wrong signature is `false`.
    public static func verify(signature: Data, of message: Data, publicKey: Data) throws -> Bool {
        guard publicKey.count == 32 else { throw OpenSSLError(call: "Ed25519 public key", detail: "\(publicKey.count) bytes, not 32") }
        let key = publicKey.withUnsafeBytes { EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.bindMemory(to: UInt8.self).baseAddress, 32) }
        guard let key else { throw OpenSSLError.last("EVP_PKEY_new_raw_public_key") }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLError.last("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else { throw OpenSSLError.last("EVP_DigestVerifyInit") }
        let result = signature.withUnsafeBytes { signatureBytes in
            message.withUnsafeBytes { messageBytes in
                EVP_DigestVerify(context, signatureBytes.bindMemory(to: UInt8.self).baseAddress, signatureBytes.count,
                                 messageBytes.bindMemory(to: UInt8.self).baseAddress, messageBytes.count)
            }
        }
        ERR_clear_error() // a failed verification leaves an error queued; it is an answer, not an error
        return result == 1
    }
}
