// swift-tools-version: 6.1
import PackageDescription

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Code generation for the numeric modules.
///
/// A plain release build targets baseline x86-64 (SSE2): `SIMD.addingProduct` turns into a libm
/// `fmaf` call per lane and element-wise kernels run at half speed (see
/// `../shared/PLATFORM-NOTES.md`). When the machine that builds has AVX2 and FMA, target Haswell
/// (AVX2 + FMA). The binary then needs such a CPU, which is the machine it was built on.
/// Set `SYNTHD_PORTABLE=1` to build for baseline x86-64 instead.
let hostHasAVX2FMA: Bool = {
    guard ProcessInfo.processInfo.environment["SYNTHD_PORTABLE"] == nil,
          let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return false }
    let flags = Set(flagsLine.split(separator: " ").map(String.init))
    return flags.contains("avx2") && flags.contains("fma")
}()

let numericSettings: [SwiftSetting] =
    hostHasAVX2FMA ? [.unsafeFlags(["-target-cpu", "haswell"])] : []

/// Language settings shared by every Swift target.
let languageSettings: [SwiftSetting] = [
    // SE-0335: spell out existential types.
    .enableUpcomingFeature("ExistentialAny"),
    // SE-0444: imports are visible only in the files that write them.
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "synthd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "synthd", targets: ["synthd"]),
        .executable(name: "synthd-bench", targets: ["synthd-bench"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "GAN", targets: ["GAN"]),
        .library(name: "Imaging", targets: ["Imaging"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // System libraries from Debian's -dev packages (installed by scripts/setup).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // libjpeg-turbo through its TurboJPEG API, which returns error codes: libjpeg's own
        // API reports errors by longjmp, which Swift cannot survive.
        .systemLibrary(name: "CTurboJPEG", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CWebP", providers: [.apt(["libwebp-dev"])]),
        .systemLibrary(name: "CTIFF", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The other compressions of tar archives dropped into the spool (.tar.xz, .tar.zst,
        // .tar.bz2); liblzma and libzstd are loaded by libtiff already.
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CBZip2", providers: [.apt(["libbz2-dev"])]),

        // The one matrix kernel not from OpenBLAS: bfloat16 products for sampling (AVX512-BF16),
        // which Debian's OpenBLAS is built without (see Sources/Engine/Core/BFloat16GEMM.swift).
        .target(name: "CBFloat16"),
        // Float products with a right operand packed once (Winograd's transformed weights in
        // training), which OpenBLAS packs again on every call (Sources/Engine/Core/PanelGEMM.swift).
        .target(name: "CFloatGEMM"),

        // Linux calls glibc hides behind _GNU_SOURCE (syncfs).
        .target(name: "CLinux"),
        // PNG encoding through libpng's full API, its longjmp kept inside C (see PNG.encode).
        .target(name: "CPNGEncoder", dependencies: ["CPNG"]),

        // Tensors, layers, optimisers and checkpoints. No file I/O beyond checkpoints, no daemon code.
        .target(name: "Engine", dependencies: ["CBLAS", "CBFloat16", "CFloatGEMM", "CLinux"],
                swiftSettings: languageSettings + numericSettings),
        // PNG (and later JPEG) decoding and encoding, image limits and typed errors.
        .target(name: "Imaging", dependencies: ["Engine", "CPNG", "CPNGEncoder", "CTurboJPEG", "CWebP", "CTIFF", "CZlib"],
                swiftSettings: languageSettings + numericSettings),
        // Archives dropped into the spool (zip, tar, tar.gz) unpacked safely: their images only,
        // within limits, never outside their folder.
        .target(name: "Archives", dependencies: ["Imaging", "Engine", "CZlib", "CLZMA", "CZstd", "CBZip2"], swiftSettings: languageSettings),
        // The spool watcher (inotify on a thread of its own) and dataset settling.
        .target(name: "Spool", dependencies: ["CLinux"],
                swiftSettings: languageSettings),
        // The daemon: configuration, job queue and scheduling, output tree, the service loop.
        .target(name: "Daemon", dependencies: ["Spool", "Archives", "GAN", "Imaging", "Engine", "CUDA", "CLinux",
                                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: languageSettings),
        // CUDA loaded at run time (dlopen of the driver, NVRTC and cuBLAS; nothing linked, no
        // toolkit at build time) and the CUDA C sources of the engine's kernels.
        .target(name: "CUDA", swiftSettings: languageSettings),
        // Models and training steps built from the engine's layers.
        // The engine's layers on a KernelDevice (a GPU, or the tests' CPU emulation of one).
        .target(name: "GPUEngine", dependencies: ["CUDA", "Engine"], swiftSettings: languageSettings),
        .target(name: "GAN", dependencies: ["Engine", "Imaging", "GPUEngine", "CUDA"],
                swiftSettings: languageSettings + numericSettings),

        // Several synthd nodes on one spool: the job queue, leases, node registry and dataset
        // runtime state in PostgreSQL (only when `[cluster] database` is set).
        .target(name: "Cluster", dependencies: ["Daemon", .product(name: "PostgresNIO", package: "postgres-nio"),
                                                .product(name: "Logging", package: "swift-log")],
                swiftSettings: languageSettings),

        // What synthd and synthd-bench share on the command line (--device).
        .target(name: "CommandLineSupport",
                dependencies: ["CUDA", "Engine", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: languageSettings),

        .executableTarget(
            name: "synthd",
            dependencies: ["Engine", "GAN", "Imaging", "Archives", "Daemon", "Cluster", "CUDA", "CommandLineSupport", "CLinux",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: languageSettings),
        .executableTarget(
            name: "synthd-bench",
            dependencies: ["Engine", "GAN", "Imaging", "Archives", "Daemon", "CUDA", "GPUEngine", "CommandLineSupport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: languageSettings),

        // Finite-difference checks and tolerances that several test targets use.
        .target(name: "NumericTestSupport", dependencies: ["Engine"], path: "Tests/NumericTestSupport",
                swiftSettings: languageSettings),
        // The CUDA kernels on the CPU (g++ and an emulation of CUDA's threads): a KernelDevice for
        // the GPU code's tests where there is no GPU.
        .target(name: "KernelEmulation", dependencies: ["CUDA", "Engine"], path: "Tests/KernelEmulation",
                swiftSettings: languageSettings),
        // Special files (sockets) for the tests of hostile input.
        .target(name: "FileTestSupport", path: "Tests/FileTestSupport", swiftSettings: languageSettings),
        .target(name: "LogTestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/LogTestSupport",
                swiftSettings: languageSettings),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "NumericTestSupport", "FileTestSupport"],
                    swiftSettings: languageSettings),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "Engine", "CPNG", "CTurboJPEG", "CZlib", "FileTestSupport"],
                    resources: [.copy("Fixtures")],
                    swiftSettings: languageSettings),
        // Runs the built synthd binary (swift test builds it alongside the tests).
        .testTarget(name: "CLITests", dependencies: ["Imaging", "Engine", "CTurboJPEG", "FileTestSupport"],
                    swiftSettings: languageSettings),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Spool", "GAN", "Imaging", "Engine", "CUDA", "KernelEmulation", "FileTestSupport",
                                                        "LogTestSupport", .product(name: "Logging", package: "swift-log")],
                    swiftSettings: languageSettings),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "Daemon", "Imaging", "LogTestSupport", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")],
                    swiftSettings: languageSettings),
        .testTarget(name: "CUDATests", dependencies: ["CUDA", "Engine", "Imaging", "KernelEmulation", "NumericTestSupport"],
                    swiftSettings: languageSettings),
        .testTarget(name: "GPUEngineTests", dependencies: ["GPUEngine", "CUDA", "Engine", "KernelEmulation", "NumericTestSupport"],
                    swiftSettings: languageSettings),
        .testTarget(name: "ArchivesTests", dependencies: ["Archives", "Imaging", "FileTestSupport"],
                    resources: [.copy("Fixtures")],
                    swiftSettings: languageSettings),
        .testTarget(name: "SpoolTests", dependencies: ["Spool", "FileTestSupport"],
                    swiftSettings: languageSettings),
        .testTarget(name: "GANTests", dependencies: ["GAN", "Engine", "Imaging", "NumericTestSupport", "FileTestSupport", "GPUEngine", "CUDA", "KernelEmulation"],
                    resources: [.copy("Fixtures")],
                    swiftSettings: languageSettings),
    ],
    swiftLanguageModes: [.v6]
)
