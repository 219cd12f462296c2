import Foundation

/// A strict reader for the subset of TOML that synthd's configuration uses: `[table]` and
/// `[table.sub]` headers, `key = value` with bare keys, basic ("...") and literal ('...')
/// strings, integers, floats, booleans, one-line arrays, and `#` comments.
///
/// (TOMLKit, the usual choice, depends on a package that cannot be fetched here; this subset is
/// small enough to own, and it reports every error with its line.)
public enum TOML {
    public indirect enum Value: Equatable, Sendable {
        case string(String)
        case integer(Int)
        case float(Double)
        case boolean(Bool)
        case array([Value])

        public var typeName: String {
            switch self {
            case .string: return "a string"
            case .integer: return "an integer"
            case .float: return "a number"
            case .boolean: return "true or false"
            case .array: return "an array"
            }
        }
    }

    /// A key's value and the line it was set on.
    public struct Entry: Equatable, Sendable {
        public let value: Value
        public let line: Int
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Tables by dotted name ("" is the root table), each a dictionary of entries.
    public static func parse(_ text: String) throws(ParseError) -> [String: [String: Entry]] {
        var tables: [String: [String: Entry]] = ["": [:]]
        var current = ""
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var scanner = Scanner(Array(rawLine.utf8), line: lineNumber)
            scanner.skipSpace()
            if scanner.atEndOrComment { continue }
            if scanner.peek == UInt8(ascii: "[") {
                scanner.advance()
                let name = try scanner.dottedName()
                try scanner.expect("]")
                try scanner.expectEnd()
                guard tables[name] == nil else { throw ParseError(line: lineNumber, reason: "table [\(name)] is defined twice") }
                tables[name] = [:]
                current = name
                continue
            }
            let key = try scanner.bareKey()
            scanner.skipSpace()
            if scanner.peek == UInt8(ascii: ".") {
                throw ParseError(line: lineNumber, reason: "dotted keys are not supported; use a [table] header")
            }
            try scanner.expect("=")
            let value = try scanner.value()
            try scanner.expectEnd()
            guard tables[current]![key] == nil else {
                throw ParseError(line: lineNumber, reason: "key '\(key)' is set twice")
            }
            tables[current]![key] = Entry(value: value, line: lineNumber)
        }
        return tables
    }

    struct Scanner {
        let bytes: [UInt8]
        let line: Int
        var position = 0

        init(_ bytes: [UInt8], line: Int) {
            self.bytes = bytes.last == UInt8(ascii: "\r") ? Array(bytes.dropLast()) : bytes
            self.line = line
        }

        var peek: UInt8? { position < bytes.count ? bytes[position] : nil }
        mutating func advance() { position += 1 }
        var atEndOrComment: Bool { peek == nil || peek == UInt8(ascii: "#") }

        func error(_ reason: String) -> ParseError { ParseError(line: line, reason: reason) }

        mutating func skipSpace() {
            while let c = peek, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { advance() }
        }

        mutating func expect(_ character: Character) throws(ParseError) {
            skipSpace()
            guard peek == character.asciiValue else { throw error("expected '\(character)'") }
            advance()
        }

        mutating func expectEnd() throws(ParseError) {
            skipSpace()
            guard atEndOrComment else { throw error("unexpected text after the value") }
        }

        static func isBare(_ c: UInt8) -> Bool {
            (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 95 || c == 45
        }

        mutating func bareKey() throws(ParseError) -> String {
            skipSpace()
            let start = position
            while let c = peek, Self.isBare(c) { advance() }
            guard position > start else { throw error("expected a key (letters, digits, '_' or '-')") }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }

        mutating func dottedName() throws(ParseError) -> String {
            var parts = [try bareKey()]
            skipSpace()
            while peek == UInt8(ascii: ".") {
                advance()
                parts.append(try bareKey())
                skipSpace()
            }
            return parts.joined(separator: ".")
        }

        /// Arrays in arrays at most this deep: each level is a frame of this recursion, and a
        /// line of a million '[' (a dataset's synthd.toml is anyone's to write) overflowed the
        /// daemon's stack.
        static let maxNesting = 8

        mutating func value(depth: Int = 0) throws(ParseError) -> Value {
            skipSpace()
            guard let c = peek else { throw error("expected a value after '='") }
            switch c {
            case UInt8(ascii: "\""): return .string(try basicString())
            case UInt8(ascii: "'"): return .string(try literalString())
            case UInt8(ascii: "["):
                guard depth < Self.maxNesting else { throw error("arrays nested more than \(Self.maxNesting) deep") }
                return try array(depth: depth + 1)
            default: return try scalar()
            }
        }

        mutating func basicString() throws(ParseError) -> String {
            advance()
            var result: [UInt8] = []
            while let c = peek {
                advance()
                if c == UInt8(ascii: "\"") { return String(decoding: result, as: UTF8.self) }
                if c == UInt8(ascii: "\\") {
                    guard let e = peek else { break }
                    advance()
                    switch e {
                    case UInt8(ascii: "n"): result.append(10)
                    case UInt8(ascii: "t"): result.append(9)
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): result.append(e)
                    default: throw error("unsupported escape '\\\(Character(UnicodeScalar(e)))' in a string")
                    }
                } else {
                    result.append(c)
                }
            }
            throw error("unterminated string")
        }

        mutating func literalString() throws(ParseError) -> String {
            advance()
            let start = position
            while let c = peek, c != UInt8(ascii: "'") { advance() }
            guard peek != nil else { throw error("unterminated string") }
            defer { advance() }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }

        mutating func array(depth: Int) throws(ParseError) -> Value {
            advance()
            var items: [Value] = []
            skipSpace()
            if peek == UInt8(ascii: "]") { advance(); return .array(items) }
            while true {
                items.append(try value(depth: depth))
                skipSpace()
                if peek == UInt8(ascii: ",") { advance(); skipSpace(); if peek == UInt8(ascii: "]") { advance(); return .array(items) }; continue }
                if peek == UInt8(ascii: "]") { advance(); return .array(items) }
                throw error("expected ',' or ']' in an array (arrays must fit on one line)")
            }
        }

        mutating func scalar() throws(ParseError) -> Value {
            let start = position
            while let c = peek, c != UInt8(ascii: " "), c != UInt8(ascii: "\t"), c != UInt8(ascii: "#"),
                  c != UInt8(ascii: ","), c != UInt8(ascii: "]") { advance() }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            if text == "true" { return .boolean(true) }
            if text == "false" { return .boolean(false) }
            let digits = text.replacingOccurrences(of: "_", with: "")
            if let integer = Int(digits) { return .integer(integer) }
            if digits.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let number = Double(digits), number.isFinite {
                return .float(number)
            }
            // TOML's inf and nan are floats, but no setting takes one: said as such, not as a
            // string without quotes.
            if ["inf", "+inf", "-inf", "nan", "+nan", "-nan"].contains(text) { throw error("'\(text)' is not allowed here: give a finite number") }
            throw error(text.isEmpty ? "expected a value" : "'\(text)' is not a value (strings need quotes)")
        }
    }
}
