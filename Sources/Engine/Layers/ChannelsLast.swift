/// Activations kept channels-last between G's layers while sampling: (batch, height, width,
/// channels rounded up to whole 16-lane vectors), the extra lanes zero. The Winograd
/// upsamplers compute in this layout; keeping it between them saves a transpose out of one
/// layer and back into the next, and lets the BatchNorm before a layer be applied while
/// that layer copies its input (see `ConvTranspose2d.sample`).
public struct ChannelsLast {
    public let values: Tensor
    public let channels: Int

    public var batch: Int { values.shape[0] }
    public var height: Int { values.shape[1] }
    public var width: Int { values.shape[2] }
    /// Floats per pixel.
    public var stride: Int { values.shape[3] }

    public init(values: Tensor, channels: Int) {
        precondition(values.rank == 4 && values.shape[3] == Self.padded(channels) ,
                     "channels-last activations of \(channels) channels need (B, H, W, \(Self.padded(channels))), got \(values.shape)")
        self.values = values
        self.channels = channels
    }

    /// Floats per pixel for `channels` channels.
    public static func padded(_ channels: Int) -> Int { (channels + 15) / 16 * 16 }

    /// (B, C, H, W) planes of max(0, x * scale + shift), each image with its row of `affine`,
    /// into `planes` (reused when its shape fits): for a layer that reads planes.
    public func planes(applying affine: RectifiedChannelAffine, reusing planes: Tensor?) -> Tensor {
        precondition(affine.rows.count == batch && affine.scale.shape[1] == stride,
                     "affine for \(affine.rows.count) images of \(affine.scale.shape[1]) floats, activations \(values.shape)")
        let y = Tensor.reuse(planes, shape: [batch, channels, height, width])
        let area = height * width
        Parallel.forRanges(batch, minimumPerChunk: 8) { images in
            for image in images {
                let target = y.data + image * channels * area, row = Int(affine.rows[image]) * stride
                transpose(values.data + image * area * stride, rows: area, columns: channels, rowStride: stride) {
                    target + $0 * area
                }
                for c in 0..<channels {
                    let plane = target + c * area, a = affine.scale[row + c], b = affine.shift[row + c]
                    for i in 0..<area { plane[i] = Swift.max(0, plane[i] * a + b) }
                }
            }
        }
        return y
    }
}

/// max(0, x * scale + shift) per channel, with the tables' row `rows[b]` for image b: G's
/// BatchNorm (this batch's statistics), per-class scale and shift, and ReLU folded into one
/// map per class (one row without class-conditional norm). Tables are (rows, padded channels),
/// zero past the channels.
public struct RectifiedChannelAffine {
    public let scale: Tensor
    public let shift: Tensor
    public let rows: [Int32]

    public init(scale: Tensor, shift: Tensor, rows: [Int32]) {
        precondition(scale.shape == shift.shape && scale.rank == 2, "scale \(scale.shape) and shift \(shift.shape) differ")
        precondition(rows.allSatisfy { $0 >= 0 && Int($0) < scale.shape[0] }, "a row index is outside 0..<\(scale.shape[0])")
        self.scale = scale
        self.shift = shift
        self.rows = rows
    }
}
