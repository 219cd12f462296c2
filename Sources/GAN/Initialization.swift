import Engine

/// The DCGAN initialisation (Radford et al. 2016): weights N(0, 0.02), BatchNorm gamma
/// N(1, 0.02), biases and BatchNorm beta 0. Embeddings are weights here too: PyTorch's N(0, 1)
/// default makes the 4096-wide projection term dominate the first logits.
///
/// Parameter k draws from its own stream `RandomGenerator(seed: seed + k)`, so the values do
/// not depend on how many numbers other parameters used, and a script can reproduce them.
/// Class-conditional scales and shifts start at exactly 1 and 0 (an identity until trained).
public func initializeDCGAN(_ parameters: [Parameter], seed: UInt64) {
    for (index, parameter) in parameters.enumerated() {
        var rng = RandomGenerator(seed: seed &+ UInt64(index))
        if parameter.name.hasSuffix(".bias") || parameter.name.hasSuffix(".shift") {
            parameter.value.zero()
        } else if parameter.name.hasSuffix(".scale") {
            parameter.value.fill(1)
        } else if isBatchNormGamma(parameter.name) {
            rng.fillNormal(parameter.value, mean: 1, std: 0.02)
        } else {
            rng.fillNormal(parameter.value, mean: 0, std: 0.02)
        }
    }
}

/// BatchNorm layers are named `bn<N>` (see Generator and Discriminator); their `.weight` is gamma.
func isBatchNormGamma(_ name: String) -> Bool {
    let parts = name.split(separator: ".")
    return parts.count >= 2 && parts[parts.count - 2].hasPrefix("bn") && parts.last == "weight"
}
