import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// The IDX format of MNIST and Fashion-MNIST (gzip-compressed or not): a big-endian header
/// (two zero bytes, a type byte, a dimension count, the dimensions) and the raw data.
public enum IDX {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case malformed(path: String, reason: String)
        /// A well-formed IDX file that is not what was asked for (labels where images belong).
        case unexpected(path: String, reason: String)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
            case .malformed(let path, let reason): return "\(path): not an IDX file of unsigned bytes: \(reason)"
            case .unexpected(let path, let reason): return "\(path): \(reason)"
            }
        }
    }

    /// An array of unsigned bytes with its dimensions.
    public struct Array: Sendable {
        public let dimensions: [Int]
        public let bytes: [UInt8]
    }

    /// Reads an IDX file of unsigned bytes (type 0x08), decompressing gzip transparently.
    public static func read(path: String) throws(Error) -> Array {
        let data = try inflateFile(path: path)
        guard data.count >= 4, data[0] == 0, data[1] == 0 else { throw .malformed(path: path, reason: "bad magic") }
        guard data[2] == 0x08 else { throw .malformed(path: path, reason: "element type 0x\(String(data[2], radix: 16)), expected 0x08") }
        let rank = Int(data[3])
        guard rank >= 1, data.count >= 4 + 4 * rank else { throw .malformed(path: path, reason: "truncated header") }
        var dimensions: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            dimensions.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
        }
        // Multiplied with a check: a damaged header's dimensions (2^32 - 1 each) overflow.
        var count = 1
        for dimension in dimensions {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= data.count else {
                throw .malformed(path: path, reason: "dimensions \(dimensions) announce more bytes than the file's \(data.count)")
            }
            count = product
        }
        let start = 4 + 4 * rank
        guard data.count == start + count else {
            throw .malformed(path: path, reason: "\(data.count - start) data bytes for dimensions \(dimensions)")
        }
        return Array(dimensions: dimensions, bytes: Swift.Array(data[start...]))
    }

    /// The whole file, gunzipped when it is gzip (zlib's gzread reads plain files as they are).
    static func inflateFile(path: String) throws(Error) -> [UInt8] {
        // zlib opens with open(2): errno says why it could not.
        errno = 0
        guard let file = gzopen(path, "rb") else {
            throw .unreadable(path: path, reason: errno == 0 ? "cannot open" : String(cString: strerror(errno)))
        }
        defer { gzclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
                throw .unreadable(path: path, reason: message)
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<Int(n)])
        }
        return result
    }
}
