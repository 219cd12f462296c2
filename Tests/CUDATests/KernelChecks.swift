import Engine

/// Inputs and CPU references that the GPU tests and the CPU emulation of the kernels share.
enum KernelChecks {
    /// Deterministic values in [-4, 4].
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 40) % 2001 - 1000) / 250
        }
    }

    /// Odd geometries: stride 1 and 2, padding, kernel reads past the image's edge.
    static let geometries = [
        ConvGeometry(batch: 3, channels: 5, height: 7, width: 9, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1,
                     gridHeight: 7, gridWidth: 9),
        ConvGeometry(batch: 2, channels: 3, height: 9, width: 7, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1,
                     gridHeight: 4, gridWidth: 3),
        ConvGeometry(batch: 1, channels: 64, height: 8, width: 8, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1,
                     gridHeight: 4, gridWidth: 4),
    ]

    static func fields(_ g: ConvGeometry, channelMajor: Bool = false) -> [Int32] {
        [g.batch, g.channels, g.height, g.width, g.kernelHeight, g.kernelWidth, g.stride, g.padding, g.gridHeight, g.gridWidth,
         channelMajor ? 1 : 0].map { Int32($0) }
    }

    /// The engine's im2col and col2im of `image` and `cols`.
    static func cpuConvolution(_ g: ConvGeometry, image: [Float], cols: [Float]) -> (cols: [Float], image: [Float]) {
        var outCols = [Float](repeating: 0, count: cols.count), outImage = [Float](repeating: 0, count: image.count)
        image.withUnsafeBufferPointer { i in outCols.withUnsafeMutableBufferPointer { im2col($0.baseAddress!, i.baseAddress!, g) } }
        cols.withUnsafeBufferPointer { c in outImage.withUnsafeMutableBufferPointer { col2im($0.baseAddress!, c.baseAddress!, g) } }
        return (outCols, outImage)
    }

    static func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    /// DiffAugment's maps for the given per-image parameters (8 floats each: brightness,
    /// saturation, contrast, shift x, shift y, cut x, cut y, cut size), written out plainly.
    static func augment(_ x: [Float], parameters p: [Float], channels: Int, height: Int, width: Int) -> [Float] {
        let plane = height * width, size = channels * plane, batch = x.count / size
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<batch {
            let q = Array(p[(8 * b)..<(8 * b + 8)])
            var z = (0..<size).map { x[b * size + $0] + q[0] }
            if channels > 1 {
                for i in 0..<plane {
                    let m = (0..<channels).map { z[$0 * plane + i] }.reduce(0, +) / Float(channels)
                    for c in 0..<channels { z[c * plane + i] = (z[c * plane + i] - m) * q[1] + m }
                }
            }
            let mean = z.reduce(0, +) / Float(size)
            z = z.map { ($0 - mean) * q[2] + mean }
            for c in 0..<channels {
                for row in 0..<height {
                    for column in 0..<width {
                        let (fromRow, fromColumn) = (row - Int(q[4]), column - Int(q[3]))
                        let cut = row >= Int(q[6]) && row < Int(q[6]) + Int(q[7]) && column >= Int(q[5]) && column < Int(q[5]) + Int(q[7])
                        let inside = fromRow >= 0 && fromRow < height && fromColumn >= 0 && fromColumn < width
                        out[b * size + c * plane + row * width + column] = !cut && inside ? z[c * plane + fromRow * width + fromColumn] : 0
                    }
                }
            }
        }
        return out
    }

    /// Whether drawn parameters lie in DiffAugment's ranges (policy: all, 12 x 12 images).
    static func plausible(_ p: [Float]) -> Bool {
        for i in stride(from: 0, to: p.count, by: 8) {
            let colour = (-0.5...0.5).contains(p[i]) && (0...2).contains(p[i + 1]) && (0.5...1.5).contains(p[i + 2])
            let shift = abs(p[i + 3]) <= 1 && abs(p[i + 4]) <= 1
            let cut: Bool = p[i + 7] == 6 && (-3...9).contains(p[i + 5]) && (-3...9).contains(p[i + 6])
            if !(colour && shift && cut) { return false }
        }
        return true
    }

    /// <F(x) - F(0), g> and <x, B(g)>: equal when B is the adjoint of F's linear part.
    static func adjointSides(x: [Float], fx: [Float], f0: [Float], g: [Float], bg: [Float]) -> (Double, Double) {
        let left = zip(zip(fx, f0).map { Double($0 - $1) }, g).map { $0 * Double($1) }.reduce(0, +)
        let right = zip(x, bg).map { Double($0) * Double($1) }.reduce(0, +)
        return (left, right)
    }
}
