/// Device functions that several kernel sources use, pasted at the top of each (NVRTC compiles
/// every source on its own, so they cannot be linked in), written once here.
enum KernelHelpers {
    /// SplitMix64, as Engine/Core/RandomGenerator.swift: output k of seed s is mix(s + (k+1) * golden);
    /// `uniform01` maps 24 of its bits into (0, 1).
    static let random = #"""
    __device__ unsigned long long splitmix(unsigned long long seed, unsigned long long k) {
        unsigned long long z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    __device__ float uniform01(unsigned long long bits) { return ((bits >> 40) + 0.5f) * (1.f / 16777216.f); }

    """#

    /// Maps (B, C, area) stored image by image or, when `channel_major`, channel by channel
    /// ((C, B, area) in memory; `DeviceTensor.channelMajor`): where map (b, c) starts, in maps,
    /// and the (image, channel) of the map that starts at `plane`.
    static let mapLayout = #"""
    __device__ unsigned plane_of(unsigned b, unsigned c, unsigned batch, unsigned channels, int channel_major) {
        return channel_major ? c * batch + b : b * channels + c;
    }

    __device__ void plane_owner(unsigned plane, unsigned batch, unsigned channels, int channel_major, unsigned& b, unsigned& c) {
        if (channel_major) { c = plane / batch; b = plane - c * batch; }
        else { b = plane / channels; c = plane - b * channels; }
    }

    """#

    /// The sum of every thread's `value` over the block (blockDim.x a power of two, at most the
    /// size of `partial`), returned to every thread; a fixed order, so the same bits each time.
    /// Safe to call again right away (it waits until every thread has read the total).
    static let blockSum = #"""
    __device__ float block_sum(float value, float* partial) {
        partial[threadIdx.x] = value;
        __syncthreads();
        for (int width = blockDim.x / 2; width > 0; width /= 2) {
            if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
            __syncthreads();
        }
        float total = partial[0];
        __syncthreads();
        return total;
    }

    """#
}
