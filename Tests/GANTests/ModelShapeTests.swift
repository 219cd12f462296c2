import Engine
import GAN
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
