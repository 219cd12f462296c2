import CUDA
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The kernel sources compiled for the CPU: one shared library per source (sources define
/// device helpers of the same names), built by g++ once per source text and loaded with
/// `dlopen`; each `__global__` function gets an exported `emulate_<name>(grid, block, args)`
/// that unpacks `args` exactly as `cuLaunchKernel` does (an array of pointers to values).
///
/// CUDA's threads are emulated with fibers: a block's threads run in turn, each
/// until its next `__syncthreads` or its end, so a barrier holds when every thread has reached
/// it, as on the GPU, at the cost of a context switch. A kernel whose first block never waits
/// runs its other blocks' threads as plain calls. The blocks, and the threads of each phase
/// between barriers, run in a shuffled order, so a missing barrier shows whichever thread reads;
/// and each block's shared memory starts as NaN bytes, as a GPU's holds garbage.
///
/// Each kernel also exports its parameters' sizes (`parameters_<name>`), and a launch whose
/// arguments do not match them in number and size fails: `cuLaunchKernel` copies each
/// parameter's size from the value it is given, so a 32-bit integer passed for a 64-bit one,
/// or an argument too few or too many, would read garbage or shift on a GPU without an error.
final class EmulationRuntime: @unchecked Sendable {
    typealias Entry = @convention(c) (UInt32, UInt32, UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Void
    private typealias Parameters = @convention(c) (UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt32>) -> Void
    /// A kernel's entry and its parameters' sizes in bytes.
    struct Kernel {
        let entry: Entry
        let parameterSizes: [Int]
    }

    /// Shared libraries loaded into the process are process-wide; so is this.
    static let shared = EmulationRuntime()

    let launchLock = NSLock()
    private let lock = NSLock()
    private var libraries: [String: UnsafeMutableRawPointer] = [:]
    private var entries: [String: Kernel] = [:]
    private var sourceOf: [String: KernelSource]

    private init() {
        var sourceOf: [String: KernelSource] = [:]
        for source in AllKernels.sources { for function in source.functions { sourceOf[function] = source } }
        self.sourceOf = sourceOf
    }

    /// Adds a source that is not the engine's (a test's own kernels). Its functions must not
    /// reuse the engine's names.
    func register(_ source: KernelSource) {
        lock.withLock {
            for function in source.functions {
                precondition(sourceOf[function] == nil || sourceOf[function] == source, "kernel \(function) is defined already")
                sourceOf[function] = source
            }
        }
    }

    func entry(_ kernel: String) throws(CUDAError) -> Kernel {
        lock.lock()
        defer { lock.unlock() }
        if let entry = entries[kernel] { return entry }
        guard let source = sourceOf[kernel] else {
            throw .driver(call: "launch \(kernel)", code: 500, message: "no kernel source defines it")
        }
        let library: UnsafeMutableRawPointer
        if let loaded = libraries[source.name] {
            library = loaded
        } else {
            library = try Self.build(source)
            libraries[source.name] = library
        }
        guard let symbol = dlsym(library, "emulate_" + kernel), let sizesSymbol = dlsym(library, "parameters_" + kernel) else {
            throw .symbolMissing(library: source.name + " (emulated)", symbol: kernel)
        }
        var sizes = [UInt32](repeating: 0, count: 64), count: UInt32 = 0
        unsafeBitCast(sizesSymbol, to: Parameters.self)(&sizes, &count)
        let entry = Kernel(entry: unsafeBitCast(symbol, to: Entry.self), parameterSizes: sizes.prefix(Int(count)).map(Int.init))
        entries[kernel] = entry
        return entry
    }

    /// Compiles (or finds compiled, by a hash of the text) and loads one source.
    private static func build(_ source: KernelSource) throws(CUDAError) -> UnsafeMutableRawPointer {
        let text = program(source)
        let folder = NSTemporaryDirectory() + "synthd-kernel-emulation"
        let library = folder + "/\(source.name)-\(hash(text)).so"
        if !FileManager.default.fileExists(atPath: library) {
            guard let compiler = EmulatedDevice.compilerPath else {
                throw .libraryMissing(what: "g++ (the kernels' CPU emulation)", tried: ["/usr/bin/g++"], reasons: [])
            }
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let stem = folder + "/\(source.name)-\(UUID().uuidString)"
            do {
                try text.write(toFile: stem + ".cpp", atomically: true, encoding: .utf8)
                defer { try? FileManager.default.removeItem(atPath: stem + ".cpp") }
                let result = try execute(compiler, ["-std=c++20", "-O1", "-fPIC", "-shared", "-w", stem + ".cpp", "-o", stem + ".so"])
                guard result.status == 0 else { throw CUDAError.compilation(kernel: source.name + " (as emulated C++)", log: result.output) }
                // Renamed into place: a parallel test process sees a whole library or none.
                guard rename(stem + ".so", library) == 0 else { throw CUDAError.compilation(kernel: source.name, log: "rename failed") }
            } catch let error as CUDAError {
                throw error
            } catch {
                throw .compilation(kernel: source.name + " (as emulated C++)", log: "\(error)")
            }
        }
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
            throw .libraryMissing(what: library, tried: [library], reasons: [String(cString: dlerror())])
        }
        return handle
    }

    static func program(_ source: KernelSource) -> String {
        header + source.code + "\n" + source.functions.map { name in
            "extern \"C\" void emulate_\(name)(unsigned grid, unsigned block, void** args) { emulate(grid, block, [&] { invoke(\(name), args); }); }\n"
            + "extern \"C\" void parameters_\(name)(unsigned* sizes, unsigned* count) { parameter_sizes(\(name), sizes, count); }\n"
        }.joined()
    }

    private static func hash(_ text: String) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(value, radix: 16)
    }

    private static func execute(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// CUDA's thread model on the CPU (see the type's comment), and the built-ins the kernels
    /// use that C++ lacks.
    static let header = #"""
        #include <algorithm>
        #include <bit>
        #include <cmath>
        #include <cstdio>
        #include <cstdlib>
        #include <cstring>
        #include <functional>
        #include <type_traits>
        #include <utility>
        #include <vector>
        #include <ucontext.h>
        using std::max; using std::min;
        struct EmulatedDim { unsigned x, y, z; };
        static EmulatedDim threadIdx, blockIdx, blockDim, gridDim;
        #define __global__
        #define __device__ static inline
        // Shared memory: statics in a section of their own, filled with NaN bytes before every
        // block, as a GPU block's shared memory holds garbage until its threads write it (plain
        // statics would start at 0 and keep the last block's values, hiding a read of a slot
        // nobody wrote). The linker names the section's bounds; weak: a source without any.
        #define __shared__ static __attribute__((section("synthd_shared")))
        extern "C" char __start_synthd_shared[] __attribute__((weak, visibility("hidden")));
        extern "C" char __stop_synthd_shared[] __attribute__((weak, visibility("hidden")));
        static inline void poison_shared_memory() {
            if (__start_synthd_shared != nullptr) memset(__start_synthd_shared, 0xFF, __stop_synthd_shared - __start_synthd_shared);
        }
        static inline float rsqrtf(float x) { return 1.f / sqrtf(x); }

        // A fiber switch: on x86-64 a few instructions that save the callee-saved registers and
        // the stack pointer (ucontext's swapcontext also saves the signal mask: a system call
        // per switch, which made a BatchNorm launch take seconds); elsewhere ucontext.
        namespace emulation {
            const size_t stack_bytes = 256 * 1024;
            static std::vector<char*> stacks;
            static std::vector<char> finished;
            static unsigned current;
            static bool in_fiber = false;
            static std::function<void()>* body;
        #if defined(__x86_64__)
            extern "C" void synthd_emulation_switch(void** save, void* load);
            asm(R"(
                .text
                .hidden synthd_emulation_switch
                .globl synthd_emulation_switch
                .type synthd_emulation_switch,@function
            synthd_emulation_switch:
                pushq %rbp
                pushq %rbx
                pushq %r12
                pushq %r13
                pushq %r14
                pushq %r15
                movq %rsp, (%rdi)
                movq %rsi, %rsp
                popq %r15
                popq %r14
                popq %r13
                popq %r12
                popq %rbx
                popq %rbp
                ret
            )");
            static void* scheduler_sp;
            static std::vector<void*> fiber_sp;
            static void entry() {
                (*body)();
                finished[current] = 1;
                synthd_emulation_switch(&fiber_sp[current], scheduler_sp);
            }
            static void prepare(unsigned t) {
                // The first switch in pops six registers and "returns" into entry, with the
                // stack aligned as after a call.
                void** top = (void**)(stacks[t] + stack_bytes);
                top[-1] = nullptr;
                top[-2] = (void*)&entry;
                for (int r = 3; r <= 8; r++) top[-r] = nullptr;
                fiber_sp[t] = (void*)(top - 8);
            }
            static void enter(unsigned t) { synthd_emulation_switch(&scheduler_sp, fiber_sp[t]); }
            static void leave() { synthd_emulation_switch(&fiber_sp[current], scheduler_sp); }
            static void grow(unsigned block) { fiber_sp.resize(block); }
        #else
            static ucontext_t scheduler;
            static std::vector<ucontext_t> fibers;
            static void entry() { (*body)(); finished[current] = 1; }
            static void prepare(unsigned t) {
                getcontext(&fibers[t]);
                fibers[t].uc_stack.ss_sp = stacks[t];
                fibers[t].uc_stack.ss_size = stack_bytes;
                fibers[t].uc_link = &scheduler;
                makecontext(&fibers[t], entry, 0);
            }
            static void enter(unsigned t) { swapcontext(&scheduler, &fibers[t]); }
            static void leave() { swapcontext(&fibers[current], &scheduler); }
            static void grow(unsigned block) { fibers.resize(block); }
        #endif
        }

        static inline void __syncthreads() {
            if (!emulation::in_fiber) { fprintf(stderr, "__syncthreads in a kernel whose first block never waited\n"); abort(); }
            emulation::leave();
        }

        static void emulate(unsigned grid, unsigned block, std::function<void()> kernel) {
            using namespace emulation;
            gridDim = {grid, 1, 1}; blockDim = {block, 1, 1};
            body = &kernel;
            while (stacks.size() < block) stacks.push_back((char*)aligned_alloc(64, stack_bytes));
            if (finished.size() < block) { finished.resize(block); grow(block); }
            // Blocks, and a block's threads between two barriers, run in an order shuffled
            // afresh each time (seeded by a launch counter, so a run repeats): a GPU promises no
            // order, and a kernel that reads what another thread writes without a barrier between
            // them then reads the old value in some phase, whichever of the two is the reader.
            static unsigned long long launches = 0;
            unsigned long long state = 0x9E3779B97F4A7C15ull * ++launches;
            auto shuffle = [&state](std::vector<unsigned>& order) {
                for (size_t i = order.size(); i > 1; i--) {
                    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                    std::swap(order[i - 1], order[state % i]);
                }
            };
            std::vector<unsigned> blocks(grid), threads(block);
            for (unsigned b = 0; b < grid; b++) blocks[b] = b;
            for (unsigned t = 0; t < block; t++) threads[t] = t;
            shuffle(blocks);
            bool barriers = true;
            for (unsigned b : blocks) {
                blockIdx = {b, 0, 0};
                poison_shared_memory();
                if (!barriers) {
                    shuffle(threads);
                    for (unsigned t : threads) { threadIdx = {t, 0, 0}; kernel(); }
                    continue;
                }
                for (unsigned t = 0; t < block; t++) { finished[t] = 0; prepare(t); }
                unsigned alive = block;
                bool waited = false;
                while (alive > 0) {
                    shuffle(threads);
                    for (unsigned t : threads) {
                        if (finished[t]) continue;
                        current = t; threadIdx = {t, 0, 0}; in_fiber = true;
                        enter(t);
                        in_fiber = false;
                        if (finished[t]) alive--; else waited = true;
                    }
                }
                if (!waited) barriers = false;
            }
        }

        template <class... A, size_t... I>
        static void invoke(void (*f)(A...), void** args, std::index_sequence<I...>) {
            f(*static_cast<std::remove_reference_t<A>*>(args[I])...);
        }
        template <class... A>
        static void invoke(void (*f)(A...), void** args) { invoke(f, args, std::index_sequence_for<A...>{}); }

        // The sizes of a kernel's parameters, as cuLaunchKernel copies them (at most 64).
        template <class... A>
        static void parameter_sizes(void (*)(A...), unsigned* sizes, unsigned* count) {
            const unsigned each[] = {(unsigned)sizeof(A)..., 0u};
            *count = sizeof...(A);
            for (unsigned i = 0; i < sizeof...(A) && i < 64; i++) sizes[i] = each[i];
        }

        """#
}
