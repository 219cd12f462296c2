import ArgumentParser
import Engine

@main
struct SynthdBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthd-bench",
        abstract: "Benchmarks of the synthd engine. Each prints its figures; the last line is machine-readable.",
        subcommands: [TrainStepBenchmark.self, GEMMBenchmark.self, KernelBenchmark.self, GenerationBenchmark.self, LoadBenchmark.self, UnpackBenchmark.self, ScanBenchmark.self])

    static func main() {
        OpenBLASKernels.selectForThisCPU()   // before any work: it may run the program again
        main(nil)
    }
}
