import Engine
import GAN
import NumericTestSupport
import Testing

@Suite struct ModelShapeTests {
    @Test(arguments: [(32, 1), (32, 3), (64, 3)])
    func generatorAndDiscriminatorShapes(resolution: Int, channels: Int) {
        let configuration = ModelConfiguration(imageChannels: channels, classes: 4, resolution: resolution)
        let generator = Generator(configuration), discriminator = Discriminator(configuration)
        initializeDCGAN(generator.parameters, seed: 1)
        initializeDCGAN(discriminator.parameters, seed: 2)
        var rng = RandomGenerator(seed: 3)
        let z = Tensor(zeros: [3, configuration.latentSize])
        rng.fillNormal(z)
        let images = generator.forward(z, labels: [0, 3, 1])
        #expect(images.shape == [3, channels, resolution, resolution])
        #expect(images.values.allSatisfy { $0 >= -1 && $0 <= 1 })
        let logits = discriminator.forward(images, labels: [0, 3, 1])
        #expect(logits.shape == [3])
        #expect(logits.values.allSatisfy { $0.isFinite })
        let dImages = discriminator.backward(Tensor(shape: [3], values: [1, -1, 0.5]), inputGradient: true)!
        #expect(dImages.shape == images.shape)
        generator.backward(dImages)
        #expect(generator.parameters.allSatisfy { $0.grad.values.allSatisfy { $0.isFinite } })
    }

