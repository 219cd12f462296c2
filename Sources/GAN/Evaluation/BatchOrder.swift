import Engine

/// Which images make each of a classifier's batches: from every group a fixed number, each
/// group walked in its own shuffled order and reshuffled when too few are left for a batch.
///
/// One group over all the images is the usual epoch-by-epoch shuffle. Two groups give a fixed
/// share of real images in every batch, whatever the number of synthetic images beside them:
/// what practitioners do when they add synthetic data, since mixing by count lets 10,000
/// synthetic images drown 500 real ones.
public struct BatchOrder: Sendable {
    public struct Group: Sendable {
        public let indices: Range<Int>
        public let perBatch: Int
        var order: [Int]
        var cursor: Int

        public init(indices: Range<Int>, perBatch: Int) {
            precondition(perBatch >= 0 && perBatch <= indices.count, "a group cannot give \(perBatch) of \(indices.count) images a batch")
            self.indices = indices
            self.perBatch = perBatch
            order = Array(indices)
            cursor = indices.count  // shuffled before the first batch
        }
    }

    public private(set) var groups: [Group]
    public var batchSize: Int { groups.reduce(0) { $0 + $1.perBatch } }

    public init(_ groups: [Group]) {
        precondition(!groups.isEmpty, "a batch order needs a group")
        self.groups = groups
    }

    /// All of `count` images, `batchSize` a batch.
    public init(count: Int, batchSize: Int) {
        self.init([Group(indices: 0..<count, perBatch: batchSize)])
    }

    /// The next batch's indices, group by group.
    public mutating func next(_ rng: inout RandomGenerator) -> [Int] {
        var batch: [Int] = []
        batch.reserveCapacity(batchSize)
        for g in groups.indices where groups[g].perBatch > 0 {
            if groups[g].cursor + groups[g].perBatch > groups[g].order.count {
                rng.shuffle(&groups[g].order)
                groups[g].cursor = 0
            }
            batch += groups[g].order[groups[g].cursor..<(groups[g].cursor + groups[g].perBatch)]
            groups[g].cursor += groups[g].perBatch
        }
        return batch
    }
}
