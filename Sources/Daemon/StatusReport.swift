import Foundation
import GAN
import Imaging

/// What `synthd status` shows for one dataset's state folder.
public struct DatasetStatus: Codable, Equatable, Sendable {
    public var dataset: String
    public var stateFolder: String
    public var classes: [String]
    public var mode: String
    public var imageWidth: Int
    public var imageHeight: Int
    public var steps: Int
    public var checkpoint: String
    public var imagesAtLastRun: Int
    /// When the checkpoint was last written (ISO 8601), if there is one.
    public var lastCheckpoint: String?
    public var lastDiscriminatorLoss: Float?
    public var lastGeneratorLoss: Float?
    public var samples: String
    /// Images per class at the last training run, and the files left out with the reason.
    public var imagesPerClass: [String: Int]?
    public var rejected: [RejectedFile]?

    /// Reads every state folder at `path`: the folder itself when it holds a model, else each
    /// subfolder that does (the daemon keeps one per dataset). Unreadable records are errors.
    public static func read(_ path: String) throws -> [DatasetStatus] {
        let root = try StateFolder(path)
        if let status = try read(root) { return [status] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return try names.sorted().compactMap { name in
            let folder = path + "/" + name
            guard FileManager.default.fileExists(atPath: folder + "/model.json") else { return nil }
            return try read(StateFolder(folder))
        }
    }

    /// nil when the folder holds no model (or it vanished while being read).
    static func read(_ folder: StateFolder) throws -> DatasetStatus? {
        guard let record = try folder.readRecord() else { return nil }
        let modified = (try? FileManager.default.attributesOfItem(atPath: folder.checkpointPath))?[.modificationDate] as? Date
        let last = folder.readHistory().last
        let report = folder.readDatasetReport()
        return DatasetStatus(
            dataset: URL(fileURLWithPath: folder.path).lastPathComponent, stateFolder: folder.path,
            classes: record.classes, mode: record.mode == .rgb ? "colour" : "grey",
            imageWidth: record.imageWidth, imageHeight: record.imageHeight, steps: record.steps,
            checkpoint: record.checkpointID, imagesAtLastRun: record.imagesAtLastRun,
            lastCheckpoint: modified.map { ISO8601DateFormatter().string(from: $0) },
            lastDiscriminatorLoss: last?.discriminator, lastGeneratorLoss: last?.generator,
            samples: folder.samplesPath,
            imagesPerClass: report?.imagesPerClass,
            rejected: report?.rejected)
    }

    /// One readable line.
    public var summary: String {
        var text = "\(dataset): \(classes.count) classes, \(imagesAtLastRun) images (\(mode), \(imageWidth)x\(imageHeight)), "
            + "step \(steps)"
        if let d = lastDiscriminatorLoss, let g = lastGeneratorLoss { text += String(format: ", losses D %.3f G %.3f", d, g) }
        if let lastCheckpoint { text += ", checkpoint \(lastCheckpoint)" }
        text += "\n  pictures: \(samples)"
        for file in rejected ?? [] { text += "\n  rejected: \(file.reason)" }
        return text
    }
}
