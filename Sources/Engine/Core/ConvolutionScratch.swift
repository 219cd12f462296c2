/// Per-thread working memory of a convolution layer, reused across steps.
///
/// Convolutions run over the batch in chunks of a few images per thread, so that a chunk's
/// column matrix (~1 MiB) stays in the core's L2 cache between im2col and the GEMM that reads
/// it. Materialising the whole batch's columns at once (16 MiB for the reference D's second
/// convolution) made im2col and col2im memory-bound: 4 ms each, against ~1 ms per chunked pass.
final class ConvolutionScratch {
    /// Column-matrix floats a chunk aims for (1 MiB).
    static let targetColumnFloats = 1 << 18

    private var tensors: [[Tensor]] = []
    /// Buffers that every thread of a pass shares (each writing its own rows).
    private var sharedTensors: [Tensor] = []
    /// Whose Winograd-transformed images shared slot 0 holds, if a pass said so (see
    /// `TransformedImages`); forgotten by the next `prepareShared`, whoever calls it.
    var transformedImages: TransformedImages?

    /// Returns `pointers[part][slot]`, each at least `sizes[slot]` floats, allocating on the
    /// calling thread so that the parallel region that uses them only reads.
    func prepare(parts: Int, sizes: [Int]) -> ScratchPointers {
        while tensors.count < parts { tensors.append([]) }
        for part in 0..<parts {
            for (slot, size) in sizes.enumerated() {
                if tensors[part].count <= slot { tensors[part].append(Tensor(zeros: [size])) }
                if tensors[part][slot].count < size { tensors[part][slot] = Tensor(zeros: [size]) }
            }
        }
        return ScratchPointers(pointers: (0..<parts).map { part in sizes.indices.map { tensors[part][$0].data } })
    }

    /// Returns `pointers[slot]`, each at least `sizes[slot]` floats, one set for all threads.
    func prepareShared(sizes: [Int]) -> UncheckedSendable<[UnsafeMutablePointer<Float>]> {
        transformedImages = nil
        for (slot, size) in sizes.enumerated() {
            if sharedTensors.count <= slot { sharedTensors.append(Tensor(zeros: [size])) }
            if sharedTensors[slot].count < size { sharedTensors[slot] = Tensor(zeros: [size]) }
        }
        return UncheckedSendable(sizes.indices.map { sharedTensors[$0].data })
    }

    /// Images per chunk for a column matrix of `columnFloatsPerImage` floats per image.
    static func imagesPerChunk(columnFloatsPerImage: Int) -> Int {
        Swift.max(1, targetColumnFloats / Swift.max(columnFloatsPerImage, 1))
    }
}

struct ScratchPointers: @unchecked Sendable {
    let pointers: [[UnsafeMutablePointer<Float>]]
    subscript(part: Int, slot: Int) -> UnsafeMutablePointer<Float> { pointers[part][slot] }

    /// Adds slot `slot` of parts 1... (per-thread partial gradients) into `gradient`;
    /// part 0 accumulates into the gradient directly.
    func addPartials(slot: Int, into gradient: Tensor) {
        for part in pointers.indices.dropFirst() { axpy(gradient.data, 1, pointers[part][slot], gradient.count) }
    }

    var parts: Int { pointers.count }

    /// Where part `part` accumulates weight and bias gradients: the parameters' own gradients
    /// for part 0, its partial buffers (slots 2 and 3, zeroed here) for the others; the
    /// partials are added in by `addPartials` after the parallel region.
    func gradientTargets(part: Int, weight: Parameter, bias: Parameter?,
                         zeroPartials: Bool) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) {
        if part == 0 { return (weight.grad.data, bias?.grad.data) }
        let dW = pointers[part][2], db = bias == nil ? nil : pointers[part][3]
        if zeroPartials {
            dW.update(repeating: 0, count: weight.value.count)
            db?.update(repeating: 0, count: bias!.value.count)
        }
        return (dW, db)
    }
}


/// The images a Winograd pass of the 4/2/1 convolution transformed (B^T d B of every tile, the
/// layout `WinogradStridedConvolution.transformImage` writes) and left in its scratch's shared
/// slot 0: the weight gradient of the same images reads them instead of transforming them
/// again (D's forward and its weight gradient read the same x; G's input gradient and its
/// weight gradient the same dy). Only a pass of one slice leaves them (a later slice writes
/// over an earlier one's), and any later use of the scratch forgets them.
struct TransformedImages: @unchecked Sendable {
    let images: UnsafePointer<Float>
    let batch: Int, channels: Int, height: Int, width: Int

    func describe(_ images: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int) -> Bool {
        self.images == images && self.batch == batch && self.channels == channels && self.height == height
            && self.width == width
    }
}
