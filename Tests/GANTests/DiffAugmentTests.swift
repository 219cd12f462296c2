import Engine
import GAN
import NumericTestSupport
import Testing

@Suite struct DiffAugmentTests {
    /// Every augmentation is affine in x with the random draw held fixed, so backward must be
    /// its exact transpose: <A x, w> = <x, A^T w> (tested for the colour, shift and cutout parts).
    @Test(arguments: [1, 3])
    func backwardIsTheTransposeOfForward(channels: Int) {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor(zeros: [3, channels, 16, 16]), w = Tensor(zeros: [3, channels, 16, 16])
        rng.fillUniform(x, -1, 1)
        rng.fillUniform(w, -1, 1)
        let augment = DiffAugment(seed: 9)
        let y = augment.forward(x)
        // Subtract the constant part (A 0) so that only the linear map is compared.
        let zero = Tensor(zeros: x.shape)
        let replay = DiffAugment(seed: 9)
        _ = replay.forward(x)
        let linearPart = Tensor(zeros: x.shape)
        linearPart.copy(from: y)
        let replayZero = DiffAugment(seed: 9)
        let offset = replayZero.forward(zero)
        for i in 0..<linearPart.count { linearPart[i] -= offset[i] }
        let dx = augment.backward(w)
        let left = weightedSum(linearPart, w), right = weightedSum(x, dx)
        #expect(abs(left - right) < 1e-3 * max(1, abs(left)), "<Ax, w> = \(left), <x, A^T w> = \(right)")
        #expect(y.values != x.values, "the augmentation changed nothing")
    }

    @Test func sameSeedSameAugmentation() {
        let x = Tensor(zeros: [2, 1, 8, 8]); x.fill(0.5)
        #expect(DiffAugment(seed: 3).forward(x).values == DiffAugment(seed: 3).forward(x).values)
        #expect(DiffAugment(seed: 3).forward(x).values != DiffAugment(seed: 4).forward(x).values)
    }
}
