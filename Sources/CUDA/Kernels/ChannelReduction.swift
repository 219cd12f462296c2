/// How a per-channel reduction over a batch (a bias gradient, BatchNorm's statistics and
/// gradients) is spread over blocks: one channel's values are cut into `slices` runs, each
/// reduced by its own block, and the partials added in a fixed order by a second kernel, so
/// that a few wide channels still fill the GPU and the sum is the same bits every time.
public enum ChannelReduction {
    /// How many blocks share one channel of `count` values: enough blocks in all to fill a
    /// large GPU (about 512), none with fewer than 2,048 values (below that one block is
    /// faster than the second kernel it would cost).
    public static func slices(channels: Int, count: Int) -> Int {
        max(1, min(count / 2048, (512 + channels - 1) / channels))
    }
}
