/// How a per-channel reduction over a batch (a bias gradient, BatchNorm's statistics and
/// gradients) is spread over blocks: one channel's values are cut into `slices` runs, each
/// reduced by its own block, and the partials added in a fixed order by a second kernel, so
/// that a few wide channels still fill the GPU and the sum is the same bits every time.
public enum ChannelReduction {
    /// How many blocks share one channel of `count` values: enough blocks in all to fill a
    /// large GPU (about 512), none with fewer than 2,048 values (below that one block is
    /// faster than the second kernel it would cost), and no split at all below `splitFrom`.
    public static func slices(channels: Int, count: Int, splitFrom: Int = 4096) -> Int {
        count < splitFrom ? 1 : max(1, min(count / 2048, (512 + channels - 1) / channels))
    }

    /// BatchNorm's `splitFrom`: its split costs two more kernels each way, not one (statistics,
    /// then normalising; gradient sums, then the input's gradient), about 2-4 us of a graph's
    /// nodes, and a channel of 4,096 values takes one 256-thread block about that long per
    /// pass (16 loads a thread, four in flight): the split pays from 8,192 values. At batch 64
    /// that leaves G's 16 x 16 layer split and the 8 x 8 layers (4,096 values a channel) in one
    /// block each: 16 launches fewer a step. An estimate, not a measurement: `synthd-bench
    /// train-step --one-block-norms` is the A/B.
    public static let batchNormSplitFrom = 8192
}
