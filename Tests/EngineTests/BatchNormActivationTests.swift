import Engine
import Testing

/// The fused stage against the three layers it replaces, run one after another on copies of
/// the same parameters: outputs, the input's gradient, every parameter's gradient and the
/// running statistics, in training and inference mode, for ReLU and LeakyReLU, with and
/// without the class table, on planes that are and are not whole SIMD vectors.
@Suite struct BatchNormActivationTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var height: Int, width: Int, slope: Float?, classes: Bool, training: Bool
        var testDescription: String {
            "\(height)x\(width), \(slope.map { "LeakyReLU \($0)" } ?? "ReLU"), \(classes ? "class table" : "no table"), \(training ? "training" : "inference")"
        }
    }

    static let cases: [Case] = [
        Case(height: 4, width: 4, slope: nil, classes: true, training: true),
        Case(height: 5, width: 3, slope: 0.2, classes: false, training: true),
        Case(height: 6, width: 6, slope: nil, classes: false, training: true),
        Case(height: 8, width: 8, slope: 0.2, classes: true, training: true),
        Case(height: 3, width: 7, slope: nil, classes: true, training: false),
        Case(height: 4, width: 4, slope: 0.2, classes: false, training: false),
    ]

    @Test(arguments: cases)
    func matchesBatchNormThenClassTableThenActivation(_ c: Case) {
        let (batch, channels, classes) = (3, 5, 4)
        var rng = RandomGenerator(seed: 31)
        func made() -> (BatchNorm2d, ClassConditionalAffine) {
            (BatchNorm2d("bn", channels: channels), ClassConditionalAffine("cbn", classes: classes, channels: channels))
        }
        let (norm, table) = made(), (fusedNorm, fusedTable) = made()
        for (a, b) in [(norm.gamma.value, fusedNorm.gamma.value), (norm.beta.value, fusedNorm.beta.value),
                       (table.scale.value, fusedTable.scale.value), (table.shift.value, fusedTable.shift.value)] {
            rng.fillNormal(a, mean: 0.5, std: 0.5)
            for i in 0..<a.count { b[i] = a[i] }
        }
        for i in 0..<channels {
            norm.runningMean[i] = rng.uniform(-0.5, 0.5); fusedNorm.runningMean[i] = norm.runningMean[i]
            norm.runningVar[i] = rng.uniform(0.5, 2); fusedNorm.runningVar[i] = norm.runningVar[i]
        }
        norm.setTraining(c.training)
        fusedNorm.setTraining(c.training)
        let kind: Activation.Kind = c.slope.map { .leakyReLU(slope: $0) } ?? .relu
        let activation = Activation(kind)
        let fused = BatchNormActivation(fusedNorm, classAffine: c.classes ? fusedTable : nil, activation: kind)

        let x = Tensor(zeros: [batch, channels, c.height, c.width])
        rng.fillNormal(x, mean: 0.3, std: 2)
        let dz = Tensor(zeros: x.shape)
        rng.fillNormal(dz)
        let labels: [Int32] = [2, 0, 2]

        var y = norm.forward(x)
        if c.classes { y = table.forward(y, labels: labels) }
        let expected = activation.forward(y)
        let got = fused.forward(x, labels: labels)
        var dy = activation.backward(dz)
        if c.classes { dy = table.backward(dy) }
        let expectedDx = norm.backward(dy)
        let gotDx = fused.backward(dz)

        func close(_ a: Tensor, _ b: Tensor, _ what: String) {
            let scale = max(1, a.values.map(abs).max() ?? 0)
            let worst = zip(a.values, b.values).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 2e-5 * scale, "\(what): off by \(worst) (scale \(scale))")
        }
        close(expected, got, "output")
        close(expectedDx, gotDx, "input gradient")
        close(norm.gamma.grad, fusedNorm.gamma.grad, "gamma gradient")
        close(norm.beta.grad, fusedNorm.beta.grad, "beta gradient")
        close(norm.runningMean, fusedNorm.runningMean, "running mean")
        close(norm.runningVar, fusedNorm.runningVar, "running variance")
        if c.classes {
            close(table.scale.grad, fusedTable.scale.grad, "class scale gradient")
            close(table.shift.grad, fusedTable.shift.grad, "class shift gradient")
            #expect(fusedTable.scale.grad.values[channels..<(2 * channels)].allSatisfy { $0 == 0 }, "class 1 was not in the batch")
        }
        #expect(fusedNorm.gamma.grad.values.contains { $0 != 0 }, "gradients were added")

        // Without parameter gradients: the same input gradient, nothing added.
        let before = fusedNorm.gamma.grad.values + fusedTable.scale.grad.values
        close(expectedDx, fused.backward(dz, parameterGradients: false), "input gradient without parameter gradients")
        #expect(fusedNorm.gamma.grad.values + fusedTable.scale.grad.values == before)
    }
}
