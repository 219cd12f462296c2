import CUDA
import Foundation

/// Runs the engine's CUDA C kernels on the CPU: the kernel source compiled as C++20 by g++
/// with a small emulation of CUDA's thread model (each block's threads as real threads, a
/// barrier for `__syncthreads`, `__shared__` arrays shared by a block's threads, blocks one
/// after another). It checks a kernel's logic (indexing, reductions, adjoints) on machines
/// without a GPU, CI included; what it cannot check (the GPU's memory model, launch limits,
/// speed) the GPU tests do on the device machine.
///
/// Launches are recorded; reading a buffer runs every launch so far from the start (the
/// kernels are deterministic), so a test reads and launches in any order, as on a GPU.
final class KernelEmulator {
    struct Buffer: Hashable { let index: Int }

    enum Argument {
        case buffer(Buffer), float(Float), int32(Int32), int64(Int), uint64(UInt64)
        /// A struct of 32-bit integers by value.
        case int32s([Int32])
    }

    static var compilerPath: String? {
        ["/usr/bin/g++", "/usr/local/bin/g++"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let source: KernelSource
    private var initial: [[UInt8]] = []
    private var launches: [(name: String, grid: Int, block: Int, arguments: [Argument])] = []
    private var results: [[UInt8]]?

    /// One source per emulator: sources define helpers of the same names.
    init(_ source: KernelSource) { self.source = source }

    func upload(_ values: [Float]) -> Buffer { upload(bytes: values.withUnsafeBytes { Array($0) }) }

    /// Bytes (a dataset's pixels).
    func upload(_ values: [UInt8]) -> Buffer { upload(bytes: values) }

    /// Labels and other 32-bit integers.
    func upload(_ values: [Int32]) -> Buffer { upload(bytes: values.withUnsafeBytes { Array($0) }) }

    private func upload(bytes: [UInt8]) -> Buffer {
        initial.append(bytes)
        results = nil
        return Buffer(index: initial.count - 1)
    }

    func allocate(bytes: Int) -> Buffer {
        initial.append([UInt8](repeating: 0, count: bytes))
        results = nil
        return Buffer(index: initial.count - 1)
    }

    func launch(_ name: String, grid: Int, block: Int, _ arguments: [Argument]) {
        launches.append((name, grid, block, arguments))
        results = nil
    }

    func floats(_ buffer: Buffer) throws -> [Float] {
        if results == nil { results = try run() }
        return results![buffer.index].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func int32s(_ buffer: Buffer) throws -> [Int32] {
        if results == nil { results = try run() }
        return results![buffer.index].withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    private func run() throws -> [[UInt8]] {
        guard let compiler = Self.compilerPath else { throw Failure(description: "no g++") }
        let folder = NSTemporaryDirectory() + "synthd-kernel-emulation-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try program().write(toFile: folder + "/kernels.cpp", atomically: true, encoding: .utf8)
        var input: [UInt8] = []
        for buffer in initial {
            withUnsafeBytes(of: UInt64(buffer.count).littleEndian) { input += $0 }
            input += buffer
        }
        try Data(input).write(to: URL(fileURLWithPath: folder + "/in.bin"))
        let build = try Self.execute(compiler, ["-std=c++20", "-O1", "-pthread", "-w", "kernels.cpp", "-o", "kernels"], in: folder)
        guard build.status == 0 else { throw Failure(description: "\(source.name) does not compile as emulated C++:\n\(build.output)") }
        let execution = try Self.execute(folder + "/kernels", [], in: folder)
        guard execution.status == 0 else { throw Failure(description: "\(source.name) emulation failed:\n\(execution.output)") }
        let output = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/out.bin")))
        return initial.indices.reduce(into: (buffers: [[UInt8]](), offset: 0)) { state, index in
            let count = initial[index].count
            state.buffers.append(Array(output[(state.offset + 8)..<(state.offset + 8 + count)]))
            state.offset += 8 + count
        }.buffers
    }

    private func program() -> String {
        var calls = ""
        for launch in launches {
            let arguments = launch.arguments.map { argument -> String in
                switch argument {
                case .buffer(let buffer): "Buf{buffers[\(buffer.index)].data()}"
                case .float(let value): "std::bit_cast<float>(\(value.bitPattern)u)"
                case .int32(let value): "(int)\(value)"
                case .int64(let value): "(long)\(value)L"
                case .uint64(let value): "\(value)ull"
                case .int32s(let fields): "{" + fields.map { "\($0)" }.joined(separator: ", ") + "}"
                }
            }.joined(separator: ", ")
            calls += "    launch(\(launch.grid), \(launch.block), [&] { \(launch.name)(\(arguments)); });\n"
        }
        return Self.header + source.code + """

            int main() {
                std::vector<std::vector<unsigned char>> buffers;
                FILE* in = fopen("in.bin", "rb");
                unsigned long long size;
                while (fread(&size, 8, 1, in) == 1) {
                    buffers.emplace_back(size + 16);
                    if (size && fread(buffers.back().data(), 1, size, in) != size) return 2;
                    buffers.back().resize(size);
                }
                fclose(in);
            \(calls)
                FILE* out = fopen("out.bin", "wb");
                for (auto& buffer : buffers) {
                    unsigned long long size = buffer.size();
                    fwrite(&size, 8, 1, out);
                    fwrite(buffer.data(), 1, size, out);
                }
                fclose(out);
                return 0;
            }

            """
    }

    static let header = """
        #include <algorithm>
        #include <barrier>
        #include <bit>
        #include <cmath>
        #include <cstdio>
        #include <thread>
        #include <vector>
        using std::max; using std::min;
        struct EmulatedDim { unsigned x, y, z; };
        static thread_local EmulatedDim threadIdx, blockIdx;
        static EmulatedDim blockDim, gridDim;
        static std::barrier<>* block_barrier;
        #define __global__
        #define __device__ static inline
        #define __shared__ static
        static inline void __syncthreads() { block_barrier->arrive_and_wait(); }
        // CUDA's device functions that C++ lacks.
        static inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
        template <typename F> void launch(unsigned grid, unsigned block, F kernel) {
            gridDim = {grid, 1, 1}; blockDim = {block, 1, 1};
            for (unsigned b = 0; b < grid; b++) {
                std::barrier<> barrier(block); block_barrier = &barrier;
                std::vector<std::thread> threads;
                for (unsigned t = 0; t < block; t++) threads.emplace_back([&, b, t] { blockIdx = {b, 0, 0}; threadIdx = {t, 0, 0}; kernel(); });
                for (auto& thread : threads) thread.join();
            }
        }
        struct Buf { unsigned char* p; template <class T> operator T*() const { return (T*)p; } };

        """

    static func execute(_ path: String, _ arguments: [String], in folder: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}
