extension ConvTranspose2d {
    /// Whether `sampleImage` takes this layer: a 4/2/1 transposed convolution (G's image layer).
    public var hasImageSamplingShape: Bool { kernelSize == 4 && stride == 2 && padding == 1 }

    /// G's image layer for sampling, from channels-last activations through the BatchNorm,
    /// class scale and ReLU before it (`affine`): (B, Cout, 2H, 2W) planes, the values of
    /// `forward(x.planes(applying: affine))`.
    ///
    /// With a few output channels Winograd does not pay (its transforms cost per input
    /// channel), but the columns forward wants planes, a transpose of the largest activations
    /// in G. Channels-last is already what a GEMM wants: each pixel's Cin values times
    /// W (Cin, Cout * 16) gives the 16 taps it adds to each output channel, which are then
    /// added into the 4x4 output neighbourhood it reaches.
    public func sampleImage(_ x: ChannelsLast, _ affine: RectifiedChannelAffine) -> Tensor {
        precondition(hasImageSamplingShape, "ConvTranspose2d.sampleImage needs kernel 4, stride 2, padding 1")
        precondition(x.channels == inChannels, "ConvTranspose2d expects \(inChannels) channels, got \(x.channels)")
        precondition(affine.rows.count == x.batch && affine.scale.shape[1] == x.stride,
                     "affine for \(affine.rows.count) images of \(affine.scale.shape[1]) floats, input \(x.values.shape)")
        let (batch, height, width, cin) = (x.batch, x.height, x.width, x.stride)
        let (outHeight, outWidth) = (2 * height, 2 * width)
        let plane = height * width, outPlane = outHeight * outWidth, taps = outChannels * 16
        let y = Tensor.reuse(sampledImage, shape: [batch, outChannels, outHeight, outWidth]); sampledImage = y
        BLAS.recordFLOPs(m: batch * plane, n: taps, k: inChannels)
        // Chunks of ~4,096 pixels: their activations and taps stay in cache between the steps.
        let chunk = Swift.max(1, 4096 / plane)
        let pointers = scratch.prepare(parts: Parallel.partCount(batch),
                                       sizes: [Swift.min(chunk, batch) * plane * cin, Swift.min(chunk, batch) * plane * taps])
        let rows = affine.rows
        let bias = self.bias?.value
        Parallel.forParts(batch) { part, images in
            let activations = pointers[part, 0], tapValues = pointers[part, 1]
            for start in Swift.stride(from: images.lowerBound, to: images.upperBound, by: chunk) {
                let n = Swift.min(chunk, images.upperBound - start)
                for i in 0..<n {
                    let row = Int(rows[start + i]) * cin
                    WinogradTransposedConvolution.rectifiedAffine(
                        x.values.data + (start + i) * plane * cin, rows: 1, rowLength: plane * cin, rowStride: plane * cin,
                        scale: affine.scale.data + row, shift: affine.shift.data + row, channels: cin,
                        into: activations + i * plane * cin, targetRowStride: plane * cin)
                }
                // (pixels, Cin) . (Cin, Cout * 16): W is stored (Cin, Cout, 4, 4).
                BLAS.gemmSerial(m: n * plane, n: taps, k: inChannels, a: activations, lda: cin,
                                b: weight.value.data, ldb: taps, c: tapValues, ldc: taps)
                for i in 0..<n {
                    let out = y.data + (start + i) * outChannels * outPlane
                    for o in 0..<outChannels {
                        (out + o * outPlane).update(repeating: bias?[o] ?? 0, count: outPlane)
                    }
                    // Input pixel (iy, ix), tap (ky, kx) reaches output (2 iy - 1 + ky, 2 ix - 1 + kx).
                    for iy in 0..<height {
                        for ix in 0..<width {
                            let pixelTaps = tapValues + (i * plane + iy * width + ix) * taps
                            for o in 0..<outChannels {
                                let target = out + o * outPlane, source = pixelTaps + o * 16
                                for ky in 0..<4 {
                                    let oy = 2 * iy - 1 + ky
                                    guard oy >= 0 && oy < outHeight else { continue }
                                    for kx in 0..<4 {
                                        let ox = 2 * ix - 1 + kx
                                        guard ox >= 0 && ox < outWidth else { continue }
                                        target[oy * outWidth + ox] += source[ky * 4 + kx]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}
