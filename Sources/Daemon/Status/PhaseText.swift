import Engine
import Foundation

/// A dataset's phase as `synthd status`, its overview line and `synthd wait` say it:
/// "training 42%, ETA 3m10s (fine-tuning: 120 images added)". Progress and ETA only while a
/// job computes; `detail` only where asked for (the overview names the datasets alone).
func phaseText(_ state: String, progress: Double?, eta: Date?, detail: String? = nil, now: Date) -> String {
    var text = state
    if isComputing(state) {
        if let progress { text += String(format: " %.0f%%", progress * 100) }
        if let eta { text += ", ETA " + durationText(max(0, eta.timeIntervalSince(now))) }
    }
    if let detail { text += " (\(detail))" }
    return text
}

/// Whether a dataset in `state` has a job computing (training or generating): the states with
/// progress, an ETA and a device.
func isComputing(_ state: String?) -> Bool {
    state == DatasetRuntime.Phase.training.rawValue || state == DatasetRuntime.Phase.generating.rawValue
}
