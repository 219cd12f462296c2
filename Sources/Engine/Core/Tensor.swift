/// A Float32 tensor: a shape over a contiguous, row-major buffer (images are NCHW).
///
/// A tensor owns its storage, or views another tensor's storage with a different shape
/// (`reshaped(_:)`). Layers allocate their outputs once per batch size and reuse them, so a
/// steady-state training step allocates nothing; that is why a tensor is a class whose
/// contents are overwritten in place rather than a value type.
public final class Tensor: @unchecked Sendable {
    /// The element buffer, `count` Floats long.
    public let data: UnsafeMutablePointer<Float>
    public let shape: [Int]
    public let count: Int
    /// The tensor that owns `data` when this one is a view; keeps that storage alive.
    private let owner: Tensor?

    /// Bytes a tensor's storage is aligned to: a cache line, so that a 64-byte vector load at
    /// a multiple of 16 elements never straddles two lines (malloc gives 16 bytes, and its large
    /// blocks sit 16 bytes past a page: every AVX-512 load of them split).
    public static let alignment = 64

    /// A zero-filled tensor of the given shape.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let capacity = Swift.max(count, 1)
        self.data = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Float>.stride, alignment: Tensor.alignment)
            .bindMemory(to: Float.self, capacity: capacity)
        self.data.initialize(repeating: 0, count: capacity)
        self.owner = nil
    }

    /// A tensor holding a copy of `values`.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count,
                     "\(values.count) values do not fill shape \(shape) (\(count) elements)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    private init(viewing base: Tensor, shape: [Int]) {
        self.shape = shape
        self.count = base.count
        self.data = base.data
        self.owner = base.owner ?? base
    }

    deinit {
        if owner == nil { UnsafeMutableRawPointer(data).deallocate() }   // as allocated: raw, aligned
    }

    /// A view of the same elements with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count,
                     "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        return Tensor(viewing: self, shape: newShape)
    }

    public var rank: Int { shape.count }

    public subscript(index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    /// The elements as an array (for tests, checkpoints and reports; not for hot paths).
    public var values: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: data, count: count) }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    public func zero() { fill(0) }

    /// Copies the elements of `other`, which must have the same element count.
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy from \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// Whether this tensor already has exactly `shape`; layers use it to reuse buffers.
    @inlinable public func hasShape(_ shape: [Int]) -> Bool { self.shape == shape }
}

extension Tensor {
    /// Returns `buffer` when it exists with `shape`, else a fresh zero tensor of that shape.
    /// The idiom that keeps steady-state steps allocation-free.
    @inlinable
    public static func reuse(_ buffer: Tensor?, shape: [Int]) -> Tensor {
        if let buffer, buffer.shape == shape { return buffer }
        return Tensor(zeros: shape)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = (0..<Swift.min(count, 6)).map { String(data[$0]) }.joined(separator: ", ")
        return "Tensor(\(shape): [\(preview)\(count > 6 ? ", …" : "")])"
    }
}
