import Engine
import GAN
import Imaging

/// What about a dataset's files now its model cannot learn by fine-tuning, so that a training
/// job makes a new model (the old one set aside, as for `ModelChange`): colour images in a
/// dataset whose model is grey (read as grey, they were learnt and written as grey images,
/// silently, beside real ones in colour), or none of the model's classes left (another dataset
/// under the same name: the daemon's twenty minutes for a new dataset, not a fine-tuning round
/// of a model of other things).
public enum ModelOutgrown {
    /// Why, in words ("12 images are in colour now (shoes/red/1.jpg ...), and its model is
    /// grey"); nil when the model fits. `set`: the dataset read with the model's classes first.
    public static func reason(record: ModelRecord, set: TrainingSet) -> String? {
        if record.mode == .grey, set.colourImages.count > 0 {
            let n = set.colourImages.count
            return "\(counted(n, "image")) \(n == 1 ? "is" : "are") in colour now (\(set.colourImages.first ?? "")"
                + (n > 1 ? " and others" : "") + "), and its model is grey"
        }
        let known = record.classes.count
        if known > 0, set.classCounts.prefix(known).allSatisfy({ $0 == 0 }) {
            let named = record.classes.prefix(3).joined(separator: ", ") + (known > 3 ? ", ..." : "")
            return "none of its model's \(counted(known, "class")) (\(named)) has images now"
        }
        return nil
    }
}
