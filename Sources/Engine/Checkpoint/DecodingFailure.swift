import Foundation

/// Why a JSON file synthd wrote could not be read back, in words a user can act on:
/// `not valid JSON`, `missing "dataset" at [0]`, `expected Int at [0].id`. Swift's own
/// description of a `DecodingError` is a dump of its `Context` with the coding keys.
public func describeDecodingFailure(_ error: any Error) -> String {
    guard let decoding = error as? DecodingError else {
        return (error as? CocoaError)?.underlying.map { "\($0)" } ?? "\(error)"
    }
    func place(_ path: [any CodingKey]) -> String {
        path.reduce("") { text, key in
            if let index = key.intValue { return text + "[\(index)]" }
            return text + (text.isEmpty ? "" : ".") + key.stringValue
        }
    }
    func at(_ context: DecodingError.Context) -> String {
        context.codingPath.isEmpty ? "" : " at \(place(context.codingPath))"
    }
    switch decoding {
    case .dataCorrupted(let context):
        // Foundation on Linux says no more than this of where the syntax breaks.
        if context.codingPath.isEmpty { return "not valid JSON" }
        return "\(context.debugDescription)\(at(context))"
    case .keyNotFound(let key, let context):
        return "missing \"\(key.stringValue)\"\(at(context))"
    case .typeMismatch(let type, let context):
        return "expected \(type)\(at(context))"
    case .valueNotFound(let type, let context):
        return "null where \(type) was expected\(at(context))"
    @unknown default:
        return "\(decoding)"
    }
}

private extension CocoaError {
    /// The system's error behind a file error (`Permission denied`), where there is one.
    var underlying: (any Error)? { userInfo[NSUnderlyingErrorKey] as? any Error }
}
