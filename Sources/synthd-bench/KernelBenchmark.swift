import ArgumentParser
import Engine
import Foundation
import GAN

/// Times the engine's non-GEMM kernels at the shapes of the reference step.
struct KernelBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time im2col, col2im, BatchNorm and activations at reference-step shapes (B = 64), and the class check's near-copy test.")

    @Option(help: "Repetitions per kernel (the median is printed).") var repetitions = 21

    @Flag(help: "Only the reference model's convolution passes, by the panel kernel and by OpenBLAS alternately.")
    var convolutions = false

    @Flag(help: "With --convolutions: the passes by Winograd (AVX2's training path), whose products (and weight gradients' blocks) take the panel kernel or OpenBLAS.")
    var winograd = false

    @Option(help: "Threads of the convolution passes.") var threads = 1

    func run() throws {
        if convolutions { return timeConvolutions() }
        // D conv2: 64 channels 16x16 -> 8x8; G up2 (as col2im): 64 channels 16x16 from 8x8 grid.
        let g = ConvGeometry(batch: 64, channels: 64, height: 16, width: 16, kernelHeight: 4, kernelWidth: 4,
                             stride: 2, padding: 1, gridHeight: 8, gridWidth: 8)
        let image = Tensor(zeros: [64, 64, 16, 16]), cols = Tensor(zeros: [g.patchSize, g.columnCount])
        var rng = RandomGenerator(seed: 1)
        rng.fillUniform(image, -1, 1)
        rng.fillUniform(cols, -1, 1)
        time("im2col 64x64x16x16 -> 1024x4096") { im2col(cols.data, image.data, g) }
        time("im2col 64x64x16x16 -> 1024x4096 in panels") { im2col(cols.data, image.data, g, layout: .panels) }
        // As the columns path runs it: a chunk of 4 images (1 MiB of columns) on one thread.
        let chunk = ConvGeometry(batch: 4, channels: 64, height: 16, width: 16, kernelHeight: 4, kernelWidth: 4,
                                 stride: 2, padding: 1, gridHeight: 8, gridWidth: 8)
        time("im2col 4x64x16x16 -> 1024x256 in panels, one thread") {
            im2col(cols.data, image.data, chunk, parallel: false, layout: .panels)
        }
        time("col2im 1024x4096 -> 64x64x16x16") { col2im(image.data, cols.data, g) }
        let swapped = Tensor(zeros: image.shape)
        time("swap axes 64x64x256") { swapLeadingAxes(swapped.data, image.data, a: 64, b: 64, inner: 256) }
        let bn = BatchNorm2d("bn", channels: 64)
        let y = bn.forward(image)
        time("batchnorm forward 64x64x16x16") { _ = bn.forward(image) }
        time("batchnorm backward 64x64x16x16") { _ = bn.backward(y) }
        let act = Activation(.leakyReLU(slope: 0.2))
        time("leaky relu forward 64x64x16x16") { _ = act.forward(image) }
        time("leaky relu backward 64x64x16x16") { _ = act.backward(image) }
        // The two above as one layer (what G and D run): against the sum of the four lines above.
        let fused = BatchNormActivation(bn, activation: .leakyReLU(slope: 0.2))
        let z = fused.forward(image)
        time("batchnorm + leaky relu forward, fused, 64x64x16x16") { _ = fused.forward(image) }
        time("batchnorm + leaky relu backward, fused, 64x64x16x16") { _ = fused.backward(z) }

        // The class check's near-copy test of one generation batch at Fashion-MNIST's scale:
        // 256 samples, 10 classes of 6,000 real images, 128 features each. On a GPU's sampling
        // thread it runs between batches, its classes as parallel tasks.
        let real = (0..<10).map { _ in (0..<(6000 * NearCopies.dimension)).map { _ in rng.normal() } }
        let copies = NearCopies(real: real, thresholds: [Float?](repeating: 1, count: 10))
        let samples = (0..<(256 * NearCopies.dimension)).map { _ in rng.normal() }
        let labels = (0..<256).map { Int32($0 % 10) }
        for threads in Set([1, Parallel.maxThreads]).sorted() {
            time("near-copy test, 256 samples against 10 x 6,000 real images, \(threads) thread\(threads == 1 ? "" : "s")") {
                ComputeContext(threads: threads).run { _ = copies.areCopies(samples, labels: labels) }
            }
        }
    }

    /// Each convolution pass of the reference step (B = 64, `threads` threads), in a Float context with
    /// the fastest panel kernel and in one with OpenBLAS, the two alternated pass by pass; by the
    /// columns path, or by Winograd where it applies (`winograd`).
    func timeConvolutions() {
        let kernel: PanelKernel
        if winograd {
            guard let fastest = PanelKernel.fastest else { return print("this CPU has no panel kernel") }
            kernel = fastest
        } else {
            guard PanelKernel.avx512.isAvailable else { return print("the columns path takes its panel kernel only with AVX-512") }
            kernel = .avx512
        }
        let panels = ComputeContext(threads: threads, products: .float32, winogradConvolutions: winograd, panelKernel: kernel)
        let openBLAS = ComputeContext(threads: threads, products: .float32, winogradConvolutions: winograd, panelKernel: nil)
        var rng = RandomGenerator(seed: 3)
        func random(_ shape: [Int]) -> Tensor {
            let t = Tensor(zeros: shape)
            rng.fillUniform(t, -1, 1)
            return t
        }
        func compare(_ label: String, _ body: () -> Void) {
            var times: [[Double]] = [[], []]
            for _ in 0...repetitions {
                for (index, context) in [panels, openBLAS].enumerated() {
                    let start = monotonicSeconds()
                    context.run(body)
                    times[index].append(monotonicSeconds() - start)
                }
            }
            let medians = times.map { $0.sorted()[$0.count / 2] }
            print(String(format: "%@: %@ panels %.3f ms, OpenBLAS %.3f ms (%.2fx)", label, kernel.description,
                         medians[0] * 1e3, medians[1] * 1e3, medians[1] / medians[0]))
        }
        for (cin, cout, size) in [(1, 64, 32), (64, 128, 16), (128, 256, 8)] {
            let conv = Conv2d("d", inChannels: cin, outChannels: cout, kernelSize: 4, stride: 2, padding: 1)
            conv.weight.value.copy(from: random(conv.weight.shape))
            let x = random([64, cin, size, size]), dy = random([64, cout, size / 2, size / 2])
            compare("D conv \(cin)->\(cout) \(size)x\(size) forward") { _ = conv.forward(x) }
            compare("D conv \(cin)->\(cout) backward, dx only") { _ = conv.backward(dy, parameterGradients: false) }
            compare("D conv \(cin)->\(cout) backward, dW only") { _ = conv.backward(dy, inputGradient: false) }
        }
        for (cin, cout, size) in [(256, 128, 4), (128, 64, 8), (64, 1, 16)] {
            let up = ConvTranspose2d("g", inChannels: cin, outChannels: cout, kernelSize: 4, stride: 2, padding: 1)
            up.weight.value.copy(from: random(up.weight.shape))
            let x = random([64, cin, size, size]), dy = random([64, cout, 2 * size, 2 * size])
            compare("G up \(cin)->\(cout) \(size)x\(size) forward") { _ = up.forward(x, algorithm: .columns) }
            compare("G up \(cin)->\(cout) backward, dx only") { _ = up.backward(dy, parameterGradients: false) }
            compare("G up \(cin)->\(cout) backward, dW only") { _ = up.backward(dy, inputGradient: false) }
        }
    }

    func time(_ label: String, _ body: () -> Void) {
        body()
        var samples: [Double] = []
        for _ in 0..<repetitions {
            let start = monotonicSeconds()
            body()
            samples.append(monotonicSeconds() - start)
        }
        samples.sort()
        print(String(format: "%@: median %.3f ms, min %.3f ms", label, samples[samples.count / 2] * 1e3, samples[0] * 1e3))
    }
}
