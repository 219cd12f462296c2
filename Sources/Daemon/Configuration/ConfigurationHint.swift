/// What a name the configuration does not know may have meant: a table or key one or two
/// letters off (`concurency`, `[trainng]`), spelt with dashes or capitals, or a key put under
/// the wrong table (`concurrency` under `[training]`).
enum ConfigurationHint {
    /// The candidate closest to `name` within a few edits, nil when none is that close.
    static func closest(to name: String, among candidates: [String]) -> String? {
        nearest(to: name, among: candidates)?.candidate
    }

    /// A hint for an unknown `key` of `table` ("" outside any), to append to the error:
    /// " (it belongs in [service])", " (did you mean 'concurrency'?)", " (did you mean
    /// 'settle_seconds' in [watch]?)", or "" when nothing is close. `asked`: the keys each table
    /// reads; `everywhere`: the keys of every table, for a file that may hold only some (a
    /// dataset's). The nearest spelling wins; on a tie the key's own table.
    static func forKey(_ key: String, in table: String, asked: [String: [String]], everywhere: [String: [String]] = [:]) -> String {
        let others = asked.keys.filter { $0 != table && !$0.isEmpty }.sorted()
        if let home = others.first(where: { asked[$0]!.contains(key) }) { return " (it belongs in [\(home)])" }
        if let home = everywhere.keys.sorted().first(where: { asked[$0] == nil && everywhere[$0]!.contains(key) }) {
            return " (a [\(home)] key, which only the daemon's configuration sets)"
        }
        var best = nearest(to: key, among: asked[table] ?? []).map { (candidate: $0.candidate, distance: $0.distance, table: table) }
        for other in others {
            if let near = nearest(to: key, among: asked[other]!), near.distance < (best?.distance ?? .max) {
                best = (near.candidate, near.distance, other)
            }
        }
        guard let best else { return "" }
        return best.table == table ? " (did you mean '\(best.candidate)'?)" : " (did you mean '\(best.candidate)' in [\(best.table)]?)"
    }

    static func nearest(to name: String, among candidates: [String]) -> (candidate: String, distance: Int)? {
        let word = normalized(name), limit = word.count <= 4 ? 1 : word.count < 12 ? 2 : 3
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(word, normalized(candidate))
            if distance <= limit && distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        return best
    }

    /// Capitals and dashes are what a person types for the file's lower-case underscores.
    static func normalized(_ name: String) -> [Character] {
        Array(name.lowercased().map { $0 == "-" ? "_" : $0 })
    }

    /// Levenshtein's distance: insertions, deletions and substitutions.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty || b.isEmpty { return a.count + b.count }
        var previous = Array(0...b.count), current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
