/// A lookup table: row `index` of weight (count, dimension) for each index. Initialised
/// N(0, 1) by PyTorch; callers choose their own initialisation.
public final class Embedding: Module {
    public let weight: Parameter
    public let count: Int, dimension: Int

    private var indices: [Int32] = []
    private var output: Tensor?

    public init(_ name: String, count: Int, dimension: Int) {
        self.count = count
        self.dimension = dimension
        weight = Parameter("\(name).weight", shape: [count, dimension])
    }

    public var parameters: [Parameter] { [weight] }

    /// Returns (B, dimension) for B indices.
    public func forward(_ indices: [Int32]) -> Tensor {
        let y = Tensor.reuse(output, shape: [indices.count, dimension]); output = y
        for (row, index) in indices.enumerated() {
            precondition(index >= 0 && Int(index) < count,
                         "Embedding: index \(index) is outside 0..<\(count)")
            (y.data + row * dimension).update(from: weight.value.data + Int(index) * dimension, count: dimension)
        }
        self.indices = indices
        return y
    }

    /// Adds dy (B, dimension) into the rows that forward read. Indices have no gradient.
    public func backward(_ dy: Tensor) {
        for (row, index) in indices.enumerated() {
            axpy(weight.grad.data + Int(index) * dimension, 1, dy.data + row * dimension, dimension)
        }
    }
}
