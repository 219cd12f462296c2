/// A seeded, reproducible random stream: SplitMix64 (Steele, Lea & Flood 2014).
///
/// The state is the seed and a counter, so a stream can be saved in a checkpoint and resumed,
/// and reproduced outside Swift: the n-th 64-bit output is `mix(seed + n * golden)`, which
/// `scripts/reference_model.py` computes with NumPy to feed PyTorch the same numbers.
///
/// Uniform floats take the top 24 bits (exactly representable in Float32). Normals use the
/// Box-Muller transform on pairs, in Double, and keep both values of a pair.
public struct RandomGenerator: Sendable, Equatable {
    public static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    public let seed: UInt64
    /// How many 64-bit outputs have been drawn.
    public private(set) var counter: UInt64
    /// The second value of the last Box-Muller pair, if it has not been used yet.
    public private(set) var spareNormal: Float?

    public init(seed: UInt64) {
        self.seed = seed
        self.counter = 0
        self.spareNormal = nil
    }

    /// Restores a saved stream position.
    public init(seed: UInt64, counter: UInt64, spareNormal: Float?) {
        self.seed = seed
        self.counter = counter
        self.spareNormal = spareNormal
    }

    @inlinable
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func nextUInt64() -> UInt64 {
        counter &+= 1
        return Self.mix(seed &+ counter &* Self.golden)
    }

    /// Uniform in [0, 1), a multiple of 2^-24.
    public mutating func uniform() -> Float {
        Float(nextUInt64() >> 40) * 0x1p-24
    }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * uniform()
    }

    /// Uniform integer in 0..<bound (bound > 0), by multiply-shift on the top 32 bits.
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0, "int(below:) needs a positive bound, got \(bound)")
        return Int(((nextUInt64() >> 32) &* UInt64(bound)) >> 32)
    }

    /// Shuffles `elements` in place (Fisher-Yates, from the last element down): the one seeded
    /// shuffle that data order, sampling order, subsets and imports all use.
    public mutating func shuffle<T>(_ elements: inout [T]) {
        for i in stride(from: elements.count - 1, to: 0, by: -1) { elements.swapAt(i, int(below: i + 1)) }
    }

    /// Standard normal.
    public mutating func normal() -> Float {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        // u1 in (0, 1] so that log(u1) is finite.
        let u1 = (Double(nextUInt64() >> 11) + 1) * 0x1p-53
        let u2 = Double(nextUInt64() >> 11) * 0x1p-53
        let radius = (-2 * _log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        spareNormal = Float(radius * _sin(angle))
        return Float(radius * _cos(angle))
    }

    /// Fills `tensor` with normal values of the given mean and standard deviation.
    public mutating func fillNormal(_ tensor: Tensor, mean: Float = 0, std: Float = 1) {
        for i in 0..<tensor.count { tensor.data[i] = mean + std * normal() }
    }

    /// Fills `tensor` with uniform values in [low, high).
    public mutating func fillUniform(_ tensor: Tensor, _ low: Float, _ high: Float) {
        for i in 0..<tensor.count { tensor.data[i] = uniform(low, high) }
    }
}

// Foundation-free libm access, so the engine does not import Foundation.
#if canImport(Glibc)
import Glibc
@inline(__always) @usableFromInline func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) @usableFromInline func _sin(_ x: Double) -> Double { Glibc.sin(x) }
@inline(__always) @usableFromInline func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) @usableFromInline func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) @usableFromInline func _sin(_ x: Double) -> Double { Darwin.sin(x) }
@inline(__always) @usableFromInline func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