    /// The generator with class-conditional BatchNorm: gradients of the per-class tables, of
    /// the input embedding and of the latents against differences of L = sum(w * G(z, y)). ReLU makes L piecewise
    /// smooth and a tiny model sits on a kink now and then, where backward gives one side's
    /// slope: each analytic value must match the central, the right or the left difference.
    @Test func classConditionalNormGradientsMatchFiniteDifferences() {
        let configuration = ModelConfiguration(classes: 3, latentSize: 8, embeddingSize: 4, baseChannels: 4,
                                               classConditionalNorm: true)
        let generator = Generator(configuration)
        initializeDCGAN(generator.parameters, seed: 5)
        #expect(generator.classNorms.count == 3 && generator.classNorms.allSatisfy {
            $0.scale.value.values.allSatisfy { $0 == 1 } && $0.shift.value.values.allSatisfy { $0 == 0 }
        })
        var rng = RandomGenerator(seed: 9)
        for norm in generator.classNorms {   // away from the identity, so that every path matters
            rng.fillUniform(norm.scale.value, 0.6, 1.4)
            rng.fillUniform(norm.shift.value, -0.4, 0.4)
        }
        let z = Tensor(zeros: [6, 8]), w = Tensor(zeros: [6, 1, 32, 32])
        rng.fillNormal(z)
        rng.fillUniform(w, -1, 1)
        let labels: [Int32] = [0, 2, 2, 1, 0, 2]
        func loss() -> Double {
            let y = generator.forward(z, labels: labels)
            return (0..<y.count).reduce(0) { $0 + Double(y[$1]) * Double(w[$1]) }
        }
        generator.zeroGradients()
        _ = generator.forward(z, labels: labels)
        // A copy: the latents' gradient is the concatenation's buffer, which the next backward reuses.
        let dz = Tensor(zeros: z.shape)
        dz.copy(from: generator.backward(w))
        let center = loss(), eps: Float = 1e-3
        let checked = generator.classNorms.flatMap { [$0.scale, $0.shift] } + [generator.embedding.weight]
        // The latents too: what a search for the z of a given image descends on.
        for (name, value, analytic) in checked.map({ ($0.name, $0.value, $0.grad) }) + [("z", z, dz)] {
            var worst: Double = 0, scale: Double = 1e-3
            for index in stride(from: 0, to: value.count, by: max(1, value.count / 12)) {
                let saved = value[index]
                value[index] = saved + eps
                let right = (loss() - center) / Double(eps)
                value[index] = saved - eps
                let left = (center - loss()) / Double(eps)
                value[index] = saved
                let exact = Double(analytic[index])
                worst = max(worst, [(left + right) / 2, right, left].map { abs($0 - exact) }.min()!)
                scale = max(scale, abs(exact))
            }
            #expect(worst / scale < 2e-2, "\(name): worst |numeric - analytic| \(worst) (scale \(scale))")
        }
    }

    /// Sampling's fused path (BatchNorm, class scale and ReLU in one pass; Winograd
    /// upsampling) makes the images of the training path, up to rounding, for both
    /// conditionings, with classes mixed in the batch and the class tables away from identity.
    /// The sampling path (Winograd, channels-last, fused statistics, the channels-last image
    /// layer) against the training forward, at both resolutions, grey and colour.
    @Test(arguments: [(false, 32, 1), (true, 32, 1), (true, 64, 3)])
    func samplingPathMatchesTrainingForward(classConditionalNorm: Bool, resolution: Int, channels: Int) {
        let configuration = ModelConfiguration(imageChannels: channels, classes: 3, resolution: resolution, latentSize: 16,
                                               embeddingSize: 8, baseChannels: 16, classConditionalNorm: classConditionalNorm)
        let generator = Generator(configuration)
        initializeDCGAN(generator.parameters, seed: 15)
        var rng = RandomGenerator(seed: 19)
        for norm in generator.classNorms {
            rng.fillUniform(norm.scale.value, 0.6, 1.4)
            rng.fillUniform(norm.shift.value, -0.4, 0.4)
        }
        for norm in generator.norms { rng.fillUniform(norm.beta.value, -0.3, 0.3) }
        let z = Tensor(zeros: [10, 16])
        rng.fillNormal(z)
        let labels: [Int32] = [0, 2, 2, 1, 0, 2, 1, 1, 0, 2]
        generator.setTraining(true)
        let expected = generator.forward(z, labels: labels).values
        let sampled = generator.sample(z, labels: labels, upsampling: .winograd).values
        let worst = zip(sampled, expected).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-4, "sampling path differs from forward by up to \(worst)")
        #expect(sampled.contains { $0 != 0 }, "images are not blank")
        // With bfloat16 products (generation's default where the CPU has them): within a few
        // grey levels (1 level = 2/255 ~ 0.008), most pixels within one.
        guard BFloat16GEMM.isAvailable else { return }
        let reduced = zip(generator.sample(z, labels: labels).values, expected).map { abs($0 - $1) }
        let (largest, mean) = (reduced.max()!, reduced.reduce(0, +) / Float(reduced.count))
        #expect(largest > 0 && largest < 0.05 && mean < 0.004, "bfloat16 sampling off by up to \(largest), \(mean) on average")
        // In a context whose products go to AMX tiles the default takes the columns path on
        // them (faster there): the same bounds, and exactly the columns path's images.
        guard BFloat16Kernel.amxTiles.isAvailable else { return }
        let (tiles, columns) = ComputeContext(threads: 2, products: .bfloat16).run {
            (generator.sample(z, labels: labels).values, generator.sample(z, labels: labels, upsampling: .columns).values)
        }
        #expect(tiles == columns, "the default is the columns path on AMX tiles")
        let onTiles = zip(tiles, expected).map { abs($0 - $1) }
        let (tilesLargest, tilesMean) = (onTiles.max()!, onTiles.reduce(0, +) / Float(onTiles.count))
        #expect(tilesLargest > 0 && tilesLargest < 0.05 && tilesMean < 0.004,
                "sampling on AMX tiles off by up to \(tilesLargest), \(tilesMean) on average")
    }

    /// A spectrally normalised D: no BatchNorm, every weight wrapped, and the gradients of the
    /// trained (raw) weights against differences of L = sum(w * D(x, y)), with the power
    /// iteration's vectors held as the gradient assumes.
    @Test func spectralDiscriminatorGradientsMatchFiniteDifferences() {
        let configuration = ModelConfiguration(classes: 3, baseChannels: 4, discriminatorNormalization: .spectral)
        let discriminator = Discriminator(configuration)
        initializeDCGAN(discriminator.parameters, seed: 3)
        #expect(discriminator.norms.isEmpty && discriminator.spectralNorms.count == 5)
        #expect(!discriminator.parameters.contains { $0.name.contains(".bn") })
        let trained = discriminator.spectralNorms.map { ObjectIdentifier($0.weight) }
        #expect(trained.allSatisfy { id in discriminator.parameters.contains { ObjectIdentifier($0) == id } })

        // Raw weights of order 1 (only their direction matters to D), so that a difference step
        // is small against them and against sigma.
        for (index, normalization) in discriminator.spectralNorms.enumerated() {
            normalization.weight.value.copy(from: randomTensor(normalization.weight.shape, seed: 30 + UInt64(index)))
        }
        let images = randomTensor([4, 1, 32, 32], seed: 8), w = randomTensor([4], seed: 9)
        let labels: [Int32] = [2, 0, 1, 2]
        discriminator.zeroGradients()
        discriminator.prepareForward(iterate: true)
        _ = discriminator.forward(images, labels: labels)
        discriminator.backward(w, inputGradient: false)
        discriminator.finishBackward()
        for normalization in discriminator.spectralNorms {
            #expect(normalization.sigma > 0)
            checkGradient(normalization.weight.name, of: normalization.weight.value, analytic: normalization.weight.grad,
                          eps: 1e-3, tolerance: 2e-2, maxElements: 40) {
                discriminator.prepareForward(iterate: false)
                return weightedSum(discriminator.forward(images, labels: labels), w)
            }
        }
    }

    @Test func referenceModelHasTheDocumentedSize() {
        // shared/REFERENCE-MODEL.md at C = 1, K = 10.
        let configuration = ModelConfiguration()
        let g = Generator(configuration), d = Discriminator(configuration)
        // G: embed 10x128, fc 256->4096 (+bias), BN 256, up 256->128, BN 128, up 128->64, BN 64, up 64->1.
        let gExpected = 1280 + (256 * 4096 + 4096) + 512 + (256 * 128 * 16 + 128) + 256 + (128 * 64 * 16 + 64) + 128 + (64 * 16 + 1)
        // D: conv 1->64, conv 64->128, BN 128, conv 128->256, BN 256, linear 4096->1, embed 10x4096.
        let dExpected = (16 * 64 + 64) + (64 * 128 * 16 + 128) + 256 + (128 * 256 * 16 + 256) + 512 + 4097 + 40960
        #expect(g.parameterCount == gExpected)
        #expect(d.parameterCount == dExpected)
    }
}
