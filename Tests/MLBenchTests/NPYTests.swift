import Foundation
import XCTest
import MLBench
@testable import MLBenchCore

final class NPYTests: XCTestCase {
    /// A `.npy` file built by hand, independently of `NPY.encode`: the header padded with
    /// spaces and a newline to a 64-byte boundary, as NumPy writes it.
    private func npyFile(descr: String, shape: String, fortran: Bool = false, major: UInt8 = 1,
                         body: [UInt8]) -> Data {
        let prefix = major == 1 ? 10 : 12
        var header = Array("{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }".utf8)
        header += [UInt8](repeating: 0x20, count: (64 - (prefix + header.count + 1) % 64) % 64) + [0x0A]
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let length = header.count
        bytes += major == 1 ? [UInt8(length & 0xFF), UInt8(length >> 8)]
                            : [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length >> 16), 0]
        return Data(bytes + header + body)
    }

    private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    private func temporaryURL(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-npy-\(UUID().uuidString)-\(name)")
    }

    // What `np.save(f, np.array([[1, 2, 3], [4, 5, 6]], dtype='<f4'))` writes, byte for byte.
    private let numpyFloat32TwoByThree: Data = {
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00]
        bytes += Array("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".utf8)
        bytes += [UInt8](repeating: 0x20, count: 58) + [0x0A]
        bytes += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40,
                  0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0xA0, 0x40, 0x00, 0x00, 0xC0, 0x40]
        return Data(bytes)
    }()

    func testDecodesHandBuiltVersion1Float32() throws {
        XCTAssertEqual(numpyFloat32TwoByThree.count, 152)
        let tensor = try NPY.decode(numpyFloat32TwoByThree, source: "hand-built")
        XCTAssertEqual(tensor, Tensor(shape: [2, 3], dtype: "<f4", values: [1, 2, 3, 4, 5, 6]))
    }

    func testEncodesFloat32ExactlyAsNumpyDoes() {
        let tensor = Tensor(shape: [2, 3], dtype: "<f4", values: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(NPY.encode(tensor), numpyFloat32TwoByThree)
    }

    func testRoundTripsThroughAFile() throws {
        let tensors = [
            Tensor(shape: [2, 3, 4], dtype: "<f8", values: (0..<23).map { Double($0) * -0.37 } + [0x1p-1060]),  // a subnormal too
            Tensor(shape: [3], dtype: "<f8", values: [1.5, -2, 3e10]),
            Tensor(shape: [], dtype: "<f8", values: [2.5]),
            Tensor(shape: [0, 5], dtype: "<f8", values: []),
            Tensor(shape: [4, 1], dtype: "<f4", values: [0.5, -1.25, 1024, .infinity]),
        ]
        for tensor in tensors {
            let url = temporaryURL("roundtrip.npy")
            defer { try? FileManager.default.removeItem(at: url) }
            try NPY.write(tensor, to: url)
            XCTAssertEqual(try NPY.read(contentsOf: url), tensor)
            // The data starts on a 64-byte boundary.
            let data = try Data(contentsOf: url)
            let headerLength = Int(data[8]) | Int(data[9]) << 8
            XCTAssertEqual((10 + headerLength) % 64, 0)
        }
    }

    func testOtherDtypesAreWrittenAsFloat64() throws {
        let tensor = Tensor(shape: [3], dtype: "<i8", values: [1, -2, 9_007_199_254_740_992])
        let decoded = try NPY.decode(NPY.encode(tensor), source: "memory")
        XCTAssertEqual(decoded.dtype, "<f8")
        XCTAssertEqual(decoded.values, tensor.values)
        // Values that do not fit a float32 exactly are rounded when written as <f4.
        let single = try NPY.decode(NPY.encode(Tensor(shape: [1], dtype: "<f4", values: [0.1])), source: "memory")
        XCTAssertEqual(single.values[0], Double(Float(0.1)))
    }

    func testReadsVersion2And3Headers() throws {
        let body = littleEndianBytes([Double(7).bitPattern, Double(-8).bitPattern])
        let v2 = try NPY.decode(npyFile(descr: "<f8", shape: "(2,)", major: 2, body: body), source: "v2")
        XCTAssertEqual(v2, Tensor(shape: [2], dtype: "<f8", values: [7, -8]))
        let v3 = try NPY.decode(npyFile(descr: "<f8", shape: "(1, 2)", major: 3, body: body), source: "v3")
        XCTAssertEqual(v3, Tensor(shape: [1, 2], dtype: "<f8", values: [7, -8]))
    }

    func testWidensIntegerBooleanAndHalfDtypes() throws {
        func decode(_ descr: String, _ shape: String, _ body: [UInt8]) throws -> Tensor {
            try NPY.decode(npyFile(descr: descr, shape: shape, body: body), source: descr)
        }
        XCTAssertEqual(try decode("|i1", "(3,)", [0x01, 0xFF, 0x80]).values, [1, -1, -128])
        XCTAssertEqual(try decode("<i1", "(1,)", [0xFE]).dtype, "|i1")
        XCTAssertEqual(try decode("|u1", "(2,)", [0x00, 0xFF]).values, [0, 255])
        XCTAssertEqual(try decode("<i2", "(2,)", littleEndianBytes([Int16(-300), 300])).values, [-300, 300])
        XCTAssertEqual(try decode("<u2", "(1,)", littleEndianBytes([UInt16(65535)])).values, [65535])
        XCTAssertEqual(try decode("<i4", "(2,)", littleEndianBytes([Int32(-70000), 1])).values, [-70000, 1])
        XCTAssertEqual(try decode("<u4", "(1,)", littleEndianBytes([UInt32.max])).values, [4_294_967_295])
        XCTAssertEqual(try decode("<i8", "(2,)", littleEndianBytes([Int64(-1) << 40, 5])).values, [-1_099_511_627_776, 5])
        XCTAssertEqual(try decode("<u8", "(1,)", littleEndianBytes([UInt64(1) << 53])).values, [9_007_199_254_740_992])
        let booleans = try decode("|b1", "(3,)", [1, 0, 1])
        XCTAssertEqual(booleans, Tensor(shape: [3], dtype: "|b1", values: [1, 0, 1]))
        // np.array([1, -2, 70000, 6e-8], dtype='<f2'): 70000 overflows to inf, 6e-8 is subnormal.
        let half = try decode("<f2", "(5,)", [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x7C, 0x01, 0x00, 0x00, 0x7E])
        XCTAssertEqual(half.dtype, "<f2")
        XCTAssertEqual(Array(half.values.prefix(4)), [1, -2, .infinity, 0x1p-24])
        XCTAssertTrue(half.values[4].isNaN)
        XCTAssertEqual(NPY.halfToDouble(0x3555), 0.333251953125)
        XCTAssertEqual(NPY.halfToDouble(0x7BFF), 65504)
        // '=' is native order, little-endian here.
        XCTAssertEqual(try decode("=f4", "(1,)", littleEndianBytes([Float(1.5).bitPattern])).dtype, "<f4")
    }

    func testTruncatedDataIsReportedWithBothSizes() {
        let file = npyFile(descr: "<f4", shape: "(2, 3)", body: [UInt8](repeating: 0, count: 20))
        XCTAssertThrowsError(try NPY.decode(file, source: "outputs/logits.npy")) { error in
            let npyError = error as? NPYError
            XCTAssertEqual(npyError?.problem, .truncatedData(expected: 24, got: 20))
            XCTAssertEqual(npyError?.source, "outputs/logits.npy")
            XCTAssertTrue("\(error)".contains("outputs/logits.npy"))
            XCTAssertTrue("\(error)".contains("truncated data: expected 24 bytes got 20"), "\(error)")
        }
        // Bytes after the data are ignored, as NumPy does.
        let longer = npyFile(descr: "<f4", shape: "(1,)", body: [0, 0, 0x80, 0x3F, 0xAA])
        XCTAssertEqual(try NPY.decode(longer, source: "x").values, [1])
    }

    func testBigEndianIsRefused() {
        let file = npyFile(descr: ">i4", shape: "(1,)", body: [0, 0, 0, 1])
        XCTAssertThrowsError(try NPY.decode(file, source: "be.npy")) { error in
            XCTAssertEqual((error as? NPYError)?.problem, .bigEndian(">i4"))
            XCTAssertTrue("\(error)".contains("big-endian"), "\(error)")
            XCTAssertTrue("\(error)".contains("'>i4'"), "\(error)")
        }
    }

    func testFortranOrderIsRefused() {
        let file = npyFile(descr: "<f8", shape: "(2, 2)", fortran: true, body: [UInt8](repeating: 0, count: 32))
        XCTAssertThrowsError(try NPY.decode(file, source: "f.npy")) { error in
            XCTAssertEqual((error as? NPYError)?.problem, .fortranOrder)
            XCTAssertTrue("\(error)".contains("fortran_order"), "\(error)")
        }
    }

    func testMalformedFilesAreNamedAndExplained() {
        func problem(_ data: Data) -> NPYError.Problem? {
            do {
                _ = try NPY.decode(data, source: "bad.npy")
                return nil
            } catch {
                return (error as? NPYError)?.problem
            }
        }
        XCTAssertEqual(problem(Data("PK\u{3}\u{4} a zip file".utf8)), .badMagic)
        XCTAssertEqual(problem(Data()), .badMagic)
        XCTAssertEqual(problem(npyFile(descr: "<c8", shape: "(1,)", body: [UInt8](repeating: 0, count: 8))),
                       .unsupportedDtype("<c8"))
        XCTAssertEqual(problem(npyFile(descr: "<U3", shape: "(1,)", body: [UInt8](repeating: 0, count: 12))),
                       .unsupportedDtype("<U3"))
        var unsupportedVersion = npyFile(descr: "<f8", shape: "(1,)", body: [UInt8](repeating: 0, count: 8))
        unsupportedVersion[6] = 4
        XCTAssertEqual(problem(unsupportedVersion), .unsupportedVersion(major: 4, minor: 0))
        XCTAssertEqual(problem(numpyFloat32TwoByThree.prefix(60)), .truncatedHeader(expected: 128, got: 60))

        var structured: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let header = Array("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n".utf8)
        structured += [UInt8(header.count), 0] + header + [0, 0, 0, 0]
        guard case .unsupportedDtype = problem(Data(structured)) else {
            return XCTFail("a structured dtype must be an unsupported dtype")
        }
        for badHeader in ["{'descr': '<f8', 'fortran_order': False, }",
                          "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
                          "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), ",
                          "['descr', '<f8']"] {
            let bytes = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(badHeader.utf8.count), 0] + Array(badHeader.utf8)
            guard case .badHeader = problem(Data(bytes)) else {
                XCTFail("\(badHeader) must be a bad header")
                continue
            }
        }
        let description = NPYError(source: "m.npy", problem: .unsupportedDtype("<c8")).description
        XCTAssertTrue(description.hasPrefix("m.npy: unsupported dtype '<c8'"), description)
    }

    func testMissingFileIsNamed() {
        let url = temporaryURL("absent.npy")
        XCTAssertThrowsError(try NPY.read(contentsOf: url)) { error in
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
        }
    }

    func testTenMegabyteFileReadsQuickly() throws {
        let count = 2_621_440  // 10 MiB of float32
        let tensor = Tensor(shape: [count / 1024, 1024], dtype: "<f4", values: (0..<count).map { Double($0 % 4096) - 2048 })
        let data = NPY.encode(tensor)
        let start = Date()
        let decoded = try NPY.decode(data, source: "big")
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(decoded, tensor)
        // About 0.02 s optimised and 0.2 s unoptimised; byte-by-byte reading would be far slower.
        #if DEBUG
        XCTAssertLessThan(elapsed, 3)
        #else
        XCTAssertLessThan(elapsed, 0.5)
        #endif
    }
}
