import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a context's matrix products round their operands.
public enum ProductPrecision: String, Sendable, CaseIterable {
    /// Float operands and sums: OpenBLAS's SGEMM.
    case float32
    /// bfloat16 operands, Float sums, by the fastest `BFloat16Kernel` the CPU has (AMX tiles,
    /// else AVX512-BF16 dot products); the same as `float32` on CPUs with neither.
    case bfloat16
}

/// What one job may use and what it has done: its thread budget, how its products round, and
/// its FLOP counter.
///
/// Each job runs inside its own context (`run`), which the numeric code reads through
/// `ComputeContext.current`: a reload that changes the thread count makes a new context for
/// the next job and leaves running ones as they started (a job that sized per-worker state
/// by one thread count and then met another used to trip a precondition). Parallel loops
/// carry the caller's context to the threads that run their chunks. Code outside any `run`
/// sees `processDefault`: every core, for the command-line tools and the tests.
public final class ComputeContext: Sendable {
    /// Worker threads for the numeric kernels.
    public let threads: Int
    /// What `BLAS.gemm` may round to (training asks for `bfloat16` unless told FP32).
    public let products: ProductPrecision
    /// Whether the 4/2/1 convolutions of training (G's upsamplers and D's convolutions: forward,
    /// input and weight gradients) multiply by Winograd F(4x4, 2x2): 39% of the multiplications,
    /// Float rounding of ~1e-6 of a layer's scale (docs/engine.md "Winograd in training"). By
    /// default where bfloat16 was asked for and the CPU has neither a bfloat16 kernel nor an
    /// AVX-512 faster than its AVX2 (`winogradPaysOff`). `--fp32` contexts keep the exact columns path.
    public let winogradConvolutions: Bool
    /// The kernel of those Winograd passes' Float products, their weights packed once
    /// (`PanelKernel`); nil: OpenBLAS, which packs them on every call. The fastest this CPU
    /// has unless told otherwise (`synthd-bench --winograd-products openblas` compares).
    public let panelKernel: PanelKernel?
    private let flopCounter = Atomic<Int>(0)

    public init(threads: Int, products: ProductPrecision = .float32, winogradConvolutions: Bool? = nil,
                panelKernel: PanelKernel? = PanelKernel.fastest) {
        self.threads = max(1, threads)
        self.products = products
        self.winogradConvolutions = winogradConvolutions
            ?? (products == .bfloat16 && BFloat16Kernel.fastest == nil && Self.winogradPaysOff)
        precondition(panelKernel?.isFloat ?? true, "ComputeContext: Winograd's products are Float, not \(panelKernel!)")
        self.panelKernel = panelKernel
    }

    /// Whether training's Winograd convolutions beat the FP32 columns path on this CPU: with
    /// AVX2's Float products (OpenBLAS's Haswell kernels) they made the step 1.2-1.35x, a far
    /// smaller error than the bfloat16 the caller accepted; where a core multiplies twice as
    /// fast with AVX-512 (an Intel Emerald Rapids, 2026-12-03: alternated medians 310 against
    /// 366 images/s) the columns path's products are fast enough that the transforms cost more
    /// than the multiplications they save, and where it has half-precision products those
    /// take the convolutions; a core whose AVX-512 runs at its AVX2 rate is an AVX2 core here
    /// (`WinogradPayoff`, measured at the first use; docs/performance.md).
    public static let winogradPaysOff: Bool = {
        guard PanelKernel.avx512.isAvailable else { return true }
        guard !PanelKernel.avx512Half.isAvailable else { return false }
        return WinogradPayoff.widthGain.map { WinogradPayoff.paysOff(widthGain: $0) } ?? false
    }()

    /// The kernel this context's products go to: asked for and possible here; nil for Float.
    public var bfloat16Kernel: BFloat16Kernel? { products == .bfloat16 ? BFloat16Kernel.fastest : nil }

    /// Whether the columns path's products are in half precision (`PanelKernel.avx512Half`):
    /// reduced products asked for, no bfloat16 kernel worth taking, and a CPU with AVX512-FP16
    /// and the AVX-512 panel kernel (an Intel core whose VM hides AMX: 1.3-1.8x the Float
    /// kernel's products, 1.28x the reference step; over a step, rounding of about bfloat16's
    /// size: docs/engine.md "In half precision").
    public var halfColumns: Bool {
        products == .bfloat16 && bfloat16Kernel == nil && panelKernel == .avx512 && PanelKernel.avx512Half.isAvailable
    }

    /// Whether this context's products go to AMX tiles (sampling then prefers its columns path
    /// to Winograd's).
    public var usesAMX: Bool { bfloat16Kernel == .amxTiles }

    /// How this context's products are computed, in the words of the CLI's device line and
    /// the daemon's log.
    public var productsDescription: String {
        if let bfloat16Kernel { return "bfloat16 products by \(bfloat16Kernel.description)" }
        if halfColumns { return "half-precision products by AVX512-FP16, Float sums (this CPU has no bfloat16 kernel faster than FP32)" }
        let winograd = winogradConvolutions ? ", 4/2/1 convolutions by Winograd" : ""
        return (products == .bfloat16 ? "FP32 products\(winograd) (this CPU has no bfloat16 kernel faster than FP32)" : "FP32 products\(winograd)")
    }

    /// A context like this one (its own FLOP count) whose Winograd products go to `panelKernel`.
    public func with(panelKernel: PanelKernel?) -> ComputeContext {
        ComputeContext(threads: threads, products: products, winogradConvolutions: winogradConvolutions, panelKernel: panelKernel)
    }

    /// Runs `body` in a context like the current one but with FP32 products: for products
    /// that bfloat16 would spoil (a squared distance as |q|^2 + |r|^2 - 2 q.r cancels to far
    /// less than the operands' 8 significant bits can carry).
    public static func withFloat32Products<T>(_ body: () -> T) -> T {
        let context = current
        guard context.products != .float32 else { return body() }
        return ComputeContext(threads: context.threads, products: .float32,
                              winogradConvolutions: context.winogradConvolutions,
                              panelKernel: context.panelKernel).run(body)
    }

    /// Floating-point operations issued through `BLAS` in this context (a multiply-add is 2).
    public var flops: Int { flopCounter.load(ordering: .relaxed) }

    public func addFLOPs(_ count: Int) { flopCounter.wrappingAdd(count, ordering: .relaxed) }

    /// The context when none was entered: all the machine's cores.
    public static let processDefault = ComputeContext(threads: activeProcessorCount())

    /// The calling thread's context.
    public static var current: ComputeContext {
        guard let pointer = pthread_getspecific(currentContextKey) else { return processDefault }
        return Unmanaged<ComputeContext>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Runs `body` on the calling thread with this context current, then restores the previous one.
    public func run<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let previous = pthread_getspecific(currentContextKey)
        pthread_setspecific(currentContextKey, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(currentContextKey, previous) }
        return try withExtendedLifetime(self) { () throws(E) -> T in try body() }
    }
}

/// The thread-specific slot of `ComputeContext.current` (unretained: `run` keeps it alive).
let currentContextKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
