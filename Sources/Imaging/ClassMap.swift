/// Class names in index order. It only grows: a class added later gets the next index and
/// the existing ones keep theirs, so a model's embedding rows stay meaningful.
public struct ClassMap: Sendable, Equatable, Codable {
    public private(set) var names: [String]

    public init(names: [String] = []) { self.names = names }

    public var count: Int { names.count }

    public func index(of name: String) -> Int? { names.firstIndex(of: name) }

    /// The index of `name`, appending it when new.
    @discardableResult
    public mutating func insert(_ name: String) -> Int {
        if let index = index(of: name) { return index }
        names.append(name)
        return names.count - 1
    }
}
