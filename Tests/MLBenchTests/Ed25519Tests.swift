import Foundation
import OpenSSLDriver
import XCTest

/// Ed25519 through OpenSSL against RFC 8032's test vectors, and tampering detected.
final class Ed25519Tests: XCTestCase {
    func bytes(_ hex: String) -> Data {
        Data(stride(from: 0, to: hex.count, by: 2).map { UInt8(hex.dropFirst($0).prefix(2), radix: 16)! })
    }

    func testRFC8032VectorsAreReproduced() throws {
        // RFC 8032, section 7.1, tests 1 and 2.
        let vectors = [
            ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
             "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
             "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
            ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
             "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
             "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ]
        for (secret, publicKey, message, signature) in vectors {
            let key = try Ed25519Key(privateKey: bytes(secret))
            XCTAssertEqual(try key.publicKey, bytes(publicKey))
            XCTAssertEqual(try key.sign(bytes(message)), bytes(signature))
            XCTAssertTrue(try Ed25519Key.verify(signature: bytes(signature), of: bytes(message), publicKey: bytes(publicKey)))
        }
    }

    func testAnyChangedByteOrAnotherKeyFailsVerification() throws {
        let key = try Ed25519Key.generate()
        let message = Data("a result bundle".utf8)
        let signature = try key.sign(message)
        XCTAssertTrue(try Ed25519Key.verify(signature: signature, of: message, publicKey: key.publicKey))
        for index in message.indices {
            var changed = message
            changed[index] ^= 0x01
            XCTAssertFalse(try Ed25519Key.verify(signature: signature, of: changed, publicKey: key.publicKey), "byte \(index)")
        }
        XCTAssertFalse(try Ed25519Key.verify(signature: signature, of: message, publicKey: Ed25519Key.generate().publicKey))
        XCTAssertEqual(try Ed25519Key(privateKey: key.privateKey).publicKey, try key.publicKey, "the key round-trips through its raw bytes")
        XCTAssertThrowsError(try Ed25519Key(privateKey: Data(count: 5)))
    }
}
