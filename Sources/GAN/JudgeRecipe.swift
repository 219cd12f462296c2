import Engine

extension Judge {
    /// How a judge is trained: its width, its least number of steps (batches of up to 128; it
    /// trains `Judge.epochs` passes when those are more), and its augmentation.
    ///
    /// Why small datasets get a longer-trained judge that sees shifted images: the judge is a
    /// classifier of the same real images as the one a user trains on real + synthetic, and
    /// trained as `synthd eval`'s are it accepts what that classifier already believes. From 50
    /// Fashion-MNIST images a class, 3,000 steps with shifts of up to 2 pixels made a judge of
    /// 80.9% on the test set where 600 steps without made one of 79.3%, and the samples it
    /// accepted raised the mixed classifier at 2x the real count by 0.6 points over six seeds
    /// (docs/quality.md, "A judge that knows more than the classifier"). Large datasets keep
    /// their three passes: they are thousands of steps already.
    public struct Recipe: Sendable, Equatable {
        public var width: Int
        public var minimumSteps: Int
        public var augmentation: ClassifierAugmentation?

        public init(width: Int = Judge.width, minimumSteps: Int, augmentation: ClassifierAugmentation?) {
            self.width = width
            self.minimumSteps = minimumSteps
            self.augmentation = augmentation
        }

        /// The daemon's recipe for a dataset of `trainingImages` images. Under
        /// `Sampler.largeDataset`: about 768 passes (the measured 3,000 steps of 128 over 500
        /// images), at least 600 steps and at most 3,000, with shifts of up to 2 pixels; from
        /// there on, 600 steps at least and no augmentation.
        public init(trainingImages: Int) {
            guard trainingImages < Sampler.largeDataset else {
                self.init(minimumSteps: Classifier.fewestSteps, augmentation: nil)
                return
            }
            let batch = max(1, min(Classifier.batchSize, trainingImages))
            let steps = Self.smallDatasetPasses * trainingImages / batch
            self.init(minimumSteps: min(Self.mostSteps, max(Classifier.fewestSteps, steps)),
                      augmentation: ClassifierAugmentation(maxShift: Self.smallDatasetShift))
        }

        /// How every judge was trained before the recipe was kept in its file.
        static let beforeRecipesWereKept = Recipe(minimumSteps: Classifier.fewestSteps, augmentation: nil)

        static let mostSteps = 3_000, smallDatasetPasses = 768, smallDatasetShift = 2
    }
}
