import Engine
import Foundation

/// Tests/GANTests/Fixtures/reference_step.json, written by scripts/make_reference_fixture.py.
struct ReferenceFixture: Decodable {
    /// A tensor summarised by evenly spaced elements and its L2 norm.
    struct Summary: Decodable {
        let count: Int
        let indices: [Int]
        let values: [Double]
        let norm: Double
    }

    let about: String
    let batch: Int
    let channels: Int
    let classes: Int
    let generatorSeed: UInt64
    let discriminatorSeed: UInt64
    let dataSeed: UInt64
    let realLabels: [Int32]
    let fakeLabels: [Int32]
    let generatorParameters: [String]
    let discriminatorParameters: [String]
    let inputs: [String: Summary]
    let expected: [String: Summary]

    static func load() throws -> ReferenceFixture {
        guard let url = Bundle.module.url(forResource: "reference_step", withExtension: "json",
                                          subdirectory: "Fixtures") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "Fixtures/reference_step.json"])
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(ReferenceFixture.self, from: Data(contentsOf: url))
    }
}

/// How a tensor differs from its summary: the worst sampled element, measured against a
/// tolerance of atol + rtol * (largest sampled magnitude), and the relative norm difference.
struct Comparison: CustomStringConvertible {
    let name: String
    let maxDiff: Double
    let scale: Double
    let normRelativeDiff: Double

    init(_ name: String, _ tensor: Tensor, _ summary: ReferenceFixture.Summary) {
        self.name = name
        precondition(tensor.count == summary.count, "\(name): \(tensor.count) elements, fixture has \(summary.count)")
        var maxDiff = 0.0
        for (index, expected) in zip(summary.indices, summary.values) {
            maxDiff = max(maxDiff, abs(Double(tensor[index]) - expected))
        }
        self.maxDiff = maxDiff
        scale = summary.values.map(abs).max() ?? 0
        var squares = 0.0
        for i in 0..<tensor.count { squares += Double(tensor[i]) * Double(tensor[i]) }
        normRelativeDiff = abs(squares.squareRoot() - summary.norm) / max(summary.norm, 1e-12)
    }

    func within(atol: Double, rtol: Double) -> Bool { maxDiff <= atol + rtol * scale }

    /// "name: maxdiff ... (scale ...)", the poor man's tensor checker of llm.c's test_gpt2.c.
    var description: String {
        String(format: "%@: maxdiff %.3g (scale %.3g), norm diff %.3g", name, maxDiff, scale, normRelativeDiff)
    }
}
