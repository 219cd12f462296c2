import Foundation

/// The one JSON form of what synthd writes for people and scripts to read (the records in state
/// folders, `--json` output): indented, keys sorted, slashes left as they are (paths stay
/// readable), times in ISO 8601. Written in one place so that every record and every `--json`
/// says a time the same way.
public enum RecordJSON {
    public static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(value))
    }

    /// As `encode`, as text (for printing).
    public static func text<Value: Encodable>(_ value: Value) throws -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }

    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: some DataProtocol) throws -> Value {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: Data(bytes))
    }
}
