import Engine

/// How advice about some of a dataset's files begins: "1 image of 300 is" or "12 images of 300
/// are" (`verb`, `pluralVerb`), and the pronoun that goes on ("it", "them").
func someImages(_ count: Int, of total: Int, _ verb: String, _ pluralVerb: String) -> (subject: String, them: String) {
    ("\(counted(count, "image")) of \(total) \(count == 1 ? verb : pluralVerb)", count == 1 ? "it" : "them")
}
