import ArgumentParser
import CLinux
import CUDA
import Daemon
import Engine

@main
struct Synthd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthd",
        abstract: "Turns image datasets dropped into a spool folder into class-balanced synthetic data.",
        version: SynthdVersion.string,
        subcommands: [Run.self, Check.self, Train.self, Generate.self, Evaluate.self, Status.self, Wait.self, Forget.self, Drain.self, ImportIDX.self, Info.self],
        defaultSubcommand: Info.self)

    static func main() {
        Signals.unblock()  // before any thread starts: they inherit the mask
        OpenBLASKernels.selectForThisCPU()   // before any work: it may run the program again
        // A line at a time also into a pipe or a file (`synthd eval ... | tee log`): reports of
        // long commands are read as they come, and a stopped run keeps what it printed.
        synthd_line_buffer_stdout()
        main(ProcessArguments.whereTheRuntimeHasNone())
    }
}

enum SynthdVersion {
    static let string = "0.1.0"
}

/// Prints what this build runs on: version, BLAS build and threads, bfloat16 products, GPUs.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the build and the numeric back end.")

    func run() throws {
        print("synthd \(SynthdVersion.string)")
        print("blas: \(BLAS.configuration), \(BLAS.threads) threads, \(OpenBLASKernels.current) kernels")
        print("cores: \(Parallel.maxThreads)")
        print("bfloat16 products: " + (BFloat16Kernel.fastest.map { "\($0.description) for training and generation (the default; --fp32 for FP32)" }
            ?? ((BFloat16GEMM.isAvailable ? "none faster than FP32 on this CPU" : "none on this CPU")
                + (ComputeContext(threads: 1, products: .bfloat16).halfColumns
                    ? "; half precision by AVX512-FP16, Float sums, for the convolutions' products (the default; --fp32 for FP32)"
                    : ComputeContext.winogradPaysOff ? "; FP32, training's 4/2/1 convolutions by Winograd (the default; --fp32 for plain FP32)"
                    : "; FP32 (AVX-512's products: training's convolutions by columns, --winograd to compare)"))))
        if let speedup = BFloat16Payoff.speedup {
            let rounded = { (x: Double) in (x * 100).rounded() / 100 }
            print("AVX512-BF16 dot products: \(rounded(speedup))x OpenBLAS's FP32 products here (one thread; used from \(BFloat16Payoff.threshold)x)")
        }
        if let gain = WinogradPayoff.widthGain {
            let rounded = (gain * 100).rounded() / 100
            print("AVX-512 panel products: \(rounded)x AVX2's here (one thread; training's 4/2/1 convolutions by Winograd below \(WinogradPayoff.threshold)x, where no bfloat16 or half kernel takes them)")
        }
        let probe = CUDAProbe()
        for line in probe.report { print(line) }
        let auto = try DeviceChoice.choose(.auto, probe: probe)
        print("device (auto): \(auto.label): \(auto.reason)")
    }
}
